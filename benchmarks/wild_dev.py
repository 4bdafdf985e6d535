"""End-to-end scores in the wild: recommend.py's own per-photo code on ../shared/datasets/wild-dev.

For each photo the largest face's probabilities are scored against the labels of the largest
face (``?`` rows left out per label): AUC of the probability, and precision, recall and F1 of
the model's own decision (its labels; a face it does not judge has none), and those a
``--min-probability`` of 0.1 to 0.7 would make; a photo in which no face is found scores 0
and is not labelled, a miss.  The AUC over the photos with a face found is given too, to
tell the detector's misses from the classifier's, and there the calibration: the mean
probability against the share labelled, and the expected calibration error (10 bins).
The set is for measuring only: nothing here is trained or tuned on it.

    python benchmarks/wild_dev.py [--model artifacts/model.joblib] [--json FILE] [--scores FILE]

``--scores`` writes each photo's row (its labels, the faces found, the largest face's
probabilities, decisions and quality) as CSV, to see which photos a figure misses.
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WILD = ROOT.parent / "shared" / "datasets" / "wild-dev"

from features.labels import LABELS, judged  # noqa: E402
from features.model.evaluation import expected_calibration_error  # noqa: E402

#: Probabilities at which the decisions a ``--min-probability`` would make are counted too.
THRESHOLDS = (0.1, 0.2, 0.3, 0.5, 0.7)


def largest_faces(records):
    """Each photo's largest face (faces come largest first), None without one."""
    return [r["faces"][0] if r["faces"] else None for r in records]


def face_scores(faces):
    """Each photo's face's probabilities, 0 without a face."""
    return np.array([[face["scores"][label] if face else 0.0 for label in LABELS] for face in faces])


def face_decisions(faces):
    """Each photo's face's decisions (the model's labels), 0 without a face."""
    return np.array([[label in face["labels"] if face else False for label in LABELS] for face in faces], dtype=int)


def photo_scores(table, records, faces):
    """Each photo's labels beside what the model said of its scored face (empty without one)."""
    rows = []
    for (_, row), record, face in zip(table.iterrows(), records, faces):
        rows.append({"filename": row["filename"], **{label: row[label] for label in LABELS},
                     "faces": len(record["faces"]),
                     **{f"p_{label}": face["scores"][label] if face else None for label in LABELS},
                     "decided": ",".join(face["labels"]) if face else "",
                     "quality": face["quality"]["status"] if face else "",
                     "width_px": face["quality"]["width_px"] if face else None})
    return pd.DataFrame(rows)


def end_to_end(table, faces):
    """Per label: photos scored, positives, AUC of the scored face's probability and precision,
    recall and F1 of its decision; positives and AUC over the photos with that face found.

    ``table`` holds each photo's labels ("0", "1", anything else unknown), ``faces`` the face
    scored in each photo (a record's face) or None."""
    scores, decided = face_scores(faces), face_decisions(faces)
    found = np.array([face is not None for face in faces])
    result = {}
    for j, label in enumerate(LABELS):
        known = table[label].isin(["0", "1"]).to_numpy()
        y = (table[label] == "1").to_numpy().astype(int)  # read only where known
        result[label] = {"photos": int(known.sum()), "positives": int(y[known].sum()),
                         "roc_auc": round(float(roc_auc_score(y[known], scores[known, j])), 3),
                         **decision_figures(y[known], decided[known, j]),
                         "positives_with_a_face": int(y[known & found].sum()),
                         "roc_auc_with_a_face": round(float(roc_auc_score(y[known & found],
                                                                          scores[known & found, j])), 3),
                         **calibration(y[known & found], scores[known & found, j])}
    return result


def calibration(y, p):
    """How well the probabilities of the faces found match the share labelled: their mean
    against that share, and the expected calibration error over 10 bins."""
    return {"mean_probability": round(float(p.mean()), 3), "share_positive": round(float(y.mean()), 3),
            "ece": round(expected_calibration_error(y, p), 3)}


