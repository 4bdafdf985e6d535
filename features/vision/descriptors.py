"""Hand-made descriptors of one region crop: HOG for shape, a colour histogram for colour."""
import cv2
import numpy as np
from skimage.feature import hog

HOG_ORIENTATIONS = 9
#: Cell size (pixels) per region: glasses frames are thin lines and need fine cells; the
#: outline of a hat or a jaw needs few.
HOG_CELLS = {"forehead": 16, "eye_band": 8, "jaw": 16}
HOG_BLOCK = 2
#: Histogram bins over OpenCV's HSV (hue 0-180, saturation and value 0-256): hue carries
#: most bins, value the fewest, so lighting moves few counts.
HSV_BINS = (8, 4, 3)


def hog_size(size, cell):
    """Length of :func:`hog_descriptor` for a crop of ``size`` (w, h) and ``cell`` pixels."""
    cells_x, cells_y = size[0] // cell, size[1] // cell
    blocks = (cells_x - HOG_BLOCK + 1) * (cells_y - HOG_BLOCK + 1)
    return blocks * HOG_BLOCK * HOG_BLOCK * HOG_ORIENTATIONS


def hog_descriptor(region, cell):
    """HOG of a uint8 RGB crop with square cells of ``cell`` pixels (L2-Hys normalised per
    block), as float32."""
    gray = cv2.cvtColor(region, cv2.COLOR_RGB2GRAY)
    return hog(gray, orientations=HOG_ORIENTATIONS, pixels_per_cell=(cell, cell),
               cells_per_block=(HOG_BLOCK, HOG_BLOCK), block_norm="L2-Hys",
               feature_vector=True).astype(np.float32)


def colour_histogram(region):
    """Joint HSV histogram of a uint8 RGB crop, summing to 1, as float32.

    Black padding (outside the photo) is left out; an all-padding crop gives all zeros.
    """
    hsv = cv2.cvtColor(region, cv2.COLOR_RGB2HSV)
    inside = (region.max(axis=2) > 0).astype(np.uint8)
    hist = cv2.calcHist([hsv], [0, 1, 2], inside, list(HSV_BINS), [0, 180, 0, 256, 0, 256])
    hist = hist.ravel().astype(np.float32)
    total = hist.sum()
    return hist / total if total > 0 else hist
