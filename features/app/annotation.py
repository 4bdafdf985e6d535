"""Annotated copies of photos: every face boxed with its labels, probabilities, types and products."""
import os
import unicodedata
from pathlib import Path

import cv2
import numpy as np

from features.files import write_atomically
from features.labels import TYPE_VALUES, judged, likeliest, type_text
from features.products.recommendations import TYPE_PHRASES

COLOURS = {"hat": (230, 120, 30), "beard": (40, 160, 40), "eyewear": (40, 90, 230)}  # RGB
#: A face with no label: the page's grey for it.
NO_LABEL = (138, 147, 158)
#: The legend's ground, a dark grey the captions' black stands out on.
LEGEND_GROUND = 48


#: Longest side the drawing is laid out for: on a larger photo boxes and text grow with it,
#: so that the photo shown whole on a screen (about this size) reads as a small one does.
LAYOUT_SIDE = 1000
#: Photos under this side are enlarged first, so the text keeps room beside small faces.
MIN_SIDE = 500
#: A caption further below its face than this many of its own heights is not beside it: a
#: crowd's captions, pushed down past each other, were read as other people's (a boy in a
#: bare head given the red cap of the man above him), so the photo gets a legend instead.
NEAR = 2
#: JPEG's longest side: a wider panorama's copy is made smaller (OpenCV refused to encode it,
#: logging its own error lines, and the copy was lost).
MAX_SIDE = 65_500
#: How far a face's number may go from its box to find a place clear of the others, in the
#: number's own heights: further, and it reads as the next face's.
TAG_REACH = 1.5


def annotate(image, faces):
    """Draw each face's box, scores, types and first product of each category on a copy of
    ``image``, each face's text beside it, or, when some face's text finds no room near it,
    every face numbered on the photo and its text in a legend below (a photo without a face
    says so).

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
        at most :data:`MAX_SIDE` a side; taller by its legend, if it has one).
    """
    longest = max(image.shape[:2])
    scale = min(max(1.0, MIN_SIDE / longest), MAX_SIDE / longest)
    resampling = cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA
    canvas = image.copy() if scale == 1 else cv2.resize(image, None, fx=scale, fy=scale, interpolation=resampling)
    text = Text.for_canvas(canvas.shape)
    boxes = [tuple(int(round(v * scale)) for v in face["box"]) for face in faces]
    captions = [face_lines(number, face) for number, face in enumerate(faces, start=1)] or [["no face found"]]
    places = caption_places(canvas.shape, boxes, [text.block(lines) for lines in captions], text.gap)
    for face, (left, top, right, bottom) in zip(faces, boxes):
        strongest = max(face["labels"], key=lambda name: face["scores"][name]) if face["labels"] else None
        colour = COLOURS.get(strongest, NO_LABEL)
        cv2.rectangle(canvas, (left, top), (right, bottom), colour, max(2, round(2 * text.grow)))
    if None not in places:
        for lines, (x, y) in zip(captions, places):
            text.draw(canvas, lines, x, y)
        return canvas
    tags = [[f"#{number}"] for number in range(1, len(boxes) + 1)]  # a legend: each face numbered on it
    for tag, (x, y) in zip(tags, tag_places(canvas.shape, boxes, [text.block(tag) for tag in tags])):
        text.draw(canvas, tag, x, y)
    strip = legend(canvas.shape[1], captions, text)
    if strip.shape[1] > canvas.shape[1]:  # captions wider than a narrow photo: the photo padded, not they cut
        canvas = np.hstack([canvas, np.full((canvas.shape[0], strip.shape[1] - canvas.shape[1], 3), LEGEND_GROUND,
                                            np.uint8)])
    drawn = np.vstack([canvas, strip])
    fit = MAX_SIDE / max(drawn.shape[:2])
    if fit < 1:  # JPEG's limit, legend included
        size = (min(MAX_SIDE, round(drawn.shape[1] * fit)), min(MAX_SIDE, round(drawn.shape[0] * fit)))
        drawn = cv2.resize(drawn, size, interpolation=cv2.INTER_AREA)
    return drawn


