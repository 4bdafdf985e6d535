"""Products from scores and types."""
import codecs
import re

import numpy as np
import pytest

from features.app.text import share_text
from features.labels import TYPE_VALUES, seen_types
from features.products.recommendations import (ANY_TYPE, CATALOG, TYPE_COLUMNS, CatalogError, describe,
                                                headline, load_catalog, profile, recommend_products)
from features.vision.colours import colour_name, hat_colour
from features.vision.landmarks import BROWS, CHIN, JAWLINE
from features.vision.faces import detect_faces

#: A judged face's quality record: given labels and products.
JUDGED = {"status": "ok", "failed": [], "reasons": []}


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def test_shipped_catalog_has_four_products_per_type(catalog):
    for category, column in TYPE_COLUMNS.items():
        for value in TYPE_VALUES[category]:
            assert sum(p["category"] == category and p[column] == value for p in catalog) >= 4, value
    assert sum(p["category"] == "beard" and p["beard_style"] == ANY_TYPE for p in catalog) >= 4
    assert all(isinstance(p["price"], float) for p in catalog)
    assert {p["colour"] for p in catalog if p["category"] == "hat"} >= {"black", "navy", "white", "grey"}


@pytest.mark.parametrize("text, message", [
    ("product_id,category,name\nA,hat,Cap\n", "missing column.*price"),
    # a spreadsheet's export where the comma is the decimal mark: every column was "missing"
    ("product_id\tcategory\tname\tprice\nA\that\tCap\t9\n",
     "missing column.*: its columns are separated by tabs; save it with commas$"),
    ("product_id,category,name,price\nA,shoes,Boot,9\n", "line 2: category 'shoes'"),
    ("product_id,category,name,price,hat_type\nA,hat,Cap,cheap,cap\n", "line 2: price 'cheap'"),
    ("product_id,category,name,price,hat_type\nA,hat,Cap,9,bowler\n", "line 2: hat_type 'bowler'.*'any'"),
    ("product_id,category,name,price\nA,eyewear,Frames,9\n", "line 2: eyewear_type ''"),
    ("product_id,category,name,price,hat_type\nA,hat,Cap,-5,cap\n", "line 2: price '-5' is not a price"),
    ("product_id,category,name,price,hat_type\nA,hat,Cap,inf,cap\n", "line 2: price 'inf' is not a price"),
    ("product_id,category,name,price,hat_type\nA,hat,Cap,1e400,cap\n", "line 2: price '1e400' is not a price"),
    # Python's float syntax, which no spreadsheet writes for a price: 1e300 was a price
    ("product_id,category,name,price,hat_type\nA,hat,Cap,1e300,cap\n", "line 2: price '1e300' is not a price"),
    ("product_id,category,name,price,hat_type\nA,hat,Cap,1_000,cap\n", "line 2: price '1_000' is not a price"),
    ("product_id,category,name,price,hat_type\nA,hat,Cap,nan,cap\n", "line 2: price 'nan' is not a price"),
    ("product_id,category,name,price,hat_type\nA,hat,Cap," + "9" * 309 + ",cap\n", "line 2: price '9999.* is not a price"),
    ("product_id,category,name,price,hat_type\nA,hat,Cap,9,cap\nA,hat,Hat,9,brimmed\n",
     "line 3: product_id 'A' is already on line 2"),
    ("product_id,category,name,price,hat_type\nA,hat,Cap,9,cap\n\nA,hat,Hat,9,brimmed\n",
     "line 4: product_id 'A' is already on line 2"),  # the blank line counts
    ("product_id,category,name,price,hat_type\nA,hat,Cap,9,cap,white\n",
     "line 2: 1 field\\(s\\) more than the header \\(a comma in a value that is not in quotes\\?\\)"),
    ("product_id,category,name,price,hat_type\n ,hat,Cap,9,cap\n", "line 2: no product_id \\(empty\\)"),
    ("product_id,category,name,price,hat_type\nA,hat,,9,cap\n", "line 2: no name \\(empty\\)"),
    ('product_id,category,name,price,hat_type\n"A,1",hat,Cap,9,cap\n', "line 2: product_id 'A,1' has a comma"),
    ("product_id,category,name,price,hat_type\nA,hat,Cap\x1b[31m,9,cap\n",
     "line 2: name 'Cap\\\\x1b\\[31m' has a control character"),  # a terminal acts on it
    ("product_id,category,name,price,hat_type\n", "no products"),
    ("product_id,category,name,price,hat_type\nA,hat,Cap,9,cap\n", "no beard or eyewear product"),
])
def test_bad_catalogs_name_the_problem(tmp_path, text, message):
    path = tmp_path / "products.csv"
    path.write_text(text)
    with pytest.raises(CatalogError, match=message):
        load_catalog(path)


