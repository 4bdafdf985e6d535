"""Real photos for the tests: the shared datasets and scikit-image's astronaut; a real serve.py."""
import os
import shutil
import signal
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from skimage import data

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from features.model.dataset import default_data_dir  # noqa: E402

CELEBA = default_data_dir()
LFW = Path(os.environ.get("IMG2REC_LFW", ROOT.parent / "shared" / "datasets" / "lfw-photos")) / "images"
#: measured on, and one test's photo (a face the detector found twice), never trained on
#: A Mac's AppleDouble file as it writes one beside a photo on a USB stick: its header (magic,
#: version 2, "Mac OS X" filler) and no entries.
APPLE_DOUBLE_FILE = b"\x00\x05\x16\x07\x00\x02\x00\x00" + b"Mac OS X        " + b"\x00\x00"
WILD_DEV = Path(os.environ.get("IMG2REC_WILD_DEV", ROOT.parent / "shared" / "datasets" / "wild-dev")) / "images"


@pytest.fixture(scope="session")
def astronaut():
    image = data.astronaut()
    image.setflags(write=False)  # a test that modifies it in place fails loudly
    return image


@pytest.fixture(scope="session")
def celeba_labels():
    return pd.read_csv(CELEBA / "labels.csv", dtype={"identity": str})


@pytest.fixture(scope="session")
def celeba_paths(celeba_labels):
    return [str(CELEBA / "images" / name) for name in celeba_labels["filename"]]


@pytest.fixture(scope="session")
def lfw_paths():
    return sorted(str(p) for p in LFW.glob("*.jpg"))


@pytest.fixture(scope="session")
def feed(tmp_path_factory, lfw_paths, astronaut):
    """A folder of real photos as a feed holds them: news photos (one of two people), a photo
    without a person, and a broken file; read in name order."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("feed")
    for path in lfw_paths[:6] + [str(LFW / "Thaksin_Shinawatra_0005.jpg")]:
        shutil.copy(path, folder)
    Image.fromarray(astronaut).save(folder / "astronaut photo é.PNG")
    Image.fromarray(data.coffee()).save(folder / "coffee.jpg")
    (folder / "broken.jpg").write_bytes(b"<html>this is not a photo</html>")
    return folder


@pytest.fixture(scope="session")
def no_face_image():
    """A real photo without a person: scikit-image's coffee cup."""
    return data.coffee()


@pytest.fixture(scope="session")
def two_people(astronaut, celeba_paths):
    """Two real faces in one photo: the astronaut beside a CelebA portrait."""
    from features.vision.images import load_image

    portrait = load_image(celeba_paths[0])
    scaled = np.kron(portrait, np.ones((4, 4, 1), dtype=np.uint8))[:, :, :3]
    height = max(astronaut.shape[0], scaled.shape[0])
    canvas = np.full((height, astronaut.shape[1] + scaled.shape[1] + 40, 3), 128, np.uint8)
    canvas[:astronaut.shape[0], :astronaut.shape[1]] = astronaut
    canvas[:scaled.shape[0], astronaut.shape[1] + 40:] = scaled
    return canvas


@pytest.fixture(scope="session")
def small_features(celeba_labels, celeba_paths):
    """Cheap real features (HOG + colour) of 600 CelebA photos with a face, labels, people."""
    from features.vision.transformer import FaceFeatures

    X = FaceFeatures(face_descriptor=False, cnn=False, n_jobs=2).fit().transform(celeba_paths[:600])
    found = ~np.isnan(X).all(axis=1)
    table = celeba_labels.iloc[:600][found]
    return X[found], table[["hat", "beard", "eyewear"]].to_numpy(), table["identity"].to_numpy()


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """A model trained through the real train.py on the first 500 shared photos."""
    import subprocess

    out = tmp_path_factory.mktemp("artifacts")
    command = [sys.executable, str(ROOT / "train.py"), "--limit", "500", "--out", str(out),
               "--n-splits", "3", "--n-estimators", "60", "--n-jobs", "2"]
    started = time.time()
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return {"out": out, "model": out / "model.joblib", "stdout": result.stdout, "command": command,
            "seconds": time.time() - started}


@pytest.fixture
def small_disk(tmp_path):
    """A folder with one page (4 KiB) of room, and the ``preexec_fn`` of a process writing
    there: a 64 KiB tmpfs filled but for a page when we may mount one, else a file size
    limit (RLIMIT_FSIZE, with SIGXFSZ ignored: a write past it fails as on a full disk)."""
    import resource
    import signal
    import subprocess

    folder = tmp_path / "disk"
    folder.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)],
                      capture_output=True).returncode != 0:
        def limited():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        yield folder, limited
        return
    try:
        (folder / "filler").write_bytes(bytes(56 * 1024))  # with the caller's file of a page: one left
        yield folder, None
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def free_port():
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serving(model, log, *flags, port=None, **popen):
    """A real ``serve.py`` process on ``port`` (a free local one by default), stopped
    afterwards; yields its URL and the process (``popen``: more arguments of its Popen, such
    as ``env``).  A port again is the server restarted, as a page that stays open sees it."""
    import subprocess

    import httpx

    url = f"http://127.0.0.1:{port or free_port()}"
    command = [sys.executable, str(ROOT / "serve.py"), "--model", str(model), "--port", url.rsplit(":", 1)[1],
               "--workers", "2", *flags]
    with open(log, "w") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, cwd=ROOT, **popen)
    try:
        deadline = time.time() + 120  # workers load the model before the port opens: a few seconds
        while True:
            assert process.poll() is None, Path(log).read_text()
            assert time.time() < deadline, "serve.py did not answer within 120 s"
            try:
                if httpx.get(url + "/api/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield url, process
    finally:
        workers = children(process.pid)
        process.terminate()
        process.wait(timeout=30)
        deadline = time.time() + 30
        while any(map(alive, workers)) and time.time() < deadline:
            time.sleep(0.2)
        assert not any(map(alive, workers)), "serve.py left worker processes behind"


def black_and_white(image):
    """A colour photo as a black-and-white print of it, still RGB (as a greyscale file is read)."""
    import cv2

    return cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)


def children(pid):
    """Process ids of a process's children (Linux); none when it has ended."""
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def alive(pid):
    """Whether a process runs (a zombie waiting to be reaped does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def as_in_a_terminal():
    """A child's ``preexec_fn``: SIGINT and SIGHUP handled as in a terminal, where a runner
    started in the background or under nohup ignores them (and so would the child)."""
    for number in (signal.SIGINT, signal.SIGHUP):
        signal.signal(number, signal.SIG_DFL)


def ended(pids, seconds=10):
    """Whether all these processes end within ``seconds``."""
    deadline = time.time() + seconds
    while any(map(alive, pids)) and time.time() < deadline:
        time.sleep(0.1)
    return not any(map(alive, pids))


@pytest.fixture(scope="session")
def server(trained, tmp_path_factory):
    """serve.py on the session's trained model, with its default limits."""
    with serving(trained["model"], tmp_path_factory.mktemp("serve") / "serve.log") as (url, _):
        yield url