class Text:
    """Lines of white text on black, in one font and size."""

    def __init__(self, font, size, stroke, grow):
        self.font, self.size, self.stroke, self.grow = font, size, stroke, grow
        self.gap = round(4 * grow)  # between a box and its text, and around a legend's blocks
        self.pad = round(8 * grow)  # of each line's height, around its letters
        self.rise = round(3 * grow)  # of the baseline over the line's bottom

    @classmethod
    def for_canvas(cls, shape):
        """The text for a canvas of ``shape``, grown with it from :data:`LAYOUT_SIDE`; by the
        short side too: a panorama's text grew with its width, taller than the photo."""
        grow = max(1.0, min(max(shape[:2]) / LAYOUT_SIDE, 2 * min(shape[:2]) / LAYOUT_SIDE))
        return cls(cv2.FONT_HERSHEY_SIMPLEX, 0.45 * grow, max(1, round(grow)), grow)

    def step(self, lines):
        return max(cv2.getTextSize(line, self.font, self.size, self.stroke)[0][1] for line in lines) + self.pad

    def block(self, lines):
        """Width and height of ``lines`` drawn."""
        return (max(cv2.getTextSize(line, self.font, self.size, self.stroke)[0][0] for line in lines),
                self.step(lines) * len(lines))

    def draw(self, canvas, lines, x, y):
        step = self.step(lines)
        for line in lines:
            (width, height), _ = cv2.getTextSize(line, self.font, self.size, self.stroke)
            cv2.rectangle(canvas, (x, y), (x + width, y + step), (0, 0, 0), -1)
            cv2.putText(canvas, line, (x, y + height + self.rise), self.font, self.size, (255, 255, 255),
                        self.stroke, cv2.LINE_AA)
            y += step


def caption_places(shape, boxes, blocks, gap):
    """Top-left corner of each face's text block beside its box (``None`` where none is near:
    :func:`block_top`, or where the block is wider than the photo), clear of every face and of
    the blocks placed before it; a photo without a face (no box, one block) gets its block at
    the top left."""
    if not boxes:
        return [(0, 0)]
    height_limit, taken, places = shape[0], list(boxes), []
    for (left, top, _, bottom), (width, height) in zip(boxes, blocks):
        x = int(np.clip(left, 0, max(0, shape[1] - width)))
        fits = width <= shape[1]
        y = block_top(x, width, height, (bottom + gap, top - height), taken, height_limit) if fits else None
        places.append(None if y is None else (x, y))
        if y is not None:
            taken.append((x, y, x + width, y + height))
    return places


def tag_places(shape, boxes, sizes):
    """Top-left corner of each face's number (``sizes``: each one's width and height): the
    first of :func:`tag_spots` clear of the other faces and the numbers placed before, else
    clear of those numbers, else the first of them."""
    placed, places = [], []
    for number, (box, size) in enumerate(zip(boxes, sizes)):
        spots = tag_spots(shape, box, size)
        taken = np.array([other for index, other in enumerate(boxes) if index != number] + placed).reshape(-1, 4)
        free = overlaps(spots, taken) == 0
        free_of_numbers = overlaps(spots, np.array(placed).reshape(-1, 4)) == 0
        spot = spots[np.argmax(free) if free.any() else np.argmax(free_of_numbers) if free_of_numbers.any() else 0]
        placed.append(tuple(int(v) for v in spot))
        places.append(placed[-1][:2])
    return places


