"""End-to-end scores in the wild: recommend.py's own per-photo code on ../shared/datasets/wild-dev.

For each photo the largest face's probabilities are scored against the labels of the largest
face (``?`` rows left out per label): AUC of the probability, and precision, recall and F1 of
the model's own decision (its labels; a face it does not judge has none); a photo in which no
face is found scores 0 and is not labelled, a miss.  The AUC over the photos with a face found
is given too, to tell the detector's misses from the classifier's.
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

from features.labels import LABELS  # noqa: E402


def largest_face_scores(records):
    """Each photo's largest-face probabilities (faces come largest first), 0 without a face."""
    return np.array([[r["faces"][0]["scores"][label] if r["faces"] else 0.0 for label in LABELS]
                     for r in records])


def largest_face_decisions(records):
    """Each photo's largest-face decisions (the model's labels), 0 without a face."""
    return np.array([[label in r["faces"][0]["labels"] if r["faces"] else False for label in LABELS]
                     for r in records], dtype=int)


def photo_scores(table, records):
    """Each photo's labels beside what the model said of its largest face (empty without one)."""
    rows = []
    for (_, row), record in zip(table.iterrows(), records):
        face = record["faces"][0] if record["faces"] else None
        rows.append({"filename": row["filename"], **{label: row[label] for label in LABELS},
                     "faces": len(record["faces"]),
                     **{f"p_{label}": face["scores"][label] if face else None for label in LABELS},
                     "decided": ",".join(face["labels"]) if face else "",
                     "quality": face["quality"]["status"] if face else "",
                     "width_px": face["quality"]["width_px"] if face else None})
    return pd.DataFrame(rows)


def end_to_end(table, records):
    """Per label: photos scored, positives, AUC of the largest face's probability and precision,
    recall and F1 of its decision; positives and AUC over the photos with a face found."""
    scores, decided = largest_face_scores(records), largest_face_decisions(records)
    found = np.array([bool(r["faces"]) for r in records])
    result = {}
    for j, label in enumerate(LABELS):
        known = table[label].isin(["0", "1"]).to_numpy()
        y = (table[label] == "1").to_numpy().astype(int)  # read only where known
        said = decided[known, j]
        result[label] = {"photos": int(known.sum()), "positives": int(y[known].sum()),
                         "roc_auc": round(float(roc_auc_score(y[known], scores[known, j])), 3),
                         **{name: round(float(metric(y[known], said, zero_division=0)), 3) for name, metric in
                            (("precision", precision_score), ("recall", recall_score), ("f1", f1_score))},
                         "positives_with_a_face": int(y[known & found].sum()),
                         "roc_auc_with_a_face": round(float(roc_auc_score(y[known & found],
                                                                          scores[known & found, j])), 3)}
    return result


def main(argv=None):
    from features.app.analysis import AnalysisSettings, analyse_chunk, frozen_catalog
    from features.model.model_io import MODEL
    from features.products.recommendations import CATALOG, load_catalog

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=MODEL)
    parser.add_argument("--catalog", type=Path, default=CATALOG)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--scores", type=Path, help="also write each photo's largest-face scores here (CSV)")
    args = parser.parse_args(argv)
    table = pd.read_csv(WILD / "labels.csv", dtype=str, keep_default_na=False)
    jobs = [(WILD / "images" / name, None) for name in table["filename"]]
    records = analyse_chunk(jobs, AnalysisSettings(model=args.model.resolve(),
                                                   catalog=frozen_catalog(load_catalog(args.catalog))))
    result = {"photos": len(table), "photos_with_a_face": sum(bool(r["faces"]) for r in records),
              "errors": [r["error"] for r in records if r["error"]],
              "labels": end_to_end(table, records)}
    print(f"wild-dev: a face found in {result['photos_with_a_face']} of {len(table)} photos")
    for label, row in result["labels"].items():
        print(f"  {label:<8} AUC {row['roc_auc']:.3f}, decided: precision {row['precision']:.3f} recall "
              f"{row['recall']:.3f} F1 {row['f1']:.3f} ({row['positives']} of {row['photos']} photos positive); "
              f"photos with a face: AUC {row['roc_auc_with_a_face']:.3f} ({row['positives_with_a_face']} positive)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if args.scores:
        photo_scores(table, records).to_csv(args.scores, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
