"""Recommendations: per-face scores and what the region crops show, to ranked products."""
import csv
from pathlib import Path

import cv2
import numpy as np

from features.dataset import LABELS

CATALOG = Path(__file__).resolve().parent.parent / "data" / "products.csv"
CATALOG_COLUMNS = ("product_id", "category", "name", "price")


class CatalogError(ValueError):
    """A product catalog that cannot be used; the message names the file and row."""


def load_catalog(path=CATALOG):
    """Read the product catalog: ``product_id``, ``category`` (hat, beard or eyewear), ``name``,
    ``price`` and optional attributes ``style``, ``colour``, ``tone``.

    Returns
    -------
    list of dict
        One dict of strings per product (``price`` as float), in file order.
    """
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
            columns = set(rows[0]) if rows else set()
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CatalogError(f"{path}: cannot read the catalog ({exc})") from None
    missing = set(CATALOG_COLUMNS) - columns
    if missing:
        raise CatalogError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
    for line, row in enumerate(rows, start=2):
        if row["category"] not in LABELS:
            raise CatalogError(f"{path}, line {line}: category {row['category']!r} is not one of {LABELS}")
        try:
            row["price"] = float(row["price"])
        except ValueError:
            raise CatalogError(f"{path}, line {line}: price {row['price']!r} is not a number") from None
        for column in ("style", "colour", "tone"):
            row[column] = row.get(column) or ""
    return rows


def colour_name(rgb):
    """A plain colour word for an RGB triple (what a shopper would call it)."""
    hue, sat, val = cv2.cvtColor(np.uint8([[rgb]]), cv2.COLOR_RGB2HSV)[0, 0].astype(int)
    if val < 60:
        return "black"
    if sat < 45:
        return "white" if val > 190 else "grey"
    if hue < 8 or hue >= 170:
        return "red"
    if hue < 22:
        return "brown" if val < 170 else "beige" if sat < 110 else "orange"
    if hue < 35:
        return "yellow"
    if hue < 85:
        return "green"
    if hue < 130:
        return "blue"
    return "purple"


def tone(rgb):
    """"dark" or "light" by luminance."""
    return "dark" if cv2.cvtColor(np.uint8([[rgb]]), cv2.COLOR_RGB2GRAY)[0, 0] < 110 else "light"


def median_colour(patch):
    """Median RGB of the non-padding pixels of a crop (padding is pure black)."""
    pixels = patch.reshape(-1, 3)
    inside = pixels[pixels.max(axis=1) > 0]
    return np.median(inside if len(inside) else pixels, axis=0).astype(np.uint8)


