"""Recommendations: per-face scores and types, to ranked products."""
import csv
import math
import re
import unicodedata
from pathlib import Path

import numpy as np

from features.files import missing_columns
from features.labels import LABELS, TYPE_VALUES, judged, likeliest, seen_types, type_text
from features.numbers import fixed

CATALOG = Path(__file__).resolve().parents[2] / "data" / "products.csv"
CATALOG_COLUMNS = ("product_id", "category", "name", "price")


class CatalogError(ValueError):
    """A product catalog that cannot be used; the message names the file and row."""


#: The catalog column that holds each category's type.
TYPE_COLUMNS = {"eyewear": "eyewear_type", "beard": "beard_style", "hat": "hat_type"}
#: How a type reads in a reason ("dark sunglasses, 0.93 -> ...").
TYPE_PHRASES = {"clear": "clear glasses", "dark": "dark sunglasses", "cap": "cap",
                "brimmed": "brimmed hat", "beanie": "beanie", "other": "headwear",
                "stubble": "stubble", "moustache": "moustache", "goatee": "goatee",
                "full_beard": "full beard"}
#: A hat in the face's colour moves up by this much of type probability: a colour match
#: reorders products of one type, and outweighs a type only when the types are within 0.1.
#: (At 0.2 a cap at 0.54 ranked a grey hood, "other" at 0.43, before every cap not grey: the
#: read names the labelled colour of 65% of hats, weaker evidence than such a gap.)
COLOUR_WEIGHT = 0.1
#: The type value of a product for every type of its category (beard care for any style).
ANY_TYPE = "any"
#: Such a product fits as well as a type of probability 0.5: it goes before the products of
#: a type that is not more likely than not (on 400 LFW photos, 56% of the faces decided
#: beard have no style at 0.5 or more, given the beard), and after those of a likely type.
ANY_TYPE_FIT = 0.5
#: How a product for any type reads in a reason ("any style (likeliest goatee, 0.27) -> ...").
ANY_TYPE_PHRASES = {"eyewear": "any glasses", "beard": "any style", "hat": "any headwear"}


def read_rows(path):
    """The catalog's header and its rows, each with the line it ends on (blank lines and a
    quoted name over two lines move the line numbers on)."""
    try:  # utf-8-sig: a byte-order mark (Excel's "CSV UTF-8") is not part of the first column's name
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            rows = [(reader.line_num, row) for row in reader]
            return reader.fieldnames or [], rows
    except OSError as exc:  # its strerror: str(exc) names the file again
        raise CatalogError(f"{path}: cannot read the catalog ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise CatalogError(f"{path}: cannot read the catalog ({exc})") from None


def checked_product(row, where):
    """One catalog row (``where``: its file and line, for the error) as a product: checked, its
    price a float, its absent optional columns ``""``, its colour in lower case."""
    short = [column for column in CATALOG_COLUMNS if row[column] is None]  # csv gives None past a row's end
    if short:
        raise CatalogError(f"{where}: no {', '.join(short)} (the row has fewer fields than the header)")
    product = {column: value for column, value in row.items() if column is not None}
    extra = row.get(None, [])  # csv keeps the fields past the header's under None
    if any(field.strip() for field in extra):  # empty ones are a spreadsheet's trailing comma
        raise CatalogError(f"{where}: {len(extra)} field(s) more than the header (a comma in a value "
                           "that is not in quotes?)")
    if empty := [column for column in ("product_id", "name") if not product[column].strip()]:
        raise CatalogError(f"{where}: no {' or '.join(empty)} (empty)")
    # a spreadsheet cell over two lines is one name: printed as it was, it split the text
    # output's record in two
    product["name"] = " ".join(product["name"].split())
    for column in CATALOG_COLUMNS:
        if any(unicodedata.category(c) == "Cc" for c in product[column]):
            raise CatalogError(f"{where}: {column} {product[column]!r} has a control character")
    if "," in product["product_id"]:  # the Parquet and CSV rows list a face's products by id, comma-separated
        raise CatalogError(f"{where}: product_id {product['product_id']!r} has a comma (the outputs list ids "
                           "with commas)")
    category = product["category"]
    if category not in LABELS:
        raise CatalogError(f"{where}: category {category!r} is not one of {LABELS}")
    # plain decimals: Python's float() also reads 1e300, 1_000, inf and nan, which no price is;
    # and finite: 309 digits are inf too, invalid JSON in every answer
    if (not re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)", product["price"].strip())
            or not 0 <= float(product["price"]) < math.inf):
        raise CatalogError(f"{where}: price {product['price']!r} is not a price (a decimal number, 0 or more, "
                           "such as 19.90)")
    product["price"] = float(product["price"]) + 0.0  # -0 is 0, not "$-0.00"
    for column in (*TYPE_COLUMNS.values(), "colour"):
        product[column] = product.get(column) or ""
    product["colour"] = product["colour"].strip().lower()  # the measured colour's words are lower case: "White" is white
    value = product[TYPE_COLUMNS[category]]
    if value not in (*TYPE_VALUES[category], ANY_TYPE):
        raise CatalogError(f"{where}: {TYPE_COLUMNS[category]} {value!r} is not one of "
                           f"{(*TYPE_VALUES[category], ANY_TYPE)}")
    return product