def tag_spots(shape, box, size):
    """Rectangles where a face's number may go, inside the photo, in order of preference: over
    its box, under it, inside its top, then around it (not over it) nearest first, up to
    :data:`TAG_REACH` of its heights away (a crowd's numbers, all over or under their boxes,
    were drawn over each other); a photo too small for any, over the box."""
    left, top, right, bottom = box
    width, height = size
    x = int(np.clip(left, 0, max(0, shape[1] - width)))
    reach, step = round(TAG_REACH * height), max(1, height // 4)
    wide = np.arange(left - width - reach, right + reach + 1, step)
    tall = np.arange(top - height + 1, bottom, step)
    bands = [(wide, np.arange(top - height - reach, top - height + 1, step)),  # over the box
             (wide, np.arange(bottom, bottom + reach + 1, step)),  # under it
             (np.arange(left - width - reach, left - width + 1, step), tall),  # left of it
             (np.arange(right, right + reach + 1, step), tall)]  # right of it: a ring, not the box's inside too
    corners = np.vstack([np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2) for xs, ys in bands])
    around = np.hstack([corners, corners + (width, height)])
    gap = np.maximum.reduce([left - around[:, 2], around[:, 0] - right, top - around[:, 3], around[:, 1] - bottom])
    near = (gap >= 0) & (gap <= reach)
    around = around[near][np.lexsort((around[near, 0], around[near, 1], gap[near]))]  # nearest, then top to bottom
    spots = np.vstack([[(x, y, x + width, y + height) for y in (top - height, bottom, top)], around])
    inside = (spots[:, 0] >= 0) & (spots[:, 1] >= 0) & (spots[:, 2] <= shape[1]) & (spots[:, 3] <= shape[0])
    return spots[inside] if inside.any() else np.array([(x, max(0, top - height), x + width, max(height, top))])


def overlaps(rects, others):
    """For each of ``rects`` (an array of ``(x0, y0, x1, y1)``), how many of ``others`` it
    overlaps."""
    return ((rects[:, None, 0] < others[None, :, 2]) & (others[None, :, 0] < rects[:, None, 2])
            & (rects[:, None, 1] < others[None, :, 3]) & (others[None, :, 1] < rects[:, None, 3])).sum(axis=1)


def clear(rect, rects):
    """Whether ``rect`` overlaps none of ``rects`` (each ``(x0, y0, x1, y1)``)."""
    return not overlaps(np.array([rect]), np.array(rects).reshape(-1, 4)).any()


