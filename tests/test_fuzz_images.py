"""Fuzzing the loader with mutated real photos: it returns a photo or raises ImageError, never
anything else."""
import io

import numpy as np
import pillow_heif  # its encoder: the project reads HEIC with pi-heif, a decoder alone
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from features.vision.images import ImageError, load_image


@pytest.fixture(scope="module")
def originals(celeba_paths, astronaut):
    png = io.BytesIO()
    Image.fromarray(astronaut[::4, ::4]).save(png, format="PNG")
    gif = io.BytesIO()
    Image.fromarray(astronaut[::4, ::4]).convert("P").save(gif, format="GIF")
    # the two whose decoders spoke for themselves: AVIF raised RuntimeError, libtiff printed
    # its own lines on stderr ("LZWDecode: Not enough data at scanline 0")
    avif, tiff = io.BytesIO(), io.BytesIO()
    Image.fromarray(astronaut[::4, ::4]).save(avif, format="AVIF")
    Image.fromarray(astronaut[::4, ::4]).save(tiff, format="TIFF", compression="tiff_lzw")
    heic = io.BytesIO()  # libheif's own errors, from a library in C
    pillow_heif.from_pillow(Image.fromarray(astronaut[::4, ::4])).save(heic, quality=80)
    return [open(celeba_paths[0], "rb").read(), png.getvalue(), gif.getvalue(), avif.getvalue(), tiff.getvalue(),
            heic.getvalue()]


mutations = st.lists(st.tuples(st.sampled_from(["flip", "cut", "insert", "zero"]),
                               st.floats(0, 1), st.integers(0, 255)), min_size=1, max_size=6)


def mutate(data, steps):
    data = bytearray(data)
    for kind, where, value in steps:
        at = int(where * (len(data) - 1))
        if kind == "flip":
            data[at] ^= value or 1
        elif kind == "cut":
            del data[at:]
        elif kind == "insert":
            data[at:at] = bytes([value]) * 16
        else:
            data[at:at + 64] = bytes(len(data[at:at + 64]))
        if not data:
            break
    return bytes(data)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.integers(0, 5), steps=mutations)
def test_mutated_photos_load_or_raise_image_error(tmp_path, capfd, originals, which, steps):
    path = tmp_path / "mutated.img"
    path.write_bytes(mutate(originals[which], steps))
    try:
        image = load_image(path)
    except ImageError as error:
        assert str(path) in str(error) and "\n" not in str(error)
    else:
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert capfd.readouterr().err == ""  # no decoder's own lines beside the one that names the photo
