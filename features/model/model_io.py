"""Saving and loading the fitted model: atomic writes, a checksum, library versions, and the
checksums of the networks its features came from.

Loading a joblib file runs code, so a model is loaded only when its SHA-256 matches the one
``train.py`` recorded in the model card beside it.
"""
import hashlib
import io
import json
import platform
import warnings
from importlib import metadata
from pathlib import Path

import joblib

from features.files import replace_keeping_mode, write_atomically, write_json_atomically
from features.vision.networks import changed_networks, network_checksums

#: What the saved model is made of; a model of another format is refused with a hint to
#: retrain.  2: the second look at hats (``GatedClassifier``) and boosters walked in numpy;
#: 3: each booster's own screened columns; 4: the boosters kept as numpy trees only.
MODEL_FORMAT = 4
PACKAGES = ("numpy", "scikit-learn", "xgboost-cpu", "scikit-image", "opencv-python-headless",
            "dlib-bin", "face-recognition-models", "onnxruntime", "pandas", "joblib")


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


def staged_model(model_path):
    """Where :func:`save_model` writes the model before it takes ``model_path``'s place."""
    return Path(model_path).with_name(f".{Path(model_path).name}.staged")


def staged_card(model_path):
    """Where :func:`save_model` writes the card before it takes its place."""
    return card_path(model_path).with_name(f".{card_path(model_path).name}.staged")


def move_in(staged, model_path):
    """The staged model over ``model_path``; already done when a load finished the save
    first (:func:`finish_save`)."""
    try:
        replace_keeping_mode(staged, model_path)
    except FileNotFoundError:
        pass


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
    """Write the model and its card (with the model's checksum, library versions and networks).

    Both are written whole under other names first, then the card takes its place and the
    model its own.  A save stopped between those two moves (a kill) leaves the new card beside
    the old model and the new model staged: :func:`check_model` finishes it, so neither the
    new model nor the old one is lost to a checksum that does not match.
    """
    model_path = Path(model_path)
    staged, card_staged = staged_model(model_path), staged_card(model_path)
    switched = False
    try:
        write_atomically(staged, lambda p: joblib.dump(model, p))
        card = {**card, "model_format": MODEL_FORMAT, "model_sha256": hashlib.sha256(staged.read_bytes()).hexdigest(),
                "library_versions": library_versions(), "networks": network_checksums()}
        write_json_atomically(card_staged, card)
        replace_keeping_mode(card_staged, card_path(model_path))
        switched = True
    finally:
        if switched:  # the card names the new model: it moves in, even when interrupted here
            move_in(staged, model_path)
        else:
            for leftover in (staged, card_staged):
                leftover.unlink(missing_ok=True)
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
        No model, no card, a model that cannot be read, a checksum that does not match
        (tampered or truncated), a model of another format (made by an older version of
        this code), one trained with other networks than ``features/vision/models`` holds, or
        one whose feature blocks this code makes otherwise (a crop added since).
    """
    return checked_model(model_path)[1]


def checked_model(model_path):
    """The model file's bytes and its card, checked as :func:`check_model` says: the bytes
    that were checked are the ones to load, not the file read again."""
    model_path = Path(model_path)
    try:
        if not model_path.is_file() and not staged_model(model_path).is_file():
            raise ModelError(f"{model_path}: no model file; make one with: python train.py")
        card = read_card(model_path)
        data = model_path.read_bytes() if model_path.is_file() else b""
        if hashlib.sha256(data).hexdigest() != card["model_sha256"]:
            data = finish_save(model_path, card) or data
    except OSError as exc:  # a model (or its folder) we may not read
        raise ModelError(f"{model_path}: cannot read the model ({exc.strerror or exc})") from None
    if hashlib.sha256(data).hexdigest() != card["model_sha256"]:
        raise ModelError(f"{model_path}: checksum does not match model_card.json (file changed "
                         "or truncated); refusing to load it")
    if card.get("model_format", 1) != MODEL_FORMAT:
        raise ModelError(f"{model_path}: made by another version of img2recommender (model format "
                         f"{card.get('model_format', 1)}, this code reads {MODEL_FORMAT}); {RETRAIN}")
    if not isinstance(card.get("networks"), dict):
        raise ModelError(f"{model_path}: its card records no networks (made by an older version of "
                         f"img2recommender); {RETRAIN}")
    if changed := changed_networks(card["networks"]):
        raise ModelError(f"{model_path}: trained with other networks than features/vision/models holds "
                         f"({', '.join(changed)}); {RETRAIN}")
    if changed := changed_blocks(card.get("feature_blocks", {})):
        raise ModelError(f"{model_path}: its feature rows are not this code's ({', '.join(changed)}); {RETRAIN}")
    current = library_versions()
    changed = {k: (v, current.get(k)) for k, v in card.get("library_versions", {}).items()
               if current.get(k) != v}
    if changed:
        warnings.warn(f"{model_path} was trained with other library versions: " + ", ".join(
            f"{k} {old} (now {new})" for k, (old, new) in sorted(changed.items())), stacklevel=3)
    return data, card


def changed_blocks(widths):
    """The feature blocks a card records (block -> columns) that this code makes otherwise: a
    model trained before a crop was added would load and then fail on every photo."""
    from features.vision.transformer import BLOCKS, block_names

    now = {block: len(block_names(block)) for block in widths if block in BLOCKS}
    return [f"{block}: {n} columns, this code makes {now[block] if block in now else 'no such block'}"
            for block, n in widths.items() if now.get(block) != n]


def finish_save(model_path, card):
    """The bytes of a save that was stopped between its two moves (:func:`save_model`): the
    staged model its card names, moved into place where the folder allows; else None."""
    staged = staged_model(model_path)
    if not staged.is_file():
        return None
    data = staged.read_bytes()
    if hashlib.sha256(data).hexdigest() != card["model_sha256"]:
        return None
    try:
        replace_keeping_mode(staged, model_path)
    except OSError:  # a folder we may not write, or the saving run moved it in meanwhile
        pass
    return data


def load_model(model_path):
    """Load a model that passes :func:`check_model`.

    Returns
    -------
    (PhotoModel, dict)
        The fitted model (:class:`features.model.photo_model.PhotoModel`) and its card.
    """
    from features.model.photo_model import PhotoModel

    data, card = checked_model(model_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)  # already said by check_model
        model = joblib.load(io.BytesIO(data))
    if not isinstance(model, PhotoModel):
        raise ModelError(f"{model_path}: holds a {type(model).__name__}, not an img2recommender model; {RETRAIN}")
    return model, card
