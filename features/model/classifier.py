"""Calibrated one-vs-rest XGBoost: per label, boosters cross-fitted over people, one calibration
map on their out-of-fold margins, and the decision threshold the model owns.

XGBoost is imported only to fit: a fitted classifier keeps its boosters' trees in numpy
(:class:`~features.model.trees.TreeMargins`), so loading a model and answering a face need
neither XGBoost nor its threads."""
import copy
import warnings

import numpy as np
from scipy.special import expit, log_expit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.feature_selection import f_classif
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import precision_recall_curve
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

from features.labels import LABELS
from features.model.trees import TreeMargins

CALIBRATIONS = ("sigmoid", "isotonic", "beta", "temperature")
#: A precision asked that decides a label for more than this many times the faces that have it
#: is said: precision 0.2 gave every face eyewear, at threshold 0.002, and no word of it.
BROAD = 2
#: XGBoost settings every booster of the project is fitted with, the main classifier's and the
#: type models' (:func:`xgboost_classifier`): histogram trees on 64 bins.
BOOSTER_SETTINGS = {"tree_method": "hist", "max_bin": 64}
#: Share of the rows each tree is grown on: the type models', and the main classifier's default.
SUBSAMPLE = 0.8


def xgboost_classifier(**settings):
    """An unfitted XGBoost classifier with :data:`BOOSTER_SETTINGS` and ``settings`` (XGBoost
    imported here, to fit only: module docstring)."""
    from xgboost import XGBClassifier

    return XGBClassifier(**BOOSTER_SETTINGS, **settings)


def reaches(probabilities, thresholds):
    """Whether each probability reaches its threshold (broadcast): a label decided, the rule
    every decision and every figure at a threshold uses (precision_recall_curve's too)."""
    return np.asarray(probabilities) >= thresholds


class MarginCalibrator(BaseEstimator):
    """A map from a booster's margin (log-odds) to a probability.

    ``sigmoid`` is Platt scaling on the margin (slope and intercept); ``temperature`` only
    rescales the margin (no intercept); ``beta`` is beta calibration (Kull et al. 2017:
    ``a ln p - b ln(1 - p) + c`` with ``p`` the booster's probability); ``isotonic`` is a
    monotone step map.

    Parameters
    ----------
    method : {"sigmoid", "isotonic", "beta", "temperature"}
    """

    def __init__(self, *, method="sigmoid"):
        self.method = method

    def _design(self, margin):
        margin = np.asarray(margin, dtype=float)
        if self.method == "beta":  # ln p and -ln(1 - p), computed without overflow
            return np.column_stack([log_expit(margin), -log_expit(-margin)])
        return margin[:, None]

    def fit(self, margin, y):
        """Fit the map on margins and 0/1 outcomes; returns self."""
        if self.method not in CALIBRATIONS:
            raise ValueError(f"calibration must be one of {CALIBRATIONS}, got {self.method!r}")
        if self.method == "isotonic":
            self.map_ = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(margin, y)
        else:  # unpenalised: two or three parameters fitted on thousands of margins
            self.map_ = LogisticRegression(C=np.inf, fit_intercept=self.method != "temperature",
                                           max_iter=1000).fit(self._design(margin), y)
        return self

    def predict(self, margin):
        """Calibrated probability of each margin."""
        check_is_fitted(self, "map_")
        if self.method == "isotonic":
            return self.map_.predict(np.asarray(margin, dtype=float))
        # LogisticRegression's own binary probability, without its per-call checks (a face's
        # types call ten of these)
        return expit(self._design(margin) @ self.map_.coef_[0] + self.map_.intercept_[0])


class TooFewExamples(ValueError):
    """A label with too few photos of a class for its calibration folds; the message names it."""


def people_text(n):
    """``1 person``, ``2 people``: as the messages about groups say them."""
    return f"{n} {'person' if n == 1 else 'people'}"


