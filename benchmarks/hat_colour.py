"""Hat-colour benchmark: how often a colour read names the labelled colour of a hat.

For every photo of ``hat_type.csv`` with a hat and a colour label (``hat_type`` none / unsure
and ``hat_colour`` unsure left out, as :func:`features.model.types.type_labels` does), the
largest face is found and each read names a colour:

- ``old``: the first rule, the median colour of a fixed patch just above the brows
  (:func:`old_read`, kept here to compare against);
- ``new``: :func:`features.vision.colours.hat_colour`.

Printed and written to ``benchmarks/hat_colour_results.json``: exact accuracy, accuracy with
black+navy merged, with white+beige+grey merged and with both (the labels call those soft),
the confusion table (rows: label, columns: read), milliseconds per face of each read, and the
share of hats whose word each read keeps when the photo is framed otherwise (:data:`REFRAMINGS`:
a feed's borders and sizes; the faces found again on each).

``--cv``: the new read's three hand-chosen numbers (:data:`GRID`) chosen on four folds of
people (StratifiedGroupKFold by ``identity``) and scored on the fifth, so that their choice on
these labels does not flatter the score.

    python benchmarks/hat_colour.py [--cv]
"""
import argparse
import json
import sys
import time
from contextlib import contextmanager
from itertools import product
from pathlib import Path

import cv2
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

#: The new read's numbers picked by hand, and the values the ``--cv`` study chooses among.
GRID = {"SKIN_DISTANCE": (10.0, 15.0, 20.0), "BORDER_PENALTY": (0.3, 0.5, 1.0),
        "HAT_CENTRE_ROW": (0.45, 0.55, 0.65)}
#: Folds of people for ``--cv`` (the issue's protocol).
FOLDS = 5


def bordered(image, *, value):
    """The photo inside a border of 40% of its height on every side (a story canvas, a frame)."""
    side = int(0.4 * image.shape[0])
    return np.pad(image, ((side, side), (side, side), (0, 0)), constant_values=value)


#: The same photo as a feed may show it: the hat's word should not depend on the frame.
REFRAMINGS = {"white border": lambda image: bordered(image, value=255),
              "black border": lambda image: bordered(image, value=0),
              "scaled 1.3x": lambda image: cv2.resize(image, None, fx=1.3, fy=1.3, interpolation=cv2.INTER_LINEAR)}


def old_read(image, face):
    """The first measured read: the colour word of the median of a fixed patch of the
    forehead crop (lower middle: rows 1/2 to 7/8, columns 1/4 to 3/4), padding left out."""
    forehead = extract_regions(image, face, regions=("forehead",))["forehead"]
    h, w = forehead.shape[:2]
    pixels = forehead[h // 2:7 * h // 8, w // 4:3 * w // 4].reshape(-1, 3)
    inside = pixels[pixels.max(axis=1) > 0]
    return colours.colour_name(np.median(inside if len(inside) else pixels, axis=0).astype(np.uint8))


READS = {"old": old_read, "new": colours.hat_colour}


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


def reframed_faces(found, change):
    """Each photo of ``found`` reframed by ``change`` and its largest face found again."""
    moved = []
    for image, _ in found:
        image = change(image)
        faces = detect_faces(image)
        moved.append((image, faces[0] if faces else None))
    return moved


def kept_word(read, found, moved):
    """Share of the hats whose word ``read`` keeps in the reframed photos (those with a face)."""
    pairs = [(read(*first), read(*second)) for first, second in zip(found, moved) if second[1] is not None]
    return float(np.mean([a == b for a, b in pairs]))


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


@contextmanager
def settings(values):
    """The colour module's constants set to ``values`` for the block, then restored."""
    before = {name: getattr(colours, name) for name in values}
    for name, value in values.items():
        setattr(colours, name, value)
    colours.hat_weights.cache_clear()  # it is cached on the constants it reads
    try:
        yield
    finally:
        for name, value in before.items():
            setattr(colours, name, value)
        colours.hat_weights.cache_clear()


def grouped_cv(found, truth, groups):
    """The new read with :data:`GRID`'s numbers chosen on four folds of people and scored on
    the fifth: out-of-fold reads and each fold's choice."""
    from sklearn.model_selection import StratifiedGroupKFold

    combos = [dict(zip(GRID, values)) for values in product(*GRID.values())]
    reads = []
    for combo in combos:
        with settings(combo):
            reads.append(np.array([colours.hat_colour(image, face) for image, face in found], dtype=object))
    out_of_fold = np.empty(len(truth), dtype=object)
    chosen = []
    splitter = StratifiedGroupKFold(n_splits=FOLDS, shuffle=True, random_state=0)
    for train, test in splitter.split(truth, truth, groups):
        best = int(np.argmax([np.mean(named[train] == truth[train]) for named in reads]))
        out_of_fold[test] = reads[best][test]
        chosen.append(combos[best])
    return out_of_fold, chosen


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cv", action="store_true", help="also the grouped CV of the new read's numbers")
    args = parser.parse_args()

    data_dir = default_data_dir()
    hats = labelled_hats(data_dir)
    found = largest_faces(data_dir, hats["filename"])
    has_face = np.array([face is not None for _, face in found])
    found = [pair for pair, ok in zip(found, has_face) if ok]
    truth = hats["hat_colour"].to_numpy(dtype=object)[has_face]
    print(f"{len(hats)} labelled hats, {len(found)} with a face found\n")
    results = {"photos": int(len(hats)), "faces": int(len(found)), "reads": {}}
    reframed = {frame: reframed_faces(found, change) for frame, change in REFRAMINGS.items()}
    for name, read in READS.items():
        named, ms = timed_read(read, found)
        scores = {**agreement(truth, named), "ms_per_face": ms,
                  **{f"same_word_{frame.replace(' ', '_')}": kept_word(read, found, moved)
                     for frame, moved in reframed.items()}}
        table = confusion(truth, np.array(named, dtype=object))
        results["reads"][name] = {**scores, "confusion": table.to_dict(orient="index")}
        print(f"{name}: " + ", ".join(f"{k} {v:.3f}" for k, v in scores.items() if k != "n"))
        print(table.to_string(), "\n")
    if args.cv:
        named, chosen = grouped_cv(found, truth, hats["identity"].to_numpy()[has_face])
        scores = agreement(truth, named)
        results["reads"]["new_cv"] = {**scores, "chosen_per_fold": chosen,
                                     "confusion": confusion(truth, named).to_dict(orient="index")}
        print("new, numbers chosen on 4 folds and scored on the 5th: "
              + ", ".join(f"{k} {v:.3f}" for k, v in scores.items() if k != "n"))
        print("chosen per fold:", chosen)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
