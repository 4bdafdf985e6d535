"""Annotated copies of photos: every face boxed with its labels, probabilities, types and product."""
import cv2
import numpy as np

COLOURS = {"hat": (230, 120, 30), "beard": (40, 160, 40), "eyewear": (40, 90, 230)}  # RGB


def annotate(image, faces):
    """Draw each face's box, scores and first recommended product on a copy of ``image``.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3)
        uint8 RGB photo; left unchanged.
    faces : list of dict
        Per-face results (``box``, ``scores``, ``labels``, ``types``, ``recommendations``).

    Returns
    -------
    ndarray
        The annotated RGB copy (upscaled so that text stays readable on small photos).
    """
    scale = max(1.0, 500.0 / max(image.shape[:2]))
    canvas = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC) if scale > 1 else image.copy()
    font, size = cv2.FONT_HERSHEY_SIMPLEX, 0.45
    for number, face in enumerate(faces, start=1):
        left, top, right, bottom = (int(round(v * scale)) for v in face["box"])
        strongest = max(face["labels"], key=lambda name: face["scores"][name]) if face["labels"] else None
        colour = COLOURS.get(strongest, (200, 200, 200))
        cv2.rectangle(canvas, (left, top), (right, bottom), colour, 2)
        lines = [f"#{number} " + " ".join(f"{k} {v:.2f}{'*' if k in face['labels'] else ''}"
                                          for k, v in face["scores"].items())]
        lines += [type_line(face["types"])] if face.get("types") else []
        lines += [f"-> {r['name']}" for r in face["recommendations"][:1]] or ["-> no product"]
        y = bottom + 16 if bottom + 16 * len(lines) < canvas.shape[0] else max(14, top - 16 * len(lines))
        for line in lines:
            (width, height), _ = cv2.getTextSize(line, font, size, 1)
            x = int(np.clip(left, 0, max(0, canvas.shape[1] - width)))
            cv2.rectangle(canvas, (x, y - height - 3), (x + width, y + 4), (0, 0, 0), -1)
            cv2.putText(canvas, line, (x, y), font, size, (255, 255, 255), 1, cv2.LINE_AA)
            y += height + 8
    return canvas


def type_line(types):
    """The most likely type of each family, short: ``dark 0.93 cap 0.81 navy goatee 0.70``."""
    parts = [f"{next(iter(types[f]))} {next(iter(types[f].values())):.2f}" for f in ("eyewear", "hat", "beard")
             if f in types]
    if "hat_colour" in types:
        parts.insert(1 if "eyewear" in types else 0, types["hat_colour"])
    return " ".join(parts)


def save_rgb(path, image):
    """Write an RGB array to an image file (format from the suffix)."""
    if not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise OSError(f"{path}: could not write the annotated image")