def legend(width, captions, text):
    """A dark strip at least ``width`` wide (wider for a caption wider than that) holding
    every caption's block, in columns as wide as the widest block (as many as fit), row
    after row."""
    column = max(text.block(lines)[0] for lines in captions) + text.gap
    width = max(width, column + text.gap)
    columns = max(1, (width - text.gap) // column)
    rows = [captions[i:i + columns] for i in range(0, len(captions), columns)]
    heights = [max(text.block(lines)[1] for lines in row) + text.gap for row in rows]
    strip = np.full((sum(heights) + text.gap, width, 3), LEGEND_GROUND, np.uint8)
    y = text.gap
    for row, height in zip(rows, heights):
        for place, lines in enumerate(row):
            text.draw(strip, lines, text.gap + place * column, y)
        y += height
    return strip


def face_lines(number, face):
    """The text beside one face: its scores (decided labels starred), types and the first
    product of each category (the first alone hid a face's eyewear and beard products behind
    its hat), or why it is not judged."""
    lines = [f"#{number} " + " ".join(f"{k} {v}{'*' if k in face['labels'] else ''}"
                                      for k, v in face["score_texts"].items())]
    lines += [type_line(face["types"])] if face.get("types") else []
    if not judged(face["quality"]):
        return lines + ["not judged: " + ", ".join(check.replace("_", " ") for check in face["quality"]["failed"])]
    products = face["recommendations"]
    firsts = [r for i, r in enumerate(products) if all(o["category"] != r["category"] for o in products[:i])]
    return lines + ([f"-> {drawable(r['name'])}" for r in firsts] or ["-> no product"])


def drawable(text):
    """``text`` in the ASCII that OpenCV's Hershey fonts draw: accents dropped (``été`` reads
    ``ete``, where each letter was drawn as ``??``), any other character a ``?``."""
    plain = unicodedata.normalize("NFKD", text)
    return "".join(c for c in plain if not unicodedata.combining(c)).encode("ascii", "replace").decode()


def block_top(x, width, height, preferred, taken, canvas_height):
    """Top of a text block ``width`` x ``height`` at ``x``: the first of ``preferred`` (under
    the box, over it) that stays in the picture and clear of the blocks and boxes ``taken``,
    else the first clear place under the box within :data:`NEAR` block heights, else None."""
    def fits(y):
        return 0 <= y and y + height <= canvas_height and clear((x, y, x + width, y + height), taken)

    below = min(max(0, preferred[0]), max(0, canvas_height - height))
    further = range(below, min(canvas_height - height, preferred[0] + NEAR * height) + 1, 4)
    return next((y for y in (*preferred, *further) if fits(y)), None)


def type_line(types):
    """The most likely type of each family, named as a reason names it (``dark 0.93`` and
    ``black brimmed 0.64`` did not say which family): ``dark sunglasses 0.93, navy cap 0.81,
    goatee 0.70``, each probability as :func:`~features.labels.type_text` writes it."""
    colour = f"{types['hat_colour']} " if "hat_colour" in types else ""
    parts = [f"{colour * (f == 'hat')}{TYPE_PHRASES[likeliest(types[f])]} {type_text(f, types[f][likeliest(types[f])])}"
             for f in TYPE_VALUES if f in types]
    if colour and "hat" not in types:  # a model without a headwear type: the colour alone
        parts.insert(1 if "eyewear" in types else 0, colour.strip())
    return ", ".join(parts)


def save_rgb(path, image, *, comment=None):
    """Write an RGB array to an image file (format from the suffix), whole or not at all;
    ``comment`` (bytes): a JPEG's comment segment.

    OpenCV encodes, Python writes: ``cv2.imwrite`` takes the path as UTF-8 text and crashes
    the process on a file name that is not (Linux names are bytes).
    """
    encoded, data = cv2.imencode(Path(path).suffix, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not encoded:
        raise ValueError(f"OpenCV could not encode the image as {Path(path).suffix}")
    data = data.tobytes() if comment is None else with_comment(data.tobytes(), comment)
    write_atomically(path, lambda temporary: Path(temporary).write_bytes(data), durable=False)


#: How the comment of every annotated copy starts: ``recommend.py --annotate`` replaces a
#: file of a copy's name only when it says this (an earlier run's copy), never another photo
#: there.
COPY_MARK = b"img2recommender annotated copy"


def copy_comment(source, *, name=None):
    """The comment of the annotated copy of the photo at ``source``: :data:`COPY_MARK` and the
    photo's absolute path, so that a copy says which photo it is of (``post.jpg`` and
    ``post-2.jpg`` of two folders' ``post.jpg`` did not; Linux names are bytes, kept so), or
    ``name`` (bytes), where ``source`` is a private copy of the photo (a web upload)."""
    return COPY_MARK + b" of " + (os.fsencode(os.path.abspath(source)) if name is None else name)


#: A JPEG's first bytes (its start of image).
JPEG_START = b"\xff\xd8"


def comment_segment(comment):
    """A JPEG comment segment (COM): its marker, its length, the bytes."""
    return b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment


def with_comment(jpeg, comment):
    """A JPEG's bytes with a comment segment after its start and its JFIF header, which must
    come first; ValueError for bytes that are not a JPEG's."""
    if not jpeg.startswith(JPEG_START):
        raise ValueError("a comment segment goes into a JPEG only")
    start = 2 + (2 + int.from_bytes(jpeg[4:6], "big") if jpeg[2:4] == b"\xff\xe0" else 0)
    return jpeg[:start] + comment_segment(comment) + jpeg[start:]


def is_annotated_copy(path):
    """Whether ``path`` is an annotated copy: a regular file (a named pipe would hold the
    read for good), a JPEG whose comment, in its first bytes, starts with :data:`COPY_MARK`.
    False for anything else, or a file that cannot be read."""
    try:
        if not os.path.isfile(path):
            return False
        with open(path, "rb") as file:
            head = file.read(256)
    except OSError:
        return False
    comment = head.find(b"\xff\xfe") + 4  # after the segment's marker and length
    return head.startswith(JPEG_START) and comment > 4 and head[comment:comment + len(COPY_MARK)] == COPY_MARK
