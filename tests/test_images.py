"""The photo loader: every common format to upright RGB, every bad file to a one-line error."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from features.vision.images import ImageError, as_rgb, load_image
from conftest import ROOT


def save(tmp_path, name, image, **options):
    path = tmp_path / name
    image.save(path, **options)
    return path


@pytest.fixture
def portrait(celeba_paths):
    return Image.open(celeba_paths[0]).convert("RGB")


def test_jpeg_is_rgb_uint8(celeba_paths):
    image = load_image(celeba_paths[0])
    assert image.dtype == np.uint8 and image.shape == (109, 89, 3)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK", "LA"])
def test_modes_convert_to_rgb(tmp_path, portrait, mode):
    converted = portrait.convert(mode)
    suffix = "jpg" if mode in ("L", "CMYK") else "png"
    image = load_image(save(tmp_path, f"photo.{suffix}", converted))
    assert image.shape == (109, 89, 3) and image.dtype == np.uint8
    reference = np.asarray(portrait, dtype=float)
    tolerance = 60 if mode in ("L", "P", "LA") else 12  # gray/palette lose colour, JPEG adds noise
    assert np.abs(image.astype(float) - reference).mean() < tolerance


def test_heic_is_read_upright_as_a_jpeg_is(tmp_path, portrait):
    """An iPhone's photos are HEIC: read as the others, and upright as a JPEG of the same EXIF
    orientation is (libheif turns them by the file's own rotation, which pillow-heif writes
    from the EXIF; turned by the EXIF again, they would lie on their side)."""
    import pillow_heif  # its encoder: the project reads HEIC with pi-heif, a decoder alone

    path = tmp_path / "IMG_0001.HEIC"
    pillow_heif.from_pillow(portrait).save(path, quality=90)
    image = load_image(path)
    assert image.shape == (109, 89, 3) and np.abs(image.astype(float) - np.asarray(portrait, dtype=float)).mean() < 12
    turned = Image.Exif()
    turned[0x0112] = 6  # "rotate 90° clockwise to view"
    pillow_heif.from_pillow(portrait).save(path, quality=90, exif=turned.tobytes())
    upright = load_image(save(tmp_path, "turned.jpg", portrait, exif=turned.tobytes(), quality=95))
    assert upright.shape == (89, 109, 3)
    assert np.abs(load_image(path).astype(float) - upright.astype(float)).mean() < 12


def test_heic_of_several_images_is_read_at_its_primary_one(tmp_path):
    """A HEIF may hold several images (a burst, a depth map) and names one primary: the photo."""
    import pillow_heif

    heif = pillow_heif.from_pillow(Image.new("RGB", (64, 48), (255, 0, 0)))
    heif.add_from_pillow(Image.new("RGB", (32, 40), (0, 0, 255)))
    heif.save(tmp_path / "burst.heic", quality=90, primary_index=1)
    image = load_image(tmp_path / "burst.heic")
    assert image.shape == (40, 32, 3) and image[..., 2].mean() > 240  # blue: it read the first image, red


def test_an_avif_that_names_itself_heif_is_read_as_avif(tmp_path, portrait):
    """An AVIF may give HEIF's brand ``mif1`` first: the HEIC reader, tried first, claimed it
    and could not decode it ("corrupt or truncated image")."""
    path = save(tmp_path, "photo.avif", portrait)
    data = bytearray(path.read_bytes())
    assert data[4:8] == b"ftyp"
    data[8:12] = b"mif1"  # the major brand
    path.write_bytes(bytes(data))
    assert np.abs(load_image(path).astype(float) - np.asarray(portrait, dtype=float)).mean() < 12


def test_sixteen_bit_png_keeps_its_range(tmp_path, portrait):
    gray = np.asarray(portrait.convert("L"), dtype=np.uint16) * 257
    path = save(tmp_path, "deep.png", Image.fromarray(gray))
    image = load_image(path)
    assert np.abs(image[:, :, 0].astype(int) - gray // 257).max() <= 1


def test_transparency_is_flattened_on_white(tmp_path):
    rgba = np.zeros((8, 8, 4), np.uint8)
    image = load_image(save(tmp_path, "clear.png", Image.fromarray(rgba)))
    assert (image == 255).all()


def test_webp_and_gif_first_frame(tmp_path, portrait):
    assert load_image(save(tmp_path, "a.webp", portrait)).shape == (109, 89, 3)
    frames = [portrait, portrait.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    path = tmp_path / "a.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    first = load_image(path)
    assert np.abs(first.astype(int) - np.asarray(portrait, int)).mean() < \
        np.abs(first.astype(int) - np.asarray(frames[1], int)).mean()


def test_exif_orientation_is_applied(tmp_path, portrait):
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated; viewers turn it 90 degrees clockwise
    stored = portrait.transpose(Image.Transpose.ROTATE_90)
    image = load_image(save(tmp_path, "rotated.jpg", stored, exif=exif, quality=95))
    assert image.shape == (109, 89, 3)
    assert np.abs(image.astype(int) - np.asarray(portrait, int)).mean() < 8


def test_decompression_bomb_refused_before_decoding(tmp_path):
    """Refused from the header's size, in words that say what to do: a phone's 108-megapixel
    photo was "a possible decompression bomb".  Past twice Pillow's own limit, Pillow refuses
    it first: its size is then read from Pillow's words (it was not said)."""
    path = save(tmp_path, "bomb.png", Image.new("1", (20000, 20000)))
    assert path.stat().st_size < 200_000
    with pytest.raises(ImageError, match="bomb.png: 400 megapixels is over the limit of 50 megapixels: save it "
                                         "smaller$"):
        load_image(path)
    path = save(tmp_path, "phone.png", Image.new("1", (12000, 9000)))
    with pytest.raises(ImageError, match="phone.png: 12000x9000 pixels is over the limit of 50 megapixels: save it "
                                         "smaller$"):
        load_image(path)