def calibration_shortfall(y, groups, folds, *, noun="samples"):
    """Why one label's 0/1 ``y`` cannot be split into ``folds`` grouped, stratified folds, each
    side with both classes (too few of a class, of people, or of people among the positives),
    or None: written once for the classifier and for train.py's check before any photo is
    read."""
    positives, groups = int(np.sum(y)), np.asarray(groups)
    if min(positives, len(y) - positives) < folds:
        return f"{positives} positives of {len(y)} {noun}: too few of each class for {folds} calibration folds"
    if (people := len(np.unique(groups))) < folds:
        return f"{len(y)} {noun} of {people_text(people)}: too few for {folds} calibration folds"
    if (people := len(np.unique(groups[np.asarray(y) == 1]))) < folds:
        return (f"{positives} positives of {len(y)} {noun}, from {people_text(people)}: too few for {folds} "
                "calibration folds")
    return None


class ThresholdDecisions:
    """The decision rule of a fitted multilabel classifier with ``labels``, ``thresholds_`` and
    ``operating_points_`` (out-of-fold precision and recall per label), and its scikit-learn
    tags, written once."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # a missing feature block: XGBoost's missing values
        tags.target_tags.single_output = False
        tags.target_tags.multi_output = True
        tags.classifier_tags.multi_class = False
        tags.classifier_tags.multi_label = True
        return tags

    def predict(self, X):
        """0/1 per label: the probability reaches the label's stored threshold."""
        return self.decide(self.predict_proba(X))

    def decide(self, probabilities):
        """0/1 per label for probabilities from :meth:`predict_proba` (the decision rule,
        written once: callers that already hold the probabilities need not score twice)."""
        check_is_fitted(self, "thresholds_")
        return reaches(np.asarray(probabilities).reshape(-1, len(self.labels)), self.thresholds_).astype(int)

    def with_thresholds(self, *, min_probability=None, precision=None):
        """A copy deciding by other thresholds; the fitted boosters are shared, not copied.

        Parameters
        ----------
        min_probability : dict of str to float, optional
            A fixed threshold for some labels.
        precision : float, optional
            For the other labels, the lowest threshold whose out-of-fold precision reaches
            this (the best recall at it); a label that never reaches it decides nothing
            (threshold infinity) and is named in a warning, as is one decided for over
            :data:`BROAD` times the faces that have it, and one whose threshold falls under
            the model's own (it decides more faces, where a precision reads as stricter).

        Returns
        -------
        The same kind of classifier.
        """
        check_is_fitted(self, "thresholds_")
        fixed = dict(min_probability or {})
        unknown = set(fixed) - set(self.labels)
        if unknown:
            raise ValueError(f"unknown label(s) {', '.join(sorted(unknown))}; expected {', '.join(self.labels)}")
        chosen = self.thresholds_.astype(float)
        for j, label in enumerate(self.labels):
            if label in fixed:
                chosen[j] = fixed[label]
            elif precision is not None:
                points = self.operating_points_[j]
                chosen[j] = best_threshold(points, min_precision=precision, strict=True)
                if np.isinf(chosen[j]):
                    warnings.warn(f"{label} never reaches precision {precision} out of fold "
                                  f"(best {points['precision'].max():.3f}): no {label} decisions", UserWarning,
                                  stacklevel=2)
                elif (decided := decided_share(points, chosen[j])) > BROAD * points["precision"][0]:
                    warnings.warn(f"{label} at precision {precision}: decided for {decided:.0%} of the faces out "
                                  f"of fold, where {points['precision'][0]:.0%} have it (threshold "
                                  f"{chosen[j]:.4f})", UserWarning, stacklevel=2)
                elif chosen[j] < self.thresholds_[j]:  # read as "stricter", it decides more faces
                    warnings.warn(f"{label} at precision {precision}: threshold {chosen[j]:.4f}, under the model's "
                                  f"own {self.thresholds_[j]:.4f}, whose out-of-fold precision is already "
                                  f"{precision_at(points, self.thresholds_[j]):.3f}: more {label} decisions, "
                                  "not fewer", UserWarning, stacklevel=2)
        twin = copy.copy(self)
        twin.thresholds_ = chosen
        return twin


