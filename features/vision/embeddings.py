"""Frozen CNN embeddings: dlib's ResNet face descriptor and an ImageNet EfficientNet-Lite0.

Both networks run as ONNX graphs on onnxruntime (see ``features/vision/models/README.md``), are
loaded once per process and are never trained here.
"""
import hashlib
import os
import platform
from functools import lru_cache
from pathlib import Path

import dlib
import numpy as np

from features.files import write_atomically
from features.vision.networks import MODELS, network_checksums

FACE_DESCRIPTOR_MODEL = MODELS / "dlib_face_descriptor.onnx"
FACE_DESCRIPTOR_SIZE = 128
#: dlib's chip: 150x150 pixels, 25% padding around the landmarks, mean RGB subtracted, / 256.
FACE_CHIP_SIZE = 150
FACE_CHIP_PADDING = 0.25
DLIB_MEAN_RGB = np.array([122.782, 117.001, 104.298], dtype=np.float32)
CNN_MODEL = MODELS / "efficientnet_lite0.onnx"
CNN_SIZE = 1280
#: Crops per network call. One at a time is fastest on CPU (benchmarks/cnn_runtimes.py:
#: 13.3 ms per image alone, 15.8 ms in batches of 8) and holds the least memory.
CNN_BATCH = 1


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


def run_network(path, images, *, scale, shift, batch=CNN_BATCH):
    """Outputs of the ONNX graph at ``path`` for uint8 RGB ``images`` (one shape), fed as
    NCHW float32 ``image * scale - shift`` in batches of ``batch``."""
    session = onnx_session(path)
    name = session.get_inputs()[0].name
    out = []
    for start in range(0, len(images), batch):
        chunk = np.stack(images[start:start + batch]).astype(np.float32) * np.float32(scale)
        out.append(session.run(None, {name: (chunk - shift).transpose(0, 3, 1, 2)})[0])
    return np.concatenate(out)


def face_chip(image, face):
    """dlib's own 150x150 chip of ``face``, aligned on its 68 landmarks."""
    rect = dlib.rectangle(*face.box)
    shape = dlib.full_object_detection(rect, [dlib.point(int(x), int(y)) for x, y in face.landmarks])
    return dlib.get_face_chip(image, shape, size=FACE_CHIP_SIZE, padding=FACE_CHIP_PADDING)


def face_descriptor(image, face):
    """dlib's 128-D identity descriptor of one face (unit-ish length), as float32.

    The same numbers as ``dlib.face_recognition_model_v1.compute_face_descriptor`` (3e-7 apart
    at most as measured, under 1e-5 tested) at a tenth of its time: the network is dlib's,
    converted to ONNX.
    """
    return run_network(FACE_DESCRIPTOR_MODEL, [face_chip(image, face)],
                       scale=1 / 256, shift=DLIB_MEAN_RGB / 256)[0]


def cnn_embeddings(crops):
    """EfficientNet-Lite0 embeddings (1280-D, global average pool) of 224x224 RGB crops.

    Parameters
    ----------
    crops : sequence of ndarray of shape (224, 224, 3)
        uint8 RGB, scaled to [-1, 1] for the network.

    Returns
    -------
    ndarray of shape (len(crops), 1280), float32
    """
    if len(crops) == 0:
        return np.zeros((0, CNN_SIZE), dtype=np.float32)
    return run_network(CNN_MODEL, crops, scale=1 / 127.5, shift=np.float32(1.0))