def test_a_short_row_names_its_line_and_what_is_missing(tmp_path):
    path = tmp_path / "products.csv"
    path.write_text(CATALOG.read_text(encoding="utf-8") + "HAT-999,hat\n", encoding="utf-8")
    line = len(path.read_text(encoding="utf-8").splitlines())
    with pytest.raises(CatalogError, match=rf"^{re.escape(str(path))}, line {line}: no name, price \(the row has"):
        load_catalog(path)


def test_a_name_over_two_lines_of_a_cell_is_one_line(tmp_path):
    """A spreadsheet cell with a line break: printed as it was, the name split the text
    output's record in two."""
    path = tmp_path / "products.csv"
    path.write_text('product_id,category,name,price,hat_type,beard_style,eyewear_type\n'
                    'H,hat,"White trucker\r\ncap ",9,cap,,\nB,beard,Oil,5,,any,\nE,eyewear,Frames,9,,,clear\n')
    assert load_catalog(path)[0]["name"] == "White trucker cap"


def test_a_price_of_minus_zero_is_zero_and_a_colour_is_read_in_lower_case(tmp_path):
    """And an empty field past the header (a spreadsheet's trailing comma) is let go."""
    path = tmp_path / "products.csv"
    path.write_text("product_id,category,name,price,hat_type,colour,beard_style,eyewear_type\n"
                    "H,hat,Cap,-0,cap, White ,,,\nB,beard,Oil,5,,,any,\nE,eyewear,Frames,9,,,,clear\n")
    hat = load_catalog(path)[0]
    assert (str(hat["price"]), hat["colour"]) == ("0.0", "white")
    assert recommend_products({"hat": 0.9}, ["hat"], {"hat": {"cap": 1.0}, "hat_colour": "white"}, [hat],
                              per_category=1)[0]["reason"].endswith("; white cap, 1.00 → Cap")


def test_a_catalog_saved_with_a_byte_order_mark_reads_as_without(tmp_path, catalog):
    path = tmp_path / "products.csv"
    path.write_text(CATALOG.read_text(encoding="utf-8"), encoding="utf-8-sig")
    assert path.read_bytes().startswith(codecs.BOM_UTF8)
    assert load_catalog(path) == catalog


@pytest.mark.parametrize("rgb, name", [((10, 10, 10), "black"), ((250, 250, 250), "white"),
                                       ((128, 128, 128), "grey"), ((200, 20, 20), "red"),
                                       ((20, 40, 200), "blue"), ((30, 160, 40), "green"),
                                       ((20, 30, 90), "navy")])
def test_colour_names(rgb, name):
    assert colour_name(np.array(rgb, np.uint8)) == name


def test_only_the_faces_categories_strongest_first(catalog):
    scores = {"hat": 0.9, "beard": 0.97, "eyewear": 0.2}
    types = {"hat": {"beanie": 0.7, "cap": 0.2, "brimmed": 0.06, "other": 0.04}, "hat_colour": "navy",
             "beard": {"goatee": 0.8, "moustache": 0.6, "stubble": 0.1, "full_beard": 0.05},
             "eyewear": {"dark": 0.93, "clear": 0.07}}
    products = recommend_products(scores, ["hat", "beard"], types, catalog, per_category=2)
    assert [p["category"] for p in products] == ["beard", "beard", "hat", "hat"]
    assert products[2]["product_id"] == "HAT-011"  # the navy beanie for a navy beanie
    assert products[2]["reason"] == "very likely wears a hat (0.90); navy beanie, 0.70 → Navy wool beanie"
    assert products[3]["reason"] == "very likely wears a hat (0.90); beanie, 0.70 → Black knit beanie"
    assert recommend_products(scores, [], types, catalog) == []
    assert headline(scores, ["hat", "beard"], JUDGED) == ("We recommend beard and hat products to this person "
                                                  "(very likely beard, 0.97; very likely hat, 0.90)")
    assert headline(scores, ["hat"], JUDGED) == "We recommend hat products to this person (very likely hat, 0.90)"
    assert headline(scores, ["eyewear", "hat", "beard"], JUDGED) == (
        "We recommend beard, hat and eyewear products to this person "
        "(very likely beard, 0.97; very likely hat, 0.90; possible eyewear, 0.20)")


