"""Tilted heads: LFW photos turned by hand, their faces against the upright photo's.

Each photo is turned about its centre (90 and 270: exactly, as a photo whose EXIF orientation
was lost; other angles: resampled, the corners filled by reflection) and its face nearest the
centre compared with the upright photo's: the 68 landmarks' mean distance from the upright
points turned (in eye distances), and the model's probabilities and decisions.  Each angle is
run as shipped (a face rolled past ``faces.SIDEWAYS_ROLL`` looked at again turned by a
quarter, its landmarks fitted upright past ``faces.UPRIGHT_ROLL``) and, with ``--without``,
also fitted upright on the keypoints first found (not looked at again) and as dlib fits them on
the photo (neither).  The baseline row turns each photo 15 degrees and back: what resampling
alone moves.

    python benchmarks/rolled_faces.py [--photos 60] [--model artifacts/model.joblib] [--without]
"""
import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
LFW = ROOT.parent / "shared" / "datasets" / "lfw-photos" / "images"

from features.labels import LABELS  # noqa: E402
from features.vision import faces  # noqa: E402
from features.vision.landmarks import LEFT_EYE, RIGHT_EYE  # noqa: E402

ANGLES = (15, 30, 45, 60, 90, 270)


def turned(image, degrees):
    """``image`` turned ``degrees`` counter-clockwise about its centre, and the 2x3 map of its
    points (90 and 270 exactly, the photo's sides swapped)."""
    height, width = image.shape[:2]
    if degrees % 90 == 0:
        quarter = degrees // 90 % 4
        out = np.ascontiguousarray(np.rot90(image, quarter))
        shift = {0: (0, 0), 1: (0, width - 1), 2: (width - 1, height - 1), 3: (height - 1, 0)}[quarter]
        turn = np.round(cv2.getRotationMatrix2D((0, 0), degrees, 1.0)[:, :2])
        return out, np.hstack([turn, np.array(shift, float)[:, None]])
    turn = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    return cv2.warpAffine(image, turn, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT), turn


def central(model, image):
    """The face nearest the photo's centre (LFW's subject) and the model's answer for it (the
    answer of the same box), or None."""
    height, width = image.shape[:2]
    found = model.faces(image)
    if not found:
        return None
    face = min(found, key=lambda f: np.hypot((f.box[0] + f.box[2]) / 2 - width / 2, (f.box[1] + f.box[3]) / 2 - height / 2))
    return face, next(answer for answer in model.answer(image) if tuple(answer.box) == tuple(face.box))


def compare(model, photos, degrees):
    """Per photo whose upright face is found: the landmark error (eye distances) and each
    label's probability and decision, turned against upright; None where the turned photo
    has no face."""
    rows = []
    for image, upright in photos:
        if degrees == "back":
            there, _ = turned(image, 15)
            picture, _ = turned(there, -15)
            turn = np.hstack([np.eye(2), np.zeros((2, 1))])
        else:
            picture, turn = turned(image, degrees)
        found = central(model, picture)
        if found is None:
            rows.append(None)
            continue
        (face, answer), (first, said) = found, upright
        points = first.landmarks @ turn[:, :2].T + turn[:, 2]
        eyes = np.linalg.norm(first.landmarks[LEFT_EYE].mean(axis=0) - first.landmarks[RIGHT_EYE].mean(axis=0))
        rows.append({"error": float(np.linalg.norm(face.landmarks - points, axis=1).mean() / eyes),
                     "moved": {label: abs(answer.probabilities[label] - said.probabilities[label]) for label in LABELS},
                     "flipped": {label: (label in answer.labels) != (label in said.labels) for label in LABELS}})
    return rows


def main(argv=None):
    from features.model.model_io import MODEL, load_model
    from features.vision.images import load_image

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=60, help="every 10th LFW photo, this many")
    parser.add_argument("--model", type=Path, default=MODEL)
    parser.add_argument("--without", action="store_true", help="also run without the look turned, and with neither")
    args = parser.parse_args(argv)
    model, _ = load_model(args.model)
    photos = []
    for path in sorted(LFW.glob("*.jpg"))[::10][:args.photos]:
        image = load_image(path)
        if (upright := central(model, image)) is not None:
            photos.append((image, upright))
    print(f"{len(photos)} LFW photos with a face; landmark error in eye distances (median, 90th percentile); "
          "probability moved (mean) and decisions changed per label, against the upright photo")
    shipped = faces.UPRIGHT_ROLL, faces.SIDEWAYS_ROLL
    modes = (("as shipped", shipped), ("not looked at again", (shipped[0], 360.0)), ("dlib on the photo", (360.0, 360.0)))
    for name, (faces.UPRIGHT_ROLL, faces.SIDEWAYS_ROLL) in modes[:1 + 2 * args.without]:
        try:
            rows_by_angle = {degrees: [row for row in compare(model, photos, degrees) if row is not None]
                             for degrees in ("back", *ANGLES)}
        finally:
            faces.UPRIGHT_ROLL, faces.SIDEWAYS_ROLL = shipped
        for degrees, rows in rows_by_angle.items():
            errors = [row["error"] for row in rows]
            said = ", ".join(f"{label} {np.mean([row['moved'][label] for row in rows]):.3f} / "
                             f"{sum(row['flipped'][label] for row in rows)}" for label in LABELS)
            angle = "15 and back" if degrees == "back" else f"{degrees} degrees"
            print(f"  {name:<19} {angle:<12} found {len(rows)}/{len(photos)}  landmarks {np.median(errors):.3f} "
                  f"{np.percentile(errors, 90):.3f}  {said}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
