"""The end-to-end benchmarks' own rules: which face of a photo is scored, and what a threshold decides."""
import pandas as pd

from benchmarks.lfw_by_eye import LABELS_FILE, recall_by_kind, subject_faces
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


def test_the_subject_is_the_face_holding_the_photos_centre_nearest_it_not_the_largest():
    largest = {"box": [0, 0, 120, 120]}  # off-centre
    near, far = {"box": [100, 100, 150, 150]}, {"box": [60, 110, 130, 180]}  # both hold (125, 125)
    record = {"width": 250, "height": 250, "faces": [largest, far, near]}
    assert subject_faces([record]) == [near]
    assert subject_faces([{**record, "faces": [largest]}]) == [None]  # not found: a miss
    assert subject_faces([{"width": None, "height": None, "faces": [], "error": "cannot read"}]) == [None]


def test_a_group_photos_subject_is_its_central_face():
    record = record_of(LFW / "Thaksin_Shinawatra_0005.jpg")  # two people, the subject in the middle
    assert len(record["faces"]) == 2
    subject, = subject_faces([record])
    x, y = record["width"] / 2, record["height"] / 2
    left, top, right, bottom = subject["box"]
    assert left <= x <= right and top <= y <= bottom
    other = next(face for face in record["faces"] if face is not subject)
    assert subject_faces([{**record, "faces": [other]}]) == [None]


def face(p, status="ok", *, labels=()):
    """A face record with probability ``p`` for every label."""
    return {"scores": {label: p for label in LABELS}, "quality": {"status": status}, "labels": list(labels)}


def test_a_threshold_decides_only_judged_faces_and_a_missing_face_is_a_miss():
    table = pd.DataFrame({label: ["1", "1", "1", "0", "1", "u"] for label in LABELS})
    faces = [face(0.6), face(0.25), face(0.9, "uncertain"), face(0.4), None, face(0.9)]
    result = at_thresholds(table, faces, (0.2, 0.5))
    for label in LABELS:
        assert result[label]["0.5"] == {"decided": 1, "precision": 1.0, "recall": 0.25, "f1": 0.4}
        assert result[label]["0.2"] == {"decided": 3, "precision": 0.667, "recall": 0.5, "f1": 0.571}


def test_kinds_are_read_from_the_notes_and_may_overlap():
    notes = ["thin metal frames", "tinted glasses, thin frames", "sunglasses", "metal frames", "rimless", ""]
    table = pd.DataFrame({"eyewear": ["1"] * 5 + ["0"], "hat": "0", "beard": "0", "note": notes})
    faces = [face(0.9, labels=["eyewear"]), face(0.9, labels=["eyewear"]), face(0.1), face(0.9, labels=["eyewear"]),
             None, face(0.9, labels=["eyewear"])]
    kinds = recall_by_kind(table, faces)["eyewear"]
    assert kinds["thin or rimless frames"] == {"positives": 3, "recall": 0.667}
    assert kinds["sunglasses or tinted"] == {"positives": 2, "recall": 0.5}
    assert kinds["others"] == {"positives": 1, "recall": 1.0}
    beard = pd.DataFrame({"beard": "1", "hat": "0", "eyewear": "0",
                          "note": ["moustache only", "white moustache", "goatee and moustache", "grey beard"]})
    kinds = recall_by_kind(beard, [face(0.1)] * 4)["beard"]
    assert kinds["a moustache alone"]["positives"] == 2 and kinds["grey or white"]["positives"] == 2
    assert kinds["others"]["positives"] == 1
