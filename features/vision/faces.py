"""Faces: every face of a photo, largest first, each with dlib's 68 landmarks.

Detectors, chosen by :class:`DetectionSettings` (``benchmarks/detection.py`` measures them):

- ``"blazeface"`` (the default): MediaPipe's BlazeFace full-range network as ONNX (see
  ``features/vision/models/README.md``) on the whole photo and, for small faces, on a pyramid of
  overlapping tiles, merged with the short-range network's faces over the whole photo (for
  close-ups); a face found only in tiles, or one the detector is unsure of, is checked again
  on a crop around it, by both networks and, where both doubt it, by dlib's MMOD;
- ``"blazeface_short"``: the short-range network alone;
- ``"hog"``: dlib's frontal HOG detector, the project's first detector;
- ``"mmod"``: dlib's CNN (MMOD) detector, for the benchmark (0.5 s on a 250x250 photo); the
  default's re-check runs it on a small crop.

The 68-point shape predictor was trained on HOG boxes, so other detectors' boxes are first
mapped to the HOG convention (:data:`HOG_BOX_FROM`).  A face BlazeFace finds lying on its side
is looked at again turned upright (:func:`seen_upright`), and a rolled face's 68 points are
fitted on an upright copy (:func:`fit_upright`).
"""
import importlib.util
import math
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import cv2
import dlib
import numpy as np

from features.vision.landmarks import LEFT_EYE, RIGHT_EYE
from features.vision.networks import MODELS, onnx_session

#: Photos whose shorter side is below this are upsampled to it before HOG / MMOD detection:
#: dlib's HOG detector only finds faces of about 80 pixels or more.
MIN_SIDE = 200
#: Photos whose longer side is above this are detected on a copy downscaled to it.
MAX_SIDE = 1000
#: MMOD's network refuses a copy thinner than this (dlib's RuntimeError), far under the
#: smallest face it finds (about 40 pixels, upsampled once): such a photo has no face.
MMOD_MIN_SIDE = 8


#: Under this, BlazeFace takes almost anything for a face, and each costs a re-check and a
#: face's features: at 0.05 a plain grey 640x480 photo had 133 "faces" (3 s of detection), a
#: wild-dev photo 56 (14 s), against 2 and 22 at 0.1; at 0.01, 526 faces and 66 s a photo (the
#: web audit of 2026-12-05).  A web request could hold every worker for minutes so (at 0
#: every anchor is a face).
LOWEST_BLAZEFACE_THRESHOLD = 0.1
#: dlib's HOG score likewise: at -2 HOG found 100 "faces" in a wild-dev photo with one (5 at
#: -1), at -5 304 in a plain grey 640x480 photo (0 at -2), measured on 2026-12-06 with
#: ``detect_faces`` on four photos; MMOD found the same faces from 0 down to -5, so has none.
LOWEST_HOG_THRESHOLD = -1.0


#: Each detector's usual score threshold (BlazeFace: MediaPipe's ``min_score_thresh``; dlib's
#: detectors: their own zero).
DEFAULT_THRESHOLDS = {"blazeface": 0.5, "blazeface_short": 0.5, "hog": 0.0, "mmod": 0.0}