def load_catalog(path=CATALOG):
    """Read the product catalog: ``product_id``, ``category`` (hat, beard or eyewear), ``name``,
    ``price``, the category's type column (``eyewear_type``, ``beard_style``, ``hat_type``) and
    an optional ``colour``.

    Returns
    -------
    list of dict
        One dict of strings per product (``price`` as float), in file order; every
        category has a product.
    """
    columns, rows = read_rows(path)
    if missing := missing_columns(path, columns, CATALOG_COLUMNS):
        raise CatalogError(missing)
    if not rows:
        raise CatalogError(f"{path}: no products (a header and no rows)")
    products, seen = [], {}
    for line, row in rows:
        where = f"{path}, line {line}"
        product = checked_product(row, where)
        if product["product_id"] in seen:  # the web page and the Parquet rows name products by id
            raise CatalogError(f"{where}: product_id {product['product_id']!r} is already on line "
                               f"{seen[product['product_id']]}")
        seen[product["product_id"]] = line
        products.append(product)
    lacking = [label for label in LABELS if not any(product["category"] == label for product in products)]
    if lacking:  # a face decided so would be told "We recommend hat products" and shown none
        raise CatalogError(f"{path}: no {' or '.join(lacking)} product (every category needs one: "
                           f"{', '.join(LABELS)})")
    return products


#: Products per category a face (or a profile) gets, unless the caller asks for another number.
PER_CATEGORY = 2


#: How sure a sentence sounds for a calibrated probability (highest band first): no
#: sentence claims more than its number, and none says "wears" under 0.5.
HEDGES = ((0.8, "very likely"), (0.5, "likely"))
#: Under the lowest band: the modal verb with the bare form.
UNSURE = "may"


#: What each label says of a face: (third-person verb phrase, bare verb phrase).
LABEL_PHRASES = {"hat": ("wears a hat", "wear a hat"), "eyewear": ("wears glasses", "wear glasses"),
                 "beard": ("has facial hair", "have facial hair")}


def hedge(probability, *, otherwise):
    """The word of the :data:`HEDGES` band ``probability`` falls in as it is printed, to two
    decimals (0.497 shows as 0.50 and reads "likely"), or ``otherwise`` under them all."""
    shown = float(fixed(probability, 2))
    return next((word for floor, word in HEDGES if shown >= floor), otherwise)


def describe(label, probability):
    """A label as sure as its probability: "likely wears a hat (0.72)"."""
    third, bare = LABEL_PHRASES[label]
    word = hedge(probability, otherwise=None)
    return f"{f'{word} {third}' if word else f'{UNSURE} {bare}'} ({fixed(probability, 2)})"


def product_fit(product, types):
    """How well one product suits the face: the probability of the product's type (given the
    category's label; :data:`ANY_TYPE_FIT` for a product of any type), plus
    :data:`COLOUR_WEIGHT` for a hat in the face's hat colour."""
    category = product["category"]
    value = product[TYPE_COLUMNS[category]]
    fit = ANY_TYPE_FIT if value == ANY_TYPE else types.get(category, {}).get(value, 0.0)
    if category == "hat" and product["colour"] and product["colour"] == types.get("hat_colour"):
        fit += COLOUR_WEIGHT
    return fit