@pytest.mark.parametrize("probability, words", [
    (0.1, "may wear a hat (0.10)"), (0.49, "may wear a hat (0.49)"),
    (0.5, "likely wears a hat (0.50)"), (0.72, "likely wears a hat (0.72)"),
    (0.93, "very likely wears a hat (0.93)"), (0.4949, "may wear a hat (0.49)"),
    (0.497, "likely wears a hat (0.50)"), (0.7951, "very likely wears a hat (0.80)")])
def test_words_follow_the_number(probability, words):
    """No sentence says "wears" under 0.5 as printed; the hedge grows with the calibrated
    probability, and at a band's edge it reads the number shown (0.497 is 0.50: likely)."""
    assert describe("hat", probability) == words
    shown = float(words[-5:-1])
    assert describe("beard", probability).startswith("may have" if shown < 0.5 else
                                                     ("very likely has", "likely has")[shown < 0.8])


def test_headline_words_follow_the_number_shown():
    assert headline({"beard": 0.497}, ["beard"], JUDGED).endswith("(likely beard, 0.50)")
    assert headline({"beard": 0.4949}, ["beard"], JUDGED).endswith("(possible beard, 0.49)")
    assert headline({"hat": 0.7996}, ["hat"], JUDGED).endswith("(very likely hat, 0.80)")


def test_uncertain_face_headline_names_the_reasons():
    quality = {"status": "uncertain", "reasons": ["face 30 px wide, under 40 px", "cut by the photo's edge"]}
    assert headline({"hat": 0.9}, ["hat"], quality) == (
        "Not judged (face 30 px wide, under 40 px; cut by the photo's edge): no product for this person")


def test_type_probabilities_pick_the_product(catalog):
    dark = recommend_products({"eyewear": 0.9}, ["eyewear"], {"eyewear": {"dark": 0.93, "clear": 0.07}},
                              catalog, per_category=4)
    assert all(p["name"] in {"Polarised aviators", "Tortoiseshell wayfarer sunglasses", "Gold round sunglasses",
                             "Sport wrap sunglasses"} for p in dark)
    assert "very likely wears glasses (0.90); dark sunglasses, 0.93 → Sport wrap sunglasses" == dark[0]["reason"]
    clear = recommend_products({"eyewear": 0.9}, ["eyewear"], {"eyewear": {"clear": 0.8, "dark": 0.2}},
                               catalog, per_category=1)
    assert clear[0]["reason"] == "very likely wears glasses (0.90); clear glasses, 0.80 → Blue-light reading glasses"
    # a colour match moves a hat up only within a near tie of types
    close = {"hat": {"beanie": 0.5, "brimmed": 0.45}, "hat_colour": "beige"}  # no beige beanie: the bucket hat
    assert recommend_products({"hat": 0.9}, ["hat"], close, catalog, per_category=1)[0]["product_id"] == "HAT-006"
    apart = {"hat": {"beanie": 0.7, "brimmed": 0.25}, "hat_colour": "beige"}
    assert recommend_products({"hat": 0.9}, ["hat"], apart, catalog, per_category=1)[0]["product_id"] == "HAT-010"
    # a cap at 0.54: caps before a grey hood ("other" at 0.43), the grey cap first
    grey = {"hat": {"cap": 0.54, "other": 0.43}, "hat_colour": "grey"}
    assert [p["product_id"] for p in recommend_products({"hat": 0.9}, ["hat"], grey, catalog, per_category=2)] == [
        "HAT-005", "HAT-003"]
    brown_cap = {"hat": {"cap": 0.5, "brimmed": 0.45}, "hat_colour": "brown"}  # both come in brown: the type decides
    assert recommend_products({"hat": 0.9}, ["hat"], brown_cap, catalog, per_category=1)[0]["product_id"] == "HAT-019"
    without = recommend_products({"hat": 0.9}, ["hat"], {}, catalog, per_category=1)[0]
    assert without["reason"] == "very likely wears a hat (0.90) → Black cotton bandana"  # no types: cheapest first


