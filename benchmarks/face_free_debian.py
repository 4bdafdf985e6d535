"""Face-free photos from Debian packages, for counting false faces (``detection.py --face-free``).

The sample images of scikit-image and scikit-learn are few; Debian ships more photos without a
person: Tux Paint's stamps (animals, fruit, flowers, tools, vehicles, hats without heads, most
of them small cut-outs), OpenCV's sample data and three desktops' wallpapers.  This script
downloads those packages with ``apt-get download`` (no install, no root), unpacks them and
writes every usable picture as a JPEG into FOLDER, transparent stamps laid on white and large
pictures shrunk to 1600 px.  Pictures with a person in them were left out by eye (the list
below).  The pictures keep their packages' licences; they are for measuring, not for the
repository.

    python benchmarks/face_free_debian.py FOLDER
"""
import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

PACKAGES = ("gnome-backgrounds", "mate-backgrounds", "ukui-wallpapers", "tuxpaint-stamps-default",
            "opencv-doc")
WALLPAPERS = ("gnome-backgrounds", "mate-backgrounds", "ukui-wallpapers")
STAMPS = "usr/share/tuxpaint/stamps"
OPENCV_DATA = "usr/share/doc/opencv-doc/examples/data"
#: Stamp folders left out: drawn symbols and letters, people, cartoons and seasonal pictures
#: (Santa Claus, costumes), which are drawings rather than photos.
STAMP_SKIP = ("symbols", "people", "fantasy", "seasonal", "cartoon")
#: Stamps and OpenCV samples with a person in them.
PEOPLE = ("fireman240a", "paratrooper", "lena", "messi5", "aero1", "aero3", "basketball1",
          "basketball2", "left0", "left1", "right0", "right1")
PICTURES = (".jpg", ".jpeg", ".png", ".webp")
SMALLEST = 64  # pixels on the short side: smaller stamps are icons
LARGEST = 1600  # pixels on the long side


def sources(root):
    """Pictures of the unpacked packages under ``root`` worth counting false faces on."""
    found = [p for package in WALLPAPERS for p in sorted((root / package).rglob("*"))
             if p.suffix.lower() in PICTURES]
    found += [p for p in sorted((root / "tuxpaint-stamps-default" / STAMPS).rglob("*.png"))
              if not any(part in str(p) for part in STAMP_SKIP)]
    found += [p for p in sorted((root / "opencv-doc" / OPENCV_DATA).glob("*"))
              if p.suffix.lower() in (".jpg", ".png")]
    return [p for p in found if not p.stem.startswith(PEOPLE)]


def flattened(picture):
    """A BGR picture on white where it was transparent, at most :data:`LARGEST` px long."""
    if picture.ndim == 2:
        picture = cv2.cvtColor(picture, cv2.COLOR_GRAY2BGR)
    if picture.shape[2] == 4:
        alpha = picture[..., 3:] / 255.0
        picture = (picture[..., :3] * alpha + 255 * (1 - alpha)).astype(np.uint8)
    scale = LARGEST / max(picture.shape[:2])
    return cv2.resize(picture, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else picture


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="where the JPEGs are written")
    args = parser.parse_args(argv)
    args.folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        subprocess.run(["apt-get", "download", *PACKAGES], cwd=work, check=True)
        for deb in work.glob("*.deb"):
            subprocess.run(["dpkg-deb", "-x", deb.name, deb.name.split("_")[0]], cwd=work, check=True)
        written = 0
        for path in sources(work):
            picture = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if picture is None or min(picture.shape[:2]) < SMALLEST:
                continue
            name = "_".join(path.relative_to(work).parts[-3:]).replace(" ", "_")
            cv2.imwrite(str(args.folder / f"{Path(name).stem}.jpg"), flattened(picture),
                        [cv2.IMWRITE_JPEG_QUALITY, 92])
            written += 1
    print(f"{written} face-free pictures in {args.folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