def at_thresholds(table, faces, thresholds):
    """Per label and threshold: how many faces would be decided, with what precision, recall
    and F1, had the judged ones been decided at that probability (``--min-probability``; on
    the scores as the records give them, to 4 decimals); a face not judged decides nothing
    at any threshold, and a photo without its face is a miss."""
    scores = face_scores(faces)
    judged_faces = np.array([face is not None and judged(face["quality"]) for face in faces])
    result = {}
    for j, label in enumerate(LABELS):
        known = table[label].isin(["0", "1"]).to_numpy()
        y = (table[label] == "1").to_numpy()[known]
        result[label] = {}
        for threshold in thresholds:
            said = (judged_faces & (scores[:, j] >= threshold))[known]
            result[label][f"{threshold:g}"] = {"decided": int(said.sum()), **decision_figures(y, said)}
    return result


def decision_figures(y, said):
    """Precision, recall and F1 of decisions ``said`` against labels ``y`` (0 where nothing
    is decided or nothing is positive), to 3 decimals."""
    return {name: round(float(metric(y, said, zero_division=0)), 3) for name, metric in
            (("precision", precision_score), ("recall", recall_score), ("f1", f1_score))}


def print_end_to_end(name, result, *, found="a face found"):
    """The figures of :func:`end_to_end`, one line per label, then the decisions of
    :func:`at_thresholds` when the result has them."""
    print(f"{name}: {found} in {result['photos_with_a_face']} of {result['photos']} photos")
    for label, row in result["labels"].items():
        print(f"  {label:<8} AUC {row['roc_auc']:.3f}, decided: precision {row['precision']:.3f} recall "
              f"{row['recall']:.3f} F1 {row['f1']:.3f} ({row['positives']} of {row['photos']} photos positive); "
              f"photos with a face: AUC {row['roc_auc_with_a_face']:.3f} ({row['positives_with_a_face']} positive), "
              f"mean probability {row['mean_probability']:.3f} against {row['share_positive']:.3f} positive, "
              f"ECE {row['ece']:.3f}")
    for label, rows in result.get("at_thresholds", {}).items():
        print(f"  {label:<8} at " + "; ".join(f"{t}: P {r['precision']:.3f} R {r['recall']:.3f} F1 {r['f1']:.3f}"
                                             for t, r in rows.items()))


def analysed(paths, model, catalog):
    """recommend.py's record of each photo, as its per-photo code makes it."""
    from features.app.analysis import AnalysisSettings, analyse_chunk, frozen_catalog
    from features.products.recommendations import load_catalog

    return analyse_chunk([(path, None) for path in paths],
                         AnalysisSettings(model=model.resolve(), catalog=frozen_catalog(load_catalog(catalog))))


def benchmark_arguments(argv, description, *, scored):
    """The options of an end-to-end benchmark (``scored``: which face its CSV rows give)."""
    from features.model.model_io import MODEL
    from features.products.recommendations import CATALOG

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model", type=Path, default=MODEL)
    parser.add_argument("--catalog", type=Path, default=CATALOG)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--scores", type=Path, help=f"also write each photo's {scored} scores here (CSV)")
    return parser.parse_args(argv)


def benchmark_result(table, records, faces, model):
    """The figures of an end-to-end benchmark: photos, those with their face found, errors,
    the model's thresholds, :func:`end_to_end` and :func:`at_thresholds`."""
    from features.model.model_io import read_card

    return {"photos": len(table), "photos_with_a_face": sum(face is not None for face in faces),
            "errors": [r["error"] for r in records if r["error"]], "thresholds": read_card(model)["thresholds"],
            "labels": end_to_end(table, faces), "at_thresholds": at_thresholds(table, faces, THRESHOLDS)}


def write_results(args, result, scores):
    """Write the figures (``--json``) and the photos' rows (``--scores``, a DataFrame)."""
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if args.scores:
        scores.to_csv(args.scores, index=False)


def main(argv=None):
    args = benchmark_arguments(argv, __doc__.splitlines()[0], scored="largest-face")
    table = pd.read_csv(WILD / "labels.csv", dtype=str, keep_default_na=False)
    records = analysed([WILD / "images" / name for name in table["filename"]], args.model, args.catalog)
    faces = largest_faces(records)
    result = benchmark_result(table, records, faces, args.model)
    print_end_to_end("wild-dev", result)
    write_results(args, result, photo_scores(table, records, faces))
    return 0


if __name__ == "__main__":
    sys.exit(main())