class MultiLabelClassifier(ThresholdDecisions, ClassifierMixin, BaseEstimator):
    """Per label, ``calibration_folds`` XGBoost boosters cross-fitted on grouped folds, and one
    calibration map fitted on all their out-of-fold margins.

    Every training person is scored once by a booster that did not see them (each of their
    rows: ``train.py`` gives their photos and the photos' tight copies); those out-of-fold
    margins fit the label's calibration map (on the log-odds, not on
    ``predict_proba``), choose its decision threshold and keep its precision-recall points,
    so a campaign can ask for a precision later (:meth:`with_thresholds`); their probabilities
    stay as ``oof_proba_``. A new face gets the calibration map of the mean of the label's
    boosters' margins.  The fitted boosters are kept as their trees in numpy
    (``estimators_``), which give XGBoost's margins (``tests/test_classifier.py``).

    XGBoost's time grows with the number of columns, not with ``colsample_bytree``, so each
    booster first screens its columns on its own training rows: the ``screen_columns`` with
    the highest ANOVA F score, then those a short booster (``screen_trees`` trees) splits on.
    On the 8,000 CelebA photos this keeps about 320 of 5,876 columns per label; measured when
    the row had 4,596, it trained 8x faster and scored the same out of fold (README,
    "Classifier and calibration").

    Parameters
    ----------
    labels : tuple of str
        Names of the columns of ``Y``, in order.
    calibration : {"sigmoid", "isotonic", "beta", "temperature"}
        The map from margin to probability (:class:`MarginCalibrator`; README: measured choice).
    calibration_folds : int
        Grouped folds that cross-fit the boosters (and so the boosters kept per label).
    n_estimators, learning_rate, max_depth, colsample_bytree, subsample : XGBoost settings.
    screen_columns : int or None
        Columns kept by the F-score screen; None skips both screens (every column).
    screen_trees : int
        Trees of the screening booster (learning rate 0.3, half the columns per tree).
    balance : bool
        Weigh each label's positives by ``sqrt(negatives / positives)`` (hats are under 5%);
        the calibration map undoes the shift this gives the margins.
    min_precision : float, optional
        Threshold rule: the best recall at this out-of-fold precision; default the best F1
        (the middle of the thresholds within :data:`F1_PLATEAU` of it).
    thresholds : dict of str to float, optional
        Fixed thresholds for some labels, overriding the rule.
    n_jobs : int
        Threads of each XGBoost fit (predictions walk the trees in numpy, one thread).
    random_state : int
    """

    def __init__(self, *, labels=LABELS, calibration="sigmoid", calibration_folds=3,
                 n_estimators=300, learning_rate=0.08, max_depth=4, colsample_bytree=0.2,
                 subsample=SUBSAMPLE, screen_columns=1000, screen_trees=40, balance=True,
                 min_precision=None, thresholds=None, n_jobs=1, random_state=0):
        self.labels = labels
        self.calibration = calibration
        self.calibration_folds = calibration_folds
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.colsample_bytree = colsample_bytree
        self.subsample = subsample
        self.screen_columns = screen_columns
        self.screen_trees = screen_trees
        self.balance = balance
        self.min_precision = min_precision
        self.thresholds = thresholds
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _booster(self, y, **settings):
        positives = max(int(y.sum()), 1)
        weight = np.sqrt((len(y) - positives) / positives) if self.balance else 1.0
        settings = {"n_estimators": self.n_estimators, "learning_rate": self.learning_rate,
                    "colsample_bytree": self.colsample_bytree, **settings}
        return xgboost_classifier(max_depth=self.max_depth, subsample=self.subsample, scale_pos_weight=weight,
                                  n_jobs=self.n_jobs, random_state=self.random_state, eval_metric="logloss",
                                  **settings)

    def _screen(self, X, y):
        """Indices of the columns the label's boosters will see (see the class docstring)."""
        if self.screen_columns is None:
            return np.arange(X.shape[1])
        columns = top_f_columns(X, y, self.screen_columns)
        screen = self._booster(y, n_estimators=self.screen_trees, learning_rate=0.3,
                               colsample_bytree=0.5).fit(X[:, columns], y)
        used = columns[screen.feature_importances_ > 0]
        return used if len(used) else columns

    def _folds(self, y, groups, label):
        """Grouped, stratified folds of one label; each side of each needs both classes."""
        if short := calibration_shortfall(y, groups, self.calibration_folds):
            raise TooFewExamples(f"label {label!r}: {short}")
        positives = int(y.sum())
        splitter = StratifiedGroupKFold(n_splits=self.calibration_folds, shuffle=True,
                                        random_state=self.random_state)
        folds = list(splitter.split(y, y, groups))
        if not all(0 < y[rows].sum() < len(rows) for split in folds for rows in split):
            raise TooFewExamples(f"label {label!r}: {positives} positives of {len(y)} samples: too few "
                                 "to give every calibration fold both classes")
        return folds

    def fit(self, X, Y, groups=None):
        """Fit the cross-fitted boosters, calibration map and threshold of every label.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        Y : array-like of shape (n_samples, n_labels)
            0/1 per label.
        groups : array-like of shape (n_samples,), optional
            Person of each sample; a person sits in one calibration fold.

        Returns
        -------
        self
        """
        X, Y = validate_data(self, X, Y, multi_output=True, ensure_all_finite="allow-nan", dtype=np.float32)
        Y = Y.reshape(len(Y), -1)
        kind = type_of_target(Y, input_name="Y", raise_unknown=True)
        if kind not in ("binary", "multilabel-indicator") or not np.isin(Y, (0, 1)).all():
            raise ValueError(f"Unknown label type: {kind}. Only binary classification is supported: "
                             "Y holds 0/1 per label")
        Y = Y.astype(int)
        if Y.shape[1] != len(self.labels):
            raise ValueError(f"Y must have one column per label {self.labels}, got shape {Y.shape}")
        groups = np.arange(len(X)) if groups is None else np.asarray(groups)
        self.estimators_, self.columns_, self.calibrators_ = [], [], []
        margins = np.zeros(Y.shape)  # out of fold
        for column in range(len(self.labels)):
            y = Y[:, column]
            trees, columns = [], []
            for train, test in self._folds(y, groups, self.labels[column]):
                # screened on the booster's own training rows: a screen that saw the held-out
                # people would make their margins look better than a new face's
                used = self._screen(X[train], y[train])
                booster = self._booster(y[train]).fit(X[np.ix_(train, used)], y[train])
                margins[test, column] = booster.predict(X[np.ix_(test, used)], output_margin=True)
                trees.append(TreeMargins(booster.get_booster()))
                columns.append(used)
            self.calibrators_.append(MarginCalibrator(method=self.calibration).fit(margins[:, column], y))
            self.estimators_.append(trees)
            self.columns_.append(columns)
        self.oof_proba_ = np.column_stack([c.predict(margins[:, j]) for j, c in enumerate(self.calibrators_)])
        self.operating_points_ = [operating_points(Y[:, j], self.oof_proba_[:, j]) for j in range(len(self.labels))]
        self.thresholds_ = chosen_thresholds(self.operating_points_, self.labels, min_precision=self.min_precision,
                                             fixed=self.thresholds)
        self.classes_ = np.array([0, 1])
        return self

    def _margins(self, X):
        """Each label's boosters' margins on checked ``X``: a list (labels) of lists (folds)."""
        check_is_fitted(self, "estimators_")
        X = validate_data(self, X, reset=False, ensure_all_finite="allow-nan", dtype=np.float32)
        return [[margin(X[:, used]) for margin, used in zip(trees, columns)]
                for trees, columns in zip(self.estimators_, self.columns_)]

    def predict_proba(self, X):
        """Calibrated probability of each label, shape (n_samples, n_labels): the calibration
        map of the mean of the label's boosters' margins, as the product types do (a mean of
        each margin's calibrated probability leans towards the middle where the boosters
        disagree; README, "Classifier and calibration")."""
        margins = self._margins(X)  # first: it checks that the model is fitted
        return np.column_stack([calibrator.predict(np.mean(label_margins, axis=0))
                                for calibrator, label_margins in zip(self.calibrators_, margins)])

    def predict_proba_uncalibrated(self, X):
        """The boosters' own probabilities (sigmoid of the mean margin), for reliability plots."""
        return np.column_stack([expit(np.mean(margins, axis=0)) for margins in self._margins(X)])