@dataclass(frozen=True)
class DetectionSettings:
    """How faces are found; stored in the trained model so every stage detects alike.

    Attributes
    ----------
    method : {"blazeface", "blazeface_short", "hog", "mmod"}
        Detector.
    threshold : float
        Score a face must reach: BlazeFace's probability (0-1), or dlib's HOG / MMOD score.
    upsample : int
        HOG / MMOD: times dlib doubles the photo before detecting (finds smaller faces).
    min_face : int
        BlazeFace: smallest face width to look for, in pixels of the photo (of its copy
        downscaled to :data:`BLAZEFACE_MAX_SIDE`); a photo too large for one pass to find it
        is also scanned in overlapping tiles.  0: one pass over the whole photo.
    short_range : bool
        BlazeFace: also run the short-range network over the whole photo and merge its faces:
        the full-range one alone misses close-ups that fill the photo (114 of the 8,000
        CelebA portraits), and the short-range one finds 112 of those.
    verify : bool
        BlazeFace: keep a face found only in tiles (not by a whole-photo pass) only if the
        full-range network, run again on a crop of :data:`VERIFY_CONTEXT` times the face's
        side around it (the face at a scale it sees well), also scores it at ``threshold``.
        Every tile is another chance of a false face; on the benchmark's mosaics the real
        faces score 0.59 or more there and false ones on four face-free sample images 0.43 or
        less.
        Whole-photo faces are looked at again by ``recheck``.
    recheck : bool
        BlazeFace: keep a face a whole-photo pass found only if either network, run again on
        a crop around it, agrees (:data:`RECHECK`).  Without it a small photo of an
        object is a close-up to both networks: they found a face in 83 of 432 face-free
        photos (animals, fruit, tools, wallpapers), and a mug or a chest became the largest
        "face" of 8 wild-dev photos.  Either network will do, because the full-range one
        misses close-ups and the short-range one small faces.
    recheck_mmod : bool
        BlazeFace with ``recheck``: a face both networks drop on their crops is kept if dlib's
        MMOD detector, trained apart from BlazeFace, finds it on a crop of its own
        (:data:`MMOD_RECHECK`): it brings back real faces BlazeFace doubts (a singer at a
        microphone, sunglasses in profile, a face in a painting) and found none of the
        false ones the re-check drops on face-free photos.
    """

    method: str = "blazeface"
    threshold: float = DEFAULT_THRESHOLDS["blazeface"]
    upsample: int = 0
    min_face: int = 32
    short_range: bool = True
    verify: bool = True
    recheck: bool = True
    recheck_mmod: bool = True

    def __post_init__(self):
        if self.method not in DETECTORS:
            raise ValueError(f"unknown detector {self.method!r}: use one of {sorted(DETECTORS)}")
        if not math.isfinite(self.threshold):
            raise ValueError(f"the threshold must be a number, not {self.threshold}")
        if self.method.startswith("blazeface") and not LOWEST_BLAZEFACE_THRESHOLD <= self.threshold < 1:
            raise ValueError(f"BlazeFace's threshold must be at least {LOWEST_BLAZEFACE_THRESHOLD} and under 1 (its "
                             f"scores are probabilities; under {LOWEST_BLAZEFACE_THRESHOLD} almost anything is "
                             f"a face), not {self.threshold}")
        if self.method == "hog" and self.threshold < LOWEST_HOG_THRESHOLD:
            raise ValueError(f"HOG's threshold must be at least {LOWEST_HOG_THRESHOLD:g} (under it almost anything "
                             f"is a face), not {self.threshold}")

    @property
    def key(self):
        """Short text naming everything that changes which faces are found and where their
        landmarks fall (the feature cache's folder names).  The HOG detector keeps the
        project's first key, so rows cached before these settings existed stay valid."""
        if self.method == "hog" and self.upsample == 0:
            return f"det{self.threshold:+.2f}"
        dx, dy, ds = HOG_BOX_FROM[self.method]
        return (f"{self.method}{self.threshold:+.2f}-up{self.upsample}-min{self.min_face}"
                f"{'-short' * self.short_range}{'-verifytiles' * self.verify}"
                f"{'-recheck' * self.recheck}{'-mmod' * (self.recheck and self.recheck_mmod)}"
                f"-box{dx:+.3f}{dy:+.3f}{ds:.3f}"
                f"{f'-upright{UPRIGHT_ROLL:g}-side{SIDEWAYS_ROLL:g}' * self.method.startswith('blazeface')}")


def detection_settings(method=None, threshold=None, *, base=None):
    """``base`` (default :data:`DEFAULT_DETECTION`) with another detector and/or threshold; a
    new detector without a threshold gets that detector's :data:`DEFAULT_THRESHOLDS`."""
    base = base or DEFAULT_DETECTION
    method = method or base.method
    if threshold is None:
        threshold = base.threshold if method == base.method else DEFAULT_THRESHOLDS[method]
    return replace(base, method=method, threshold=float(threshold))