@pytest.mark.parametrize("content, reason", [
    (b"", "empty"),
    (b"<html><body>not a photo</body></html>", "not a recognised image"),
    (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "corrupt|not a recognised"),
    # a photo format's signature: said (it was "not a recognised image format")
    (b"\xff\xd8\xff" + bytes(40), "a JPEG file that cannot be decoded \\(corrupt, or a kind of JPEG not read\\)$"),
    # a browser shows an SVG as an image, so the page sends it: said for what it is
    (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>',
     "an SVG drawing, not a photo$"),
    (b'\xef\xbb\xbf<!-- made by hand --><svg width="9" height="9"/>', "an SVG drawing, not a photo$"),
    (b"<!doctype html><html><body><svg></svg></body></html>", "not a recognised image format$"),  # a page
])
def test_bad_files_raise_one_line_errors(tmp_path, content, reason):
    path = tmp_path / "bad photo é.jpg"
    path.write_bytes(content)
    with pytest.raises(ImageError, match=reason) as error:
        load_image(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_a_photo_format_s_file_that_cannot_be_decoded_says_its_format():
    """scikit-image's multipage_rgb.tif (tifffile's 64-bit samples) is a TIFF Pillow has no
    decoder for: it was "not a recognised image format", as a text file is."""
    import skimage

    path = Path(skimage.__file__).parent / "data" / "multipage_rgb.tif"
    with pytest.raises(ImageError, match="multipage_rgb.tif: a TIFF file that cannot be decoded \\(corrupt, or a "
                                         "kind of TIFF not read\\)$"):
        load_image(path)


def test_postscript_is_not_read_whatever_its_name(tmp_path):
    """Pillow renders EPS by running Ghostscript where it is installed: a PostScript file named
    .jpg would have it run (here, where it is not, the error said "Unable to locate
    Ghostscript")."""
    path = tmp_path / "photo.jpg"
    path.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")
    with pytest.raises(ImageError, match="not a recognised image format$"):
        load_image(path)


def test_a_photo_read_or_refused_says_nothing_else(tmp_path, portrait):
    """An EXIF block cut short (some cameras and editors write one) is read, and Pillow's
    "Truncated File Read" warning, two lines of Python on stderr naming no photo, is not
    shown; a float TIFF of 0 to 1 is read as as_rgb reads such an array (it was black)."""
    import warnings

    exif = Image.Exif()
    exif[0x010F] = "Camera"
    portrait.save(tmp_path / "exif.jpg", exif=exif.tobytes()[:-3])
    green = np.asarray(portrait)[:, :, 1]
    Image.fromarray(green.astype(np.float32) / 255).save(tmp_path / "float.tif")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_image(tmp_path / "exif.jpg").shape == green.shape + (3,)
        assert np.abs(load_image(tmp_path / "float.tif")[:, :, 0].astype(int) - green).max() <= 1


def test_truncated_jpeg(tmp_path, celeba_paths):
    data = open(celeba_paths[0], "rb").read()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="truncated: the file ends before the picture does$"):
        load_image(path)


