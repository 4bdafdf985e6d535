"""The network files shipped in ``features/vision/models`` and their checksums.

A model is trained on what these networks compute: the model card records their checksums,
and a model trained with other files (a network exported again, a Dask worker's host with
another checkout) is refused rather than fed other features.  The feature cache's folders
carry them for the same reason.
"""
import hashlib
from functools import lru_cache
from pathlib import Path

MODELS = Path(__file__).with_name("models")
#: What the detectors and embeddings read; the export scripts and licences beside them are not
#: networks.
NETWORK_SUFFIXES = (".onnx", ".svm")


def network_checksums():
    """``{file name: SHA-256}`` of every network file, hashed once per process (39 MB, about
    30 ms); a file that cannot be read counts as ``"unreadable"``, and a folder that cannot be
    listed (an install without it) holds none: checking never fails here, it tells."""
    return dict(hashed_networks())


@lru_cache(maxsize=1)
def hashed_networks():
    """:func:`network_checksums` as sorted pairs, computed once per process."""
    try:
        paths = sorted(MODELS.iterdir())
    except OSError:
        return ()
    found = []
    for path in paths:
        if path.suffix not in NETWORK_SUFFIXES:
            continue
        try:
            found.append((path.name, hashlib.sha256(path.read_bytes()).hexdigest()))
        except OSError:
            found.append((path.name, "unreadable"))
    return tuple(found)


def networks_key():
    """Eight hex digits that change with any network file (folder names, Dask's code check)."""
    return hashlib.sha256(repr(hashed_networks()).encode()).hexdigest()[:8]


def changed_networks(recorded):
    """Names of the network files whose checksum is not the one in ``recorded`` (a model
    card's ``networks``), including files only one side has."""
    current = network_checksums()
    return sorted(name for name in recorded.keys() | current.keys() if recorded.get(name) != current.get(name))
