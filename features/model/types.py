"""Learned product types, each given its parent label: eyewear (clear / dark), facial hair
(stubble, moustache, goatee, full beard; multilabel), headwear (cap, brimmed, beanie, other)
and hat colour.

The labels come from the shared CelebA set's finer files (``eyewear_type.csv``,
``facial_hair.csv``, ``hat_type.csv``); the features are the same rows the main classifier
is trained on.  Eyewear and headwear types are trained only on photos whose parent label is
on, so their probabilities are conditional: P(dark | eyewear).  CelebA labels the facial-hair
styles on every photo (stubble alone does not make ``beard`` 1), so each style is trained on
all photos and reported only for faces whose ``beard`` label is on.
"""
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_selection import f_classif
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.utils.validation import check_is_fitted
from xgboost import XGBClassifier

from features.model.classifier import BoosterThreads

#: Single-choice families: one class per face.
EYEWEAR_TYPES = ("clear", "dark")
HAT_TYPES = ("cap", "brimmed", "beanie", "other")
#: Facial-hair styles co-occur (a goatee with a moustache), so each is its own yes/no target.
BEARD_STYLES = ("stubble", "moustache", "goatee", "full_beard")
#: Every target the classifier fits, in order: single-choice families, then beard styles.
TARGETS = ("eyewear", "hat", "hat_colour") + BEARD_STYLES
#: The label each target's type is reported under (only when that label is on).
PARENTS = {"eyewear": "eyewear", "hat": "hat", "hat_colour": "hat", **dict.fromkeys(BEARD_STYLES, "beard")}
#: Rows of a target without a label (parent off, or an ``unsure`` type).
MISSING = ""


def type_labels(data_dir, filenames):
    """The type targets of each photo and the label cleaning they imply.

    ``none`` rows of ``hat_type.csv`` / ``eyewear_type.csv`` are label errors of CelebA (no hat
    or glasses in the photo): their parent label is flipped to 0. ``unsure`` rows keep their
    parent label and get no type; neither does an ``unsure`` hat colour.  A full beard is
    CelebA ``No_Beard`` = -1 with ``Sideburns`` = 1: a beard that reaches the sideburns over
    the cheeks.

    Parameters
    ----------
    data_dir : Path
        The dataset folder; without the three finer files there are no types (None).
    filenames : sequence of str
        Photo paths, matched to the files by name.

    Returns
    -------
    targets : DataFrame or None
        One column per name in :data:`TARGETS`, one row per photo: class names (str) for the
        single-choice families (:data:`MISSING` where there is no label), "0"/"1" for beard
        styles on every photo, and the ``beard`` label ("0"/"1") to score the styles given it.
    flips : dict of str to list of str
        Parent label -> names of the photos whose label must be flipped to 0.
    """
    folder = Path(data_dir)
    files = [folder / name for name in ("eyewear_type.csv", "hat_type.csv", "facial_hair.csv")]
    if not all(f.is_file() for f in files):
        return None, {}
    eyewear, hat, hair = (pd.read_csv(f, dtype=str, keep_default_na=False).set_index("filename")
                          for f in files)
    names = pd.Index([Path(f).name for f in filenames])
    targets = pd.DataFrame(MISSING, index=names, columns=list(TARGETS))
    for column, table, source in (("eyewear", eyewear, "eyewear_type"), ("hat", hat, "hat_type"),
                                  ("hat_colour", hat, "hat_colour")):
        known = table[~table["hat_type" if column != "eyewear" else source].isin(("none", "unsure"))
                      & (table[source] != "unsure")][source].reindex(names)
        targets[column] = known.fillna(MISSING).to_numpy()
    hair = hair.reindex(names).fillna("0")
    targets["stubble"], targets["moustache"], targets["goatee"] = (
        hair[c].to_numpy() for c in ("stubble", "moustache", "goatee"))
    targets["full_beard"] = np.where((hair["no_beard"] == "0") & (hair["sideburns"] == "1"), "1", "0")
    targets["beard"] = np.where((hair["no_beard"] == "0") | (hair["goatee"] == "1") | (hair["moustache"] == "1"),
                                "1", "0")
    flips = {"eyewear": sorted(eyewear.index[eyewear["eyewear_type"] == "none"]),
             "hat": sorted(hat.index[hat["hat_type"] == "none"])}
    return targets.reset_index(drop=True), flips


