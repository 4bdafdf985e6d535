"""Frozen CNN embeddings: sizes, determinism, and identity closeness on real photos."""
import os
import shutil
import subprocess
import sys

import dlib
import numpy as np
import pytest

from features.vision.embeddings import CNN_SIZE, FACE_DESCRIPTOR_SIZE, cnn_embeddings, face_chip, face_descriptor
from features.vision.networks import onnx_session
from features.vision.faces import detect_faces, model_path
from features.vision.images import load_image
from features.vision.regions import extract_regions
from conftest import ROOT


def largest(path):
    image = load_image(path)
    faces = detect_faces(image)
    return (image, faces[0]) if faces else None


@pytest.fixture(scope="module")
def identity_pairs(celeba_labels, celeba_paths):
    """Twelve people with two photos each, faces found in both."""
    paths = dict(zip(celeba_labels["filename"], celeba_paths))
    pairs = []
    for _, group in celeba_labels.groupby("identity", sort=True):
        if len(group) < 2:
            continue
        found = [largest(paths[name]) for name in group["filename"][:2]]
        if all(found):
            pairs.append(found)
        if len(pairs) == 12:
            return pairs
    raise AssertionError("not enough identities with two photos")


def test_face_descriptor_size_and_determinism(astronaut):
    face = detect_faces(astronaut)[0]
    first, second = face_descriptor(astronaut, face), face_descriptor(astronaut, face)
    assert first.shape == (FACE_DESCRIPTOR_SIZE,) and first.dtype == np.float32
    assert np.array_equal(first, second)


def test_onnx_face_descriptor_matches_dlib(identity_pairs, lfw_paths):
    """The converted network gives dlib's own numbers, on aligned and unaligned photos."""
    encoder = dlib.face_recognition_model_v1(model_path("dlib_face_recognition_resnet_model_v1.dat"))
    faces = [face for person in identity_pairs for face in person]
    faces += [found for found in map(largest, lfw_paths[:12]) if found]
    assert len(faces) > 30
    for image, face in faces:
        expected = np.asarray(encoder.compute_face_descriptor(face_chip(image, face)))
        assert np.abs(face_descriptor(image, face) - expected).max() < 1e-5


def test_cnn_embedding_size_and_determinism(astronaut):
    context = extract_regions(astronaut, detect_faces(astronaut)[0], regions=("context",))["context"]
    single = cnn_embeddings([context])
    batch = cnn_embeddings([context, context[:, ::-1].copy(), context])
    assert single.shape == (1, CNN_SIZE) and batch.shape == (3, CNN_SIZE)
    assert np.allclose(single[0], batch[0], atol=1e-4) and np.allclose(batch[0], batch[2], atol=1e-4)
    assert cnn_embeddings([]).shape == (0, CNN_SIZE)


def test_same_person_closer_than_strangers(identity_pairs):
    descriptors = [[face_descriptor(*pair) for pair in person] for person in identity_pairs]
    same = np.mean([np.linalg.norm(a - b) for a, b in descriptors])
    strangers = np.mean([np.linalg.norm(descriptors[i][0] - descriptors[j][1])
                         for i in range(len(descriptors)) for j in range(len(descriptors)) if i != j])
    assert same < 0.8 * strangers

    contexts = [[extract_regions(*pair, regions=("context",))["context"] for pair in person]
                for person in identity_pairs]
    embedded = [cnn_embeddings(person) for person in contexts]
    same = np.mean([np.linalg.norm(e[0] - e[1]) for e in embedded])
    strangers = np.mean([np.linalg.norm(embedded[i][0] - embedded[j][1])
                         for i in range(len(embedded)) for j in range(len(embedded)) if i != j])
    assert same < strangers


def test_optimised_graph_cache_is_written_reused_and_repaired(tmp_path, monkeypatch, astronaut):
    """The optimised copy of a network is written once, opened by later sessions, replaced
    when truncated, and every session gives the same embedding."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    context = extract_regions(astronaut, detect_faces(astronaut)[0], regions=("context",))["context"]
    embeddings, stamps = [], []
    try:
        for damage in (False, False, True):
            onnx_session.cache_clear()
            copies = list((tmp_path / "img2recommender").glob("efficientnet_lite0-*.onnx"))
            if damage:
                copies[0].write_bytes(copies[0].read_bytes()[:1000])
            embeddings.append(cnn_embeddings([context])[0])
            copies = list((tmp_path / "img2recommender").glob("efficientnet_lite0-*.onnx"))
            assert len(copies) == 1 and copies[0].stat().st_size > 1_000_000
            stamps.append((copies[0].stat().st_ino, copies[0].stat().st_mtime_ns))
    finally:
        onnx_session.cache_clear()  # later tests open sessions from the real cache
    assert stamps[1] == stamps[0]  # the second session opened the copy, it did not write it again
    assert np.allclose(embeddings[0], embeddings[1], atol=1e-5)
    assert np.allclose(embeddings[0], embeddings[2], atol=1e-5)
    assert not list((tmp_path / "img2recommender").glob(".*"))  # no staged file left


def test_without_a_writable_cache_the_graph_is_optimised_each_time(tmp_path, monkeypatch, astronaut):
    context = extract_regions(astronaut, detect_faces(astronaut)[0], regions=("context",))["context"]
    reference = cnn_embeddings([context])[0]  # the session of the usual cache
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    try:
        onnx_session.cache_clear()
        embedding = cnn_embeddings([context])[0]
    finally:
        onnx_session.cache_clear()
    assert np.allclose(embedding, reference, atol=1e-5)
    assert blocked.read_text() == "not a folder" and list(tmp_path.iterdir()) == [blocked]


def test_the_optimised_graph_is_keyed_by_the_network_s_content(tmp_path):
    """Its name was keyed by the file's size and time: a network exported again with both kept
    (``cp -p``) opened the old graph, while the model card's check saw the new content."""
    def copy_name(checkout):
        code = ("from features.vision.embeddings import CNN_MODEL; from features.vision.networks import optimised_copy; "
                "print(optimised_copy(CNN_MODEL, '1').name)")
        return subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(checkout)},
                              cwd=checkout, capture_output=True, text=True, check=True).stdout
    checkout = tmp_path / "checkout"
    shutil.copytree(ROOT / "features", checkout / "features", ignore=shutil.ignore_patterns("__pycache__"))
    network = checkout / "features" / "vision" / "models" / "efficientnet_lite0.onnx"
    assert copy_name(checkout) == copy_name(ROOT)
    times, data = network.stat(), bytearray(network.read_bytes())
    data[-1] ^= 1
    network.write_bytes(bytes(data))
    os.utime(network, ns=(times.st_atime_ns, times.st_mtime_ns))
    assert copy_name(checkout) != copy_name(ROOT)


def test_the_models_readme_names_each_network_s_checksum():
    """``features/vision/models/README.md`` says where each network comes from and its SHA-256;
    the model card records the same (``network_checksums``): a network exported again must be
    written down there too."""
    from features.vision.networks import MODELS, network_checksums

    readme = (MODELS / "README.md").read_text()
    assert [name for name, checksum in network_checksums().items() if checksum not in readme] == []
