"""Region crops: where they sit in the photo, their sizes, and padding without shifting."""
import numpy as np
import pytest

from features.vision.faces import detect_faces
from features.vision.landmarks import BROWS, CHIN, JAWLINE, LEFT_EYE, NOSE_BOTTOM, RIGHT_EYE
from features.vision.regions import (REGION_SIZES, cut_above_brows, extract_regions, face_frame, region_rects,
                                     rotation, to_frame)


@pytest.fixture(scope="module")
def astronaut_face(astronaut):
    return detect_faces(astronaut)[0]


def region_corners(face, name):
    """The four corners of a region in photo coordinates."""
    origin, angle = face_frame(face.landmarks)
    x0, y0, x1, y1 = region_rects(face.landmarks)[name]
    return np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1)]) @ rotation(angle).T + origin


def test_fixed_sizes(astronaut, astronaut_face):
    crops = extract_regions(astronaut, astronaut_face)
    assert set(crops) == set(REGION_SIZES)
    for name, (width, height) in REGION_SIZES.items():
        assert crops[name].shape == (height, width, 3) and crops[name].dtype == np.uint8


def test_forehead_above_the_eyes_and_jaw_below_the_nose(astronaut_face):
    eyes_y = np.r_[astronaut_face.landmarks[LEFT_EYE, 1], astronaut_face.landmarks[RIGHT_EYE, 1]].min()
    nose_y = astronaut_face.landmarks[NOSE_BOTTOM, 1]
    forehead, jaw = region_corners(astronaut_face, "forehead"), region_corners(astronaut_face, "jaw")
    # corners run top-left, top-right, bottom-right, bottom-left; the face is slightly tilted,
    # so compare the middle of the crop's bottom (forehead) and top (jaw) edges
    assert forehead[2:, 1].mean() < eyes_y
    assert jaw[:2, 1].mean() >= nose_y - 1 and jaw[:, 1].mean() > nose_y
    band = region_corners(astronaut_face, "eye_band")
    assert band[:, 1].min() < eyes_y < band[:, 1].max()


def test_the_lower_face_holds_mouth_chin_and_cheeks(astronaut_face):
    """Where a beard grows: from under the eyes past the chin, the whole jaw across, the mouth
    (points 48-67) inside, in the face's own frame."""
    x0, y0, x1, y1 = region_rects(astronaut_face.landmarks)["lower_face"]
    points = to_frame(astronaut_face.landmarks, *face_frame(astronaut_face.landmarks))
    assert points[LEFT_EYE, 1].max() < y0 < points[NOSE_BOTTOM, 1] and y1 > points[CHIN, 1]
    assert x0 < points[JAWLINE, 0].min() and x1 > points[JAWLINE, 0].max()
    mouth = points[48:68]
    assert (mouth[:, 0] > x0).all() and (mouth[:, 0] < x1).all() and (mouth[:, 1] > y0).all() and (mouth[:, 1] < y1).all()


def test_regions_follow_a_tilted_face(astronaut):
    """Rotating the photo rotates the face; its aligned crops stay nearly the same."""
    import cv2

    centre = (astronaut.shape[1] / 2, astronaut.shape[0] / 2)
    turned = cv2.warpAffine(astronaut, cv2.getRotationMatrix2D(centre, 15, 1.0), astronaut.shape[1::-1])
    upright = extract_regions(astronaut, detect_faces(astronaut)[0])
    tilted = extract_regions(turned, detect_faces(turned)[0])
    for name in ("eye_band", "jaw", "lower_face"):
        difference = np.abs(upright[name].astype(int) - tilted[name].astype(int)).mean()
        assert difference < 30, name


def test_outside_the_photo_is_padded_not_shifted(astronaut, astronaut_face):
    """Cropping the photo tight around the face changes only padding, never the content."""
    left, top, right, bottom = astronaut_face.box
    tight = astronaut[top - 10:, :]  # the hat region now falls outside the photo
    shifted = type(astronaut_face)(box=astronaut_face.box, score=astronaut_face.score,
                                   landmarks=astronaut_face.landmarks - [0, top - 10])
    full = extract_regions(astronaut, astronaut_face)["forehead"]
    cut = extract_regions(tight, shifted)["forehead"]
    inside = cut.max(axis=2) > 0
    assert 0.05 < inside.mean() < 0.95  # part padding, part photo
    assert np.abs(cut[inside].astype(int) - full[inside].astype(int)).mean() < 3


def test_cut_above_the_brows(astronaut, astronaut_face):
    """A training copy framed tight: the hat region now runs past the top edge, the face is
    still found, and the photo it came from is left as it was."""
    brow, chin = astronaut_face.landmarks[BROWS, 1].min(), astronaut_face.landmarks[CHIN, 1]
    cut = cut_above_brows(astronaut, astronaut_face, 0.3)
    assert cut.shape[1:] == astronaut.shape[1:] and cut.flags.writeable
    assert abs((astronaut.shape[0] - len(cut)) - (brow - 0.3 * (chin - brow))) <= 1
    assert np.array_equal(cut, astronaut[-len(cut):])
    face = detect_faces(cut)[0]
    assert face.landmarks[BROWS, 1].min() < 0.5 * (chin - brow)  # the brows near the top now
    assert cut_above_brows(astronaut, astronaut_face, 5.0) is None  # above the photo already


def test_inputs_are_not_modified(astronaut, astronaut_face):
    landmarks = astronaut_face.landmarks.copy()
    extract_regions(astronaut, astronaut_face)
    assert np.array_equal(landmarks, astronaut_face.landmarks)
