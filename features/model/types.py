"""Learned product types, each given its parent label: eyewear (clear / dark), facial hair
(stubble, moustache, goatee, full beard; multilabel), headwear (cap, brimmed, beanie, other)
and hat colour.

The labels come from the shared CelebA set's finer files (``eyewear_type.csv``,
``facial_hair.csv``, ``hat_type.csv``); the features are the same rows the main classifier
is trained on, the hat crop's embedding included (the headwear type needs the hat's shape;
it is computed for the faces past the hat gate, which a face decided a hat at the stored
threshold has passed). Eyewear and headwear types are trained only on photos whose parent
label is on, so their probabilities are conditional: P(dark | eyewear). CelebA labels the
facial-hair styles on every photo (stubble alone does not make ``beard`` 1), so each style is
trained on all photos (more photos rank them better), calibrated on the bearded ones, and
reported only for faces whose ``beard`` label is on: P(goatee | beard).
"""
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from features.files import missing_columns
from features.labels import BEARD_STYLES, TYPE_VALUES, likeliest
from features.model.classifier import SUBSAMPLE, MarginCalibrator, top_f_columns, xgboost_classifier
from features.model.dataset import DatasetError, read_csv
from features.model.trees import TreeMargins
from features.vision.colours import COLOUR_WORDS
from features.vision.transformer import gated_names

#: Every target the classifier fits, in order: single-choice families, then beard styles.
TARGETS = ("eyewear", "hat", "hat_colour") + BEARD_STYLES
#: The label each target's type is reported under (only when that label is on).
PARENTS = {"eyewear": "eyewear", "hat": "hat", "hat_colour": "hat", **dict.fromkeys(BEARD_STYLES, "beard")}
#: Targets learned from every photo but shown given their parent label, and the column of the
#: type labels that holds it: each one's calibration map is fitted on the parent's photos
#: only, so its probability is P(style | beard).  Mapped on every photo, the styles were too low
#: and too sure among the bearded (README, "Product types").
CALIBRATED_GIVEN = {target: parent for target, parent in PARENTS.items() if target in BEARD_STYLES}
#: Rows of a target without a label (parent off, an ``unsure`` type, or a photo the file of its
#: type does not list).
MISSING = ""
#: The hat colours a ``hat_type.csv`` may name (the shared set's README): the measured read's
#: words, and the two it has no rule for.
HAT_COLOURS = (*COLOUR_WORDS, "pink", "multi")
#: A type file's value for a photo whose parent label is an error of the source (no hat or
#: glasses in it), and for a type that cannot be told: neither is a class.
NO_TYPE, UNSURE = "none", "unsure"
#: The finer label files of a dataset folder, each column it must have and the values each
#: column may hold (README, "Product types"; the shared set's README).
TYPE_FILES = {"eyewear_type.csv": {"eyewear_type": (*TYPE_VALUES["eyewear"], NO_TYPE, UNSURE)},
              "hat_type.csv": {"hat_type": (*TYPE_VALUES["hat"], NO_TYPE, UNSURE),
                               "hat_colour": (*HAT_COLOURS, UNSURE)},
              "facial_hair.csv": dict.fromkeys(("stubble", "moustache", "goatee", "sideburns", "no_beard"),
                                               ("0", "1"))}
#: Targets with a linear member: (blocks it reads, by column-name prefix; inverse strength C of
#: its L2 penalty).  Chosen by the grouped CV of the shared set (README, "Product types"): with
#: 370 hats the boosters learned the headwear types from the whole row worse (macro-F1 0.54,
#: uncalibrated) than a logistic regression on the hat crop's and the head's CNN embeddings
#: with the forehead's HOG (0.70); the beard styles gain from one on the identity descriptor
#: and the jaw crop; the trained hat colour reads the hat crop's embedding and the forehead's
#: colour histogram.
LINEAR = {"hat": (("hat__cnn", "context__cnn", "forehead__hog"), 0.001),
          "hat_colour": (("hat__cnn", "forehead__colour"), 0.01),
          **dict.fromkeys(BEARD_STYLES, (("face__", "jaw__"), 0.003))}
#: Targets with an XGBoost member on the main feature row (where it scored as well or better);
#: two-class targets only, as a booster is kept as its trees in numpy (``TreeMargins``).
TREES = ("eyewear",) + BEARD_STYLES