@dataclass(frozen=True)
class Face:
    """One detected face, in the photo's pixel coordinates.

    Attributes
    ----------
    box : tuple of int
        ``(left, top, right, bottom)`` in the HOG detector's convention, clipped to the photo.
    landmarks : ndarray of shape (68, 2)
        iBUG 300-W points as ``(x, y)`` floats.
    score : float
        Detector confidence (higher is surer; scale depends on the detector).
    keypoints : ndarray of shape (6, 2), optional
        The detector's own points (:data:`KEYPOINTS`), where it gives them (BlazeFace); they
        follow a turned head where the 68 landmarks, fitted for frontal faces, do not.
    """

    box: tuple
    landmarks: np.ndarray
    score: float
    keypoints: np.ndarray | None = None

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
DETECTOR_MODEL = MODELS / "frontal_face_detector.svm"
#: BlazeFace networks (MediaPipe, Apache-2.0), converted by ``export_blazeface.py``: file,
#: input side, and anchor layers as ``(stride, anchors per cell)`` (MediaPipe's
#: ``face_detection_*_range_common.pbtxt``).
BLAZEFACE_MODELS = {
    "blazeface": ("face_detection_full_range.onnx", 192, ((4, 1),)),
    "blazeface_short": ("face_detection_short_range.onnx", 128, ((8, 2), (16, 6))),
}
#: Larger photos are scanned on a copy downscaled to this long side (a phone photo's 1280x960):
#: ``min_face`` counts at that size, and tiles of a huge photo cost time and add false faces.
BLAZEFACE_MAX_SIDE = 1280
#: Smallest face width the full-range network finds reliably, in input pixels (measured on
#: scaled-down LFW faces by ``benchmarks/detection.py``).
BLAZEFACE_MIN_FACE = 20
#: Overlapping detections of one face (tiles, neighbouring anchors) are merged above this IoU
#: (MediaPipe's ``min_suppression_threshold``).
NMS_IOU = 0.3
#: A box lying this much inside another (its intersection over the smaller box's area) is the
#: same face found twice, tight and loose, which IoU misses (a 62-px box inside a 106-px one:
#: IoU 0.34): the surer stays.  On 2,652 photos (wild-dev, LFW, 1,500 CelebA) the two such
#: pairs were one face each; a real face behind another covered at most 52% of the smaller box.
NESTED = 0.8
#: BlazeFace's keypoints, in output order (the subject's right eye is on the photo's left).
KEYPOINTS = ("right_eye", "left_eye", "nose_tip", "mouth", "right_ear", "left_ear")
#: Side of the crop a face is verified on, in face sides (:attr:`DetectionSettings.verify`):
#: the face is then a third of the network's input, well inside the scales it finds.
VERIFY_CONTEXT = 3.0
#: The re-check of a whole-photo face (:attr:`DetectionSettings.recheck`): per network,
#: the crop's side in face sides and the score that keeps the face.  The short-range network
#: sees a face best when it fills most of its input, and on such crops it also scores objects
#: highly (up to 0.77 on face-free photos), so it must be surer.  Chosen on a sample of 700
#: CelebA and 400 LFW photos, where every photo's largest face passes, and on face-free photos
#: (README "Detection").
RECHECK = {"blazeface": (VERIFY_CONTEXT, 0.3), "blazeface_short": (1.5, 0.7)}
#: A whole-photo face the detector scores this high needs no re-check: no false face on
#: the benchmark's face-free photos scored over 0.78, and 84% of the faces found on samples
#: of CelebA, LFW and wild-dev score more, so most photos pay nothing for the check.
SURE_FACE = 0.8
#: The last word on a face both :data:`RECHECK` networks drop (:attr:`DetectionSettings.recheck_mmod`):
#: dlib's MMOD on a crop of this many face sides, scaled so the face is this many pixels wide
#: (MMOD looks for faces of about 80 px and more).  On 115 faces the re-check drops (README
#: "Detection") it found 6 real faces of 40 and none of the 75 on face-free photos; one check
#: takes about 0.4 s, paid only where BlazeFace doubts a face twice (40 faces in those 2,259
#: photos of people).
MMOD_RECHECK = (2.0, 100)
#: Raw logits are clipped like MediaPipe's (sigmoid overflow).
RAW_SCORE_LIMIT = 80.0


@lru_cache(maxsize=None)
def detector():
    return dlib.fhog_object_detector(str(DETECTOR_MODEL))


@lru_cache(maxsize=None)
def mmod_detector():
    return dlib.cnn_face_detection_model_v1(model_path("mmod_human_face_detector.dat"))


@lru_cache(maxsize=None)
def blazeface_anchors(method):
    """Anchor centres ``(x, y)`` in input pixels, in the order of the network's outputs."""
    _, size, layers = BLAZEFACE_MODELS[method]
    centres = []
    for stride, per_cell in layers:
        cells = size // stride
        ys, xs = np.mgrid[0:cells, 0:cells]
        grid = (np.stack([xs.ravel(), ys.ravel()], axis=1) + 0.5) * stride
        centres.append(np.repeat(grid, per_cell, axis=0))
    return np.vstack(centres)


