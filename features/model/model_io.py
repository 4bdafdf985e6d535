"""Saving and loading the fitted model: atomic writes, a checksum, library versions.

Loading a joblib file runs code, so a model is loaded only when its SHA-256 matches the one
``train.py`` recorded in the model card beside it.
"""
import hashlib
import json
import os
import platform
import warnings
from importlib import metadata
from pathlib import Path

import joblib

from features.files import write_json_atomically

#: What the saved model is made of; a model of another format is refused with a hint to
#: retrain.  2: the second look at hats (``GatedClassifier``) and boosters walked in numpy;
#: 3: each booster's own screened columns; 4: the boosters kept as numpy trees only.
MODEL_FORMAT = 4
PACKAGES = ("numpy", "scikit-learn", "xgboost-cpu", "scikit-image", "opencv-python-headless",
            "dlib-bin", "onnxruntime", "pandas", "joblib")


#: train.py's output folder, where the tools look for the model unless told otherwise.
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
MODEL = ARTIFACTS / "model.joblib"

#: The hint of every refused model.
RETRAIN = "retrain with: python train.py"


class ModelError(RuntimeError):
    """A model file that must not or cannot be loaded; the message says why."""


def library_versions():
    """Installed versions of the packages a model's behaviour depends on."""
    versions = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def card_path(model_path):
    return Path(model_path).with_name("model_card.json")


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_card(model_path):
    """The card beside a model, checked to be a JSON object with the model's checksum: a card
    edited by hand is a ModelError that names it, not a TypeError or KeyError further on."""
    path = card_path(model_path)
    try:
        card = json.loads(path.read_bytes())
    except OSError as exc:
        raise ModelError(f"{path}: cannot read the model card ({exc.strerror}); {RETRAIN}") from None
    except ValueError as exc:
        raise ModelError(f"{path}: not JSON ({exc}); {RETRAIN}") from None
    if not isinstance(card, dict):
        raise ModelError(f"{path}: not a JSON object; {RETRAIN}")
    if "model_sha256" not in card:
        raise ModelError(f"{path}: no model_sha256 (the model's checksum); {RETRAIN}")
    if not isinstance(card.get("library_versions", {}), dict):
        raise ModelError(f"{path}: library_versions is not an object; {RETRAIN}")
    return card


def save_model(model, card, model_path):
    """Write the model and its card (with the model's checksum and library versions)."""
    model_path = Path(model_path)
    staged = model_path.with_name(f".{model_path.name}.staged")
    try:
        joblib.dump(model, staged)
        card = {**card, "model_format": MODEL_FORMAT, "model_sha256": sha256(staged),
                "library_versions": library_versions()}
        write_json_atomically(card_path(model_path).with_name(".model_card.staged"), card)
        os.replace(staged, model_path)
        os.replace(card_path(model_path).with_name(".model_card.staged"), card_path(model_path))
    finally:
        for leftover in (staged, card_path(model_path).with_name(".model_card.staged")):
            if leftover.exists():
                leftover.unlink()
    return card


def check_model(model_path):
    """Check that a model file matches the checksum in its card, without loading it; warn
    when it was trained with other library versions.

    Returns
    -------
    dict
        The model card.

    Raises
    ------
    ModelError
        No model, no card, a model that cannot be read, a checksum that does not match (tampered or truncated), or a model
        of another format (made by an older version of this code).
    """
    model_path = Path(model_path)
    try:
        if not model_path.is_file():
            raise ModelError(f"{model_path}: no model file; make one with: python train.py")
        card = read_card(model_path)
        digest = sha256(model_path)
    except OSError as exc:  # a model (or its folder) we may not read
        raise ModelError(f"{model_path}: cannot read the model ({exc.strerror or exc})") from None
    if digest != card["model_sha256"]:
        raise ModelError(f"{model_path}: checksum does not match model_card.json (file changed "
                         "or truncated); refusing to load it")
    if card.get("model_format", 1) != MODEL_FORMAT:
        raise ModelError(f"{model_path}: made by another version of img2recommender (model format "
                         f"{card.get('model_format', 1)}, this code reads {MODEL_FORMAT}); {RETRAIN}")
    current = library_versions()
    changed = {k: (v, current.get(k)) for k, v in card.get("library_versions", {}).items()
               if current.get(k) != v}
    if changed:
        warnings.warn(f"{model_path} was trained with other library versions: " + ", ".join(
            f"{k} {old} (now {new})" for k, (old, new) in sorted(changed.items())), stacklevel=2)
    return card


def load_model(model_path):
    """Load a model that passes :func:`check_model`.

    Returns
    -------
    (PhotoModel, dict)
        The fitted model (:class:`features.model.photo_model.PhotoModel`) and its card.
    """
    card = check_model(model_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)  # already said by check_model
        return joblib.load(model_path), card
