"""End-to-end scores on news photos: recommend.py's own per-photo code on the 1,000 LFW photos,
against labels given by eye (``benchmarks/lfw_by_eye.csv``).

Each LFW photo is centred on one named person, the subject; the labels are the subject's:
``1``, ``0`` or ``u`` (cannot tell: left out of that label's figures), one labeller's pass
over 250x250 crops with a zoomed second look at the doubtful ones, the rules of wild-dev's
README (glasses pushed up, sports headbands and faint shadow are 0; stubble is 1 only when
plain, else ``u``), and the frame or hair in ``note`` ("thin metal frames", "moustache
only").  The subject's face is the face whose box holds the photo's centre (the nearest
such); a photo where no box holds it counts as a miss, as wild-dev's photos without a face.
The set is for measuring only: nothing is trained or tuned on it.

    python benchmarks/lfw_by_eye.py [--model artifacts/model.joblib] [--json FILE] [--scores FILE]

The figures are :mod:`benchmarks.wild_dev`'s (with the decisions other thresholds would
make), and the recall among the subjects of each of :data:`KINDS`, read from the notes.
"""
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
LFW = ROOT.parent / "shared" / "datasets" / "lfw-photos"
LABELS_FILE = Path(__file__).with_name("lfw_by_eye.csv")
#: Kinds of subjects, read from the notes, per label: a regular expression the note matches
#: and one it must not (a moustache alone is a note naming a moustache and no other hair).
#: Kinds may overlap (tinted thin frames); "others" are the positives of no kind.
KINDS = {"eyewear": {"thin or rimless frames": (r"thin metal|thin frames|rimless|half-rim", None),
                     "sunglasses or tinted": (r"sunglasses|tinted", None)},
         "beard": {"a moustache alone": (r"moustache", r"goatee|beard|stubble|soul patch"),
                   "grey or white": (r"grey|white", None)},
         "hat": {"cap": (r"\bcap\b", None)}}

from benchmarks.wild_dev import (analysed, benchmark_arguments, benchmark_result, face_decisions,  # noqa: E402
                                 photo_scores, print_end_to_end, write_results)
from features.labels import LABELS  # noqa: E402


def subject_faces(records):
    """Each photo's subject: the face whose box holds the photo's centre, the nearest such
    (box centre to photo centre); None where no box holds it."""
    subjects = []
    for record in records:
        x, y = (record["width"] or 0) / 2.0, (record["height"] or 0) / 2.0
        holding = [face for face in record["faces"]
                   if face["box"][0] <= x <= face["box"][2] and face["box"][1] <= y <= face["box"][3]]
        subjects.append(min(holding, key=lambda f: np.hypot((f["box"][0] + f["box"][2]) / 2 - x,
                                                            (f["box"][1] + f["box"][3]) / 2 - y), default=None))
    return subjects


def recall_by_kind(table, faces):
    """Per label and kind of subject (:data:`KINDS`): the positives of that kind and the
    share the model decided."""
    decided = face_decisions(faces).astype(bool)
    notes = table["note"].str.lower()
    result = {}
    for label, kinds in KINDS.items():
        marks = {kind: noted(notes, pattern, unless) for kind, (pattern, unless) in kinds.items()}
        marks["others"] = ~np.any(list(marks.values()), axis=0)
        positive, said = (table[label] == "1").to_numpy(), decided[:, LABELS.index(label)]
        result[label] = {kind: {"positives": int((positive & marked).sum()),
                                "recall": round(float(said[positive & marked].mean()), 3)
                                if (positive & marked).any() else None}
                         for kind, marked in marks.items()}
    return result


def noted(notes, pattern, unless):
    """Which notes match ``pattern`` and not ``unless`` (None: nothing excluded)."""
    marked = notes.str.contains(pattern).to_numpy()
    return marked & ~notes.str.contains(unless).to_numpy() if unless else marked


def main(argv=None):
    args = benchmark_arguments(argv, __doc__.splitlines()[0], scored="subject")
    table = pd.read_csv(LABELS_FILE, dtype=str, keep_default_na=False)
    records = analysed([LFW / name for name in table["filename"]], args.model, args.catalog)
    faces = subject_faces(records)
    result = {**benchmark_result(table, records, faces, args.model), "recall_by_kind": recall_by_kind(table, faces)}
    print_end_to_end("LFW by eye", result, found="the subject's face found")
    for label, kinds in result["recall_by_kind"].items():
        print(f"  {label:<8} recall " + "; ".join(f"{kind} {r['recall']} of {r['positives']}"
                                                 for kind, r in kinds.items()))
    write_results(args, result, photo_scores(table, records, faces).assign(note=table["note"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
