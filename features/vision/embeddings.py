"""Frozen CNN embeddings: dlib's ResNet face descriptor and an ImageNet EfficientNet-Lite0.

Both networks run as ONNX graphs on onnxruntime (see ``features/vision/models/README.md``), are
loaded once per process and are never trained here.
"""
import dlib
import numpy as np

from features.vision.networks import MODELS, onnx_session

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


def run_network(path, images, *, scale, shift):
    """Outputs of the ONNX graph at ``path`` for uint8 RGB ``images`` (one shape), fed as
    NCHW float32 ``image * scale - shift`` in batches of ``CNN_BATCH``."""
    session = onnx_session(path)
    name = session.get_inputs()[0].name
    out = []
    for start in range(0, len(images), CNN_BATCH):
        chunk = np.stack(images[start:start + CNN_BATCH]).astype(np.float32) * np.float32(scale)
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