@lru_cache(maxsize=None)
def landmark_predictor():
    return dlib.shape_predictor(model_path("shape_predictor_68_face_landmarks.dat"))


def to_gray(image):
    """Luminance of an RGB image, as uint8 (both dlib models work on it)."""
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def detection_scale(shape):
    """Factor to resize a photo of ``shape`` by before detection (1.0: as it is)."""
    short, long = min(shape[:2]), max(shape[:2])
    if long > MAX_SIDE:
        return MAX_SIDE / long
    if short < MIN_SIDE:
        return MIN_SIDE / short
    return 1.0


def resized(image, scale):
    """``image`` scaled by ``scale`` (area averaging down, bilinear up), every side at least
    one pixel: a very thin photo (3000x1) keeps a row, where OpenCV would refuse the size 0."""
    if scale == 1.0:
        return image
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    height, width = (round(side * scale) for side in image.shape[:2])
    if height and width:  # OpenCV's own size from the factors, as every other photo gets
        return cv2.resize(image, None, fx=scale, fy=scale, interpolation=interpolation)
    return cv2.resize(image, (max(width, 1), max(height, 1)), interpolation=interpolation)


def detect_hog(image, settings):
    """HOG boxes ``(N, 4)``, scores, and no keypoints, on the photo's pixel grid."""
    scale = detection_scale(image.shape)
    rects, scores, _ = detector().run(resized(to_gray(image), scale), settings.upsample,
                                      settings.threshold)
    boxes = np.array([(r.left(), r.top(), r.right(), r.bottom()) for r in rects], float)
    return boxes.reshape(-1, 4) / scale, np.asarray(scores, float), None


def detect_mmod(image, settings):
    """MMOD boxes ``(N, 4)``, scores, and no keypoints, on the photo's pixel grid."""
    scale = detection_scale(image.shape)
    small = resized(image, scale)
    found = [d for d in mmod_detector()(small, settings.upsample)
             if d.confidence >= settings.threshold] if min(small.shape[:2]) >= MMOD_MIN_SIDE else []
    boxes = np.array([(d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom())
                      for d in found], float)
    return boxes.reshape(-1, 4) / scale, np.array([d.confidence for d in found], float), None


def blazeface_pass(image, method, threshold):
    """One BlazeFace run on a letterboxed copy of ``image``, before merging: rows ``(N, 16)``
    of box ``(left, top, right, bottom)`` and six keypoints ``(x, y)`` (:data:`KEYPOINTS`), in
    ``image``'s pixels, and scores."""
    _, size, _ = BLAZEFACE_MODELS[method]
    scale = size / max(image.shape[:2])
    small = resized(image, scale)[:size, :size]
    canvas = np.zeros((size, size, 3), np.float32)
    canvas[:small.shape[0], :small.shape[1]] = small
    tensor = (canvas / 127.5 - 1.0).transpose(2, 0, 1)[None]  # NCHW in [-1, 1]
    raw_boxes, raw_scores = onnx_session(MODELS / BLAZEFACE_MODELS[method][0]).run(None, {"input": tensor})
    logits = np.clip(raw_scores[0, :, 0], -RAW_SCORE_LIMIT, RAW_SCORE_LIMIT)
    scores = 1.0 / (1.0 + np.exp(-logits))
    keep = scores >= threshold
    raw = raw_boxes[0, keep]
    anchors = blazeface_anchors(method)[keep]
    centres = raw[:, :2] + anchors
    half = raw[:, 2:4] / 2.0
    keypoints = raw[:, 4:].reshape(-1, len(KEYPOINTS), 2) + anchors[:, None]
    rows = np.hstack([centres - half, centres + half, keypoints.reshape(len(raw), 2 * len(KEYPOINTS))])
    return rows / scale, scores[keep]


def tiles(height, width, side):
    """Top-left corners of ``side``-pixel tiles covering the photo, overlapping by a quarter
    tile so a face at a seam lies whole in some tile."""
    step = int(side * 0.75)
    ys = list(range(0, max(height - side, 0) + 1, step)) or [0]
    xs = list(range(0, max(width - side, 0) + 1, step)) or [0]
    if ys[-1] + side < height:
        ys.append(height - side)
    if xs[-1] + side < width:
        xs.append(width - side)
    return [(y, x) for y in ys for x in xs]