def test_a_mac_s_appledouble_file_is_no_photo(tmp_path, celeba_paths):
    """Left out of a folder (``apple_double``), and said for what it is when given by name;
    a real photo whose name starts with ``._`` is still one."""
    from conftest import APPLE_DOUBLE_FILE
    from features.vision.images import apple_double

    (tmp_path / "._a.jpg").write_bytes(APPLE_DOUBLE_FILE)
    shutil.copy(celeba_paths[0], tmp_path / "._b.jpg")
    (tmp_path / "c.jpg").write_bytes(APPLE_DOUBLE_FILE)  # named as no Mac names one: read, and refused
    os.mkfifo(tmp_path / "._d.jpg")  # not opened: reading a pipe would block
    assert [apple_double(tmp_path / name) for name in ("._a.jpg", "._b.jpg", "c.jpg", "._d.jpg", "._e.jpg")] == [
        True, False, False, False, False]
    with pytest.raises(ImageError, match=r"\._a\.jpg: a Mac's AppleDouble file \(Finder data kept beside a photo\), "
                                         r"not a photo$"):
        load_image(tmp_path / "._a.jpg")
    assert load_image(tmp_path / "._b.jpg").shape[2] == 3


def with_gamma(profile, gamma):
    """An RGB ICC ``profile`` (bytes) with each channel's tone curve a plain ``gamma``: its
    TRC tags pointed at one ``curv`` tag added at its end."""
    import struct

    table = bytearray(profile)
    for entry in range(132, 132 + 12 * struct.unpack(">I", profile[128:132])[0], 12):
        if table[entry:entry + 4] in (b"rTRC", b"gTRC", b"bTRC"):
            table[entry + 4:entry + 12] = struct.pack(">II", len(profile), 14)
    table += b"curv" + bytes(4) + struct.pack(">IH", 1, round(gamma * 256)) + bytes(2)
    table[0:4] = struct.pack(">I", len(table))
    table[84:100] = bytes(16)  # no profile ID (an MD5 of the old bytes)
    return bytes(table)


