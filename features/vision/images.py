"""Photo loading: any common format to an upright 8-bit RGB array, or a one-line error."""
import ctypes
import functools
import io
import os
import re
import warnings
from pathlib import Path

import numpy as np
import pi_heif
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

# HEIC, an iPhone's photos as it takes them (the default since iOS 11), read as Pillow's own
# formats are: a folder of them was "no photos found", each given alone "not a recognised
# image format".  pi-heif: libheif's decoder alone (pillow-heif's wheel adds an encoder).
pi_heif.register_heif_opener()

#: Photos with more pixels than this are refused before decoding (decompression bombs).
MAX_PIXELS = 50_000_000
#: The limit in words, with what to do (a phone's 108-megapixel photo was called "a possible
#: decompression bomb").
TOO_LARGE = f"{MAX_PIXELS / 1e6:.0f} megapixels: save it smaller"
#: Formats Pillow opens that are not read: it renders EPS by running Ghostscript, a program
#: with a record of code-execution flaws, on any file that says it is PostScript, whatever
#: its name (a ``photo.jpg``); no photo comes as PostScript.
UNREAD_FORMATS = frozenset({"EPS"})
#: Every suffix read as a photo when a folder is scanned (Pillow decodes each of them).
PHOTO_SUFFIXES = frozenset({".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".avif", ".heic", ".heif", ".gif",
                            ".bmp", ".tif", ".tiff"})
#: Files a system leaves in a folder, which no one put in a feed (Windows' thumbnails and folder
#: settings, a Mac's folder icon): not named among a folder's files that are not photos.
SYSTEM_FILES = frozenset({"Thumbs.db", "desktop.ini", "Icon\r"})


class ImageError(ValueError):
    """A photo that cannot be used; ``str()`` is one line naming the file and the reason."""

    def __init__(self, path, reason):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


def load_image(path):
    """Read a photo file as an upright ``(H, W, 3)`` uint8 RGB array.

    EXIF orientation is applied, grayscale, CMYK, palette and 16-bit photos are converted,
    transparency is flattened onto white, an animated GIF gives its first frame, and the
    colours of a photo in a wider colour space than sRGB are converted to sRGB
    (:func:`srgb_in_place`).

    Raises
    ------
    ImageError
        For a missing, unreadable, empty, corrupt or oversized file, or one that is not a
        regular file.
    """
    path = Path(path)
    quiet_libtiff()
    try:
        if path.exists() and not path.is_file() and not path.is_dir():  # reading a pipe would block
            raise ImageError(path, "not a regular file (a device, pipe or socket)")
        if os.path.getsize(path) == 0:
            raise ImageError(path, "empty file (0 bytes)")
        # a photo is read or refused in one line: Pillow's warnings (its own bomb check, at its
        # larger limit, which ours says; "Truncated File Read" of an EXIF block cut short) were
        # two lines of Python on stderr, naming no photo
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img = Image.open(path, formats=read_formats())
            with img:
                width, height = img.size
                if width * height > MAX_PIXELS:
                    raise ImageError(path, f"{width}x{height} pixels is over the limit of {TOO_LARGE}")
                if img.format != "HEIF":  # a HEIF opens at its primary image, not always its first
                    img.seek(0)
                img.load()
                upright = ImageOps.exif_transpose(img)  # a copy, always
                if upright.mode in ("P", "PA"):  # a palette's colours, with their transparency: converted too
                    upright = upright.convert("RGBA")
                srgb_in_place(upright, img.info.get("icc_profile"))
                return pil_to_rgb(upright)
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:  # Pillow's own check, at open: its words give the size
        size = re.search(r"\((\d+) pixels\)", str(exc))
        raise ImageError(path, f"{int(size[1]) / 1e6:.0f} megapixels is over the limit of {TOO_LARGE}" if size
                         else f"over the limit of {TOO_LARGE}") from None
    except FileNotFoundError:
        raise ImageError(path, missing(path)) from None
    except IsADirectoryError:
        raise ImageError(path, "is a directory, not a photo") from None
    except PermissionError:
        raise ImageError(path, "permission denied") from None
    except UnidentifiedImageError:
        raise ImageError(path, unrecognised(path)) from None
    # RuntimeError: the AVIF decoder's ("Failed to decode image: Missing or empty image item")
    except (OSError, SyntaxError, ValueError, EOFError, RuntimeError) as exc:
        if isinstance(exc, OSError) and exc.strerror:  # the system's reason (a symlink loop), not the decoder's
            raise ImageError(path, f"cannot read the file ({exc.strerror})") from None
        if "truncated" in str(exc).lower():  # Pillow's words, "image file is truncated (21 bytes not processed)"
            raise ImageError(path, "truncated: the file ends before the picture does") from None
        # on one line: libheif's reasons end with a line break
        raise ImageError(path, f"corrupt or truncated image ({' '.join(str(exc).split())})") from None