def type_labels(data_dir, filenames):
    """The type targets of each photo and the label cleaning they imply.

    ``none`` rows of ``hat_type.csv`` / ``eyewear_type.csv`` are label errors of CelebA (no hat
    or glasses in the photo): their parent label is flipped to 0. ``unsure`` rows keep their
    parent label and get no type; neither does an ``unsure`` hat colour.  A full beard is
    ``no_beard`` 0 with ``sideburns`` 1 in ``facial_hair.csv`` (CelebA's ``No_Beard`` = -1):
    a beard that reaches the sideburns over the cheeks.  A photo a file does not list has no
    label of its types (:data:`MISSING`): not in ``facial_hair.csv``, no beard styles and no
    ``beard``.

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
        styles on every photo ``facial_hair.csv`` lists (:data:`MISSING` on the others), and
        the ``beard`` label ("0"/"1", :data:`MISSING` likewise) to score the styles given it.
    flips : dict of str to list of str
        Parent label -> names of the photos whose label must be flipped to 0.
    """
    folder = Path(data_dir)
    files = [folder / name for name in TYPE_FILES]
    present = [f.name for f in files if f.is_file()]
    if not present:
        return None, {}
    if len(present) < len(files):
        raise DatasetError(f"{folder}: {', '.join(present)} without "
                           f"{', '.join(f.name for f in files if f.name not in present)}; "
                           "the type models need all three files (or none of them)")
    eyewear, hat, hair = (type_file(f) for f in files)
    names = pd.Index([Path(f).name for f in filenames])
    targets = pd.DataFrame(MISSING, index=names, columns=list(TARGETS))
    for column, table, source in (("eyewear", eyewear, "eyewear_type"), ("hat", hat, "hat_type"),
                                  ("hat_colour", hat, "hat_colour")):
        known = table[~table["hat_type" if column != "eyewear" else source].isin((NO_TYPE, UNSURE))
                      & (table[source] != UNSURE)][source].reindex(names)
        targets[column] = known.fillna(MISSING).to_numpy()
    hair = hair.reindex(names)  # NaN: a photo the file does not list, whose styles are not known
    listed = hair["no_beard"].notna().to_numpy()
    targets["stubble"], targets["moustache"], targets["goatee"] = (
        hair[c].fillna(MISSING).to_numpy() for c in ("stubble", "moustache", "goatee"))
    targets["full_beard"] = np.where(~listed, MISSING, np.where(
        (hair["no_beard"] == "0") & (hair["sideburns"] == "1"), "1", "0"))
    targets["beard"] = np.where(~listed, MISSING, np.where(
        (hair["no_beard"] == "0") | (hair["goatee"] == "1") | (hair["moustache"] == "1"), "1", "0"))
    flips = {"eyewear": sorted(eyewear.index[eyewear["eyewear_type"] == NO_TYPE]),
             "hat": sorted(hat.index[hat["hat_type"] == NO_TYPE])}
    return targets.reset_index(drop=True), flips


def type_file(path):
    """One of :data:`TYPE_FILES`, indexed by file name, its values stripped of spaces (as
    ``labels.csv``'s are), or a one-line DatasetError naming the line of a duplicate name or
    of a value the column does not take (CelebA's -1/1, ``Cap``): one would have been trained
    as a class of its own, or as a beard."""
    table = read_csv(path)
    values = TYPE_FILES[path.name]
    if missing := missing_columns(path, table.columns, {"filename", *values}):
        raise DatasetError(missing)
    first = {}
    for line, name in table["filename"].items():  # read_csv's index: the line numbers
        if name in first:
            raise DatasetError(f"{path}, line {line}: {name} is a duplicate of line {first[name]}")
        first[name] = line
    stripped = table[list(values)].apply(lambda column: column.str.strip())
    wrong = np.column_stack([~stripped[column].isin(allowed) for column, allowed in values.items()])
    if wrong.any():  # the first line with one, and its first column
        line, column = np.argwhere(wrong)[0]
        line, column = table.index[line], list(values)[column]
        allowed = values[column]
        raise DatasetError(f"{path}, line {line}: {column}={table.at[line, column]!r}, expected "
                           f"{' or '.join(allowed) if len(allowed) == 2 else 'one of ' + ', '.join(allowed)}")
    table[list(values)] = stripped
    return table.set_index("filename")


