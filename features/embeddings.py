"""Frozen CNN embeddings: dlib's ResNet face descriptor and an ImageNet EfficientNet-Lite0.

Both networks are loaded once per process and never trained here.
"""
from functools import lru_cache
from pathlib import Path

import dlib
import numpy as np

from features.faces import model_path

FACE_DESCRIPTOR_SIZE = 128
CNN_SIZE = 1280
#: Crops per network call. One at a time is fastest on CPU (benchmarks/cnn_runtimes.py:
#: 13.3 ms per image alone, 15.8 ms in batches of 8) and holds the least memory.
CNN_BATCH = 1
CNN_MODEL = Path(__file__).with_name("models") / "efficientnet_lite0.onnx"


@lru_cache(maxsize=None)
def face_encoder():
    return dlib.face_recognition_model_v1(model_path("dlib_face_recognition_resnet_model_v1.dat"))


@lru_cache(maxsize=None)
def cnn_session():
    import onnxruntime

    options = onnxruntime.SessionOptions()
    # One thread per process: parallelism comes from processes, which scale better here.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(CNN_MODEL), options,
                                        providers=["CPUExecutionProvider"])


def face_descriptor(image, face):
    """dlib's 128-D identity descriptor of one face (unit-ish length), as float32.

    The network sees dlib's own 150x150 chip aligned on the 68 landmarks.
    """
    rect = dlib.rectangle(*face.box)
    shape = dlib.full_object_detection(rect, [dlib.point(int(x), int(y)) for x, y in face.landmarks])
    return np.asarray(face_encoder().compute_face_descriptor(image, shape), dtype=np.float32)


def cnn_embeddings(crops):
    """EfficientNet-Lite0 embeddings (1280-D, global average pool) of 224x224 RGB crops.

    Parameters
    ----------
    crops : sequence of ndarray of shape (224, 224, 3)
        uint8 RGB; they go through the network in batches of :data:`CNN_BATCH`.

    Returns
    -------
    ndarray of shape (len(crops), 1280), float32
    """
    if len(crops) == 0:
        return np.zeros((0, CNN_SIZE), dtype=np.float32)
    out = []
    for start in range(0, len(crops), CNN_BATCH):
        batch = np.stack(crops[start:start + CNN_BATCH]).transpose(0, 3, 1, 2)
        batch = batch.astype(np.float32) * np.float32(1 / 127.5) - np.float32(1.0)
        out.append(cnn_session().run(None, {"image": batch})[0])
    return np.concatenate(out)