#: A path that starts as a web address does (``https://host/a.jpg``, its ``//`` made ``/`` by
#: :class:`~pathlib.Path`).
WEB_ADDRESS = re.compile(r"^[a-z][a-z0-9+.-]+:/", re.IGNORECASE)


def missing(path):
    """Why ``path`` was not found, with what was likely meant where the name says it: ``-``
    (standard input, as many tools read it) and a web address are read as file names."""
    if str(path) == "-":
        return "no such file (photos are read from files, not from standard input: save it to a file first)"
    if WEB_ADDRESS.match(str(path)):
        return "no such file (a web address? photos are read from files: download it first)"
    if os.path.islink(path):  # a dangling link (or a chain of links): what is missing is at its end
        return f"no such file (a link to {os.path.realpath(path)!r}, which is not there)"
    return "no such file"


#: The first bytes of the photo formats no decoder takes a file of unless it can read it: a
#: TIFF of 64-bit samples (scikit-image's multipage_rgb.tif) or a JPEG whose header is garbled
#: was "not a recognised image format".
SIGNATURES = {b"\xff\xd8\xff": "JPEG", b"\x89PNG\r\n\x1a\n": "PNG", b"GIF8": "GIF", b"II*\x00": "TIFF",
              b"MM\x00*": "TIFF"}
#: The start of a Mac's AppleDouble file: ``._IMG_0001.JPG`` holds the Finder's data of
#: ``IMG_0001.JPG`` beside it, written wherever a Mac copies to a disk that is not its own (a
#: USB stick, a network share), so a feed copied from a Mac has one beside every photo.
APPLE_DOUBLE = b"\x00\x05\x16\x07"
#: An SVG file's start: a byte-order mark, an XML declaration, comments and a doctype may come
#: before its root element (an HTML page that holds an <svg> is not one).
SVG_START = re.compile(rb"(\xef\xbb\xbf)?\s*(<\?xml[^>]*>\s*)?(<!--.*?-->\s*|<!doctype[^>]*>\s*)*<svg[\s>/]",
                       re.IGNORECASE | re.DOTALL)


def unrecognised(path):
    """Why no decoder took a file, from its first bytes: an SVG drawing (a browser shows it as
    an image, so the page sends it), a photo format's file that cannot be decoded, or none."""
    try:
        with open(path, "rb") as file:
            start = file.read(4096)
    except OSError:  # gone since: nothing more to say
        start = b""
    if SVG_START.match(start):
        return "an SVG drawing, not a photo"
    if start.startswith(APPLE_DOUBLE):
        return "a Mac's AppleDouble file (Finder data kept beside a photo), not a photo"
    if name := next((name for signature, name in SIGNATURES.items() if start.startswith(signature)), None):
        return f"a {name} file that cannot be decoded (corrupt, or a kind of {name} not read)"
    return "not a recognised image format"


def apple_double(path):
    """Whether ``path`` is a Mac's AppleDouble file (named ``._...`` and starting with
    :data:`APPLE_DOUBLE`): a folder's photos leave it out, as the Mac shows it nowhere; given
    by name, it is an error saying what it is."""
    if not Path(path).name.startswith("._") or not os.path.isfile(path):  # a pipe would block the read
        return False
    try:
        with open(path, "rb") as file:
            return file.read(len(APPLE_DOUBLE)) == APPLE_DOUBLE
    except OSError:  # said when it is read as a photo
        return False


@functools.cache
def quiet_libtiff():
    """Silence the libtiff that Pillow loaded: for a corrupt TIFF it printed its own lines on
    stderr ("LZWDecode: Not enough data at scanline 0"), naming no photo, before the one line
    of :class:`ImageError` that does.  Where the process's libraries cannot be listed (not
    Linux) they are still printed."""
    try:
        maps = Path("/proc/self/maps").read_bytes()  # bytes: a mapped file's path need not be UTF-8
    except OSError:
        return
    # a line: address, permissions, offset, device, inode, then the path (spaces and all)
    paths = {fields[5] for fields in (line.split(maxsplit=5) for line in maps.splitlines()) if len(fields) == 6}
    for path in paths:
        if not re.match(rb"libtiff[-.]", os.path.basename(path)):
            continue
        try:
            tiff = ctypes.CDLL(os.fsdecode(path))  # the library already loaded, not a second copy
            tiff.TIFFSetErrorHandler(None)
            tiff.TIFFSetWarningHandler(None)
        except (OSError, AttributeError):  # deleted since it was loaded, or not libtiff: its lines stay
            continue