def usable_classes(y, groups, *, n_splits, min_examples, random_state):
    """Classes with enough photos, and folds (by group) whose training side holds each.

    A class under ``min_examples`` photos cannot be learned or calibrated; it is left out of
    the target (its photos too), so the model only names types it has seen enough of.
    """
    names, counts = np.unique(y, return_counts=True)
    kept = names[counts >= min_examples]
    rows = np.flatnonzero(np.isin(y, kept))
    if len(kept) < 2:
        return kept, rows, []
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
    splits = list(splitter.split(rows, y[rows], groups[rows]))
    if any(len(np.unique(y[rows][train])) < len(kept) for train, _ in splits):
        return kept[:0], rows[:0], []
    return kept, rows, splits


class TypeClassifier(BaseEstimator):
    """One calibrated model per type target (:data:`TARGETS`), each on the photos that have a
    label for it: XGBoost, an L2 logistic regression, or the mean of both (:data:`LINEAR`,
    :data:`TREES`).

    The boosters read the main feature row: the ``screen_columns`` columns of highest ANOVA
    F score (the main classifier's first screen; it then keeps the columns a short booster
    uses).  A linear model reads the standardised columns of
    its blocks.  Each target's scores are calibrated as the main classifier's are: over
    ``calibration_folds`` folds grouped by person, every training photo gets an out-of-fold
    margin (log-odds; the mean of the members'), one sigmoid per class is fitted on those
    margins, and the members are refitted on all the photos.  With 34 beanies no calibration
    share can be held back.

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
    feature_names : sequence of str, optional
        The name of each column of ``X`` (``FaceFeatures.get_feature_names_out``): a linear
        model finds its blocks by name, a booster reads the main feature row (not the
        ``GATED_BLOCKS`` of :mod:`features.vision.transformer`, computed for some faces only).
        Without names every model reads every column.
    n_jobs : int
        XGBoost threads when fitting.
    random_state : int

    Attributes
    ----------
    classes_ : dict of str to ndarray
        The classes of each target fitted.
    skipped_ : dict of str to str
        Each of ``targets`` left without a model, and why (too few photos of each class).
    """

    def __init__(self, *, n_estimators=150, learning_rate=0.1, max_depth=3, colsample_bytree=0.3,
                 screen_columns=400, calibration_folds=3, min_examples=10, targets=TARGETS,
                 feature_names=None, n_jobs=1, random_state=0):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.colsample_bytree = colsample_bytree
        self.screen_columns = screen_columns
        self.calibration_folds = calibration_folds
        self.min_examples = min_examples
        self.targets = targets
        self.feature_names = feature_names
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _booster(self):
        return xgboost_classifier(n_estimators=self.n_estimators, learning_rate=self.learning_rate,
                                  max_depth=self.max_depth, colsample_bytree=self.colsample_bytree,
                                  subsample=SUBSAMPLE, n_jobs=self.n_jobs, random_state=self.random_state)

    def _columns(self, n_features, prefixes=None):
        """Columns whose names start with one of ``prefixes`` (a linear model's blocks), or the
        main feature row's (``None``: a booster's); every column when the names are unknown,
        none when ``X`` has none of them (a block ablation)."""
        if self.feature_names is None:
            return np.arange(n_features)
        names = np.asarray(self.feature_names, dtype=str)
        if prefixes is None:
            return np.flatnonzero(~np.isin(names, gated_names()))
        return np.flatnonzero(np.any([np.char.startswith(names, p) for p in prefixes], axis=0))

    def _members(self, target, X, y):
        """Unfitted members of a target with the columns each reads: {name: (model, columns)};
        a member without any of its columns in ``X`` is left out."""
        members = {}
        columns = self._columns(X.shape[1])
        if target in TREES and len(columns):
            members["trees"] = (self._booster(), columns[top_f_columns(X[:, columns], y, self.screen_columns)])
        columns = self._columns(X.shape[1], LINEAR[target][0]) if target in LINEAR else []
        if len(columns):
            members["linear"] = (make_pipeline(StandardScaler(), LogisticRegression(C=LINEAR[target][1], max_iter=2000)),
                                 columns)
        return members

    def target_rows(self, target, X, T, groups):
        """The classes ``target`` is fitted with, its rows and its calibration folds
        (:func:`usable_classes`, folds over positions in those rows): its labelled rows, less
        those missing a linear member's blocks (some are computed for a parent's photos only)."""
        labelled = np.flatnonzero(T[target].to_numpy() != MISSING)
        if target in LINEAR:
            blocks = X[np.ix_(labelled, self._columns(X.shape[1], LINEAR[target][0]))]
            labelled = labelled[~np.isnan(blocks).any(axis=1)]
        classes, rows, splits = usable_classes(T[target].to_numpy()[labelled], groups[labelled],
                                               n_splits=self.calibration_folds, min_examples=self.min_examples,
                                               random_state=self.random_state)
        return classes, labelled[rows], splits

    def fit(self, X, T, groups=None):
        """Fit every target that has at least two classes with enough photos (and a member
        with its columns in ``X``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            NaN where a block was not computed (a linear model's rows must have their blocks).
        T : DataFrame
            One column per target (:func:`type_labels`), :data:`MISSING` where unlabelled;
            with the ``beard`` label as a column too ("0"/"1"), the beard styles are calibrated
            on its photos only (:data:`CALIBRATED_GIVEN`).
        groups : array-like of shape (n_samples,), optional
            Person of each row: calibration folds keep a person's photos together.

        Returns
        -------
        self
        """
        X = np.asarray(X, dtype=np.float32)
        groups = np.arange(len(X)) if groups is None else np.asarray(groups)
        self.estimators_, self.columns_, self.calibrators_, self.classes_ = {}, {}, {}, {}
        self.skipped_ = {}  # target -> why it has no model: said by train.py, not left to be found
        for target in self.targets:
            classes, rows, splits = self.target_rows(target, X, T, groups)
            if len(classes) < 2:
                self.skipped_[target] = (f"fewer than two classes with {self.min_examples} photos each, in "
                                         f"{self.calibration_folds} folds by person")
                continue
            y = np.searchsorted(classes, T[target].to_numpy()[rows])
            parent = CALIBRATED_GIVEN.get(target)
            given = (T[parent].to_numpy()[rows] == "1") if parent in T else np.ones(len(rows), bool)
            members = self._members(target, X[rows], y)
            if not members or len(np.unique(y[given])) < 2:  # nothing to fit, or no map given the parent
                self.skipped_[target] = ("none of its model's blocks in the feature row" if not members
                                         else f"one class only among the photos with the {parent} label")
                continue
            margins = np.zeros((len(rows), len(classes) if len(classes) > 2 else 1))
            for train, test in splits:
                # the booster's columns screened without the held-out people, as the final
                # members' are without a new face
                fold = self._members(target, X[rows[train]], y[train])
                fitted = {name: margin_model(fit_member(model, X[rows[train]][:, columns], y[train]))
                          for name, (model, columns) in fold.items()}
                margins[test] = mean_margin(fitted, {n: c for n, (_, c) in fold.items()}, X[rows[test]])
            self.calibrators_[target] = [MarginCalibrator(method="sigmoid").fit(
                margins[given, k], (y[given] == k) if margins.shape[1] > 1 else y[given])
                for k in range(margins.shape[1])]
            self.estimators_[target] = {name: margin_model(fit_member(model, X[rows][:, columns], y))
                                        for name, (model, columns) in members.items()}
            self.columns_[target] = {name: columns for name, (_, columns) in members.items()}
            self.classes_[target] = classes
        self.n_features_in_ = X.shape[1]
        return self

    def predict_proba(self, X, *, targets=None):
        """Conditional probability of each class of each fitted target (of ``targets`` only,
        when given); NaN on rows missing a linear model's blocks.

        Returns
        -------
        dict of str to ndarray
            Target -> shape (n_samples, len(classes_[target])); for beard styles the classes
            are "0" and "1".
        """
        check_is_fitted(self, "estimators_")
        X = np.asarray(X, dtype=np.float32)
        out = {}
        for target, fitted in self.estimators_.items():
            if targets is not None and target not in targets:
                continue
            classes = self.classes_[target]
            proba = np.full((len(X), len(classes)), np.nan)
            rows = np.flatnonzero(~np.isnan(X[:, self.columns_[target].get("linear", [])]).any(axis=1))
            if len(rows):
                margins = mean_margin(fitted, self.columns_[target], X[rows])
                calibrated = np.column_stack([c.predict(margins[:, k]) for k, c in enumerate(self.calibrators_[target])])
                if len(classes) == 2:
                    proba[rows] = np.column_stack([1 - calibrated[:, 0], calibrated[:, 0]])
                else:  # one-vs-rest sigmoids, normalised as CalibratedClassifierCV does
                    total = calibrated.sum(axis=1, keepdims=True)
                    proba[rows] = np.where(total > 0, calibrated / np.where(total > 0, total, 1), 1 / len(classes))
            out[target] = proba
        return out

    @property
    def reads_colour(self):
        """Whether a trained hat-colour read was kept (else the colour is measured on the crop)."""
        check_is_fitted(self, "estimators_")
        return "hat_colour" in self.estimators_

    def face_types(self, X, labels, *, measured_colours=None, in_colour=True):
        """The ``types`` of each face: only the families whose parent label is on.

        Parameters
        ----------
        X : array-like of shape (n_faces, n_features)
            The feature row, with the hat crop's block for hat wearers (NaN where it was not
            computed).
        labels : sequence of sequence of str
            Each face's labels that passed their thresholds.
        measured_colours : sequence of str, optional
            Each face's hat colour read from its crop, used when no trained colour model was
            kept (``hat_colour`` not in ``targets``).
        in_colour : bool, default True
            Whether the photo shows colour; a black-and-white one gets no ``hat_colour`` from
            either read, and the trained read is not asked (:func:`features.vision.colours.in_colour`).

        Returns
        -------
        list of dict
            Per face, e.g. ``{"eyewear": {"dark": 0.93, "clear": 0.07}, "hat": {"cap": 0.8,
            ...}, "hat_colour": "navy", "beard": {"goatee": 0.81, "moustache": 0.4, ...}}``:
            classes most likely first; beard styles each their own probability.
        """
        X = np.asarray(X, dtype=np.float32)
        named = {}  # target -> face -> {class: p}, for the faces whose parent label is on
        for target, parent in PARENTS.items():
            rows = [i for i, on in enumerate(labels) if parent in on and (in_colour or target != "hat_colour")]
            if rows and target in self.estimators_:  # no type model runs for a label no face has
                proba = self.predict_proba(X[rows], targets={target})[target]
                named[target] = dict(zip(rows, (dict(zip(self.classes_[target], map(float, p))) for p in proba)))
        faces = []
        for i, on in enumerate(labels):
            types = {}
            for family in ("eyewear", "hat"):
                if family in on and family in named:
                    types[family] = rounded(named[family][i])
            if "hat" in on and in_colour:
                colour = (likeliest(named["hat_colour"][i])
                          if "hat_colour" in named else measured_colours[i] if measured_colours else None)
                if colour:
                    types["hat_colour"] = colour
            if "beard" in on:
                styles = {s: named[s][i]["1"] for s in BEARD_STYLES if s in named}
                if styles:
                    types["beard"] = rounded(styles)
            faces.append(types)
        return faces


