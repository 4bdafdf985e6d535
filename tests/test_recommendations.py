"""Products from scores and what the crops show."""
import numpy as np
import pytest

from features.vision.faces import detect_faces
from features.products.recommendations import (CatalogError, colour_name, describe, headline, load_catalog, profile,
                                      read_attributes, recommend_products)
from features.vision.regions import REGIONS, extract_regions


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def test_shipped_catalog_has_six_products_per_category(catalog):
    for category in ("hat", "beard", "eyewear"):
        assert sum(p["category"] == category for p in catalog) >= 6
    assert all(isinstance(p["price"], float) for p in catalog)


@pytest.mark.parametrize("text, message", [
    ("product_id,category,name\nA,hat,Cap\n", "missing column.*price"),
    ("product_id,category,name,price\nA,shoes,Boot,9\n", "line 2: category 'shoes'"),
    ("product_id,category,name,price\nA,hat,Cap,cheap\n", "line 2: price 'cheap'"),
])
def test_bad_catalogs_name_the_problem(tmp_path, text, message):
    path = tmp_path / "products.csv"
    path.write_text(text)
    with pytest.raises(CatalogError, match=message):
        load_catalog(path)


@pytest.mark.parametrize("rgb, name", [((10, 10, 10), "black"), ((250, 250, 250), "white"),
                                       ((128, 128, 128), "grey"), ((200, 20, 20), "red"),
                                       ((20, 40, 200), "blue"), ((30, 160, 40), "green")])
def test_colour_names(rgb, name):
    assert colour_name(np.array(rgb, np.uint8)) == name


def test_only_the_faces_categories_strongest_first(catalog):
    scores = {"hat": 0.9, "beard": 0.97, "eyewear": 0.2}
    attributes = {"hat_colour": "black", "hat_tone": "dark", "eyewear_style": "sunglasses",
                  "beard_style": "long"}
    products = recommend_products(scores, ["hat", "beard"], attributes, catalog, per_category=2)
    assert [p["category"] for p in products] == ["beard", "beard", "hat", "hat"]
    assert products[2]["product_id"] == "HAT-001"  # the black cap for a black hat
    assert "very likely wears a black hat (0.90) → Classic black baseball cap" == products[2]["reason"]
    assert recommend_products(scores, [], attributes, catalog) == []
    assert headline(["hat", "beard"], scores) == ("We recommend beard products to this person "
                                                  "(very likely beard, 0.97)")


@pytest.mark.parametrize("probability, words", [
    (0.1, "may wear a red hat (0.10)"), (0.49, "may wear a red hat (0.49)"),
    (0.5, "likely wears a red hat (0.50)"), (0.72, "likely wears a red hat (0.72)"),
    (0.93, "very likely wears a red hat (0.93)")])
def test_words_follow_the_number(probability, words):
    """No sentence says "wears" under 0.5; the hedge grows with the calibrated probability."""
    attributes = {"hat_colour": "red", "hat_tone": "dark", "eyewear_style": "optical", "beard_style": "long"}
    assert describe("hat", probability, attributes) == words
    assert describe("beard", probability, attributes).startswith("may have" if probability < 0.5 else
                                                                 ("very likely has", "likely has")[probability < 0.8])


def test_uncertain_face_headline_names_the_reasons():
    quality = {"status": "uncertain", "reasons": ["face 30 px wide, under 40 px", "cut by the photo's edge"]}
    assert headline(["hat"], {"hat": 0.9}, quality) == (
        "Not judged (face 30 px wide, under 40 px; cut by the photo's edge): no product for this person")


def test_dark_lenses_pick_sunglasses(catalog, astronaut):
    crops = extract_regions(astronaut, detect_faces(astronaut)[0], regions=REGIONS)
    assert read_attributes(crops)["eyewear_style"] == "optical"  # no lenses: her eyes show
    shaded = {**crops, "eye_band": crops["eye_band"].copy()}
    h, w = shaded["eye_band"].shape[:2]
    shaded["eye_band"][h // 3:, w // 8:2 * w // 5] = 15  # dark lenses over both eyes
    shaded["eye_band"][h // 3:, 3 * w // 5:7 * w // 8] = 15
    attributes = read_attributes(shaded)
    assert attributes["eyewear_style"] == "sunglasses"
    products = recommend_products({"eyewear": 0.9}, ["eyewear"], attributes, catalog, per_category=1)
    assert "sunglasses" in products[0]["name"]


def test_profile_shares(catalog):
    face = {"scores": {"hat": 0.9, "beard": 0.1, "eyewear": 0.1}, "labels": ["hat"],
            "attributes": {"hat_colour": "red", "hat_tone": "dark", "eyewear_style": "optical",
                           "beard_style": "short"}}
    results = [{"error": None, "faces": [face]}, {"error": None, "faces": []}, {"error": "bad", "faces": []}]
    summary = profile(results, catalog)["profile"]
    assert summary["photos"] == 2 and summary["failed"] == 1 and summary["faces"] == 1
    assert summary["labels"]["hat"]["photo_share"] == 0.5 and summary["labels"]["hat"]["face_share"] == 1.0
    assert summary["headline"] == "We recommend hat products to this account"
    assert {p["category"] for p in summary["recommendations"]} == {"hat"}
    assert summary["recommendations"][0]["product_id"] == "HAT-006"  # the red beanie