def test_no_likely_style_gets_products_for_any_style(catalog):
    """A style under 0.5 is a guess: beard care for every style goes first, and says why."""
    unsure = {"beard": {"moustache": 0.10, "full_beard": 0.08, "goatee": 0.07, "stubble": 0.02}}
    products = recommend_products({"beard": 0.55}, ["beard"], unsure, catalog, per_category=4)
    assert {p["product_id"] for p in products} == {"BRD-017", "BRD-018", "BRD-019", "BRD-020"}
    assert products[0]["reason"] == ("likely has facial hair (0.55); any style (likeliest moustache, 0.10) "
                                     "→ Beard and moustache balm")
    likely = {"beard": {"goatee": 0.62, "moustache": 0.3, "stubble": 0.1, "full_beard": 0.05}}
    products = recommend_products({"beard": 0.9}, ["beard"], likely, catalog, per_category=5)
    # the goatee's four products by price, then care for any style before the moustache's (0.3)
    assert [p["product_id"] for p in products] == ["BRD-009", "BRD-012", "BRD-011", "BRD-010", "BRD-020"]
    assert products[4]["reason"].startswith("very likely has facial hair (0.90); any style (likeliest goatee, 0.62)")
    assert recommend_products({"beard": 0.9}, ["beard"], {}, catalog, per_category=1)[0]["product_id"] == "BRD-020"
    feed = {"beard": {"goatee": 0.27, "stubble": 0.2}}
    [averaged] = recommend_products({"beard": 0.6}, ["beard"], feed, catalog, per_category=1, leads={"beard": "seen"},
                                    averaged=True)
    assert averaged["reason"] == "seen; any style (likeliest goatee, 0.27 on average) → Beard and moustache balm"


