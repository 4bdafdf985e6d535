"""Previews: a photo as the analysis reads it, small, as a JPEG any browser shows (Chromium
shows no HEIC and no TIFF: an iPhone's drop had cards without pictures)."""
import io

import cv2
from PIL import Image

from features.vision.images import ImageError, load_image

#: A preview's longer side: a card's picture is under 640 px wide on the page (a grid of
#: columns of 320 px and more), twice that in a sharp screen's pixels.
PREVIEW_SIDE = 1024
#: JPEG quality: a picture to find faces on, not to keep.
PREVIEW_QUALITY = 85


def preview_jpeg(path):
    """The photo at ``path`` upright, at most :data:`PREVIEW_SIDE` on its longer side, as JPEG
    bytes in sRGB (its colours as :func:`~features.vision.images.load_image` converts them),
    with ``None``; or ``None`` with the reason it cannot be read (a worker's answer:
    :class:`ImageError` does not survive the trip back whole)."""
    try:
        image = load_image(path)
    except ImageError as exc:
        return None, exc.reason
    height, width = image.shape[:2]
    scale = PREVIEW_SIDE / max(height, width)
    if scale < 1:  # the box of each face is placed in percent of the photo: its shape is kept
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    jpeg = io.BytesIO()
    Image.fromarray(image).save(jpeg, "JPEG", quality=PREVIEW_QUALITY)
    return jpeg.getvalue(), None

