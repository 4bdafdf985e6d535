"""Face detection benchmark: every candidate detector on the shared photos, one table.

For each candidate (a :class:`features.vision.faces.DetectionSettings`):

- CelebA (``celeba-hbe``, one face per photo): photos with a face found, overall and among
  hat, beard and eyewear wearers;
- LFW (``lfw-photos``): photos where a found face covers the photo's centre (the named person);
- ``wild-dev``: photos with a face found (of those with one), faces found against the exactly
  counted ones (found faces capped at the count), faces beyond the count, and apart the
  ``approx`` crowd rows: faces found against the estimate and rows within 15% of it;
- false faces per face-free photo (see :func:`face_free_photos`), and with ``--face-free
  FOLDER`` on more face-free photos (``face_free_debian.py`` makes them from Debian packages):
  photos with a face found;
- mosaics of LFW photos (those with one face, see :func:`single_face_lfw`) scaled down so the face is W pixels wide, tiled into 1280x960:
  tiles whose face is found and extras, per W; the smallest W found in every tile;
- ms per photo at 250x250 (LFW) and at 1280x960 (the 40-px mosaic).

Figures are printed and written to ``benchmarks/detection_results.json`` (candidates run
again replace their entry).  The sets are for measuring: nothing is tuned on wild-dev.

    python benchmarks/detection.py [--only NAME ...] [--sample N] [--fit-boxes METHOD]
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
DATASETS = ROOT.parent / "shared" / "datasets"
RESULTS = Path(__file__).with_name("detection_results.json")

from features.vision.faces import DetectionSettings, landmark_predictor, raw_detections, to_gray  # noqa: E402
from features.vision.images import load_image  # noqa: E402
from features.vision.landmarks import LEFT_EYE, RIGHT_EYE  # noqa: E402

#: name -> (settings, slow).  Slow candidates (dlib's MMOD: 0.5 s for a 250x250 photo, 11 s
#: for 1000x1000 in dlib-bin, which has no BLAS) run on a CelebA sample (``--sample``, at most
#: :data:`SLOW_SAMPLE`) and the first 300 LFW photos only.
CANDIDATES = {
    "hog t=0": (DetectionSettings("hog", 0.0), False),
    "hog t=-0.5": (DetectionSettings("hog", -0.5), False),
    "hog t=0 up=1": (DetectionSettings("hog", 0.0, upsample=1), False),
    "mmod": (DetectionSettings("mmod", 0.0), True),
    "blazeface-short": (DetectionSettings("blazeface_short", 0.5, min_face=0, short_range=False,
                                          verify=False, recheck=False), False),
    "blazeface-full": (DetectionSettings("blazeface", 0.5, min_face=0, short_range=False,
                                         verify=False, recheck=False), False),
    "blazeface-full tiles32": (DetectionSettings("blazeface", 0.5, short_range=False, verify=False,
                                                 recheck=False), False),
    "blazeface full+short": (DetectionSettings("blazeface", 0.5, min_face=0, verify=False,
                                               recheck=False), False),
    "blazeface full+short tiles32": (DetectionSettings("blazeface", 0.5, verify=False,
                                                       recheck=False), False),
    "blazeface full+short tiles32 verified": (DetectionSettings("blazeface", 0.5, recheck=False), False),
    "blazeface full+short tiles32 verified rechecked": (DetectionSettings("blazeface", 0.5, recheck_mmod=False),
                                                        False),
    "blazeface full+short tiles32 verified rechecked +mmod": (DetectionSettings("blazeface", 0.5), False),
}
SLOW_SAMPLE = 1000
MOSAIC_SIZE = (960, 1280)  # (height, width): a phone photo
MOSAIC_WIDTHS = (20, 24, 32, 40, 48, 64)  # face widths (pixels) in the mosaics
SAMPLE_SEED = 0  # the CelebA sample's others: the same photos in every run, for every candidate
LFW_BOTTOMS = 200  # LFW photos whose bottom rows (below the chin) count as face-free
FIT_PHOTOS = 1500  # CelebA photos a box mapping is fitted on
#: An LFW face (HOG box) is about 0.42 of the 250-px photo's width.
LFW_FACE_FRACTION = 0.42
APPROX_TOLERANCE = 0.15
#: scikit-image's sample images without a person (that ship with it; no download).
SKIMAGE_FACE_FREE = ("coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry",
                     "coins", "moon", "page", "text", "colorwheel", "brick", "grass", "gravel",
                     "logo", "retina", "checkerboard", "clock", "cell")  # wild-dev README: crowd estimates are +-15%


def celeba_set(sample):
    """CelebA labels with a ``weight`` column; with ``sample``, every hat and eyewear wearer
    plus random others up to ``sample`` photos, the others weighted so that weighted recalls
    estimate those of all 8,000 photos."""
    table = pd.read_csv(DATASETS / "celeba-hbe" / "labels.csv").assign(weight=1.0)
    if sample:
        must = table[(table.hat == 1) | (table.eyewear == 1)]
        others = table.drop(must.index)
        rest = others.sample(max(sample - len(must), 0), random_state=SAMPLE_SEED)
        table = pd.concat([must, rest.assign(weight=len(others) / len(rest))]).sort_index()
    return table


def lfw_paths(limit=None):
    return sorted((DATASETS / "lfw-photos" / "images").glob("*.jpg"))[:limit]


def face_free_photos():
    """Photos with no person in them: scikit-image and scikit-learn sample images without
    people, and the bottom 60 rows of LFW photos (below the named face's chin: collars,
    lecterns, desks), each at its own size and, for the sample images, also at 1280x960."""
    import cv2
    from skimage import data
    from sklearn.datasets import load_sample_images

    images = []
    for name in SKIMAGE_FACE_FREE:
        image = getattr(data, name)()
        if image.ndim == 2:
            image = np.dstack([image] * 3)
        image = np.ascontiguousarray(image[..., :3]).astype(np.uint8)
        images.append((f"skimage:{name}", image))
    images += [(f"sklearn:{i}", img) for i, img in enumerate(load_sample_images().images)]
    images += [(f"{name}@1280x960", cv2.resize(img, (1280, 960))) for name, img in list(images)]
    for path in lfw_paths(LFW_BOTTOMS):
        images.append((f"lfw-bottom:{path.name}", load_image(path)[190:]))
    return images


def single_face_lfw(paths):
    """LFW photos in which dlib's HOG detector (doubling the photo) finds exactly one face:
    many LFW photos show other people behind the named one, who would count as extras in a
    mosaic.  An independent detector chooses them, so no candidate picks its own test."""
    settings = DetectionSettings("hog", 0.0, upsample=1)
    return [p for p in paths if len(raw_detections(load_image(p), settings=settings)[0]) == 1]


def mosaic(width, paths):
    """A 1280x960 picture tiled with LFW photos scaled so their face is ``width`` pixels
    wide, and each tile's face centre ``(x, y)``."""
    import cv2

    tile = int(round(width / LFW_FACE_FRACTION))
    rows, cols = MOSAIC_SIZE[0] // tile, MOSAIC_SIZE[1] // tile
    canvas = np.full(MOSAIC_SIZE + (3,), 128, np.uint8)
    centres = []
    for k in range(rows * cols):
        r, c = divmod(k, cols)
        photo = load_image(paths[k % len(paths)])
        canvas[r * tile:(r + 1) * tile, c * tile:(c + 1) * tile] = cv2.resize(
            photo, (tile, tile), interpolation=cv2.INTER_AREA)
        centres.append(((c + 0.5) * tile, (r + 0.5) * tile))
    return canvas, np.array(centres), tile