def tile_sides(long_side, min_face, size):
    """Tile sides of the pyramid, smallest first: the smallest makes a ``min_face`` face
    :data:`BLAZEFACE_MIN_FACE` input pixels wide; each next one doubles, so every face from
    ``min_face`` up lies whole in a tile of some level where it is large enough."""
    sides, side = [], int(min_face * size / BLAZEFACE_MIN_FACE) if min_face else long_side
    while side < long_side:
        sides.append(side)
        side *= 2
    return sides


def detect_blazeface(image, settings):
    """BlazeFace boxes ``(N, 4)``, scores and keypoints ``(N, 6, 2)``: one pass over the whole
    photo, plus a pyramid of overlapping tiles (:func:`tile_sides`) for faces down to
    ``settings.min_face``."""
    method, threshold = settings.method, settings.threshold
    scale = min(1.0, BLAZEFACE_MAX_SIDE / max(image.shape[:2]))
    image = resized(image, scale)
    height, width = image.shape[:2]
    # Last column: 1 for a face from a whole-photo pass, 0 from a tile (merged: the maximum).
    whole = [blazeface_pass(image, method, threshold)]
    if method == "blazeface" and settings.short_range:
        whole.append(blazeface_pass(image, "blazeface_short", threshold))
    parts = [(np.hstack([rows, np.ones((len(rows), 1))]), scores) for rows, scores in whole]
    for side in tile_sides(max(height, width), settings.min_face, BLAZEFACE_MODELS[method][1]):
        for y, x in tiles(height, width, side):
            rows, scores = blazeface_pass(image[y:y + side, x:x + side], method, threshold)
            shift = np.append(np.tile([x, y], rows.shape[1] // 2), 0)
            parts.append((np.hstack([rows, np.zeros((len(rows), 1))]) + shift, scores))
    rows, scores = weighted_nms(np.vstack([r for r, _ in parts]), np.concatenate([s for _, s in parts]))
    kept = [i for i, (row, score) in enumerate(zip(rows, scores))
            if confirmed(image, row[:4], score, row[-1] == 1, settings)]
    rows, scores = unnested(rows[kept], scores[kept])
    rows = rows[:, :-1]
    rows /= scale
    return rows[:, :4], scores, rows[:, 4:].reshape(-1, len(KEYPOINTS), 2)


def confirmed(image, box, score, whole, settings):
    """Whether a BlazeFace face survives the checks ``settings`` ask for: a face found only in
    tiles must reach the threshold on the full-range network's verifying crop (``verify``);
    one a whole-photo pass found must be sure (:data:`SURE_FACE`), pass either network's
    :data:`RECHECK` or, last, be found by MMOD (``recheck_mmod``)."""
    if not whole:
        return not settings.verify or context_score(image, box) >= settings.threshold
    if not (settings.recheck and settings.method == "blazeface") or score >= SURE_FACE:
        return True
    return (any(context_score(image, box, method=method, context=context) >= needed
                for method, (context, needed) in RECHECK.items())
            or settings.recheck_mmod and mmod_finds(image, box))


def context_crop(image, box, context):
    """A square crop of ``context`` times ``box``'s side around its centre (black beyond the
    photo), and the crop's top-left corner ``(x0, y0)`` in the photo."""
    side = int(round(context * (box[2] - box[0] + box[3] - box[1]) / 2))
    x0, y0 = (int(round(c - side / 2)) for c in ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2))
    height, width = image.shape[:2]
    crop = np.zeros((side, side, 3), np.uint8)
    top, left, bottom, right = max(y0, 0), max(x0, 0), min(y0 + side, height), min(x0 + side, width)
    if bottom > top and right > left:  # a box off the photo (found at a threshold near 0) stays black
        crop[top - y0:bottom - y0, left - x0:right - x0] = image[top:bottom, left:right]
    return crop, (x0, y0)


def context_score(image, box, *, method="blazeface", context=VERIFY_CONTEXT):
    """``method``'s score for ``box`` on a square crop of ``context`` times its side around
    it (:func:`context_crop`): its best detection overlapping the box above
    :data:`NMS_IOU`, or 0."""
    crop, (x0, y0) = context_crop(image, box, context)
    rows, scores = blazeface_pass(crop, method, 0.0)
    overlap = iou(np.asarray(box) - [x0, y0, x0, y0], rows[:, :4])
    return float(scores[overlap > NMS_IOU].max()) if np.any(overlap > NMS_IOU) else 0.0


def mmod_finds(image, box):
    """Whether dlib's MMOD detector finds a face overlapping ``box`` above :data:`NMS_IOU` on
    a crop around it (:data:`MMOD_RECHECK`)."""
    context, face_width = MMOD_RECHECK
    crop, (x0, y0) = context_crop(image, box, context)
    scale = context * face_width / crop.shape[0]
    found = mmod_detector()(resized(crop, scale), 0)
    boxes = np.array([(d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()) for d in found], float)
    return bool(np.any(iou((np.asarray(box) - [x0, y0, x0, y0]) * scale, boxes.reshape(-1, 4)) > NMS_IOU))


def box_area(boxes):
    """Area of each ``(left, top, right, bottom)`` box (of one box: a scalar)."""
    return np.prod(boxes[..., 2:] - boxes[..., :2], axis=-1)


def intersection(box, boxes):
    """Area of one box's intersection with each of ``boxes``."""
    return np.prod(np.clip(np.minimum(box[2:], boxes[:, 2:]) - np.maximum(box[:2], boxes[:, :2]), 0, None), axis=1)


def iou(box, boxes):
    """Intersection over union of one box with each of ``boxes``."""
    inter = intersection(box, boxes)
    return inter / (box_area(box) + box_area(boxes) - inter)


def unnested(rows, scores):
    """``rows`` and ``scores`` without each box (``rows[:, :4]``) that lies :data:`NESTED`
    inside a surer one's box or holds a surer one so (a box of no area is inside none)."""
    order = np.argsort(-scores)
    kept = []
    for i in order:
        box, others = rows[i, :4], rows[kept, :4].reshape(-1, 4)
        smaller = np.minimum(box_area(box), box_area(others))
        if not np.any((intersection(box, others) >= NESTED * smaller) & (smaller > 0)):
            kept.append(i)
    kept.sort()
    return rows[kept], scores[kept]


def weighted_nms(rows, scores):
    """MediaPipe's weighted non-maximum suppression: each cluster of detections whose boxes
    (``rows[:, :4]``) overlap the best remaining one above :data:`NMS_IOU` becomes their
    score-weighted mean (box and keypoints alike; columns after the keypoints, flags, their
    maximum)."""
    order = np.argsort(-scores)
    rows, scores = rows[order], scores[order]
    boxes = rows[:, :4]
    merged, kept = [], []
    remaining = np.ones(len(boxes), bool)
    for i in range(len(boxes)):
        if not remaining[i]:
            continue
        cluster = remaining & (iou(boxes[i], boxes) > NMS_IOU)
        cluster[i] = True
        weights = scores[cluster][:, None]
        merged.append((rows[cluster] * weights).sum(axis=0) / weights.sum())
        merged[-1][4 + 2 * len(KEYPOINTS):] = rows[cluster, 4 + 2 * len(KEYPOINTS):].max(axis=0)
        kept.append(scores[i])
        remaining &= ~cluster
    return np.array(merged, float).reshape(-1, rows.shape[1]), np.array(kept, float)


DETECTORS = {"blazeface": detect_blazeface, "blazeface_short": detect_blazeface,
             "hog": detect_hog, "mmod": detect_mmod}

#: Each detector's box mapped to the HOG detector's box, which dlib's shape predictor was
#: trained on: ``(dx, dy, ds)`` moves the centre by ``dx``, ``dy`` box sides and scales the
#: side by ``ds``.  BlazeFace's is the mean over 1,458 CelebA faces both detectors find
#: (``python benchmarks/detection.py --fit-boxes blazeface``); the landmark error against the
#: HOG box's landmarks (mean point distance over the eye distance) is 2.8% before and after it
#: on those faces, 2.1% before and 2.0% after on 282 LFW faces.  The other two are not fitted
#: (identity): as detectors of their own, short-range BlazeFace and MMOD only serve the
#: benchmark (the default's faces, those its short-range pass adds too, are mapped as
#: ``"blazeface"``).
HOG_BOX_FROM = {"hog": (0.0, 0.0, 1.0), "blazeface": (-0.0053, 0.0198, 0.9394),
                "blazeface_short": (0.0, 0.0, 1.0), "mmod": (0.0, 0.0, 1.0)}


def to_hog_box(boxes, method):
    """Square boxes in the HOG convention from ``method``'s boxes."""
    if method == "hog":
        return boxes
    dx, dy, ds = HOG_BOX_FROM[method]
    size = (boxes[:, 2] - boxes[:, 0] + boxes[:, 3] - boxes[:, 1]) / 2.0
    cx = (boxes[:, 0] + boxes[:, 2]) / 2.0 + dx * size
    cy = (boxes[:, 1] + boxes[:, 3]) / 2.0 + dy * size
    half = ds * size / 2.0
    return np.stack([cx - half, cy - half, cx + half, cy + half], axis=1)


def raw_detections(image, *, settings):
    """Detector boxes ``(N, 4)`` in the detector's own convention, scores, and keypoints
    ``(N, 6, 2)`` (None for dlib's detectors), without landmarks: what the benchmark counts."""
    return DETECTORS[settings.method](image, settings)


def detect_faces(image, *, settings=None):
    """Find every face in an RGB image, largest first, each with its 68 landmarks.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3)
        uint8 RGB photo (see :func:`features.vision.images.as_rgb`).
    settings : DetectionSettings, optional
        Detector and its options; :data:`DEFAULT_DETECTION` when omitted.

    Returns
    -------
    list of Face
        Boxes in the HOG convention clipped to the photo; landmarks fitted on the
        full-resolution photo.
    """
    settings = settings or DEFAULT_DETECTION
    boxes, scores, keypoints = raw_detections(image, settings=settings)
    gray = to_gray(image)
    faces = []
    for i, (box, score) in enumerate(zip(boxes, scores)):
        points = None if keypoints is None else keypoints[i]
        if points is not None and abs(eye_roll(points)) > math.radians(SIDEWAYS_ROLL):
            box, points = seen_upright(image, box, points, method=settings.method)
        faces.append(fit_face(gray, box, score, points, method=settings.method))
    return sorted(faces, key=lambda face: face.area, reverse=True)


#: A face rolled further than this (degrees) is looked at again, as it is and on its quarter turns
#: (:func:`seen_upright`): on a face lying on its side BlazeFace's keypoints stray, and with
#: them the roll the upright fit turns by, even its sign (README, "Faces on their side": the
#: 68 points 0.41 and 0.46 eye distances off in the 90th percentile at a quarter turn, not
#: looked at again).
SIDEWAYS_ROLL = 45.0


def seen_upright(image, box, keypoints, *, method):
    """Box and keypoints of a face rolled past :data:`SIDEWAYS_ROLL`, from BlazeFace on its
    surroundings (:data:`VERIFY_CONTEXT` times its side) as they are and turned by each
    quarter turn, mapped back onto the photo: of the detections overlapping ``box`` above
    :data:`NMS_IOU`, the one whose score times the cosine of its roll in its copy is highest
    (the turn that shows the face upright; the score alone kept a face still on its side for
    2 of 190 LFW faces turned a quarter, README "Faces on their side"), or ``box`` and
    ``keypoints`` unchanged if none overlaps."""
    crop, origin = context_crop(image, box, VERIFY_CONTEXT)
    small = resized(crop, min(1.0, BLAZEFACE_MODELS[method][1] / len(crop)))  # the network's input size
    found = []
    for quarter in range(4):  # unturned too: a small upright face's first keypoints may be wrong
        rows, scores = blazeface_pass(np.ascontiguousarray(np.rot90(small, quarter)), method, 0.0)
        points = unturned(rows.reshape(len(rows), 2 + len(KEYPOINTS), 2), quarter, len(small))
        points = points * (len(crop) / len(small)) + origin
        boxes = np.hstack([points[:, :2].min(axis=1), points[:, :2].max(axis=1)])
        overlap = iou(np.asarray(box, float), boxes)
        found += [(scores[i] * math.cos(eye_roll(rows[i, 4:])), boxes[i], points[i, 2:])
                  for i in np.flatnonzero(overlap > NMS_IOU)]
    if not found:
        return box, keypoints
    _, box, keypoints = max(found, key=lambda row: row[0])
    return box, keypoints


def unturned(points, quarter, side):
    """``(x, y)`` points of a ``side``-pixel square turned by ``np.rot90(square, quarter)``,
    on the square as it was; continuous coordinates, as the detector's (a pixel's centre is
    at ``i + 0.5``)."""
    for _ in range(quarter % 4):  # each undoes one quarter turn counter-clockwise
        points = np.stack([side - points[..., 1], points[..., 0]], axis=-1)
    return points


def fit_face(gray, box, score, keypoints, *, method):
    """A :class:`Face` from one detection: the box mapped to the HOG convention, the 68
    landmarks fitted on it (on an upright copy where the detector's eyes say the face is
    rolled past :data:`UPRIGHT_ROLL`; with the profile fallback :func:`onto_detector_eyes`
    where the detector gives eye keypoints), the box clipped to the photo."""
    left, top, right, bottom = (int(round(v)) for v in to_hog_box(np.asarray(box, float)[None], method)[0])
    roll = 0.0 if keypoints is None else eye_roll(keypoints)
    points = (fit_upright(gray, (left, top, right, bottom), roll) if abs(roll) > math.radians(UPRIGHT_ROLL)
              else fit_landmarks(gray, (left, top, right, bottom)))
    if keypoints is not None:
        points = onto_detector_eyes(points, keypoints, right - left)
    height, width = gray.shape
    clipped = (max(left, 0), max(top, 0), min(right, width - 1), min(bottom, height - 1))
    return Face(box=clipped, landmarks=points, score=float(score),
                keypoints=None if keypoints is None else np.asarray(keypoints, float).reshape(-1, 2))


#: A face rolled further than this (degrees: the detector's eye line against the photo's
#: rows) has its 68 landmarks fitted on an upright copy (:func:`fit_upright`): dlib's shape
#: predictor starts from an upright mean face and strays on a head rolled further (README,
#: "Tilted heads", from 30 degrees on); CelebA's aligned training portraits lie under it
#: but for 13 of 7,994.
UPRIGHT_ROLL = 15.0


def eye_roll(keypoints):
    """The face's roll, in radians: the angle of the detector's eye line (from the subject's
    right eye to the left) against the photo's rows, positive clockwise as seen."""
    keypoints = np.asarray(keypoints, float).reshape(-1, 2)
    dx, dy = keypoints[KEYPOINTS.index("left_eye")] - keypoints[KEYPOINTS.index("right_eye")]
    return math.atan2(dy, dx)


def fit_landmarks(gray, box):
    """dlib's 68 landmarks of the face in ``box`` (left, top, right, bottom; the HOG
    convention) of a grey photo."""
    shape = landmark_predictor()(gray, dlib.rectangle(*(int(round(v)) for v in box)))
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)


