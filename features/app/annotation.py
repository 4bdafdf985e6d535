"""Annotated copies of photos: every face boxed with its labels, probabilities, types and product."""
import unicodedata
from pathlib import Path

import cv2
import numpy as np

from features.files import write_atomically
from features.labels import likeliest, type_word
from features.numbers import fixed

COLOURS = {"hat": (230, 120, 30), "beard": (40, 160, 40), "eyewear": (40, 90, 230)}  # RGB


#: Longest side the drawing is laid out for: on a larger photo boxes and text grow with it,
#: so that the photo shown whole on a screen (about this size) reads as a small one does.
LAYOUT_SIDE = 1000
#: Photos under this side are enlarged first, so the text keeps room beside small faces.
MIN_SIDE = 500
#: JPEG's longest side: a wider panorama's copy is made smaller (OpenCV refused to encode it,
#: logging its own error lines, and the copy was lost).
MAX_SIDE = 65_500


def annotate(image, faces):
    """Draw each face's box, scores and first recommended product on a copy of ``image``.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3)
        uint8 RGB photo; left unchanged.
    faces : list of dict
        Per-face results (``box``, ``score_texts``, ``labels``, ``types``, ``quality``,
        ``recommendations``).

    Returns
    -------
    ndarray
        The annotated RGB copy (upscaled so that text stays readable on small photos, and
        at most :data:`MAX_SIDE` a side).
    """
    longest = max(image.shape[:2])
    scale = min(max(1.0, MIN_SIDE / longest), MAX_SIDE / longest)
    resampling = cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA
    canvas = image.copy() if scale == 1 else cv2.resize(image, None, fx=scale, fy=scale, interpolation=resampling)
    # by the short side too: a panorama's text grew with its width, taller than the photo
    grow = max(1.0, min(max(canvas.shape[:2]) / LAYOUT_SIDE, 2 * min(canvas.shape[:2]) / LAYOUT_SIDE))
    font, size, stroke = cv2.FONT_HERSHEY_SIMPLEX, 0.45 * grow, max(1, round(grow))
    boxes = [tuple(int(round(v * scale)) for v in face["box"]) for face in faces]
    # where no text goes: every face (a caption drawn across another face hid it) and the
    # text blocks drawn so far, each (x0, y0, x1, y1); a block that cannot avoid them all goes
    # under its box anyway
    taken = list(boxes)
    for number, (face, (left, top, right, bottom)) in enumerate(zip(faces, boxes), start=1):
        strongest = max(face["labels"], key=lambda name: face["scores"][name]) if face["labels"] else None
        colour = COLOURS.get(strongest, (200, 200, 200))
        cv2.rectangle(canvas, (left, top), (right, bottom), colour, max(2, round(2 * grow)))
        lines = face_lines(number, face)
        sizes = [cv2.getTextSize(line, font, size, stroke)[0] for line in lines]
        step = max(h for _, h in sizes) + round(8 * grow)
        width, height = max(w for w, _ in sizes), step * len(lines)
        x = int(np.clip(left, 0, max(0, canvas.shape[1] - width)))
        y = block_top(x, width, height, (bottom + round(4 * grow), top - height), taken, canvas.shape[0])
        taken.append((x, y, x + width, y + height))
        for line, (line_width, line_height) in zip(lines, sizes):
            cv2.rectangle(canvas, (x, y), (x + line_width, y + step), (0, 0, 0), -1)
            cv2.putText(canvas, line, (x, y + line_height + round(3 * grow)), font, size, (255, 255, 255), stroke,
                        cv2.LINE_AA)
            y += step
    return canvas


def face_lines(number, face):
    """The text beside one face: its scores (decided labels starred), types and product, or
    why it is not judged."""
    lines = [f"#{number} " + " ".join(f"{k} {v}{'*' if k in face['labels'] else ''}"
                                      for k, v in face["score_texts"].items())]
    lines += [type_line(face["types"])] if face.get("types") else []
    if face.get("quality", {}).get("status") == "uncertain":
        return lines + ["not judged: " + ", ".join(check.replace("_", " ") for check in face["quality"]["failed"])]
    return lines + ([f"-> {drawable(r['name'])}" for r in face["recommendations"][:1]] or ["-> no product"])


def drawable(text):
    """``text`` in the ASCII that OpenCV's Hershey fonts draw: accents dropped (``été`` reads
    ``ete``, where each letter was drawn as ``??``), any other character a ``?``."""
    plain = unicodedata.normalize("NFKD", text)
    return "".join(c for c in plain if not unicodedata.combining(c)).encode("ascii", "replace").decode()


def block_top(x, width, height, preferred, taken, canvas_height):
    """Top of a text block ``width`` x ``height`` at ``x``: the first of ``preferred`` (under
    the box, over it) that stays in the picture and clear of the blocks ``taken``, else the
    first place under the box that is clear, else under the box anyway."""
    def fits(y):
        return 0 <= y and y + height <= canvas_height and not any(
            x < x1 and x0 < x + width and y < y1 and y0 < y + height for x0, y0, x1, y1 in taken)

    below = min(max(0, preferred[0]), max(0, canvas_height - height))
    return next((y for y in (*preferred, *range(below, canvas_height - height + 1, 4)) if fits(y)), below)


def type_line(types):
    """The most likely type of each family, short: ``dark 0.93 navy cap 0.81 goatee 0.70``."""
    parts = [f"{type_word(likeliest(types[f]))} {fixed(types[f][likeliest(types[f])], 2)}"
             for f in ("eyewear", "hat", "beard") if f in types]
    if "hat_colour" in types:
        parts.insert(1 if "eyewear" in types else 0, types["hat_colour"])
    return " ".join(parts)


def save_rgb(path, image):
    """Write an RGB array to an image file (format from the suffix), whole or not at all.

    OpenCV encodes, Python writes: ``cv2.imwrite`` takes the path as UTF-8 text and crashes
    the process on a file name that is not (Linux names are bytes).
    """
    encoded, data = cv2.imencode(Path(path).suffix, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not encoded:
        raise ValueError(f"OpenCV could not encode the image as {Path(path).suffix}")
    write_atomically(path, lambda temporary: Path(temporary).write_bytes(data.tobytes()), durable=False)
