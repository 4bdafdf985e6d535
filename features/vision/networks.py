"""The network files shipped in ``features/vision/models``, their checksums and their
onnxruntime sessions.

A model is trained on what these networks compute: the model card records their checksums,
and a model trained with other files (a network exported again, a Dask worker's host with
another checkout) is refused rather than fed other features.  The feature cache's folders
carry them for the same reason.
"""
import hashlib
import os
import platform
from functools import lru_cache
from pathlib import Path

from features.files import write_atomically

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


@lru_cache(maxsize=None)
def onnx_session(path):
    """onnxruntime session for the graph at ``path``, one per process.

    onnxruntime's full graph optimisation takes 100-200 ms at every start, so the optimised
    graph is kept in :func:`optimised_copy`'s cache and later sessions open that as is.  The
    copy is specific to this CPU and onnxruntime version, which its name encodes; a copy that
    will not load is replaced, and without a writable cache every start optimises.
    """
    import onnxruntime

    copy = optimised_copy(path, onnxruntime.__version__)
    if copy.exists():
        try:
            return open_session(copy, optimise=False)
        except Exception:  # truncated or foreign copy: optimise again
            pass
    opened = []
    try:
        for stale in copy.parent.glob(f"{Path(path).stem}-*.onnx"):  # older models or versions
            stale.unlink(missing_ok=True)
        write_atomically(copy, lambda staged: opened.append(open_session(path, save_to=staged)),
                         durable=False)
    except Exception:  # no writable cache (a broken model fails again just below)
        return opened[0] if opened else open_session(path)
    return opened[0]


def open_session(path, *, optimise=True, save_to=None):
    """A one-thread onnxruntime session, optionally saving its optimised graph."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    # One thread per process: parallelism comes from processes, which scale better here.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # no warning that a saved optimised graph is CPU-specific
    if not optimise:
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    if save_to is not None:
        options.optimized_model_filepath = str(save_to)
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def optimised_copy(path, version):
    """Where the optimised graph of the network at ``path`` (one of ``features/vision/models``)
    for onnxruntime ``version`` on this CPU lives: ``$XDG_CACHE_HOME/img2recommender`` (default
    ``~/.cache``).  Keyed by the network's content, as the model card records it: a network
    exported again with its size and time kept (``cp -p``) must not open the old graph."""
    checksum = network_checksums().get(Path(path).name, "")  # none: the session fails to open it, and says so
    key = hashlib.sha256(f"{checksum} {version} {cpu_flags()}".encode())
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "img2recommender"
    return cache / f"{Path(path).stem}-{key.hexdigest()[:16]}.onnx"


@lru_cache(maxsize=None)
def cpu_flags():
    """The CPU's model and instruction sets (the optimised graph depends on them)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return " ".join(sorted({line for line in lines if line.startswith(("flags", "model name"))}))
    except OSError:
        return platform.processor() or platform.machine()