def contains(boxes, point):
    return bool(len(boxes)) and bool(np.any((boxes[:, 0] <= point[0]) & (point[0] <= boxes[:, 2])
                                             & (boxes[:, 1] <= point[1]) & (point[1] <= boxes[:, 3])))


def timed_detect(image, settings):
    started = time.perf_counter()
    boxes = raw_detections(image, settings=settings)[0]
    return boxes, (time.perf_counter() - started) * 1000


def celeba_figures(settings, table):
    found = np.array([len(raw_detections(load_image(DATASETS / "celeba-hbe" / "images" / f),
                                         settings=settings)[0]) > 0 for f in table.filename])
    weight = table.weight.to_numpy()
    figures = {"photos": len(table), "recall": round(float(np.average(found, weights=weight)), 4)}
    for label in ("hat", "beard", "eyewear"):
        wearers = (table[label] == 1).to_numpy()
        figures[f"{label}_wearers"] = int(wearers.sum())
        figures[f"{label}_recall"] = round(float(np.average(found[wearers], weights=weight[wearers])), 4)
    figures["missed"] = table.filename[~found].tolist()
    return figures


def lfw_figures(settings, limit=None):
    hits, times = [], []
    for path in lfw_paths(limit):
        image = load_image(path)
        boxes, ms = timed_detect(image, settings)
        hits.append(contains(boxes, (image.shape[1] / 2, image.shape[0] / 2)))
        times.append(ms)
    return {"photos": len(hits), "recall": round(float(np.mean(hits)), 4),
            "ms_250x250": round(float(np.median(times)), 1)}


