"""Faces: dlib's frontal detector and 68-point landmarks, every face, largest first."""
import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import dlib
import numpy as np

#: Photos whose shorter side is below this are upsampled to it before detection: dlib's
#: detector only finds faces of about 80 pixels or more.
MIN_SIDE = 200
#: Photos whose longer side is above this are detected on a copy downscaled to it.
MAX_SIDE = 1000


@dataclass(frozen=True)
class Face:
    """One detected face, in the photo's pixel coordinates.

    Attributes
    ----------
    box : tuple of int
        ``(left, top, right, bottom)``.
    landmarks : ndarray of shape (68, 2)
        iBUG 300-W points as ``(x, y)`` floats.
    score : float
        Detector confidence (higher is surer).
    """

    box: tuple
    landmarks: np.ndarray
    score: float

    @property
    def area(self):
        left, top, right, bottom = self.box
        return (right - left) * (bottom - top)


def model_path(name):
    """Path of a model file shipped by ``face-recognition-models`` (located without importing
    it: its ``__init__`` needs ``pkg_resources``, gone from recent setuptools)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None:
        raise RuntimeError("the package face-recognition-models is not installed "
                           "(pip install -r requirements.txt)")
    return str(Path(next(iter(spec.submodule_search_locations))) / "models" / name)


#: dlib's frontal face detector, saved once from ``dlib.get_frontal_face_detector()``:
#: reading this file takes 1 ms, rebuilding the detector from dlib's built-in copy 300 ms.
DETECTOR_MODEL = Path(__file__).with_name("models") / "frontal_face_detector.svm"


@lru_cache(maxsize=None)
def detector():
    return dlib.fhog_object_detector(str(DETECTOR_MODEL))


@lru_cache(maxsize=None)
def landmark_predictor():
    return dlib.shape_predictor(model_path("shape_predictor_68_face_landmarks.dat"))


def to_gray(image):
    """Luminance of an RGB image, as uint8 (both dlib models work on it)."""
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def detection_scale(shape, *, min_side=MIN_SIDE, max_side=MAX_SIDE):
    """Factor to resize a photo of ``shape`` by before detection (1.0: as it is)."""
    short, long = min(shape[:2]), max(shape[:2])
    if long > max_side:
        return max_side / long
    if short < min_side:
        return min_side / short
    return 1.0


def detect_faces(image, *, threshold=0.0, min_side=MIN_SIDE, max_side=MAX_SIDE):
    """Find every face in an RGB image, largest first, each with its 68 landmarks.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3)
        uint8 RGB photo (see :func:`features.images.as_rgb`).
    threshold : float
        Detector score threshold; lower finds more faces and more false ones.
    min_side, max_side : int
        Small photos are upsampled and large ones downscaled to these before detection;
        boxes are mapped back and landmarks are fitted on the full-resolution photo.

    Returns
    -------
    list of Face
    """
    gray = to_gray(image)
    scale = detection_scale(gray.shape, min_side=min_side, max_side=max_side)
    resized = gray if scale == 1.0 else cv2.resize(
        gray, None, fx=scale, fy=scale,
        interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    rects, scores, _ = detector().run(resized, 0, threshold)
    faces = []
    for rect, score in zip(rects, scores):
        box = tuple(int(round(v / scale)) for v in
                    (rect.left(), rect.top(), rect.right(), rect.bottom()))
        shape = landmark_predictor()(gray, dlib.rectangle(*box))
        points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
        faces.append(Face(box=box, landmarks=points, score=float(score)))
    return sorted(faces, key=lambda face: face.area, reverse=True)