def top_f_columns(X, y, k):
    """Indices, in order, of the ``k`` columns of ``X`` of highest ANOVA F score against ``y``
    (all of them when there are no more); a constant column scores 0."""
    if X.shape[1] <= k:
        return np.arange(X.shape[1])
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", UserWarning)  # constant columns: F is NaN
        # in slices of columns: f_classif works on float64 copies of what it gets
        score = np.concatenate([f_classif(X[:, start:start + 256], y)[0] for start in range(0, X.shape[1], 256)])
    return np.sort(np.argsort(-np.nan_to_num(score, nan=0.0), kind="stable")[:k])


def chosen_thresholds(points, labels, *, min_precision=None, fixed=None):
    """Each label's threshold: ``fixed`` where given, else :func:`best_threshold` of its points."""
    fixed = fixed or {}
    return np.array([fixed.get(label, best_threshold(p, min_precision=min_precision))
                     for label, p in zip(labels, points)])


#: F1 is flat near its best, so the single best threshold is a poor choice: on the hat label
#: every threshold from 0.19 to 0.48 comes within 0.01 of the best F1, and the best one moved
#: from 0.33 to 0.43 between two trainings on all but 6 of the same photos.  The rule takes the
#: median of the thresholds whose F1 comes this close to the best (0.31 and 0.32 there).
F1_PLATEAU = 0.01