def wild_figures(settings):
    table = pd.read_csv(DATASETS / "wild-dev" / "labels.csv", dtype=str, keep_default_na=False)
    counts = []
    for name in table.filename:
        counts.append(len(raw_detections(load_image(DATASETS / "wild-dev" / "images" / name),
                                         settings=settings)[0]))
    found = np.array(counts)
    n = table.n_faces.astype(int).to_numpy()
    approx = table.notes.str.startswith("approx").to_numpy()
    exact = ~approx
    return {
        "photos_with_faces": int((n > 0).sum()),
        "photos_face_found": int(((found > 0) & (n > 0)).sum()),
        "exact_faces": int(n[exact].sum()),
        "exact_faces_found": int(np.minimum(found, n)[exact].sum()),
        "extra_faces": int(np.maximum(found - n, 0)[exact].sum()),
        "approx_faces": int(n[approx].sum()),
        "approx_faces_found": int(found[approx].sum()),
        "approx_rows_within_15pct": int((np.abs(found - n) <= APPROX_TOLERANCE * n)[approx].sum()),
        "approx_rows": int(approx.sum()),
    }


def false_figures(settings, photos):
    counts = {name: len(raw_detections(image, settings=settings)[0]) for name, image in photos}
    return {"photos": len(counts), "false_faces": int(sum(counts.values())),
            "per_photo": round(sum(counts.values()) / len(counts), 4),
            "photos_with_faces": sum(v > 0 for v in counts.values()),
            "where": {k: v for k, v in counts.items() if v}}


def mosaic_figures(settings, mosaics):
    figures, times = {}, []
    for width, (canvas, centres, tile) in mosaics.items():
        boxes, ms = timed_detect(canvas, settings)
        if width == 40:
            times = [ms] + [timed_detect(canvas, settings)[1] for _ in range(2)]
        hit = [contains(boxes, c) for c in centres]
        # A box whose centre lies in no tile's central half is an extra face.
        mids = (boxes[:, :2] + boxes[:, 2:]) / 2 if len(boxes) else np.zeros((0, 2))
        extras = sum(not np.any(np.all(np.abs(centres - m) <= tile / 4, axis=1)) for m in mids)
        figures[str(width)] = {"tiles": len(centres), "found": int(sum(hit)), "extras": int(extras)}
    complete = [w for w, f in figures.items() if f["found"] == f["tiles"]]
    return {"per_width": figures,
            "smallest_width_all_found": min(map(int, complete)) if complete else None,
            "ms_1280x960": round(float(np.median(times)), 1)}


def run_candidate(settings, celeba, photos, mosaics, *, more=(), slow=False):
    started = time.perf_counter()
    result = {"settings": settings.__dict__, "celeba": celeba_figures(settings, celeba),
              "lfw": lfw_figures(settings, limit=300 if slow else None)}
    if not slow:
        result.update(wild_dev=wild_figures(settings), face_free=false_figures(settings, photos),
                      mosaic=mosaic_figures(settings, mosaics))
        if more:
            result["face_free_more"] = false_figures(settings, more)
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def box_geometry(boxes):
    """Centres ``(N, 2)`` and sides (mean of width and height) of boxes."""
    return (boxes[:, :2] + boxes[:, 2:]) / 2, (boxes[:, 2] - boxes[:, 0] + boxes[:, 3] - boxes[:, 1]) / 2


def landmarks_on(gray, box):
    import dlib

    shape = landmark_predictor()(gray, dlib.rectangle(*(int(round(v)) for v in box)))
    return np.array([(p.x, p.y) for p in shape.parts()], float)