def reason(lead, label, product, types, *, averaged=False):
    """Why a product: ``lead`` (how sure the label is, or how often a feed shows it), then the
    product's type with the face's probability of it ("likely wears glasses (0.72); dark
    sunglasses, 0.93 → ..."), or with a feed's mean probability of it (``averaged``: "dark
    sunglasses, 0.61 on average"); a product of any type names the likeliest type ("any
    style (likeliest goatee, 0.27) → ...")."""
    value = product[TYPE_COLUMNS[label]]
    on_average = " on average" * averaged
    if value == ANY_TYPE and types.get(label):
        top = likeliest(types[label])
        return (f"{lead}; {ANY_TYPE_PHRASES[label]} (likeliest {TYPE_PHRASES[top]}, "
                f"{type_text(label, types[label][top])}{on_average}) → {product['name']}")
    if value not in types.get(label, {}):
        return f"{lead} → {product['name']}"
    colour = types.get("hat_colour") if label == "hat" else None
    what = f"{colour} {TYPE_PHRASES[value]}" if colour and colour == product["colour"] else TYPE_PHRASES[value]
    return f"{lead}; {what}, {type_text(label, types[label][value])}{on_average} → {product['name']}"


def recommend_products(scores, labels, types, catalog, *, per_category=PER_CATEGORY, leads=None, averaged=False):
    """Products for one face: its labels strongest first, the best-fitting products of each.

    Parameters
    ----------
    scores : dict of str to float
        Calibrated probability per label.
    labels : sequence of str
        Labels that passed the model's thresholds; only their categories are recommended.
    types : dict
        The face's ``types`` (:meth:`features.model.types.TypeClassifier.face_types`); ``{}`` ranks
        the products for any type first (:data:`ANY_TYPE_FIT`), then by price.
    catalog : list of dict
        From :func:`load_catalog`.
    per_category : int
    leads : dict of str to str, optional
        The first words of each label's reasons (default: the label as sure as its
        probability, :func:`describe`).
    averaged : bool
        ``types`` are a feed's mean probabilities (:func:`account_types`): the reasons say so.

    Returns
    -------
    list of dict
        ``product_id``, ``category``, ``name``, ``price``, ``score`` (the label's probability)
        and ``reason``.
    """
    chosen = []
    for label in sorted(labels, key=lambda name: -scores[name]):
        products = [p for p in catalog if p["category"] == label]
        ranked = sorted(products, key=lambda p: (-product_fit(p, types), p["price"]))
        for product in ranked[:per_category]:
            chosen.append({"product_id": product["product_id"], "category": label,
                           "name": product["name"], "price": product["price"],
                           "score": round(float(scores[label]), 4),
                           "reason": reason((leads or {}).get(label) or describe(label, scores[label]),
                                            label, product, types, averaged=averaged)})
    return chosen


def headline(scores, labels, quality):
    """The one-line answer for a face: every label it has, strongest first (the order of its
    products), each with how sure we are, or why we do not judge it."""
    if not judged(quality):
        return f"Not judged ({'; '.join(quality['reasons'])}): no product for this person"
    if not labels:
        return "No hat, beard or eyewear sure enough: no product for this person"
    ordered = sorted(labels, key=lambda name: -scores[name])
    sure = "; ".join(f"{hedge(scores[label], otherwise='possible')} {label}, {fixed(scores[label], 2)}"
                     for label in ordered)
    return f"We recommend {listed(ordered)} products to this person ({sure})"


def listed(names):
    """``hat``, ``beard and hat``, ``beard, eyewear and hat``."""
    return " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)


def account_types(faces):
    """The types of a feed: per family, the mean probability of each type over the faces
    whose parent label is on (the ranking's input), and the share of those faces where the
    type is seen (:func:`~features.labels.seen_types`; hat colour: the named colour).

    Returns
    -------
    mean : dict
        Like one face's ``types`` (``hat_colour``: the commonest colour, none on a tie).
    shares : dict
        Family -> type -> share of the faces with the family.
    """
    mean, shares = {}, {}
    for family in TYPE_VALUES:
        rows = [f["types"][family] for f in faces if family in f.get("types", {})]
        if not rows:
            continue
        names = sorted({k for row in rows for k in row})
        mean[family] = {k: round(float(np.mean([row.get(k, 0.0) for row in rows])), 4) for k in names}
        seen = [set(seen_types(family, row)) for row in rows]
        # exact, as the labels' shares: to 4 decimals, 1 type in 20,001 faces read 0.0
        shares[family] = {k: float(np.mean([k in s for s in seen])) for k in names}
    hats = [f["types"] for f in faces if {"hat", "hat_colour"} & set(f.get("types", {}))]
    colours = [types["hat_colour"] for types in hats if "hat_colour" in types]
    if colours:
        names, counts = np.unique(colours, return_counts=True)
        if np.sum(counts == counts.max()) == 1:  # a tie went to the first name: "black brimmed hat" of none
            mean["hat_colour"] = str(names[np.argmax(counts)])
        # of the hat wearers, as every share: a black-and-white photo's hat has no colour
        shares["hat_colour"] = {str(k): int(c) / len(hats) for k, c in zip(names, counts)}
    return mean, shares


