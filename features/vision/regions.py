"""Regions: fixed-size crops of a face, aligned by its eye line, where hats, glasses and
beards show.

Every crop is cut in the face's own frame: origin between the eyes, x along the eye line,
sizes relative to the face found by the landmarks.  Parts outside the photo are padded with
black, so a crop never shifts to stay inside the photo.
"""
import cv2
import numpy as np

from features.vision.landmarks import BROWS, CHEEK_JAW, CHIN, JAWLINE, LEFT_EYE, NOSE_BOTTOM, NOSE_BRIDGE, RIGHT_EYE

#: Output size ``(width, height)`` of each region.
REGION_SIZES = {
    "forehead": (64, 48),   # brows up to one face-height above: hats
    "eye_band": (96, 32),   # brows to the bridge of the nose, temple to temple: eyewear
    "jaw": (64, 48),        # below the nose to below the chin, cheek to cheek: beards
    "context": (224, 224),  # the head with what it wears, for the ImageNet CNN
    "eyes": (224, 224),     # brows to the nose tip, temple to temple, at the CNN's square input: glasses up close
    "hat": (224, 224),      # the forehead's rectangle at the CNN's input: a hat's shape (its type)
    "lower_face": (224, 224),  # the lower nose to under the chin, ear to ear, at the CNN's square input: beards up close
}
REGIONS = ("forehead", "eye_band", "jaw")


def face_frame(landmarks):
    """Origin (between the eyes) and angle (of the eye line, radians) of a face's frame."""
    left = landmarks[LEFT_EYE].mean(axis=0)
    right = landmarks[RIGHT_EYE].mean(axis=0)
    dx, dy = right - left
    return (left + right) / 2.0, float(np.arctan2(dy, dx))


def rotation(angle):
    """The 2x2 matrix taking the face's frame axes to the photo's (angle of the eye line)."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


def to_frame(points, origin, angle):
    """Photo coordinates to the face's frame (rotated so the eye line is horizontal)."""
    return (np.asarray(points, dtype=np.float64) - origin) @ rotation(angle)


def region_rects(landmarks):
    """Each region's rectangle ``(x0, y0, x1, y1)`` in the face's frame, from its landmarks."""
    origin, angle = face_frame(landmarks)
    pts = to_frame(landmarks, origin, angle)
    left, right = pts[JAWLINE, 0].min(), pts[JAWLINE, 0].max()
    centre, width = (left + right) / 2.0, right - left
    brow, chin = pts[BROWS, 1].min(), pts[CHIN, 1]
    height = chin - brow
    top = brow - 0.9 * height
    context_bottom = chin + 0.25 * height
    half = (context_bottom - top) / 2.0
    forehead = (centre - 0.65 * width, brow - 1.0 * height, centre + 0.65 * width, brow)
    return {
        "forehead": forehead,
        "eye_band": (left, brow - 0.05 * height, right, pts[NOSE_BRIDGE, 1]),
        "jaw": (pts[CHEEK_JAW[0], 0] - 0.05 * width, pts[NOSE_BOTTOM, 1],
                pts[CHEEK_JAW[1], 0] + 0.05 * width, chin + 0.15 * height),
        "context": (centre - half, top, centre + half, context_bottom),
        "eyes": (left, brow - 0.1 * width, right, pts[NOSE_BOTTOM, 1]),
        "hat": forehead,
        "lower_face": (left - 0.1 * width, pts[NOSE_BRIDGE, 1], right + 0.1 * width, chin + 0.25 * height),
    }


def crop_rect(image, origin, angle, rect, size):
    """Resample the rectangle ``rect`` of the face frame into a ``size`` (w, h) crop."""
    x0, y0, x1, y1 = rect
    width, height = size
    sx, sy = (x1 - x0) / width, (y1 - y0) / height
    turn = rotation(angle)
    # Output pixel (u, v) -> photo point: origin + R(angle) @ (x0 + u*sx, y0 + v*sy).
    matrix = np.zeros((2, 3))
    matrix[:, :2] = turn * np.array([sx, sy])
    matrix[:, 2] = origin + turn @ np.array([x0, y0])
    # Half-pixel centres: sample the middle of each output pixel.
    matrix[:, 2] += 0.5 * (matrix[:, 0] + matrix[:, 1]) - 0.5
    interpolation = cv2.INTER_AREA if max(sx, sy) > 1 else cv2.INTER_LINEAR
    return cv2.warpAffine(image, matrix, (width, height), flags=interpolation | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def extract_regions(image, face, *, regions=tuple(REGION_SIZES)):
    """Crop the named regions of one face.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3)
        uint8 RGB photo the face was found in.
    face : Face
        From :func:`features.vision.faces.detect_faces`.
    regions : sequence of str
        Names from :data:`REGION_SIZES`.

    Returns
    -------
    dict of str to ndarray
        Each crop as ``(height, width, 3)`` uint8 RGB, sized by :data:`REGION_SIZES`.
    """
    origin, angle = face_frame(face.landmarks)
    rects = region_rects(face.landmarks)
    return {name: crop_rect(image, origin, angle, rects[name], REGION_SIZES[name])
            for name in regions}


def cut_above_brows(image, face, share):
    """The photo cut ``share`` face heights (brows to chin) above the face's brows, as a new
    array; None when that line lies above the photo's top already.

    Training copies framed as tightly as many photos outside CelebA, where a hat runs past the
    top edge (``train.py``).
    """
    brow, chin = face.landmarks[BROWS, 1].min(), face.landmarks[CHIN, 1]
    top = int(round(brow - share * (chin - brow)))
    return image[top:].copy() if top > 0 else None
