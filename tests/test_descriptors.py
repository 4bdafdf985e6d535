"""HOG and colour histograms of real region crops."""
import numpy as np
import pytest

from features.vision.descriptors import HOG_CELLS, HSV_BINS, colour_histogram, hog_descriptor, hog_size
from features.vision.faces import detect_faces
from features.vision.regions import REGION_SIZES, REGIONS, extract_regions


@pytest.fixture(scope="module")
def crops(astronaut):
    return extract_regions(astronaut, detect_faces(astronaut)[0], regions=REGIONS)


@pytest.mark.parametrize("region", REGIONS)
def test_sizes_match_the_stated_dimensions(crops, region):
    cell = HOG_CELLS[region]
    assert hog_descriptor(crops[region], cell).shape == (hog_size(REGION_SIZES[region], cell),)
    assert colour_histogram(crops[region]).shape == (np.prod(HSV_BINS),)


@pytest.mark.parametrize("region", REGIONS)
def test_histograms_sum_to_one(crops, region):
    histogram = colour_histogram(crops[region])
    assert histogram.sum() == pytest.approx(1.0, abs=1e-5) and (histogram >= 0).all()


def test_all_padding_histogram_is_zero():
    assert colour_histogram(np.zeros((48, 64, 3), np.uint8)).sum() == 0


def test_hog_changes_when_the_region_changes(crops):
    jaw = crops["jaw"]
    same = hog_descriptor(jaw.copy(), 8)
    assert np.array_equal(hog_descriptor(jaw, 8), same)
    assert not np.allclose(hog_descriptor(jaw, 8), hog_descriptor(jaw[:, ::-1].copy(), 8))
    assert not np.allclose(hog_descriptor(jaw, 8), hog_descriptor(crops["forehead"], 8))
    assert hog_descriptor(jaw, 16).size < hog_descriptor(jaw, 8).size


def test_colour_histogram_tells_colours_apart(crops):
    red = np.zeros((48, 64, 3), np.uint8)
    red[..., 0] = 200
    blue = red[..., ::-1].copy()
    assert np.abs(colour_histogram(red) - colour_histogram(blue)).sum() == pytest.approx(2.0)
