"""Are the faces we do not judge the ones the model gets wrong?  Out of fold, on the shared photos.

    python benchmarks/quality_check.py [--out artifacts]

Reads ``train.py``'s out-of-fold scores (``OUT/oof_scores.csv``: each face scored by a model
that did not see its person), finds each photo's face again as the model does (the largest),
takes its quality record, and compares faces by status and by reason: how often a decision at
the model's stored thresholds is wrong, and the log loss.  CelebA's own blurry column
(``facial_hair.csv``, ``blurry``) says how the sharpness measure agrees with a person's eye.  Prints a
table and writes ``benchmarks/quality_check.json``.
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import log_loss, roc_auc_score

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from features.labels import LABELS  # noqa: E402
from features.model.classifier import reaches  # noqa: E402
from features.model.evaluation import SCORE_CLIP  # noqa: E402

#: The faces each check failed, by the name this benchmark's report gives them.
GROUPS = {"narrow": "too_small", "blurred": "blurred", "turned": "turned", "cut by the edge": "cut_off"}


def qualities(model, paths):
    """The quality record of each photo's largest face, as the model finds it."""
    from features.vision.images import load_image
    from features.vision.quality import face_quality

    records = []
    for path in paths:
        image = load_image(path)
        faces = model.faces(image)
        records.append(face_quality(image, faces[0]) if faces else None)
    return records


def summary(table, rows, thresholds):
    """Wrong decisions and log loss per label over the rows picked."""
    part = table[rows]
    y, p = part[list(LABELS)].to_numpy(), part[[f"p_{label}" for label in LABELS]].to_numpy()
    wrong = reaches(p, np.array([thresholds[label] for label in LABELS])) != (y == 1)
    return {"faces": int(rows.sum()), "wrong_any": round(float(wrong.any(axis=1).mean()), 3),
            **{f"wrong_{label}": round(float(wrong[:, j].mean()), 3) for j, label in enumerate(LABELS)},
            **{f"log_loss_{label}": round(float(log_loss(y[:, j], np.clip(p[:, j], SCORE_CLIP, 1 - SCORE_CLIP),
                                                         labels=[0, 1])), 3)
               for j, label in enumerate(LABELS)}}


def out_of_fold(argv, description):
    """The model in ``--out`` (train.py's output folder), its card and its out-of-fold scores."""
    from features.model.model_io import ARTIFACTS, load_model

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", type=Path, default=ARTIFACTS, help="train.py's output folder")
    args = parser.parse_args(argv)
    model, card = load_model(args.out / "model.joblib")
    return model, card, pd.read_csv(args.out / "oof_scores.csv")


def main(argv=None):
    from features.model.dataset import default_data_dir

    model, card, table = out_of_fold(argv, __doc__.splitlines()[0])
    records = qualities(model, table["filename"])
    table = table[[r is not None for r in records]].reset_index(drop=True)
    records = [r for r in records if r is not None]
    status = np.array([r["status"] for r in records])
    blurry = pd.read_csv(default_data_dir() / "facial_hair.csv").set_index("filename")["blurry"]
    table["blurry"] = table["filename"].map(lambda f: blurry.get(Path(f).name, 0)).to_numpy() == 1
    sharpness = np.array([r["sharpness"] for r in records])
    groups = {"all": np.ones(len(table), bool), "ok": status == "ok", "uncertain": status == "uncertain",
              **{group: np.array([check in r["failed"] for r in records]) for group, check in GROUPS.items()},
              "CelebA blurry": table["blurry"].to_numpy()}
    result = {"model_thresholds": card["thresholds"],
              "groups": {name: summary(table, rows, card["thresholds"]) for name, rows in groups.items() if rows.any()},
              "blurry_auc_of_low_sharpness": round(float(roc_auc_score(table["blurry"], -sharpness)), 3),
              "blurry_share": {"uncertain": round(float(table["blurry"][status == "uncertain"].mean()), 3),
                               "ok": round(float(table["blurry"][status == "ok"].mean()), 3)}}
    print("faces (largest per photo)  n      wrong any  " + "  ".join(f"wrong {l:<7}" for l in LABELS)
          + "  " + "  ".join(f"logloss {l:<7}" for l in LABELS))
    for name, row in result["groups"].items():
        print(f"{name:<26} {row['faces']:>5}  {row['wrong_any']:>9.3f}  "
              + "  ".join(f"{row[f'wrong_{l}']:>13.3f}" for l in LABELS) + "  "
              + "  ".join(f"{row[f'log_loss_{l}']:>15.3f}" for l in LABELS))
    print(f"CelebA blurry told by low sharpness: AUC {result['blurry_auc_of_low_sharpness']}; blurry share "
          f"uncertain {result['blurry_share']['uncertain']}, ok {result['blurry_share']['ok']}")
    (ROOT / "benchmarks" / "quality_check.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