def best_threshold(points, *, min_precision=None, strict=False):
    """Threshold of the best F1 (the middle of its plateau, :data:`F1_PLATEAU`) or, with
    ``min_precision``, of the best recall at that precision.

    Parameters
    ----------
    points : dict
        ``threshold``, ``precision``, ``recall`` arrays (:func:`operating_points`).
    min_precision : float, optional
    strict : bool
        When no threshold reaches ``min_precision``: infinity (decide nothing) instead of
        falling back to the best F1.

    Returns
    -------
    float
    """
    precision, recall, thresholds = points["precision"], points["recall"], points["threshold"]
    if min_precision is not None:
        ok = precision >= min_precision
        if ok.any():
            return float(thresholds[ok][np.argmax(recall[ok])])
        if strict:
            return float("inf")
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0)
    return float(np.median(thresholds[f1 >= f1.max() - F1_PLATEAU]))


def precision_at(points, threshold):
    """The out-of-fold precision of deciding at ``threshold``: that of the lowest of ``points``
    at or over it."""
    at = min(np.searchsorted(points["threshold"], threshold), len(points["threshold"]) - 1)
    return float(points["precision"][at])


def decided_share(points, threshold):
    """The share of the out-of-fold faces decided at ``threshold`` (one of ``points``'), from
    its precision and recall: recall x prevalence / precision (the lowest threshold decides
    every face, so its precision is the prevalence)."""
    at = np.searchsorted(points["threshold"], threshold)
    return float(points["recall"][at] * points["precision"][0] / points["precision"][at])


def operating_points(y_true, y_score):
    """Precision and recall at every threshold of the scores (``precision_recall_curve``)."""
    precision, recall, thresholds = precision_recall_curve(y_true, y_score)
    return {"threshold": thresholds, "precision": precision[:-1], "recall": recall[:-1]}
