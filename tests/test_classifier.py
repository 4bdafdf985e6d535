"""The calibrated one-vs-rest classifier, grouped folds, thresholds and model files."""
import json
import shutil
import stat
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from features.model.classifier import (BROAD, F1_PLATEAU, MarginCalibrator, MultiLabelClassifier, TooFewExamples,
                                      best_threshold, decided_share, operating_points, precision_at)
from features.model.evaluation import (calibration_slope_intercept, expected_calibration_error, grouped_folds,
                                 reliability_bins)
from features.model.model_io import ModelError, card_path, load_model, save_model, staged_model
from features.model.photo_model import PhotoModel
from features.vision.transformer import FaceFeatures


@pytest.fixture(scope="module")
def fitted(small_features):
    X, Y, groups = small_features
    return MultiLabelClassifier(n_estimators=40, thresholds={"hat": 0.3}).fit(X, Y, groups=groups)


def test_estimator_contract(small_features):
    model = MultiLabelClassifier(n_estimators=40, calibration="isotonic")
    twin = clone(model)
    assert twin.get_params() == model.get_params() and not hasattr(twin, "estimators_")
    X, Y, groups = small_features
    assert model.fit(X, Y, groups=groups) is model
    assert len(model.estimators_) == 3 and model.n_features_in_ == X.shape[1]
    assert all(len(boosters) == model.calibration_folds for boosters in model.estimators_)


def test_probabilities_shapes_and_thresholds(fitted, small_features):
    X, Y, _ = small_features
    proba = fitted.predict_proba(X[:50])
    assert proba.shape == (50, 3) and (proba >= 0).all() and (proba <= 1).all()
    assert fitted.thresholds_[0] == 0.3  # fixed; the others chosen by the rule (best F1)
    for j in (1, 2):
        assert fitted.thresholds_[j] == best_threshold(fitted.operating_points_[j])
    assert np.array_equal(fitted.predict(X[:50]), (proba >= fitted.thresholds_).astype(int))
    raw = fitted.predict_proba_uncalibrated(X[:50])
    assert raw.shape == (50, 3) and not np.allclose(raw, proba)


@pytest.mark.parametrize("calibration", ["sigmoid", "isotonic"])
def test_calibration_keeps_the_boosters_order(small_features, calibration):
    """The calibrated probability maps the boosters' mean margin, as the uncalibrated one does:
    the map reorders no faces (a mean of each booster's calibrated probability would)."""
    X, Y, groups = small_features
    model = MultiLabelClassifier(n_estimators=40, calibration=calibration).fit(X, Y, groups=groups)
    proba, raw = model.predict_proba(X), model.predict_proba_uncalibrated(X)
    for j in range(Y.shape[1]):
        order = np.argsort(raw[:, j], kind="stable")
        assert (np.diff(proba[order, j]) >= -1e-12).all(), model.labels[j]


def test_tree_margins_are_the_boosters_own(fitted, small_features):
    """Predictions walk each booster's trees in numpy: the same margins as XGBoost's, on real
    feature rows and on rows with missing values (XGBoost's default branches), for boosters
    fitted as the classifier fits its own; the fitted classifier keeps only such trees."""
    from xgboost import XGBClassifier, XGBRegressor

    from features.model.trees import TreeMargins

    X, Y, _ = small_features
    gaps = X[:60].copy()
    gaps[::3, ::7] = np.nan  # a missing block, and scattered gaps
    gaps[1] = np.nan
    for j in range(Y.shape[1]):
        booster = fitted._booster(Y[:, j]).fit(X, Y[:, j]).get_booster()
        own = booster.inplace_predict(gaps, predict_type="margin")
        np.testing.assert_allclose(TreeMargins(booster)(gaps), own, atol=1e-4)
        np.testing.assert_allclose(TreeMargins(booster)(gaps[:1]), own[:1], atol=1e-4)
    # the kept trees, each on its own columns, are the boosters that scored their held-out folds
    groups = small_features[2]
    for j, (trees, columns) in enumerate(zip(fitted.estimators_, fitted.columns_)):
        assert all(isinstance(margin, TreeMargins) for margin in trees)
        for (_, test), margin, used in zip(fitted._folds(Y[:, j], groups, fitted.labels[j]), trees, columns):
            assert margin.n_features_in_ == len(used)
            np.testing.assert_allclose(fitted.calibrators_[j].predict(margin(X[np.ix_(test, used)])),
                                       fitted.oof_proba_[test, j], atol=1e-6)
    with pytest.raises(ValueError, match="binary:logistic"):
        TreeMargins(XGBRegressor(n_estimators=2).fit(X[:20, :5], np.arange(20.0)).get_booster())
    with pytest.raises(ValueError, match="binary:logistic"):  # three classes: softprob
        TreeMargins(XGBClassifier(n_estimators=2).fit(X[:30, :5], np.arange(30) % 3).get_booster())


