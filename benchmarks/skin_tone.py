"""Does the model err more on darker skin?  Out of fold, on the shared photos, by skin tone.

    python benchmarks/skin_tone.py [--out artifacts]

Reads ``train.py``'s out-of-fold scores (``OUT/oof_scores.csv``: each face scored by a model
that did not see its person), finds each photo's face again as the model does (the largest),
measures its skin tone as the individual typology angle (ITA, Chardon et al. 1991:
``arctan((L - 50) / b)`` in degrees, of the median colour of the cheeks that the hat colour
read samples), and compares the tone groups: per label, the share of faces without it that
the model's stored threshold gives it (false positives), the recall, the precision and the
ROC AUC.  The angle is of the photo's pixels, so lighting moves it as much as skin does: a
group is of photos, not of people.  Prints a table and writes ``benchmarks/skin_tone.json``.
"""
import json
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from features.labels import LABELS  # noqa: E402
from features.model.classifier import reaches  # noqa: E402

#: Chardon's ITA groups, darkest first (very light over 55 degrees, light 41-55,
#: intermediate 28-41, tan 10-28, brown -30 to 10, dark under -30): brown and dark together,
#: as CelebA holds few of either.
GROUPS = {"brown or dark (< 10)": (-90, 10), "tan (10-28)": (10, 28), "intermediate (28-41)": (28, 41),
          "light (41-55)": (41, 55), "very light (> 55)": (55, 90)}


def skin_angles(model, paths):
    """The ITA of each photo's largest face as the model finds it (NaN: no face, or cheeks
    with no yellow in them, b <= 0, where the angle means nothing)."""
    from features.vision.colours import skin_colour
    from features.vision.images import load_image

    angles = []
    for path in paths:
        image = load_image(path)
        faces = model.faces(image)
        lightness, _, yellow = skin_colour(image, faces[0]) if faces else (np.nan, np.nan, np.nan)
        angles.append(np.degrees(np.arctan((lightness - 50) / yellow)) if yellow > 0 else np.nan)
    return np.array(angles)


def label_figures(part, label, threshold):
    """False-positive rate, recall, precision and AUC of one label over some faces."""
    y, p = part[label].to_numpy() == 1, part[f"p_{label}"].to_numpy()
    decided = reaches(p, threshold)
    return {"faces": int(len(part)), "with": int(y.sum()),
            "false_positive_rate": round(float(decided[~y].mean()), 3) if (~y).any() else None,
            "recall": round(float(decided[y].mean()), 3) if y.any() else None,
            "precision": round(float(y[decided].mean()), 3) if decided.any() else None,
            "roc_auc": round(float(roc_auc_score(y, p)), 3) if 0 < y.sum() < len(y) else None}


def cells(figures):
    """One label's four figures for the printed table."""
    keys = ("false_positive_rate", "recall", "precision", "roc_auc")
    return " / ".join("-" if figures[key] is None else f"{figures[key]:.3f}" for key in keys)


def main(argv=None):
    from benchmarks.quality_check import out_of_fold

    model, card, table = out_of_fold(argv, __doc__.splitlines()[0])
    table["ita"] = skin_angles(model, table["filename"])
    result = {"model_thresholds": card["thresholds"], "faces_without_an_angle": int(table["ita"].isna().sum()),
              "groups": {}}
    print(f"{'skin tone (ITA, degrees)':<24} {'faces':>5}  "
          + "  ".join(f"{label + ': false pos. / recall / precision / AUC':<44}" for label in LABELS))
    for name, (low, high) in GROUPS.items():
        part = table[(table["ita"] >= low) & (table["ita"] < high)]
        figures = {label: label_figures(part, label, card["thresholds"][label]) for label in LABELS}
        result["groups"][name] = figures
        print(f"{name:<24} {len(part):>5}  " + "  ".join(f"{cells(figures[label]):<44}" for label in LABELS))
    (ROOT / "benchmarks" / "skin_tone.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