def read_formats():
    """The formats :func:`load_image` reads, in the order they are tried: Pillow's, less
    :data:`UNREAD_FORMATS`, then HEIF, which claims any file of the HEIF family (an AVIF
    whose brand is ``mif1``, which its decoder cannot read, was refused)."""
    Image.init()
    return sorted((name for name in Image.OPEN if name not in UNREAD_FORMATS), key=lambda name: name == "HEIF")


#: Bump when :func:`load_image` gives other pixels for some file than it did (the feature
#: cache's key holds it): 2, the colours of a wider colour space converted to sRGB.
DECODE_VERSION = 2
#: Colours a profile is tried on (6 levels per channel, greys and primaries among them): one
#: that moves none of them by more than :data:`SRGB_WITHIN` is sRGB's, as the sRGB profiles
#: of wild-dev's photos (cameras', Facebook's 524-byte "c2") are, where Display P3 moves one
#: by 102 levels.
PROBE = np.array(np.meshgrid(*[np.linspace(0, 255, 6).round()] * 3, indexing="ij"), dtype=np.uint8).reshape(3, 1, -1).T
SRGB_WITHIN = 1


def srgb_in_place(img, profile):
    """Convert the colours of the RGB or RGBA Pillow ``img`` to sRGB in place (``img`` is
    :func:`load_image`'s own upright copy: a new image cost a 12-megapixel photo 30-50 ms
    more), given the photo's ICC ``profile`` (bytes, or None).  A photo in a wider colour
    space (an iPhone's Display P3, a camera's Adobe RGB) read as sRGB looks duller than it is,
    on screen and to the model, whose training photos carry no profile: in wild-dev, the
    largest faces of its 10 such photos moved by up to 0.13 in a label's probability.  A
    photo without a profile, with an sRGB one, a broken one, or one of another colour space
    (grey, CMYK: its pixels are converted as Pillow converts them) is left as it is."""
    if profile and profile[16:20] == b"RGB " and img.mode in ("RGB", "RGBA"):
        if (transform := srgb_transform(profile, img.mode)) is not None:
            ImageCms.applyTransform(img, transform, inPlace=True)


@functools.lru_cache(maxsize=16)  # a feed's photos share a few profiles; building one takes 2 ms
def srgb_transform(profile, mode):
    """The transform of ``mode`` pixels from the RGB ICC ``profile`` to sRGB (alpha kept), or
    None where none is needed (it moves no colour of :data:`PROBE` by more than
    :data:`SRGB_WITHIN`: primaries and tone curve both sRGB's) or the profile cannot be read."""
    try:
        transform = ImageCms.buildTransform(ImageCms.ImageCmsProfile(io.BytesIO(profile)),
                                            ImageCms.createProfile("sRGB"), mode, mode)
        probe = Image.fromarray(PROBE).convert(mode)
        moved = np.abs(np.asarray(ImageCms.applyTransform(probe, transform), dtype=int)[..., :3] - PROBE).max()
    except (ImageCms.PyCMSError, OSError, TypeError, ValueError):  # a broken profile: the pixels as they are
        return None
    return transform if moved > SRGB_WITHIN else None


def pil_to_rgb(img):
    """Convert a decoded Pillow image of any mode to an ``(H, W, 3)`` uint8 RGB array."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        wide = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if img.mode.startswith("I;16") or wide.max() > 255 else 255.0
        gray = np.clip(wide * (255.0 / peak) + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if img.mode == "F":  # 0 to 1, or 0 to 255: read as any float array is
        return as_rgb(np.asarray(img))
    if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    return np.ascontiguousarray(np.asarray(img.convert("RGB"), dtype=np.uint8))


def as_rgb(image):
    """Return ``image`` (a path or an array) as an ``(H, W, 3)`` uint8 RGB array, not a copy
    when it already is one; arrays are never modified."""
    if isinstance(image, (str, os.PathLike)):
        return load_image(image)
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    elif array.ndim == 3 and array.shape[2] == 4:
        array = array[:, :, :3]
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"expected an (H, W), (H, W, 3) or (H, W, 4) image, got {array.shape}")
    if array.dtype != np.uint8:
        if np.issubdtype(array.dtype, np.floating) and array.max(initial=0) <= 1.0:
            array = array * 255.0
        array = np.clip(array, 0, 255).astype(np.uint8)
    return array