def balanced_weights(y, power=0.5):
    """Sample weights of (largest class / own class) ** power: rare types count more."""
    counts = np.bincount(y)
    return ((counts.max() / counts) ** power)[y]


def is_pipeline(model):
    """A linear member (a scikit-learn pipeline), not a booster."""
    return hasattr(model, "steps")


def fit_member(model, X, y):
    """Fit one member on its columns: a booster with classes weighted by sqrt(largest / own
    count), a linear model fully balanced (trees overfit weighted rare rows, a linear model
    does not)."""
    if is_pipeline(model):
        return clone(model).fit(X, y, logisticregression__sample_weight=balanced_weights(y, power=1.0))
    return clone(model).fit(X, y, sample_weight=balanced_weights(y))


def margin_model(model):
    """What :func:`member_margin` reads of a fitted member: a booster's trees in numpy
    (:class:`~features.model.trees.TreeMargins`; boosters serve two-class targets only), else
    the member itself."""
    return model if is_pipeline(model) else TreeMargins(model.get_booster())


def member_margin(model, X):
    """A fitted member's margin (log-odds) of each row: shape (n,) for two classes, else
    (n, n_classes)."""
    if isinstance(model, TreeMargins):
        return model(X)
    # the pipeline's decision_function, without its per-step checks (three quarters of a
    # face's cost for this member)
    scaler, logistic = (step for _, step in model.steps)
    margins = ((X - scaler.mean_) / scaler.scale_) @ logistic.coef_.T + logistic.intercept_
    return margins[:, 0] if margins.shape[1] == 1 else margins


def mean_margin(fitted, columns, X):
    """The mean margin of a target's fitted members, each on its columns, shape (n, 1) for
    two classes, else (n, n_classes)."""
    margins = np.mean([member_margin(model, X[:, columns[name]]) for name, model in fitted.items()], axis=0)
    return margins.reshape(len(X), -1)


def rounded(probabilities):
    """``{class: p}`` to 4 decimals, most likely first."""
    return {k: round(v, 4) for k, v in sorted(probabilities.items(), key=lambda kv: -kv[1])}