def test_measured_hat_colour_of_a_real_face(astronaut):
    face = detect_faces(astronaut)[0]
    assert hat_colour(astronaut, face) in {"black", "brown"}  # her dark hair above the brows
    painted = astronaut.copy()
    top = int(face.landmarks[BROWS, 1].min())
    height = int(face.landmarks[CHIN, 1]) - top
    left, right = int(face.landmarks[JAWLINE][0, 0]), int(face.landmarks[JAWLINE][-1, 0])
    painted[max(0, top - height):top - height // 8, left:right] = (200, 20, 20)  # a red crown
    assert hat_colour(painted, face) == "red"
    assert hat_colour(astronaut, face) != "red"  # the photo read first was not modified


def test_profile_shares(catalog):
    ok = {"status": "ok"}
    face = {"scores": {"hat": 0.9, "beard": 0.1, "eyewear": 0.1}, "labels": ["hat"], "quality": ok,
            "types": {"hat": {"beanie": 0.8, "cap": 0.2}, "hat_colour": "red"}}
    other = {"scores": {"hat": 0.7, "beard": 0.1, "eyewear": 0.1}, "labels": ["hat"], "quality": ok,
             "types": {"hat": {"cap": 0.6, "beanie": 0.4}, "hat_colour": "red"}}
    # a face not judged (blurred): no label, a score not trusted; it took the shares and means down
    blurred = {"scores": {"hat": 0.1, "beard": 0.9, "eyewear": 0.1}, "labels": [], "quality": {"status": "uncertain"},
               "types": {}}
    results = [{"error": None, "faces": [face, blurred]}, {"error": None, "faces": [other]},
               {"error": None, "faces": []}, {"error": "bad", "faces": []}]
    summary = profile(results, catalog)["profile"]
    assert summary["photos"] == 3 and summary["failed"] == 1 and summary["faces"] == 3 and summary["faces_judged"] == 2
    assert summary["labels"]["hat"]["photo_share"] == pytest.approx(2 / 3)
    assert summary["labels"]["hat"]["face_share"] == 1.0 and summary["labels"]["hat"]["mean_probability"] == 0.8
    assert summary["labels"]["beard"]["mean_probability"] == pytest.approx(0.1)
    assert summary["types"] == {"hat": {"beanie": 0.5, "cap": 0.5}, "hat_colour": {"red": 1.0}}
    assert summary["headline"] == "We recommend hat products to this account (hat in 2 of 3 photos)"
    assert {p["category"] for p in summary["recommendations"]} == {"hat"}
    first = summary["recommendations"][0]
    assert first["product_id"] == "HAT-013"  # beanie (mean 0.6) in red
    assert first["reason"] == "seen in 2 of 3 photos; red beanie, 0.60 on average → Red knit beanie"


def test_a_profile_s_type_shares_are_exact_as_its_label_shares(catalog):
    """One pair of dark glasses among 20,001 eyewear wearers: its share, to 4 decimals, was
    0.0, which the text and the page show as "0%"."""
    clear = {"scores": {"hat": 0.1, "beard": 0.1, "eyewear": 0.9}, "labels": ["eyewear"], "quality": {"status": "ok"},
             "types": {"eyewear": {"clear": 0.9, "dark": 0.1}}}
    dark = {**clear, "types": {"eyewear": {"dark": 0.9, "clear": 0.1}}}
    summary = profile([{"error": None, "faces": [dark] + [clear] * 20_000}], catalog)["profile"]
    assert summary["types"]["eyewear"] == {"clear": 20_000 / 20_001, "dark": 1 / 20_001}
    assert share_text(summary["types"]["eyewear"]["dark"]) == "0.005%"


def test_profile_headline_names_every_category_it_recommends(catalog):
    """It named the first label alone ("We recommend beard products to this account") over
    products of all three."""
    ok = {"status": "ok"}
    scores = {"hat": 0.1, "beard": 0.1, "eyewear": 0.1}
    bearded = {"scores": {**scores, "beard": 0.9}, "labels": ["beard"], "quality": ok, "types": {}}
    both = {"scores": {**scores, "beard": 0.8, "eyewear": 0.95}, "labels": ["beard", "eyewear"], "quality": ok,
            "types": {}}
    results = [{"error": None, "faces": [bearded]}, {"error": None, "faces": [both]}, {"error": None, "faces": []}]
    summary = profile(results, catalog)["profile"]
    assert summary["headline"] == ("We recommend beard and eyewear products to this account "
                                   "(beard in 2 of 3 photos; eyewear in 1)")
    categories = [p["category"] for p in summary["recommendations"]]
    assert categories == sorted(categories, key=["beard", "eyewear"].index) and set(categories) == {"beard", "eyewear"}


def test_profile_names_no_hat_colour_when_colours_tie(catalog):
    """Four hats of four colours: the tie went to "black", and the account was told of a
    "black brimmed hat" that no face wore."""
    faces = [{"scores": {"hat": 0.9, "beard": 0.1, "eyewear": 0.1}, "labels": ["hat"], "quality": {"status": "ok"},
              "types": {"hat": {"brimmed": 0.6, "cap": 0.4}, "hat_colour": colour}}
             for colour in ("white", "green", "black", "grey")]
    summary = profile([{"error": None, "faces": [face]} for face in faces], catalog)["profile"]
    assert summary["types"]["hat_colour"] == dict.fromkeys(("black", "green", "grey", "white"), 0.25)
    reasons = [p["reason"] for p in summary["recommendations"]]
    assert reasons and all("; brimmed hat, 0.60 on average → " in r for r in reasons), reasons
    faces[1]["types"]["hat_colour"] = "white"  # two white of four: the commonest
    summary = profile([{"error": None, "faces": [face]} for face in faces], catalog)["profile"]
    assert "; white brimmed hat, 0.60 on average → " in summary["recommendations"][0]["reason"]


def test_profile_hat_colour_shares_are_of_the_hat_wearers(catalog):
    """Hats in black-and-white photos have no colour: one red hat of four read "red 100%"."""
    faces = [{"scores": {"hat": 0.9, "beard": 0.1, "eyewear": 0.1}, "labels": ["hat"], "quality": {"status": "ok"},
              "types": {"hat": {"cap": 0.8, "brimmed": 0.2}}} for _ in range(4)]
    faces[0]["types"]["hat_colour"] = "red"
    summary = profile([{"error": None, "faces": [face]} for face in faces], catalog)["profile"]
    assert summary["types"]["hat_colour"] == {"red": 0.25}
    assert "; red cap, 0.80 on average → " in summary["recommendations"][0]["reason"]  # the only colour seen


def test_profile_headline_says_why_there_is_no_product(catalog):
    """A feed of unreadable photos did read "No hat, beard or eyewear seen in this feed"."""
    plain = {"scores": {"hat": 0.1, "beard": 0.1, "eyewear": 0.1}, "labels": [], "types": {}, "quality": {"status": "ok"}}
    for results, why in (([{"error": "bad", "faces": []}] * 2, "No photo of this feed could be analysed"),
                         ([{"error": None, "faces": []}], "No face found in this feed"),
                         ([{"error": None, "faces": [{**plain, "quality": {"status": "uncertain"}}]}],
                          "No face of this feed could be judged (too small, blurred, turned or cut)"),
                         ([{"error": None, "faces": [plain]}], "No hat, beard or eyewear seen in this feed")):
        summary = profile(results, catalog)["profile"]
        assert summary["headline"] == f"{why}: no product" and summary["recommendations"] == []
        # a share or mean of nothing is null, not 0.0 (a reader of the JSON took it for a figure)
        for stats in summary["labels"].values():
            assert (stats["photo_share"] is None) == (summary["photos"] == 0)
            assert (stats["face_share"] is None) == (stats["mean_probability"] is None) == (summary["faces_judged"] == 0)
    # photos a stop kept from being looked at are not photos that could not be analysed
    stopped = profile([], catalog, not_analysed=3)["profile"]
    assert stopped["headline"] == "No photo of this feed was analysed (3 not analysed): no product"
    assert (stopped["photos"], stopped["failed"], stopped["not_analysed"]) == (0, 0, 3)
    # a label or a type on a face not judged (records a client sent to /api/summary) counts for
    # nothing: its mean of none was -None, and it made a hat account of no face judged
    unjudged = {**plain, "labels": ["hat"], "types": {"hat": {"cap": 1.0}}, "quality": {"status": "uncertain"}}
    summary = profile([{"error": None, "faces": [unjudged]}], catalog)["profile"]
    assert summary["labels"]["hat"]["photo_share"] == 0 and summary["types"] == {}
    assert summary["headline"] == "No face of this feed could be judged (too small, blurred, turned or cut): no product"
    assert summary["recommendations"] == []


def test_a_catalog_that_cannot_be_read_names_the_file_once(tmp_path):
    """The OSError's own text named the file a second time, with its errno."""
    with pytest.raises(CatalogError) as raised:
        load_catalog(tmp_path / "none.csv")
    assert str(raised.value) == f"{tmp_path / 'none.csv'}: cannot read the catalog (No such file or directory)"


def test_a_face_s_figures_read_alike_in_its_reasons_headline_and_types(catalog):
    """A half at two decimals read "0.12" in a reason (Python's format rounds to even) and
    "0.13" in the types line and on the page (a half up): one figure, two numbers."""
    from features.app.text import format_types

    types = {"beard": {"goatee": 0.125, "moustache": 0.1}}
    [first, *_] = recommend_products({"beard": 0.625}, ["beard"], types, catalog)
    assert "(likeliest goatee, 0.13) → " in first["reason"] and "goatee 0.13" in format_types(types)
    assert describe("beard", 0.625) == "likely has facial hair (0.63)"
    # a style the CSV and the profile leave out (under labels.STYLE_SEEN) does not read "0.50",
    # in the types line or in a reason
    under = {"beard": {"goatee": 0.499, "stubble": 0.5}}
    assert format_types(under) == "beard goatee 0.499, stubble 0.5000"
    assert all("0.50)" not in p["reason"] and "0.50 " not in p["reason"]
               for p in recommend_products({"beard": 0.625}, ["beard"], under, catalog))
    [goatee] = [p for p in recommend_products({"beard": 0.625}, ["beard"], {"beard": {"goatee": 0.499, "stubble": 0.1}},
                                              catalog, per_category=20) if "goatee" in p["reason"]][:1]
    assert "goatee, 0.499" in goatee["reason"]
    assert seen_types("beard", {"goatee": 0.499, "stubble": 0.5}) == ["stubble"]
    assert headline({"beard": 0.875}, ["beard"], JUDGED).endswith("(very likely beard, 0.88)")
