"""The FaceFeatures transformer: scikit-learn contract, column names, no-face rows, cache."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from sklearn.base import clone

from features.vision.faces import DEFAULT_DETECTION, DetectionSettings, detect_faces
from features.vision.images import DECODE_VERSION, ImageError
from features.vision.networks import networks_key
from features.vision.transformer import BLOCKS, FaceFeatures, block_names
from conftest import ROOT


@pytest.fixture(scope="module")
def photos(celeba_paths):
    return celeba_paths[:6]


def test_estimator_contract():
    transformer = FaceFeatures(cnn=False, n_jobs=2)
    assert transformer.fit() is transformer
    twin = clone(transformer)
    assert twin.get_params() == transformer.get_params() and not hasattr(twin, "feature_names_out_")
    assert twin.set_params(hog=False) is twin and twin.hog is False
    with pytest.raises(ValueError, match="at least one"):
        FaceFeatures(hog=False, colour=False, face_descriptor=False, cnn=False).fit()
    with pytest.raises(Exception, match="not fitted"):
        FaceFeatures().transform([])


@pytest.mark.parametrize("blocks", [BLOCKS, ("hog",), ("colour", "cnn"), ("face_descriptor",)])
def test_feature_names_match_the_matrix(photos, blocks):
    transformer = FaceFeatures(**{b: b in blocks for b in BLOCKS}).fit()
    X = transformer.transform(photos[:2])
    names = transformer.get_feature_names_out()
    assert X.shape == (2, len(names)) == (2, sum(len(block_names(b)) for b in blocks))
    assert len(set(names)) == len(names)
    assert all(n.split("__")[0] in ("forehead", "eye_band", "jaw", "face", "context", "eyes", "lower_face", "hat") for n in names)


def test_blocks_are_the_same_columns_alone_or_together(photos):
    everything = FaceFeatures(hat_cnn=True).fit()
    X = everything.transform(photos[:3])
    names = everything.get_feature_names_out()
    assert not FaceFeatures().hat_cnn  # train.py adds the gated block to the main row itself
    for block in ("colour", "hat_cnn"):  # the hat crop is embedded in the same CNN batch as the others
        alone = FaceFeatures(**{b: b == block for b in BLOCKS}).fit().transform(photos[:3])
        assert np.allclose(X[:, np.isin(names, block_names(block))], alone, atol=1e-5, equal_nan=True)


def test_the_cnn_block_embeds_the_head_the_eyes_and_the_lower_face_in_that_order(astronaut):
    """Each crop's 1,280 columns are that crop's embedding, in the order of the names: a crop
    left out, or two swapped, would give the boosters other columns than they were fitted on."""
    from features.vision.embeddings import CNN_SIZE, cnn_embeddings
    from features.vision.regions import extract_regions

    names = block_names("cnn")
    crops = ("context", "eyes", "lower_face")
    assert names == [f"{crop}__cnn_{i}" for crop in crops for i in range(CNN_SIZE)]
    row = FaceFeatures(**{b: b == "cnn" for b in BLOCKS}).fit().transform([astronaut])[0]
    regions = extract_regions(astronaut, detect_faces(astronaut)[0], regions=crops)
    for crop, embedding in zip(crops, cnn_embeddings([regions[crop] for crop in crops])):
        assert np.allclose(row[[n.startswith(f"{crop}__") for n in names]], embedding, atol=1e-5), crop


def test_photo_without_a_face_gives_a_nan_row(photos, no_face_image, astronaut):
    X = FaceFeatures(cnn=False).fit().transform([no_face_image, astronaut])
    assert np.isnan(X[0]).all() and not np.isnan(X[1]).any()


def test_arrays_pairs_and_paths_agree(photos, astronaut):
    transformer = FaceFeatures(face_descriptor=False).fit()
    face = detect_faces(astronaut)[0]
    by_array, by_pair = transformer.transform([astronaut, (astronaut, face)])
    assert np.allclose(by_array, by_pair, atol=1e-5)


def test_unreadable_photo_raises_or_gives_nan(tmp_path, photos):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    with pytest.raises(ImageError, match="broken.jpg"):
        FaceFeatures(cnn=False).fit().transform([photos[0], str(broken)])
    X = FaceFeatures(cnn=False, on_error="nan").fit().transform([photos[0], str(broken)])
    assert not np.isnan(X[0]).any() and np.isnan(X[1]).all()


def test_cache_and_processes_give_the_same_rows(tmp_path, photos):
    plain = FaceFeatures().fit().transform(photos)
    cached = FaceFeatures(cache_dir=tmp_path, n_jobs=2).fit()
    first, second = cached.transform(photos), cached.transform(photos)
    assert np.allclose(plain, first, atol=1e-5, equal_nan=True)
    assert np.array_equal(first, second, equal_nan=True)
    assert len(list(tmp_path.rglob("*.npy"))) == len(photos) * len(cached.blocks)
    # a cache of some blocks serves a transformer asking for fewer
    fewer = FaceFeatures(hog=False, cache_dir=tmp_path).fit().transform(photos)
    assert np.array_equal(fewer, first[:, len(block_names("hog")):], equal_nan=True)


def test_detection_settings_are_part_of_the_cache_key(tmp_path, photos):
    default = FaceFeatures(hog=False, face_descriptor=False, cnn=False, cache_dir=tmp_path).fit()
    hog = clone(default).set_params(detection=DetectionSettings("hog", -0.5)).fit()
    default.transform(photos[:1])
    hog.transform(photos[:1])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"colour-v1-{DEFAULT_DETECTION.key}-nets{networks_key()}-decode{DECODE_VERSION}",
         f"colour-v1-det-0.50-nets{networks_key()}-decode{DECODE_VERSION}"])


def test_the_network_files_are_part_of_the_cache_key(tmp_path):
    """A network exported again computes other rows: its cached ones must not be reused.  The
    key is of the files' bytes, so another checkout of the same files shares it."""
    def key_in(copy):
        return subprocess.run([sys.executable, "-c", "from features.vision.networks import networks_key; "
                               "print(networks_key())"], env={**os.environ, "PYTHONPATH": str(copy)}, cwd=copy,
                              capture_output=True, text=True, check=True).stdout.strip()

    copy = tmp_path / "checkout"
    shutil.copytree(ROOT / "features", copy / "features", ignore=shutil.ignore_patterns("__pycache__"))
    assert key_in(copy) == networks_key()
    with open(copy / "features" / "vision" / "models" / "frontal_face_detector.svm", "ab") as network:
        network.write(b"\n")
    assert key_in(copy) != networks_key()
