"""Face quality on real photos: a sharp frontal face and a three-quarter face are ok; a blurred
copy, a tiny face, a face cut by the edge and a profile face are uncertain, for the right
reason."""
import cv2
import pytest

from features.vision.faces import detect_faces
from features.vision.images import load_image
from features.vision.quality import CHECKS, MAX_YAW, MIN_SHARPNESS, MIN_WIDTH, face_quality
from conftest import LFW

#: A news photo of a man turned far to one side (LFW).
PROFILE = LFW / "Hugh_Grant_0007.jpg"
#: A news photo of a man in three-quarter view: his nose tip at his far eye (LFW).
THREE_QUARTER = LFW / "Christian_Longo_0001.jpg"
#: A news photo with a second face cut by the top edge (LFW; issue 12's example).
CUT = LFW / "Yusuf_Misbac_0001.jpg"


def only_face(image):
    faces = detect_faces(image)
    assert len(faces) >= 1
    return faces[0]


def test_sharp_frontal_face_is_ok(astronaut):
    quality = face_quality(astronaut, only_face(astronaut))
    assert quality["status"] == "ok" and quality["failed"] == quality["reasons"] == []
    assert quality["width_px"] >= MIN_WIDTH and quality["sharpness"] >= MIN_SHARPNESS
    assert abs(quality["yaw_degrees"]) < MAX_YAW and not quality["touches_edge"]


def test_blurred_copy_is_uncertain(astronaut):
    blurred = cv2.GaussianBlur(astronaut, (0, 0), 5)
    quality = face_quality(blurred, only_face(blurred))
    sharp = face_quality(astronaut, only_face(astronaut))
    assert quality["sharpness"] < sharp["sharpness"] / 10
    assert quality["status"] == "uncertain" and "blurred" in quality["failed"]
    assert quality["reasons"][quality["failed"].index("blurred")] == f"blurred (sharpness {quality['sharpness']:.0f}, under {MIN_SHARPNESS:.0f})"
    assert astronaut.flags.writeable is False  # the input photo is untouched


@pytest.mark.parametrize("path", sorted(LFW.glob("*.jpg"))[:6:2], ids=lambda path: path.stem)
def test_a_dim_or_flat_photo_s_face_is_judged_and_blur_still_said(path):
    """An evening photo's face is sharp at a fraction of the contrast: at half the light, 13 of
    59 LFW faces were withheld as "blurred" (34 at 35%), though their scores hardly moved.
    Sharpness is read at one contrast, so the light does not withhold a face, and blur still
    does: in the flattest light, as "blurred or too flat"."""
    import numpy as np

    photo = load_image(path)
    sharp = face_quality(photo, only_face(photo))["sharpness"]
    half = np.round(photo * 0.5).astype(np.uint8)
    assert face_quality(half, only_face(half))["sharpness"] > 0.6 * sharp
    for changed in (np.round(photo * 0.35).astype(np.uint8),  # the light at 35%
                    np.round(128 + (photo - 128.0) * 0.3).astype(np.uint8)):  # the contrast at 30%
        quality = face_quality(changed, only_face(changed))
        assert quality["status"] == "ok", (sharp, quality)
    blurred = cv2.GaussianBlur(photo, (0, 0), 3)  # in full light: the blur lowers the contrast, and was hidden by it
    quality = face_quality(blurred, only_face(blurred))
    assert quality["failed"] == ["blurred"] and quality["reasons"][0].startswith("blurred (sharpness ")
    blurred = cv2.GaussianBlur(np.round(photo * 0.35).astype(np.uint8), (0, 0), 3)
    quality = face_quality(blurred, only_face(blurred))
    assert quality["failed"] == ["blurred"] and quality["reasons"][0].startswith("blurred or too flat (sharpness ")


def test_tiny_face_is_uncertain(celeba_paths):
    photo = load_image(celeba_paths[0])
    tiny = cv2.resize(photo, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    quality = face_quality(tiny, only_face(tiny))
    assert quality["width_px"] < MIN_WIDTH
    assert quality["status"] == "uncertain"
    assert f"face {quality['width_px']} px wide, under {MIN_WIDTH} px" in quality["reasons"] and "too_small" in quality["failed"]


def test_face_cut_by_the_edge_is_uncertain():
    """A news photo whose second face is cut by its top edge; the whole face beside it is ok."""
    photo = load_image(CUT)
    faces = detect_faces(photo)
    at_top = [face_quality(photo, face) for face in faces if face.box[1] <= 0]
    inside = [face_quality(photo, face) for face in faces if face.box[1] > 0]
    cut = [quality for quality in at_top if quality["touches_edge"]]
    assert cut and all(q["status"] == "uncertain" and q["failed"][-1] == "cut_off"
               and q["reasons"][-1] == "cut by the photo's edge" for q in cut)
    assert inside and not any(q["touches_edge"] for q in inside)


def test_profile_face_is_uncertain():
    photo = load_image(PROFILE)
    quality = face_quality(photo, only_face(photo))
    assert abs(quality["yaw_degrees"]) > MAX_YAW
    assert quality["status"] == "uncertain"
    assert quality["failed"] == ["turned"] and quality["reasons"] == [f"turned {abs(quality['yaw_degrees']):.0f} degrees, over {MAX_YAW:.0f}"]
    assert not quality["touches_edge"] and quality["width_px"] >= MIN_WIDTH


def test_three_quarter_face_is_judged():
    """Turned until the nose tip reaches the far eye: out of fold, the model errs on such faces
    about as often as on the faces it always judged (README, "Faces we do not judge")."""
    photo = load_image(THREE_QUARTER)
    quality = face_quality(photo, only_face(photo))
    assert 40 < abs(quality["yaw_degrees"]) < MAX_YAW
    assert quality["status"] == "ok"


@pytest.mark.parametrize("size", [(0.5, "tiny"), (1.0, "as is")])
def test_record_is_plain_json(celeba_paths, size):
    import json

    photo = load_image(celeba_paths[0])
    photo = cv2.resize(photo, None, fx=size[0], fy=size[0], interpolation=cv2.INTER_AREA)
    quality = face_quality(photo, only_face(photo))
    assert json.loads(json.dumps(quality)) == quality
    assert set(quality) == {"width_px", "sharpness", "yaw_degrees", "touches_edge", "status", "failed", "reasons"}
    assert set(quality["failed"]) <= set(CHECKS) and len(quality["failed"]) == len(quality["reasons"])
    assert (quality["status"] == "ok") == (quality["failed"] == [])
