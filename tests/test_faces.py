"""Faces and landmarks on real photos."""
import dlib
import numpy as np
import pytest
from PIL import Image

from features.faces import Face, detect_faces, detection_scale, detector, to_gray
from features.images import load_image
from conftest import LFW


def test_astronaut_has_one_face_with_landmarks_inside_its_box(astronaut):
    faces = detect_faces(astronaut)
    assert len(faces) == 1
    face = faces[0]
    assert isinstance(face, Face) and face.landmarks.shape == (68, 2)
    left, top, right, bottom = face.box
    margin = 0.1 * (right - left)
    x, y = face.landmarks.T
    assert (x > left - margin).all() and (x < right + margin).all()
    assert (y > top - margin).all() and (y < bottom + margin).all()
    # anatomy: eyes above the nose tip, nose tip above the chin
    assert face.landmarks[36:48, 1].mean() < face.landmarks[33, 1] < face.landmarks[8, 1]


def test_photo_of_two_people_gives_both_largest_first():
    faces = detect_faces(load_image(LFW / "Thaksin_Shinawatra_0005.jpg"))
    assert len(faces) == 2
    assert faces[0].area >= faces[1].area
    assert faces[0].box != faces[1].box


def test_photo_without_a_face(no_face_image):
    assert detect_faces(no_face_image) == []


def test_grayscale_photo_gives_the_same_faces(astronaut):
    gray = np.asarray(Image.fromarray(astronaut).convert("L"))
    colour, grey = detect_faces(astronaut), detect_faces(np.repeat(gray[:, :, None], 3, axis=2))
    assert len(colour) == len(grey) == 1  # BlazeFace sees colour: the box moves a little
    assert np.abs(np.subtract(colour[0].box, grey[0].box)).max() <= 3
    assert np.abs(colour[0].landmarks - grey[0].landmarks).mean() <= 2


def test_exif_rotated_jpeg_gives_the_same_faces_as_upright(tmp_path, astronaut):
    upright, rotated = tmp_path / "upright.jpg", tmp_path / "rotated.jpg"
    Image.fromarray(astronaut).save(upright, quality=100)
    exif = Image.Exif()
    exif[0x0112] = 8  # viewers turn it 90 degrees counter-clockwise
    Image.fromarray(astronaut).transpose(Image.Transpose.ROTATE_270).save(rotated, quality=100, exif=exif)
    a, b = detect_faces(load_image(upright)), detect_faces(load_image(rotated))
    assert len(a) == len(b) == 1
    assert np.abs(np.subtract(a[0].box, b[0].box)).max() <= 4


def test_small_photos_are_upsampled_and_large_ones_downscaled(astronaut, celeba_paths):
    assert detection_scale((109, 89)) > 2
    assert detection_scale((250, 250)) == 1.0
    assert detection_scale((4000, 3000)) == pytest.approx(0.25)
    assert len(detect_faces(load_image(celeba_paths[0]))) == 1
    large = np.kron(astronaut, np.ones((5, 5, 1), np.uint8))  # 2560 x 2560
    big, small = detect_faces(large), detect_faces(astronaut)
    assert len(big) == 1
    assert np.abs(np.array(big[0].box) / 5 - small[0].box).max() < 8
    assert np.abs(big[0].landmarks / 5 - small[0].landmarks).mean() < 3


def test_saved_detector_is_dlibs_own(lfw_paths, celeba_paths):
    """The detector read from features/models finds exactly what dlib's built-in one finds."""
    builtin = dlib.get_frontal_face_detector()
    for path in lfw_paths[:40] + celeba_paths[:40]:
        gray = to_gray(load_image(path))
        ours, theirs = detector().run(gray, 0, -0.5), builtin.run(gray, 0, -0.5)
        assert list(ours[0]) == list(theirs[0]) and np.allclose(ours[1], theirs[1])