def profile(results, catalog, *, per_category=PER_CATEGORY, not_analysed=0):
    """Recommendations for a whole feed (one account): label shares over the photos analysed
    and over the faces judged, type shares among the faces with each label.

    A face not judged (too small, blurred, turned, cut: ``quality.status`` not ``"ok"``) has
    no label and a score not to be trusted: counted in the faces' shares and means, a third
    of wild-dev's faces took beard from 26% of faces to 17%.

    Parameters
    ----------
    results : list of dict
        Per-photo results as :func:`features.app.analysis.analyse_photo` builds them (``faces`` with ``scores``,
        ``labels``, ``types`` and ``quality``).
    not_analysed : int
        Photos of the feed never looked at (a server stopping, the page's Stop, an answer cut
        short): counted apart, neither analysed nor failed, as nothing was wrong with them.
    """
    photos = [r for r in results if r["error"] is None]
    faces = [f for r in photos for f in r["faces"]]
    judged_faces = [f for f in faces if judged(f["quality"])]
    summary, photos_with = {}, {}
    for label in LABELS:
        seen = [f for f in judged_faces if label in f["labels"]]
        # of the faces judged, as every share (records sent to /api/summary may label a face
        # not judged: it made a hat account "hat in 1 of 1 photo" of no face judged)
        photos_with[label] = sum(any(label in f["labels"] for f in r["faces"] if judged(f["quality"]))
                                 for r in photos)
        summary[label] = {  # None, not 0.0, for a share or mean of nothing (no photo, no face judged)
            "photo_share": photos_with[label] / len(photos) if photos else None,
            "face_share": len(seen) / len(judged_faces) if judged_faces else None,
            # to 4 decimals, as the scores it averages and the types' means (it read 0.9947999999999999)
            "mean_probability": round(float(np.mean([f["scores"][label] for f in judged_faces])), 4)
            if judged_faces else None,
        }
    present = [label for label in LABELS if photos_with[label]]
    # no mean without a face judged (records sent to /api/summary may label a face not judged)
    ordered = sorted(present, key=lambda name: (-summary[name]["photo_share"],
                                                -(summary[name]["mean_probability"] or 0)))
    types, shares = account_types(judged_faces)
    products = recommend_products({label: summary[label]["photo_share"] for label in ordered}, ordered,
                                  types, catalog, per_category=per_category,
                                  # counted: as a share, 1 photo of 251 read "seen in 0%"
                                  leads={label: f"seen in {photos_with[label]} of {counted(len(photos), 'photo')}"
                                         for label in ordered}, averaged=True)
    return {"profile": {"photos": len(photos), "failed": len(results) - len(photos), "not_analysed": not_analysed,
                        "faces": len(faces),
                        "faces_judged": len(judged_faces), "labels": summary, "types": shares,
                        "headline": account_headline(ordered, photos_with, photos, faces, judged_faces,
                                                     not_analysed=not_analysed),
                        "recommendations": products}}


def counted(number, noun):
    """``1 photo``, ``2 photos``."""
    return f"{number} {noun}{'s' * (number != 1)}"


def account_headline(ordered, photos_with, photos, faces, judged_faces, *, not_analysed=0):
    """The profile's one line: every label of ``ordered`` (the categories of its products, in
    their order) with the photos it was seen in, else why there is no product (no photo could
    be read, or none was looked at, no face found, none judged, or no label seen)."""
    if ordered:  # it named the first label alone, over products of all three
        first, *others = ordered
        seen = [f"{first} in {photos_with[first]} of {counted(len(photos), 'photo')}",
                *(f"{label} in {photos_with[label]}" for label in others)]
        return f"We recommend {listed(ordered)} products to this account ({'; '.join(seen)})"
    if not photos and not_analysed:  # nothing wrong with them: a stop came first
        return f"No photo of this feed was analysed ({not_analysed} not analysed): no product"
    if not photos:
        return "No photo of this feed could be analysed: no product"
    if not faces:
        return "No face found in this feed: no product"
    if not judged_faces:  # it read "No hat, beard or eyewear seen", of faces no one looked at
        return "No face of this feed could be judged (too small, blurred, turned or cut): no product"
    return "No hat, beard or eyewear seen in this feed: no product"