def fit_boxes(method):
    """Fit ``method``'s box -> HOG box mapping (``HOG_BOX_FROM``) on CelebA photos where both
    find one face, and the landmark error (mean of the 68 points' distances to those fitted on
    the HOG box, over the eye distance) before and after the mapping, on the fit photos and on
    LFW photos not used for fitting."""
    hog = DetectionSettings("hog", -0.5)
    other = DetectionSettings(method, 0.5, min_face=0, short_range=False, verify=False,
                              recheck=False)  # the network alone

    def pairs(paths):
        found = []
        for path in paths:
            image = load_image(path)
            a, b = raw_detections(image, settings=hog)[0], raw_detections(image, settings=other)[0]
            if len(a) == 1 and len(b) == 1:
                found.append((to_gray(image), a[0], b[0]))
        return found

    celeba = pairs(DATASETS / "celeba-hbe" / "images" / f
                   for f in celeba_set(None).filename[:FIT_PHOTOS])
    (hc, hs), (oc, os_) = (box_geometry(np.array([p[k] for p in celeba])) for k in (1, 2))
    offset = ((hc - oc) / os_[:, None]).mean(axis=0)
    ratio = float((hs / os_).mean())
    mapping = (round(float(offset[0]), 4), round(float(offset[1]), 4), round(ratio, 4))

    def error(found, boxes_of):
        errors = []
        for gray, hog_box, box in found:
            reference = landmarks_on(gray, hog_box)
            eyes = np.linalg.norm(reference[LEFT_EYE].mean(0) - reference[RIGHT_EYE].mean(0))
            moved = landmarks_on(gray, boxes_of(box))
            errors.append(np.linalg.norm(moved - reference, axis=1).mean() / eyes)
        return round(float(np.mean(errors)), 4)

    def mapped(box):
        (cx, cy), side = box_geometry(box[None])[0][0], box_geometry(box[None])[1][0]
        cx, cy, half = cx + mapping[0] * side, cy + mapping[1] * side, mapping[2] * side / 2
        return (cx - half, cy - half, cx + half, cy + half)

    lfw = pairs(lfw_paths(300))
    return {"method": method, "mapping_dx_dy_ds": mapping, "fit_faces": len(celeba),
            "celeba_error_before": error(celeba, lambda b: b), "celeba_error_after": error(celeba, mapped),
            "lfw_faces": len(lfw), "lfw_error_before": error(lfw, lambda b: b),
            "lfw_error_after": error(lfw, mapped)}


def table_lines(results):
    head = (f"{'candidate':<30}{'CelebA':>8}{'hat':>7}{'beard':>7}{'eyewr':>7}{'LFW':>7}"
            f"{'wild ph':>9}{'exact':>9}{'extra':>6}{'false/ph':>9}{'min px':>7}"
            f"{'ms 250':>8}{'ms 1280':>8}{'more free':>10}")
    lines = [head]
    for name, r in results.items():
        c = r["celeba"]
        line = (f"{name:<30}{c['recall']:>8.2%}{c['hat_recall']:>7.1%}{c['beard_recall']:>7.1%}"
                f"{c['eyewear_recall']:>7.1%}{r['lfw']['recall']:>7.1%}")
        if "wild_dev" in r:
            w = r["wild_dev"]
            line += (f"{w['photos_face_found']:>5}/{w['photos_with_faces']:<3}"
                     f"{w['exact_faces_found'] / w['exact_faces']:>9.1%}{w['extra_faces']:>6}"
                     f"{r['face_free']['per_photo']:>9.3f}{str(r['mosaic']['smallest_width_all_found']):>7}"
                     f"{r['lfw']['ms_250x250']:>8.1f}{r['mosaic']['ms_1280x960']:>8.1f}")
            if "face_free_more" in r:  # photos with a face found
                more = r["face_free_more"]
                line += f"{more['photos_with_faces']:>6}/{more['photos']}"
        else:  # slow: CelebA sample and 300 LFW photos only
            line += f"{'-':>9}{'-':>9}{'-':>6}{'-':>9}{'-':>7}{r['lfw']['ms_250x250']:>8.1f}{'-':>8}"
        lines.append(line)
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=list(CANDIDATES), help="candidates to run")
    parser.add_argument("--sample", type=int, default=0,
                        help="CelebA photos per candidate: all hat and eyewear wearers plus random "
                             "others, weighted to estimate all 8,000 (0: all 8,000 photos)")
    parser.add_argument("--json", type=Path, default=RESULTS)
    parser.add_argument("--face-free", type=Path, metavar="FOLDER",
                        help="also count false faces on the JPEGs of FOLDER (face_free_debian.py)")
    parser.add_argument("--fit-boxes", metavar="METHOD",
                        help="fit METHOD's box mapping to HOG boxes and report the landmark error")
    args = parser.parse_args(argv)
    if args.fit_boxes:
        print(json.dumps(fit_boxes(args.fit_boxes)))
        return 0
    results = json.loads(args.json.read_text())["candidates"] if args.json.exists() else {}
    photos = face_free_photos()
    more = [(p.name, load_image(p)) for p in sorted(args.face_free.glob("*.jpg"))] if args.face_free else []
    paths = single_face_lfw(lfw_paths())
    mosaics = {w: mosaic(w, paths) for w in MOSAIC_WIDTHS}
    for name in args.only or CANDIDATES:
        settings, slow = CANDIDATES[name]
        celeba = celeba_set(min(args.sample or SLOW_SAMPLE, SLOW_SAMPLE) if slow else args.sample)
        results[name] = run_candidate(settings, celeba, photos, mosaics, more=more, slow=slow)
        print(table_lines({name: results[name]})[-1], flush=True)
        args.json.write_text(json.dumps({"candidates": results}, indent=1) + "\n")
    print("\n".join(table_lines(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