def usable_classes(y, groups, *, n_splits, min_examples):
    """Classes with enough photos, and folds (by group) whose training side holds each.

    A class under ``min_examples`` photos cannot be learned or calibrated; it is left out of
    the target (its photos too), so the model only names types it has seen enough of.
    """
    names, counts = np.unique(y, return_counts=True)
    kept = names[counts >= min_examples]
    rows = np.flatnonzero(np.isin(y, kept))
    if len(kept) < 2:
        return kept, rows, []
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=0)
    splits = list(splitter.split(rows, y[rows], groups[rows]))
    if any(len(np.unique(y[rows][train])) < len(kept) for train, _ in splits):
        return kept[:0], rows[:0], []
    return kept, rows, splits


class TypeClassifier(BoosterThreads, BaseEstimator):
    """One calibrated XGBoost per type target (:data:`TARGETS`), each on the photos that
    have a label for it.

    Each target screens its columns (the ``screen_columns`` of highest ANOVA F score, as
    the main classifier does), then ``CalibratedClassifierCV`` (sigmoid, ``ensemble=False``)
    calibrates one booster on its own out-of-fold scores over ``calibration_folds`` folds
    grouped by person: with 34 beanies no calibration share can be held back.

    Parameters
    ----------
    n_estimators, learning_rate, max_depth, colsample_bytree : XGBoost settings.
    screen_columns : int
        Columns each target's booster sees.
    calibration_folds : int
    min_examples : int
        Photos a class needs to be learned (fewer: the class is left out of its target).
    targets : tuple of str
        Which of :data:`TARGETS` to fit (``hat_colour`` is left out when the measured colour
        read is the better one).
    n_jobs : int
        XGBoost threads.
    random_state : int
    """

    def __init__(self, *, n_estimators=150, learning_rate=0.1, max_depth=3, colsample_bytree=0.3,
                 screen_columns=400, calibration_folds=3, min_examples=10, targets=TARGETS,
                 n_jobs=1, random_state=0):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.colsample_bytree = colsample_bytree
        self.screen_columns = screen_columns
        self.calibration_folds = calibration_folds
        self.min_examples = min_examples
        self.targets = targets
        self.n_jobs = n_jobs
        self.random_state = random_state

    def fitted_boosters(self):
        """Every fitted ``XGBClassifier`` (none before ``fit``)."""
        return [calibrated.estimator for model in getattr(self, "estimators_", {}).values()
                for calibrated in model.calibrated_classifiers_]

    def _booster(self):
        return XGBClassifier(n_estimators=self.n_estimators, learning_rate=self.learning_rate,
                             max_depth=self.max_depth, colsample_bytree=self.colsample_bytree,
                             subsample=0.8, tree_method="hist", max_bin=64, n_jobs=self.n_jobs,
                             random_state=self.random_state)

    def _screen(self, X, y):
        """The ``screen_columns`` columns of highest ANOVA F score (all if fewer)."""
        if X.shape[1] <= self.screen_columns:
            return np.arange(X.shape[1])
        with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
            warnings.simplefilter("ignore", UserWarning)  # constant columns: F is NaN
            score = np.nan_to_num(f_classif(X, y)[0], nan=0.0)
        return np.sort(np.argsort(-score, kind="stable")[:self.screen_columns])

    def fit(self, X, T, groups=None):
        """Fit every target that has at least two classes with enough photos.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        T : DataFrame
            One column per target (:func:`type_labels`), :data:`MISSING` where unlabelled.
        groups : array-like of shape (n_samples,), optional
            Person of each row: calibration folds keep a person's photos together.

        Returns
        -------
        self
        """
        X = np.asarray(X, dtype=np.float32)
        groups = np.arange(len(X)) if groups is None else np.asarray(groups)
        self.estimators_, self.columns_, self.classes_ = {}, {}, {}
        for target in self.targets:
            labelled = np.flatnonzero(T[target].to_numpy() != MISSING)
            y_all = T[target].to_numpy()[labelled]
            classes, rows, splits = usable_classes(y_all, groups[labelled], n_splits=self.calibration_folds,
                                                   min_examples=self.min_examples)
            if len(classes) < 2:
                continue
            rows = labelled[rows]
            y = np.searchsorted(classes, T[target].to_numpy()[rows])
            columns = self._screen(X[rows], y)
            weight = balanced_weights(y)
            model = CalibratedClassifierCV(self._booster(), method="sigmoid", cv=splits, ensemble=False)
            self.estimators_[target] = model.fit(X[np.ix_(rows, columns)], y, sample_weight=weight)
            self.columns_[target] = columns
            self.classes_[target] = classes
        self.n_features_in_ = X.shape[1]
        return self

    def predict_proba(self, X, *, targets=None):
        """Conditional probability of each class of each fitted target (of ``targets`` only,
        when given).

        Returns
        -------
        dict of str to ndarray
            Target -> shape (n_samples, len(classes_[target])); for beard styles the classes
            are "0" and "1".
        """
        check_is_fitted(self, "estimators_")
        X = np.asarray(X, dtype=np.float32)
        return {target: model.predict_proba(X[:, self.columns_[target]])
                for target, model in self.estimators_.items() if targets is None or target in targets}

    @property
    def reads_colour(self):
        """Whether a trained hat-colour read was kept (else the colour is measured on the crop)."""
        check_is_fitted(self, "estimators_")
        return "hat_colour" in self.estimators_

    def face_types(self, X, labels, *, measured_colours=None):
        """The ``types`` of each face: only the families whose parent label is on.

        Parameters
        ----------
        X : array-like of shape (n_faces, n_features)
        labels : sequence of sequence of str
            Each face's labels that passed their thresholds.
        measured_colours : sequence of str, optional
            Each face's hat colour read from its crop, used when no trained colour model was
            kept (``hat_colour`` not in ``targets``).

        Returns
        -------
        list of dict
            Per face, e.g. ``{"eyewear": {"dark": 0.93, "clear": 0.07}, "hat": {"cap": 0.8,
            ...}, "hat_colour": "navy", "beard": {"goatee": 0.81, "moustache": 0.4, ...}}``:
            classes most likely first; beard styles each their own probability.
        """
        on = {label for face in labels for label in face}  # no type model runs for a label no face has
        proba = self.predict_proba(X, targets={t for t, parent in PARENTS.items() if parent in on}) if on else {}
        named = {t: [dict(zip(self.classes_[t], map(float, p))) for p in rows] for t, rows in proba.items()}
        faces = []
        for i, on in enumerate(labels):
            types = {}
            for family in ("eyewear", "hat"):
                if family in on and family in named:
                    types[family] = rounded(named[family][i])
            if "hat" in on:
                colour = (max(named["hat_colour"][i], key=named["hat_colour"][i].get)
                          if "hat_colour" in named else measured_colours[i] if measured_colours else None)
                if colour:
                    types["hat_colour"] = colour
            if "beard" in on:
                styles = {s: named[s][i]["1"] for s in BEARD_STYLES if s in named}
                if styles:
                    types["beard"] = rounded(styles)
            faces.append(types)
        return faces


def balanced_weights(y):
    """Sample weights of sqrt(largest class / own class): rare types count more, not fully."""
    counts = np.bincount(y)
    return np.sqrt(counts.max() / counts)[y]


def rounded(probabilities):
    """``{class: p}`` to 4 decimals, most likely first."""
    return {k: round(v, 4) for k, v in sorted(probabilities.items(), key=lambda kv: -kv[1])}
