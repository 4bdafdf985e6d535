"""img2recommender, in four wings; data flows one way, and imports only run down this list.

- ``vision``: photo -> faces (box and landmarks) -> regions -> feature blocks -> one feature
  row per face (``FaceFeatures``), and each face's quality;
- ``model``: labelled training data, the calibrated one-vs-rest classifier, its evaluation,
  model files, and ``PhotoModel``, the saved object that answers for a photo;
- ``products``: the catalog, products ranked per face, the account profile;
- ``app``: one photo end to end for the command line, its worker processes, the Dask
  cluster and annotated pictures.

``labels`` (what is predicted), ``numbers`` (a number written alike by the tools and the
page), ``files`` (writes that never leave half a file) and ``stops`` (Ctrl-C and SIGTERM in
the command-line tools) sit below all four.
"""
import hashlib
from pathlib import Path


def source_fingerprint():
    """A hash of this package's Python files (their names and bytes; about a millisecond).
    Hidden files are not code (an editor's lock file, ``.#module.py``, is a dangling link),
    and a file that cannot be read counts by its name alone: importing never fails here."""
    digest = hashlib.sha256()
    root = Path(__file__).parent
    for path in sorted(root.rglob("*.py")):
        name = path.relative_to(root).as_posix()
        if any(part.startswith(".") for part in name.split("/")):
            continue
        try:
            data = path.read_bytes()
        except OSError:
            data = b""
        digest.update(f"{name}\0{len(data)}\0".encode() + data)
    return digest.hexdigest()[:16]


#: The code this process runs, taken when it imports the package: a Dask worker started before
#: an update keeps the old modules, while its files on disk are new.  The Dask client compares
#: its own with the scheduler's and every worker's (features.app.cluster).
CODE_FINGERPRINT = source_fingerprint()
