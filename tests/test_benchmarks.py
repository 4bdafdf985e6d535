"""The end-to-end benchmarks' own rules: which face of a photo is scored, and what a threshold decides."""
import pandas as pd

from benchmarks.lfw_by_eye import LABELS_FILE, subject_faces
from benchmarks.wild_dev import at_thresholds
from features.labels import LABELS
from features.vision.faces import detect_faces
from features.vision.images import load_image
from conftest import LFW


def record_of(path):
    """A record of a photo as recommend.py's would give its faces (boxes only)."""
    image = load_image(path)
    return {"width": image.shape[1], "height": image.shape[0],
            "faces": [{"box": list(face.box)} for face in detect_faces(image)]}


def test_lfw_labels_name_every_photo_once_with_known_values():
    table = pd.read_csv(LABELS_FILE, dtype=str, keep_default_na=False)
    assert len(table) == 1000 and table["filename"].is_unique
    assert all((LFW.parent / name).is_file() for name in table["filename"])
    for label in LABELS:
        assert set(table[label]) <= {"0", "1", "u"}


def test_the_subject_is_the_face_holding_the_photos_centre_not_the_largest():
    record = record_of(LFW / "Thaksin_Shinawatra_0005.jpg")  # two people, the subject in the middle
    assert len(record["faces"]) == 2
    subject, = subject_faces([record])
    x, y = record["width"] / 2, record["height"] / 2
    left, top, right, bottom = subject["box"]
    assert left <= x <= right and top <= y <= bottom
    other = next(face for face in record["faces"] if face is not subject)
    assert not (other["box"][0] <= x <= other["box"][2] and other["box"][1] <= y <= other["box"][3])
    # without the subject's face, the other face is not taken for it: a miss
    assert subject_faces([{**record, "faces": [other]}]) == [None]


def test_a_threshold_decides_only_judged_faces_and_a_missing_face_is_a_miss():
    def face(p, status="ok"):
        return {"scores": {label: p for label in LABELS}, "quality": {"status": status}}

    table = pd.DataFrame({label: ["1", "1", "1", "0", "u"] for label in LABELS})
    faces = [face(0.6), face(0.25), face(0.9, "uncertain"), face(0.4), None]
    result = at_thresholds(table, faces, (0.2, 0.5))
    for label in LABELS:
        assert result[label]["0.5"] == {"decided": 1, "precision": 1.0, "recall": 0.333, "f1": 0.5}
        assert result[label]["0.2"] == {"decided": 3, "precision": 0.667, "recall": 0.667, "f1": 0.667}