def test_calibration_folds_hold_out_whole_people(fitted, small_features):
    X, Y, groups = small_features
    for column in range(3):
        folds = fitted._folds(Y[:, column], groups, fitted.labels[column])
        assert len(folds) == fitted.calibration_folds
        for train, test in folds:
            assert not set(groups[train]) & set(groups[test])


def test_too_few_people_for_the_calibration_folds_is_said(fitted, small_features):
    """scikit-learn's splitter refused them in a traceback; a label's positives all of one
    person were "0 positives" in a fold, whatever the number of photos."""
    X, Y, groups = small_features
    two = np.where(np.arange(len(groups)) % 2, "ann", "bob")
    with pytest.raises(TooFewExamples, match=rf"label 'hat': {len(Y)} samples of 2 people: too few for 3 "):
        fitted._folds(Y[:, 0], two, "hat")
    one_wearer = np.where(Y[:, 0] == 1, "ann", groups)
    positives = int(Y[:, 0].sum())
    with pytest.raises(TooFewExamples, match=rf"{positives} positives of {len(Y)} samples, from 1 person: too few"):
        fitted._folds(Y[:, 0], one_wearer, "hat")


def test_with_thresholds_overrides_and_precision(fitted, small_features):
    """--min-probability fixes a label's threshold; --precision picks, per label, the best recall
    whose out-of-fold precision reaches it; the original model is left as it was."""
    X, Y, _ = small_features
    before = fitted.thresholds_.copy()
    fixed = fitted.with_thresholds(min_probability={"beard": 0.8})
    assert fixed.thresholds_.tolist() == [before[0], 0.8, before[2]]
    assert np.array_equal(fitted.thresholds_, before) and fixed.estimators_ is fitted.estimators_
    assert np.array_equal(fixed.predict(X[:80])[:, 1], (fitted.predict_proba(X[:80])[:, 1] >= 0.8).astype(int))
    strict = fitted.with_thresholds(precision=0.9)
    assert any((points["precision"] >= 0.9).any() for points in fitted.operating_points_)
    for j, points in enumerate(fitted.operating_points_):
        reached = points["precision"] >= 0.9
        if reached.any():
            at = points["threshold"] == strict.thresholds_[j]
            assert points["precision"][at][0] >= 0.9
            assert points["recall"][at][0] == points["recall"][reached].max()
        else:  # a label that never reaches it decides nothing
            assert np.isinf(strict.thresholds_[j])
    with pytest.warns(UserWarning, match="never reaches precision 1.01"):
        never = fitted.with_thresholds(precision=1.01)
    assert np.isinf(never.thresholds_).all() and never.predict(X[:20]).sum() == 0
    # a precision that decides a label for many more faces than have it is said, in figures
    # the out-of-fold scores give (precision 0.2 gave every face eyewear, unsaid)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        broad = fitted.with_thresholds(precision=0.05)
    said = {str(w.message).split()[0]: str(w.message) for w in caught}
    for j, (label, points) in enumerate(zip(fitted.labels, fitted.operating_points_)):
        scores, y = fitted.oof_proba_[:, j], Y[:, j]  # the points' own faces
        decided, prevalence = np.mean(scores >= broad.thresholds_[j]), y.mean()
        assert decided == pytest.approx(decided_share(points, broad.thresholds_[j]))
        assert (label in said) == (decided > BROAD * prevalence)
        if label in said:
            assert said[label] == (f"{label} at precision 0.05: decided for {decided:.0%} of the faces out of fold, "
                                   f"where {prevalence:.0%} have it (threshold {broad.thresholds_[j]:.4f})")
    assert said  # at 0.05 some label is decided far beyond its wearers
    # a threshold under the model's own is said: a precision reads as stricter, and decides more
    target = round(min(precision_at(points, own) for points, own in zip(fitted.operating_points_, before)) - 0.02, 3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lower = fitted.with_thresholds(precision=target)
    said = {str(w.message).split()[0]: str(w.message) for w in caught}
    for j, label in enumerate(fitted.labels):
        if lower.thresholds_[j] < before[j] and not said.get(label, "").startswith(f"{label} at precision {target}: "
                                                                                  "decided"):
            assert said[label] == (
                f"{label} at precision {target}: threshold {lower.thresholds_[j]:.4f}, under the model's own "
                f"{before[j]:.4f}, whose out-of-fold precision is already "
                f"{precision_at(fitted.operating_points_[j], before[j]):.3f}: more {label} decisions, not fewer")
        else:
            assert "under the model's own" not in said.get(label, "")
    assert any("under the model's own" in message for message in said.values())
    with pytest.raises(ValueError, match="unknown label"):
        fitted.with_thresholds(min_probability={"scarf": 0.5})


@pytest.mark.parametrize("method", ["sigmoid", "isotonic", "beta", "temperature"])
def test_margin_calibrators_are_monotone_and_fit_known_odds(method):
    """On margins whose true log-odds are 0.5 * margin - 1, every map is monotone; the
    parametric ones recover the probabilities, the step map follows them where the margins
    are dense, and the temperature map, a margin rescaled without an intercept, gives 0.5 at
    margin 0 and is symmetric about it."""
    rng = np.random.default_rng(0)
    margin = rng.normal(0, 3, 20000)
    y = (rng.random(20000) < 1 / (1 + np.exp(-(0.5 * margin - 1)))).astype(int)
    calibrator = MarginCalibrator(method=method).fit(margin, y)
    grid = np.linspace(-6, 6, 50)
    p = calibrator.predict(grid)
    truth = 1 / (1 + np.exp(-(0.5 * grid - 1)))
    assert (np.diff(p) >= -1e-12).all() and ((p >= 0) & (p <= 1)).all()
    if method in ("sigmoid", "beta"):
        assert np.abs(p - truth).max() < 0.03
    if method == "isotonic":
        assert np.abs(p - truth)[np.abs(grid) <= 5].max() < 0.06
    if method == "temperature":
        assert calibrator.predict(np.array([0.0]))[0] == pytest.approx(0.5)
        assert np.allclose(p + p[::-1], 1) and p[-1] - p[0] > 0.8  # not flat
    if method != "isotonic":  # the map's fast path is the fitted LogisticRegression's own answer
        assert np.allclose(p, calibrator.map_.predict_proba(calibrator._design(grid))[:, 1], rtol=0, atol=1e-12)


def test_calibration_figures_on_known_scores():
    """Scores drawn to be calibrated have ECE near 0, slope near 1, intercept near 0; scores
    pushed to the extremes are over-confident (slope under 1)."""
    rng = np.random.default_rng(1)
    p = rng.beta(0.5, 3, 50000)
    y = (rng.random(50000) < p).astype(int)
    assert expected_calibration_error(y, p) < 0.01
    slope, intercept = calibration_slope_intercept(y, p)
    assert abs(slope - 1) < 0.05 and abs(intercept) < 0.1
    sharp = 1 / (1 + np.exp(-2 * np.log(p / (1 - p))))
    assert calibration_slope_intercept(y, sharp)[0] < 0.6
    assert expected_calibration_error(y, sharp, min_score=0.05) > expected_calibration_error(y, p, min_score=0.05)
    bins = reliability_bins(y, p)
    assert sum(b["count"] for b in bins) == len(p) and all(0 <= b["observed"] <= 1 for b in bins)


def test_screen_keeps_the_informative_columns(small_features):
    """Each booster sees the columns the screens keep, and a column of pure noise added to the
    features is the first to go."""
    X, Y, groups = small_features
    rng = np.random.default_rng(0)
    noisy = np.hstack([X, rng.normal(size=(len(X), 1)).astype(np.float32)])
    model = MultiLabelClassifier(n_estimators=40, screen_columns=100).fit(noisy, Y, groups=groups)
    for columns, boosters in zip(model.columns_, model.estimators_):
        for used, booster in zip(columns, boosters):
            assert 0 < len(used) <= 100 and noisy.shape[1] - 1 not in used
            assert booster.n_features_in_ == len(used)
    everything = MultiLabelClassifier(n_estimators=40, screen_columns=None).fit(X, Y, groups=groups)
    assert all(len(used) == X.shape[1] for columns in everything.columns_ for used in columns)
    assert everything.predict_proba(X[:20]).shape == model.predict_proba(noisy[:20]).shape


def test_labels_with_too_few_positives_are_refused(small_features):
    X, Y, groups = small_features
    Y = Y.copy()
    Y[:, 0] = 0
    Y[0, 0] = 1
    with pytest.raises(ValueError, match="too few"):
        MultiLabelClassifier(n_estimators=5).fit(X, Y, groups=groups)


def test_grouped_folds_never_split_a_person(small_features):
    _, Y, groups = small_features
    fold = grouped_folds(Y, groups, n_splits=5)
    for person in np.unique(groups):
        assert len(np.unique(fold[groups == person])) == 1
    for k in range(5):  # stratified: each fold sees each label
        assert Y[fold == k].sum(axis=0).min() > 0


def test_best_threshold():
    points = operating_points(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    assert best_threshold(points) == pytest.approx(0.35)
    assert best_threshold(points, min_precision=1.0) == pytest.approx(0.8)
    assert best_threshold(points, min_precision=1.1) == pytest.approx(0.35)  # falls back to F1
    assert best_threshold(points, min_precision=1.1, strict=True) == float("inf")


def test_best_threshold_takes_the_middle_of_a_flat_f1():
    """Noisy labels on 200 scores give F1 a plateau near its best, as the hat label's
    out-of-fold scores do: the rule takes the median threshold of the plateau."""
    rng = np.random.default_rng(0)
    scores = np.round(np.linspace(0.05, 0.95, 200), 3)
    y = (scores + rng.normal(0, 0.2, size=200) > 0.5).astype(int)
    points = operating_points(y, scores)
    precision, recall = points["precision"], points["recall"]
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    near = points["threshold"][f1 >= f1.max() - F1_PLATEAU]
    assert best_threshold(points) == pytest.approx(np.median(near))
    assert near.max() - near.min() > 0.05  # a plateau, not a peak
    assert best_threshold(points) != points["threshold"][np.argmax(f1)]


def test_save_and_reload_give_identical_predictions(tmp_path, fitted, astronaut, celeba_paths):
    pipeline = Pipeline([("features", FaceFeatures(face_descriptor=False, cnn=False).fit()),
                         ("classifier", fitted)])
    path = tmp_path / "model.joblib"
    card = save_model(PhotoModel(pipeline), {"labels": ["hat", "beard", "eyewear"]}, path)
    assert json.loads(card_path(path).read_text())["model_sha256"] == card["model_sha256"]
    reloaded, _ = load_model(path)
    photos = [astronaut, *celeba_paths[600:605]]
    assert np.array_equal(pipeline.predict_proba(photos), reloaded.pipeline.predict_proba(photos))
    assert not list(tmp_path.glob(".*"))  # no staged files left behind


def test_a_model_saved_again_keeps_the_mode_of_the_one_it_replaces(tmp_path, fitted):
    """A model and card made private (0600) were left readable by all after a retrain."""
    path = tmp_path / "model.joblib"
    save_model(PhotoModel(Pipeline([("classifier", fitted)])), {}, path)
    for made in (path, card_path(path)):
        made.chmod(0o600)
    save_model(PhotoModel(Pipeline([("classifier", fitted)])), {}, path)
    assert [oct(stat.S_IMODE(made.stat().st_mode)) for made in (path, card_path(path))] == [oct(0o600)] * 2
    load_model(path)


def test_tampered_truncated_or_cardless_models_are_refused(tmp_path, fitted):
    path = tmp_path / "model.joblib"
    save_model(PhotoModel(Pipeline([("classifier", fitted)])), {}, path)
    data = path.read_bytes()
    path.write_bytes(data[:-10] + b"0123456789")
    with pytest.raises(ModelError, match="checksum does not match"):
        load_model(path)
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="checksum does not match"):
        load_model(path)
    card_path(path).unlink()
    with pytest.raises(ModelError, match="model_card.json"):
        load_model(path)
    with pytest.raises(ModelError, match="python train.py"):
        load_model(tmp_path / "none.joblib")


def test_a_model_of_an_older_format_is_refused_with_a_hint(tmp_path, fitted):
    """A model saved before the second look at hats (no ``model_format`` in its card) would
    load and then fail on every photo: it is refused up front."""
    path = tmp_path / "model.joblib"
    save_model(PhotoModel(Pipeline([("classifier", fitted)])), {}, path)
    load_model(path)
    card = json.loads(card_path(path).read_text())
    del card["model_format"]
    card_path(path).write_text(json.dumps(card))
    with pytest.raises(ModelError, match=r"model format 1, this code reads 4\); retrain with: python train.py"):
        load_model(path)
    card["model_format"] = 3  # the boosters kept as XGBoost objects beside their numpy trees
    card_path(path).write_text(json.dumps(card))
    with pytest.raises(ModelError, match=r"model format 3, this code reads 4\)"):
        load_model(path)


def test_a_model_of_other_feature_rows_is_refused_with_a_hint(tmp_path, fitted):
    """A model trained before the lower face's CNN crop (a cnn block of 2,560 columns) loaded
    and then failed on every photo ("X has 7156 features, but ... is expecting 5876"): its
    card's block widths are checked against this code's before it is unpickled."""
    path = tmp_path / "model.joblib"
    card = {"feature_blocks": {"hog": 1620, "colour": 288, "face_descriptor": 128, "cnn": 3840, "hat_cnn": 1280}}
    save_model(PhotoModel(Pipeline([("classifier", fitted)])), card, path)
    load_model(path)
    written = json.loads(card_path(path).read_text())
    written["feature_blocks"]["cnn"] = 2560
    card_path(path).write_text(json.dumps(written))
    with pytest.raises(ModelError, match=r"feature rows are not this code's \(cnn: 2560 columns, this code makes "
                                         r"3840\); retrain with: python train.py"):
        load_model(path)
    written["feature_blocks"]["scarf"] = 10
    del written["feature_blocks"]["cnn"]
    card_path(path).write_text(json.dumps(written))
    with pytest.raises(ModelError, match="scarf: 10 columns, this code makes no such block"):
        load_model(path)


def test_other_library_versions_give_a_warning(tmp_path, fitted):
    path = tmp_path / "model.joblib"
    save_model(PhotoModel(Pipeline([("classifier", fitted)])), {}, path)
    card = json.loads(card_path(path).read_text())
    card["library_versions"]["scikit-learn"] = "0.1"
    card_path(path).write_text(json.dumps(card))
    with pytest.warns(UserWarning, match="scikit-learn 0.1"):
        load_model(path)


def test_failed_save_leaves_the_previous_model(tmp_path, fitted):
    path = tmp_path / "model.joblib"
    save_model(PhotoModel(Pipeline([("classifier", fitted)])), {"run": 1}, path)
    before = path.read_bytes(), card_path(path).read_text()
    with pytest.raises(Exception):
        save_model(PhotoModel(Pipeline([("classifier", fitted)])), {"run": 2, "bad": lambda: 0}, path)
    with pytest.raises(Exception):
        save_model(lambda: 0, {"run": 3}, path)  # joblib cannot pickle a lambda
    assert (path.read_bytes(), card_path(path).read_text()) == before
    assert not list(tmp_path.glob(".*"))


def test_a_save_stopped_between_its_two_moves_is_finished_by_the_next_load(tmp_path, fitted):
    """A kill after the new card took its place and before the new model took its own leaves
    them on disk as below: the load finds the staged model the card names and moves it in,
    rather than refuse both the new model and the old one."""
    path, other = tmp_path / "model.joblib", tmp_path / "new" / "model.joblib"
    other.parent.mkdir()
    save_model(PhotoModel(Pipeline([("classifier", fitted)])), {"run": 1}, path)
    save_model(PhotoModel(Pipeline([("classifier", fitted)]), types="second"), {"run": 2}, other)
    shutil.copy(card_path(other), card_path(path))
    shutil.copy(other, staged_model(path))
    model, card = load_model(path)
    assert card["run"] == 2 and model.types == "second"
    assert path.read_bytes() == other.read_bytes() and not staged_model(path).exists()
    shutil.copy(card_path(other), card_path(path))  # the new card, no staged model: refused
    path.write_bytes(b"not the model the card names")
    with pytest.raises(ModelError, match="checksum does not match"):
        load_model(path)


def test_an_object_other_than_a_model_is_refused_even_with_its_checksum(tmp_path):
    """A checksum written beside the file says it is whole, not what it holds."""
    path = tmp_path / "model.joblib"
    save_model({"labels": ["hat"]}, {}, path)
    with pytest.raises(ModelError, match="holds a dict, not an img2recommender model"):
        load_model(path)


def test_out_of_fold_scores_do_not_see_the_held_out_people():
    """The screens run inside each calibration fold: on columns of pure noise the out-of-fold
    scores, which fit the calibration map and choose the threshold, rank no better than chance
    (a screen fitted on every row made them reach an AUC of 0.77-0.84 here)."""
    from sklearn.metrics import roc_auc_score

    aucs = []
    for seed in range(3):
        rng = np.random.default_rng(seed)
        X = rng.normal(size=(300, 5000)).astype(np.float32)
        Y = (rng.random((300, 1)) < 0.3).astype(int)
        model = MultiLabelClassifier(labels=("noise",), n_estimators=60, screen_columns=30, random_state=seed)
        aucs.append(roc_auc_score(Y[:, 0], model.fit(X, Y).oof_proba_[:, 0]))
    assert np.mean(aucs) < 0.62, aucs


def test_cross_validation_keeps_each_photos_copies_out_of_its_own_fold():
    """``out_of_fold`` on columns of pure noise, with each photo's near-identical copy (as
    ``train.py``'s tight copies) trained on in the other folds: the held-out photos and their
    copies rank no better than chance.  A copy trained on in its own photo's fold took the
    held-out AUC to 0.73 here."""
    from sklearn.metrics import roc_auc_score

    from features.model.evaluation import out_of_fold

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 200)).astype(np.float32)
    Y = (rng.random((300, 1)) < 0.3).astype(int)
    groups = np.arange(300) // 2
    fold = grouped_folds(Y, groups, n_splits=3)
    copies = (X + rng.normal(0, 0.01, X.shape).astype(np.float32), Y, fold, groups)
    model = MultiLabelClassifier(labels=("noise",), n_estimators=40, screen_columns=None)
    calibrated, raw, thresholds, copies_calibrated = out_of_fold(model, X, Y, fold, groups, extra=copies)
    assert roc_auc_score(Y[:, 0], calibrated[:, 0]) < 0.62
    assert roc_auc_score(Y[:, 0], copies_calibrated[:, 0]) < 0.62
    assert thresholds.shape == (3, 1)
