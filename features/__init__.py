"""img2recommender, in four wings; data flows one way, and imports only run down this list.

- ``vision``: photo -> faces (box and landmarks) -> regions -> feature blocks -> one feature
  row per face (``FaceFeatures``), and each face's quality;
- ``model``: labelled training data, the calibrated one-vs-rest classifier, its evaluation,
  model files, and ``PhotoModel``, the saved object that answers for a photo;
- ``products``: the catalog, products ranked per face, the account profile;
- ``app``: one photo end to end for the command line, its worker processes, the Dask
  cluster and annotated pictures.

``labels`` (what is predicted), ``files`` (writes that never leave half a file) and
``stops`` (Ctrl-C and SIGTERM in the command-line tools) sit below all four.
"""
import hashlib
from pathlib import Path


def source_fingerprint():
    """A hash of this package's Python files (their names and bytes): 37 small files, read in
    about a millisecond."""
    digest = hashlib.sha256()
    root = Path(__file__).parent
    for path in sorted(root.rglob("*.py")):
        digest.update(f"{path.relative_to(root).as_posix()}\0{path.stat().st_size}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


#: The code this process runs, taken when it imports the package: a Dask worker started before
#: an update keeps the old modules, while its files on disk are new.  The Dask client compares
#: its own with the scheduler's and every worker's (features.app.cluster).
CODE_FINGERPRINT = source_fingerprint()
