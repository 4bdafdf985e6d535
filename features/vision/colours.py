"""Colours measured on a face's crops, in the words a shopper would use."""
import cv2
import numpy as np


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
        return "navy" if val < 110 else "blue"
    return "purple"


def median_colour(patch):
    """Median RGB of the non-padding pixels of a crop (padding is pure black)."""
    pixels = patch.reshape(-1, 3)
    inside = pixels[pixels.max(axis=1) > 0]
    return np.median(inside if len(inside) else pixels, axis=0).astype(np.uint8)


def hat_colour(forehead):
    """The measured hat colour: the colour word of the patch just above the brows, where a
    cap's front or a hat's band sits (higher up is often sky).

    Parameters
    ----------
    forehead : ndarray
        The ``forehead`` crop of one face (:func:`features.vision.regions.extract_regions`).
    """
    h, w = forehead.shape[:2]
    return colour_name(median_colour(forehead[h // 2:7 * h // 8, w // 4:3 * w // 4]))