def test_a_photo_in_a_wider_colour_space_is_read_in_srgb(tmp_path):
    """wild-dev's photos in Display P3 (a phone's) and Adobe RGB (a camera's) are read as a
    screen shows them, converted to sRGB by their profile, in RGB and RGBA (a PNG's); one in
    sRGB, one whose profile is broken and one of grey are read as they are."""
    import io

    from PIL import ImageCms

    from conftest import WILD_DEV

    srgb = ImageCms.createProfile("sRGB")
    for name in ("yolov5_bus.jpg", "detectron_17790319373_bd19b24cfc_k.jpg", "instantid_kaifu_resize.png"):
        with Image.open(WILD_DEV / name) as photo:
            raw, profile = photo.convert("RGB"), ImageCms.ImageCmsProfile(io.BytesIO(photo.info["icc_profile"]))
        read = load_image(WILD_DEV / name).astype(int)
        assert np.abs(read - np.asarray(ImageCms.profileToProfile(raw, profile, srgb))).max() <= 1, name
        assert np.abs(read - np.asarray(raw)).mean() > 0.5, name  # more saturated than read raw
    with Image.open(WILD_DEV / "alphapose_2.jpg") as photo:  # a camera's sRGB profile
        assert "icc_profile" in photo.info and np.array_equal(load_image(WILD_DEV / "alphapose_2.jpg"),
                                                                 np.asarray(photo.convert("RGB")))
    p3 = Image.open(WILD_DEV / "yolov5_bus.jpg").info["icc_profile"]
    plain = Image.open(WILD_DEV / "yolov5_bus.jpg").convert("RGB")
    palette = plain.convert("P")  # a GIF's or a small PNG's palette: its colours convert too
    palette.save(tmp_path / "palette.png", icc_profile=p3)
    assert np.abs(load_image(tmp_path / "palette.png").astype(int) - np.asarray(ImageCms.profileToProfile(
        palette.convert("RGB"), ImageCms.ImageCmsProfile(io.BytesIO(p3)), srgb))).max() <= 1
    # sRGB's primaries with another tone curve (gamma 1.8, an old Mac's) are no sRGB: converted
    gamma = with_gamma(ImageCms.ImageCmsProfile(srgb).tobytes(), 1.8)
    plain.save(tmp_path / "gamma.png", icc_profile=gamma)
    assert np.abs(load_image(tmp_path / "gamma.png").astype(int) - np.asarray(ImageCms.profileToProfile(
        plain, ImageCms.ImageCmsProfile(io.BytesIO(gamma)), srgb))).max() <= 1
    assert np.abs(load_image(tmp_path / "gamma.png").astype(int) - np.asarray(plain)).mean() > 5
    plain.save(tmp_path / "broken.png", icc_profile=b"\0\0\2\0lcms\2\x10\0\0mntrRGB XYZ " + b"\0" * 100)
    plain.convert("L").save(tmp_path / "grey.png", icc_profile=Image.open(WILD_DEV / "yolov5_bus.jpg").info["icc_profile"])
    assert np.array_equal(load_image(tmp_path / "broken.png"), np.asarray(plain))
    assert np.array_equal(load_image(tmp_path / "grey.png"), np.asarray(plain.convert("L").convert("RGB")))


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ImageError, match="no such file$"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(ImageError, match="no such file$"):  # a drive letter is no web address
        load_image("C:/photos/nope.jpg")
    with pytest.raises(ImageError, match=r"no such file \(a web address\? photos are read from files"):
        load_image("HTTPS://example.com/a.jpg")
    with pytest.raises(ImageError, match=r"no such file \(photos are read from files, not from standard input"):
        load_image("-")
    with pytest.raises(ImageError, match="directory"):
        load_image(tmp_path)
    (tmp_path / "moved.jpg").symlink_to(tmp_path / "photos" / "gone.jpg")  # a dangling link names what it lost
    with pytest.raises(ImageError) as raised:
        load_image(tmp_path / "moved.jpg")
    assert str(raised.value).endswith(f"no such file (a link to '{tmp_path / 'photos' / 'gone.jpg'}', which is not there)")
    (tmp_path / "again.jpg").symlink_to(tmp_path / "moved.jpg")  # a chain: the end is named, not a link that is there
    with pytest.raises(ImageError) as raised:
        load_image(tmp_path / "again.jpg")
    assert str(raised.value).endswith(f"no such file (a link to '{tmp_path / 'photos' / 'gone.jpg'}', which is not there)")


def test_a_symlink_loop_says_the_systems_reason(tmp_path):
    """Not "corrupt or truncated": the file was never read."""
    (tmp_path / "loop.jpg").symlink_to("loop.jpg")
    with pytest.raises(ImageError) as caught:
        load_image(tmp_path / "loop.jpg")
    assert caught.value.reason == "cannot read the file (Too many levels of symbolic links)"


def test_pipes_and_devices_are_not_photos(tmp_path):
    """A named pipe would block the reader, and a device reports 0 bytes: neither is 'empty'."""
    import os

    os.mkfifo(tmp_path / "pipe.jpg")
    for path in (tmp_path / "pipe.jpg", "/dev/zero"):
        with pytest.raises(ImageError, match="not a regular file"):
            load_image(path)


def test_as_rgb_never_modifies_its_input(astronaut):
    gray = astronaut[:, :, 0].copy()
    out = as_rgb(gray)
    assert out.shape == astronaut.shape and (out[:, :, 2] == gray).all()
    assert as_rgb(astronaut) is astronaut
    floats = astronaut / 255.0
    assert np.abs(as_rgb(floats).astype(int) - astronaut).max() <= 1


def test_a_mapped_file_whose_path_is_not_utf8_does_not_stop_photos_loading(tmp_path):
    """The loader lists the process's libraries (to silence libtiff) from /proc/self/maps,
    which it read as UTF-8: one such mapping made every photo's load an UnicodeDecodeError."""
    mapped, text = os.fsencode(tmp_path) + b"/caf\xe9.bin", tmp_path / "notes.jpg"
    with open(mapped, "wb") as out:
        out.write(b"\0" * 4096)
    text.write_text("not a photo")
    script = ("import mmap, sys; from features.vision.images import ImageError, load_image\n"
              f"kept = open({mapped!r}, 'rb')\n"
              "held = mmap.mmap(kept.fileno(), 0, prot=mmap.PROT_READ)\n"
              f"try: load_image({str(text)!r})\n"
              "except ImageError as error: print(error.reason)")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert result.stdout == "not a recognised image format\n", result.stderr
