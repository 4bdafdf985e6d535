"""Hat-colour benchmark: how often a colour read names the labelled colour of a hat.

For every photo of ``hat_type.csv`` with a hat and a colour label (``hat_type`` none / unsure
and ``hat_colour`` unsure left out, as :func:`features.model.types.type_labels` does), the
largest face is found and each read names a colour:

- ``old``: the first rule, the median colour of a fixed patch just above the brows
  (:func:`old_read`, as :func:`features.vision.colours.hat_colour` reads it now).

Printed and written to ``benchmarks/hat_colour_results.json``: exact accuracy, accuracy with
black+navy merged, with white+beige+grey merged and with both (the labels call those soft),
the confusion table (rows: label, columns: read) and milliseconds per face of each read.

    python benchmarks/hat_colour.py 
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = Path(__file__).with_name("hat_colour_results.json")

from features.model.dataset import default_data_dir  # noqa: E402
from features.model.type_report import COLOUR_GROUPS, merged  # noqa: E402
from features.model.types import MISSING, type_labels  # noqa: E402
from features.vision import colours  # noqa: E402
from features.vision.faces import detect_faces  # noqa: E402
from features.vision.images import load_image  # noqa: E402
from features.vision.regions import extract_regions  # noqa: E402

def old_read(image, face):
    """The first measured read: the colour word of the median of a fixed patch of the
    forehead crop (lower middle: rows 1/2 to 7/8, columns 1/4 to 3/4)."""
    forehead = extract_regions(image, face, regions=("forehead",))["forehead"]
    h, w = forehead.shape[:2]
    return colours.colour_name(colours.median_colour(forehead[h // 2:7 * h // 8, w // 4:3 * w // 4]))


READS = {"old": old_read}


def labelled_hats(data_dir):
    """Photos with a hat and a colour label: DataFrame of filename, hat_colour, identity."""
    table = pd.read_csv(data_dir / "labels.csv", dtype={"identity": str})
    targets, _ = type_labels(data_dir, table["filename"])
    rows = targets["hat_colour"].to_numpy() != MISSING
    return pd.DataFrame({"filename": table["filename"][rows].to_numpy(),
                         "hat_colour": targets["hat_colour"][rows].to_numpy(),
                         "identity": table["identity"][rows].to_numpy()})


def largest_faces(data_dir, filenames):
    """Each photo and its largest face (None where no face is found)."""
    found = []
    for name in filenames:
        image = load_image(str(data_dir / "images" / name))
        faces = detect_faces(image)
        found.append((image, faces[0] if faces else None))
    return found


def agreement(truth, named):
    """Exact accuracy, with each group of :data:`COLOUR_GROUPS` merged alone and both merged."""
    truth, named = np.asarray(truth, dtype=object), np.asarray(named, dtype=object)
    scores = {"n": int(len(truth)), "accuracy": float(np.mean(truth == named))}
    for group, members in COLOUR_GROUPS.items():
        inside = lambda colours_: np.where(np.isin(colours_, members), group, colours_)  # noqa: E731
        scores[f"accuracy_{'_'.join(members)}_merged"] = float(np.mean(inside(truth) == inside(named)))
    scores["accuracy_both_merged"] = float(np.mean(merged(truth) == merged(named)))
    return scores


def confusion(truth, named):
    """Confusion table (rows: labelled colour, most frequent first; columns: read colour)."""
    order = list(pd.Series(truth).value_counts().index)
    order += sorted(set(named) - set(order))
    return pd.crosstab(pd.Series(truth, name="label"), pd.Series(named, name="read")).reindex(
        index=order[:len(set(truth))], columns=order, fill_value=0)


def timed_read(read, found):
    """Each face's colour by ``read`` and the median milliseconds per face (three passes)."""
    named = [read(image, face) for image, face in found]
    times = []
    for _ in range(3):
        for image, face in found:
            started = time.perf_counter()
            read(image, face)
            times.append(time.perf_counter() - started)
    return named, 1000 * float(np.median(times))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args = parser.parse_args()

    data_dir = default_data_dir()
    hats = labelled_hats(data_dir)
    found = largest_faces(data_dir, hats["filename"])
    has_face = np.array([face is not None for _, face in found])
    found = [pair for pair, ok in zip(found, has_face) if ok]
    truth = hats["hat_colour"].to_numpy(dtype=object)[has_face]
    print(f"{len(hats)} labelled hats, {len(found)} with a face found\n")
    results = {"photos": int(len(hats)), "faces": int(len(found)), "reads": {}}
    for name, read in READS.items():
        named, ms = timed_read(read, found)
        scores = {**agreement(truth, named), "ms_per_face": ms}
        table = confusion(truth, np.array(named, dtype=object))
        results["reads"][name] = {**scores, "confusion": table.to_dict(orient="index")}
        print(f"{name}: " + ", ".join(f"{k} {v:.3f}" for k, v in scores.items() if k != "n"))
        print(table.to_string(), "\n")
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
