"""Face quality: is a face like the ones the model learned from, or should we not judge it?

Per face: its width in pixels, its sharpness (variance of the Laplacian of the aligned face,
at one contrast),
its yaw estimated from the detector's keypoints (or the landmarks), and whether the photo's
edge cuts it. A face outside
the training range is ``"uncertain"``: its scores are still shown, but it gets no product.
"""
import cv2
import numpy as np

from features.labels import JUDGED
from features.vision.faces import KEYPOINTS
from features.vision.landmarks import BROWS, CHIN, JAWLINE, NOSE_TIP
from features.vision.regions import crop_rect, face_frame, to_frame

#: Faces narrower than this (photo pixels, detector box) are below every training face:
#: 99.5% of the CelebA faces the model learned from are 39 px or wider (README, "Faces we do
#: not judge").
MIN_WIDTH = 36
#: Aligned faces with a Laplacian variance (at :data:`REFERENCE_CONTRAST`) under this are
#: blurred beyond nearly all training faces (their 0.5th percentile is 58; README, "Faces we
#: do not judge", measures what it withholds).
MIN_SHARPNESS = 60.0
#: The contrast sharpness is read at (:func:`contrast`): the training faces' median.  The
#: Laplacian scales with the contrast, so a dim or flat face read blurred, sharp or not, though
#: its scores hardly moved (README, "Sharpness at one contrast").
REFERENCE_CONTRAST = 42.3
#: The lowest contrast sharpness is brought up from: the training faces' 0.5th percentile.
#: From flatter faces the photo's noise and 8-bit steps, amplified, read as detail (a face at
#: 35% of its light and blurred read sharp), so such a face may read "blurred or too flat".
MIN_CONTRAST = 19.8
#: Faces turned further than this (degrees, :func:`yaw_degrees`) are beyond the training range:
#: out of fold on the shared photos, the faces turned over 50 degrees (1.9% of them) get a
#: label wrong 2x as often as the others (0.199 against 0.103); those between 41 and 50 (4.0%)
#: 0.111, about as often as those between 30 and 41 (README, "Faces we do not judge").
MAX_YAW = 50.0
#: The checks a face can fail, in the order a quality record lists them.
CHECKS = ("too_small", "blurred", "turned", "cut_off")
#: The aligned face is resampled to this square so that sharpness compares across face sizes.
ALIGNED_SIZE = 64


def aligned_face(image, face):
    """Grayscale square crop of the face, brows to chin and jaw side to side, eyes level."""
    origin, angle = face_frame(face.landmarks)
    points = to_frame(face.landmarks, origin, angle)
    rect = (points[JAWLINE, 0].min(), points[BROWS, 1].min(), points[JAWLINE, 0].max(), points[CHIN, 1])
    crop = crop_rect(image, origin, angle, rect, (ALIGNED_SIZE, ALIGNED_SIZE))
    return cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)


def contrast(aligned):
    """The light and shade of an aligned face (:func:`aligned_face`): the standard deviation of
    its grey levels at 16x16, where a blur that softens its detail leaves it (at full size a
    blur lowered it too, and so hid itself from :func:`sharpness`)."""
    return float(cv2.resize(aligned, (16, 16), interpolation=cv2.INTER_AREA).std())


def sharpness(aligned):
    """Variance of the Laplacian of an aligned face (:func:`aligned_face`) brought to
    :data:`REFERENCE_CONTRAST` (from :data:`MIN_CONTRAST` at the least): low for blurred or
    tiny faces, in any but the flattest light."""
    gain = REFERENCE_CONTRAST / max(contrast(aligned), MIN_CONTRAST)
    return float(cv2.Laplacian(aligned, cv2.CV_64F).var() * gain ** 2)


def yaw_degrees(face):
    """Head turn, in degrees (0 frontal; negative: the nose tip towards the photo's left).

    From ``r``, the nose tip's share of the way between two points either side of it, along
    the line through them: ``atan(2 r - 1)``.  On a head seen as a cylinder, with the nose tip
    1.3 radii from its axis (head 154 mm wide, tip about 100 mm ahead of the ears),
    ``tan(yaw) = (2 r - 1) sin(a) / (1.3 - cos(a))`` for points at +-a on its surface: 1.05
    times ``2 r - 1`` for the eyes (63 mm apart, a = 24 degrees) and 0.98-1.03 times for the
    jaw's ends (a = 65-70 degrees).  The nose tip reaches the far eye (``r`` = 1) at 45 degrees.
    The points are the detector's eye keypoints where it gives them (the 68 landmarks, fitted
    for frontal faces, stay frontal on a profile), else the ends of the landmarks' jawline.
    A rough reading: good for "frontal or turned", not for angles.
    """
    if face.keypoints is not None:
        first, last = face.keypoints[KEYPOINTS.index("right_eye")], face.keypoints[KEYPOINTS.index("left_eye")]
        nose = face.keypoints[KEYPOINTS.index("nose_tip")]
    else:
        first, last, nose = face.landmarks[JAWLINE][0], face.landmarks[JAWLINE][-1], face.landmarks[NOSE_TIP]
    axis = last - first
    share = np.dot(nose - first, axis) / max(float(np.dot(axis, axis)), 1e-9)
    return float(np.degrees(np.arctan(2 * share - 1)))


def touches_edge(image, face):
    """Whether the photo's edge cuts the face: a landmark lies outside the photo."""
    height, width = image.shape[:2]
    x, y = face.landmarks[:, 0], face.landmarks[:, 1]
    return bool((x < 0).any() or (y < 0).any() or (x > width - 1).any() or (y > height - 1).any())


def face_quality(image, face):
    """The quality record of one face, with its status and the checks it failed.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3)
        uint8 RGB photo the face was found in.
    face : Face
        From :func:`features.vision.faces.detect_faces`.

    Returns
    -------
    dict
        ``width_px``, ``sharpness``, ``yaw_degrees``, ``touches_edge``, ``status`` ("ok" or
        "uncertain"), ``failed`` (the names of the checks failed, from :data:`CHECKS`) and
        ``reasons`` (each failed check in words, with its figures; both empty when ok).
    """
    left, _, right, _ = face.box
    aligned = aligned_face(image, face).astype(np.float64)
    record = {"width_px": int(right - left), "sharpness": round(sharpness(aligned), 1),
              "yaw_degrees": round(yaw_degrees(face), 1),
              "touches_edge": touches_edge(image, face)}
    fails = (record["width_px"] < MIN_WIDTH, record["sharpness"] < MIN_SHARPNESS,
             abs(record["yaw_degrees"]) > MAX_YAW, record["touches_edge"])  # in the order of CHECKS
    words = (f"face {record['width_px']} px wide, under {MIN_WIDTH} px",
             f"blurred{' or too flat' * (contrast(aligned) < MIN_CONTRAST)} "
             f"(sharpness {record['sharpness']:.0f}, under {MIN_SHARPNESS:.0f})",
             f"turned {abs(record['yaw_degrees']):.0f} degrees, over {MAX_YAW:.0f}",
             "cut by the photo's edge")
    failed = {check: reason for check, fail, reason in zip(CHECKS, fails, words) if fail}
    return {**record, "status": "uncertain" if failed else JUDGED, "failed": list(failed),
            "reasons": list(failed.values())}