def fit_upright(gray, box, roll):
    """The 68 landmarks of the face in ``box`` rolled by ``roll`` radians: fitted on a copy of
    its surroundings (twice the box) turned upright, and turned back onto the photo."""
    left, top, right, bottom = box
    centre = np.array([left + right, top + bottom]) / 2
    side = int(math.ceil(2 * max(right - left, bottom - top)))
    turn = np.array([[math.cos(roll), -math.sin(roll)], [math.sin(roll), math.cos(roll)]])
    middle = np.array([side, side]) / 2
    # the copy's pixel u shows the photo's point centre + turn @ (u - middle)
    to_photo = np.hstack([turn, (centre - turn @ middle)[:, None]])
    upright = cv2.warpAffine(gray, to_photo, (side, side), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    half = np.array([right - left, bottom - top]) / 2
    points = fit_landmarks(upright, (*(middle - half), *(middle + half)))
    return centre + (points - middle) @ turn.T


#: 68-point eye centres further than this (share of the box side, mean over both eyes) from
#: the detector's eye keypoints mean the fit failed: a profile or a tilted face the shape
#: predictor, trained on frontal HOG boxes, does not follow.
EYE_TOLERANCE = 0.12


def onto_detector_eyes(points, keypoints, side):
    """The profile fallback: landmarks whose eyes stray from the detector's eye keypoints
    are moved, as a whole (rotation, scale and shift), so that their eye centres lie on the
    detector's.  The face's frame, and so every region crop, then follows the detector's eye
    line; the points between keep the predictor's shape."""
    fitted = np.array([points[LEFT_EYE].mean(axis=0), points[RIGHT_EYE].mean(axis=0)])  # subject's right, left
    eyes = keypoints[[KEYPOINTS.index("right_eye"), KEYPOINTS.index("left_eye")]]
    if np.linalg.norm(fitted - eyes, axis=1).mean() <= EYE_TOLERANCE * side:
        return points
    source, target = complex(*(fitted[1] - fitted[0])), complex(*(eyes[1] - eyes[0]))
    turn = target / source if abs(source) > 1 else 1.0
    moved = (points[:, 0] + 1j * points[:, 1] - complex(*fitted[0])) * turn + complex(*eyes[0])
    return np.stack([moved.real, moved.imag], axis=1)


#: The detector every stage uses unless a model says otherwise (chosen in README "Detection").
DEFAULT_DETECTION = DetectionSettings()