def read_attributes(regions):
    """What the crops show beyond the labels: hat colour, lens darkness, beard length.

    Parameters
    ----------
    regions : dict of str to ndarray
        ``forehead``, ``eye_band`` and ``jaw`` crops of one face
        (:func:`features.regions.extract_regions`).
    """
    forehead, eyes, jaw = regions["forehead"], regions["eye_band"], regions["jaw"]
    h, w = forehead.shape[:2]
    # just above the brows, where a cap's front or a hat's band sits (higher up is often sky)
    hat = median_colour(forehead[h // 2:7 * h // 8, w // 4:3 * w // 4])
    h, w = eyes.shape[:2]
    gray = cv2.cvtColor(eyes, cv2.COLOR_RGB2GRAY).astype(float)
    lenses = np.r_[gray[h // 3:, w // 6:2 * w // 5].ravel(), gray[h // 3:, 3 * w // 5:5 * w // 6].ravel()]
    bridge = gray[h // 3:, 9 * w // 20:11 * w // 20]
    dark_lenses = np.median(lenses) < 0.6 * max(np.median(bridge), 1.0)
    h, w = jaw.shape[:2]
    jaw_gray = cv2.cvtColor(jaw, cv2.COLOR_RGB2GRAY).astype(float)
    chin = np.median(jaw_gray[2 * h // 3:, w // 3:2 * w // 3])
    cheeks = np.median(np.r_[jaw_gray[:h // 3, :w // 6].ravel(), jaw_gray[:h // 3, 5 * w // 6:].ravel()])
    return {
        "hat_colour": colour_name(hat), "hat_tone": tone(hat),
        "eyewear_style": "sunglasses" if dark_lenses else "optical",
        "beard_style": "long" if chin < 0.7 * max(cheeks, 1.0) else "short",
    }


#: How sure a sentence sounds for a calibrated probability (highest band first): no
#: sentence claims more than its number, and none says "wears" under 0.5.
HEDGES = ((0.8, "very likely"), (0.5, "likely"))
#: Under the lowest band: the modal verb with the bare form.
UNSURE = "may"


def what_shows(label, attributes):
    """What a label means for this face, as (third-person verb phrase, bare verb phrase)."""
    if label == "hat":
        return f"wears a {attributes['hat_colour']} hat", f"wear a {attributes['hat_colour']} hat"
    if label == "eyewear":
        thing = "dark sunglasses" if attributes["eyewear_style"] == "sunglasses" else "glasses"
        return f"wears {thing}", f"wear {thing}"
    thing = "a full beard" if attributes["beard_style"] == "long" else "stubble or a short beard"
    return f"has {thing}", f"have {thing}"


def describe(label, probability, attributes):
    """The human half of a reason, as sure as the probability: "likely wears a red hat (0.72)"."""
    third, bare = what_shows(label, attributes)
    hedge = next((f"{word} {third}" for floor, word in HEDGES if probability >= floor), f"{UNSURE} {bare}")
    return f"{hedge} ({probability:.2f})"


def product_fit(product, attributes):
    """How well one product suits what the face shows (higher is better)."""
    category = product["category"]
    if category == "hat":
        return 2.0 * (product["colour"] == attributes["hat_colour"]) + (product["tone"] == attributes["hat_tone"])
    if category == "eyewear":
        return 2.0 * (product["style"] == attributes["eyewear_style"]) + 0.5 * (product["style"] == "any")
    return 2.0 * (product["style"] == attributes["beard_style"]) + 0.5 * (product["style"] == "any")


def recommend_products(scores, labels, attributes, catalog, *, per_category=2):
    """Products for one face: its labels strongest first, the best-fitting products of each.

    Parameters
    ----------
    scores : dict of str to float
        Calibrated probability per label.
    labels : sequence of str
        Labels that passed the model's thresholds; only their categories are recommended.
    attributes : dict
        From :func:`read_attributes`.
    catalog : list of dict
        From :func:`load_catalog`.
    per_category : int

    Returns
    -------
    list of dict
        ``product_id``, ``category``, ``name``, ``price``, ``score`` (the label's probability)
        and ``reason``.
    """
    chosen = []
    for label in sorted(labels, key=lambda name: -scores[name]):
        products = [p for p in catalog if p["category"] == label]
        ranked = sorted(products, key=lambda p: (-product_fit(p, attributes), p["price"]))
        for product in ranked[:per_category]:
            chosen.append({"product_id": product["product_id"], "category": label,
                           "name": product["name"], "price": product["price"],
                           "score": round(float(scores[label]), 4),
                           "reason": f"{describe(label, scores[label], attributes)} → {product['name']}"})
    return chosen


def headline(labels, scores, quality=None):
    """The one-line answer for a face: its strongest label, with how sure we are, or why we
    do not judge it."""
    if quality is not None and quality["status"] != "ok":
        return f"Not judged ({'; '.join(quality['reasons'])}): no product for this person"
    if not labels:
        return "No hat, beard or eyewear sure enough: no product for this person"
    strongest = max(labels, key=lambda name: scores[name])
    hedge = next((word for floor, word in HEDGES if scores[strongest] >= floor), "possible")
    return f"We recommend {strongest} products to this person ({hedge} {strongest}, {scores[strongest]:.2f})"


def profile(results, catalog, *, per_category=2):
    """Recommendations for a whole feed (one account): label shares over photos and faces.

    Parameters
    ----------
    results : list of dict
        Per-photo results as :mod:`recommend` builds them (``faces`` with ``scores``,
        ``labels`` and ``attributes``).
    """
    photos = [r for r in results if r["error"] is None]
    faces = [f for r in photos for f in r["faces"]]
    summary = {}
    for label in LABELS:
        seen = [f for f in faces if label in f["labels"]]
        summary[label] = {
            "photo_share": float(np.mean([any(label in f["labels"] for f in r["faces"]) for r in photos]))
            if photos else 0.0,
            "face_share": len(seen) / len(faces) if faces else 0.0,
            "mean_probability": float(np.mean([f["scores"][label] for f in faces])) if faces else 0.0,
        }
    present = [label for label in LABELS if summary[label]["photo_share"] > 0]
    ordered = sorted(present, key=lambda name: (-summary[name]["photo_share"], -summary[name]["mean_probability"]))
    products = []
    for label in ordered:
        best = max((f for f in faces if label in f["labels"]), key=lambda f: f["scores"][label])
        products += recommend_products({label: summary[label]["photo_share"]}, [label],
                                       best["attributes"], catalog, per_category=per_category)
    for product in products:
        share = summary[product["category"]]["photo_share"]
        product["reason"] = (f"seen in {share:.0%} of {len(photos)} photos; "
                             + product["reason"].split(" (", 1)[0] + " → " + product["name"])
    return {"profile": {"photos": len(photos), "failed": len(results) - len(photos), "faces": len(faces),
                        "labels": summary,
                        "headline": f"We recommend {ordered[0]} products to this account" if ordered
                        else "No hat, beard or eyewear seen in this feed: no product",
                        "recommendations": products}}
