"""Calibrated one-vs-rest XGBoost: one calibrated classifier per label, with stored thresholds."""
import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_selection import f_classif
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import precision_recall_curve
from sklearn.model_selection import GroupShuffleSplit
from sklearn.utils.validation import check_is_fitted
from xgboost import XGBClassifier

from features.dataset import LABELS


class MultiLabelClassifier(ClassifierMixin, BaseEstimator):
    """One ``XGBClassifier`` per label inside ``CalibratedClassifierCV`` (one-vs-rest).

    Each booster is fitted once on most of the photos and frozen; its calibrator is fitted on
    the held-out rest, split by ``groups`` (people) so calibration sees only strangers.  One
    booster per label instead of one per calibration fold keeps training cheap.

    XGBoost's time grows with the number of columns, not with ``colsample_bytree``, so each
    label first screens its columns on the boosting rows: the ``screen_columns`` with the
    highest ANOVA F score, then those a short booster (``screen_trees`` trees) splits on.
    On the 8,000 CelebA photos this keeps about 300 of 4,596 columns per label, trains 8x
    faster and scores the same out of fold (README, "Classifier and calibration").

    Parameters
    ----------
    labels : tuple of str
        Names of the columns of ``Y``, in order.
    calibration : {"sigmoid", "isotonic"}
        Calibration method (README: measured choice).
    calibration_share : float
        Share of the photos (whole groups) held out to fit the calibrators.
    n_estimators, learning_rate, max_depth, colsample_bytree, subsample : XGBoost settings.
    screen_columns : int or None
        Columns kept by the F-score screen; None skips both screens (every column).
    screen_trees : int
        Trees of the screening booster (learning rate 0.3, half the columns per tree).
    balance : bool
        Weigh each label's positives by ``sqrt(negatives / positives)`` (hats are under 5%).
    thresholds : dict of str to float, optional
        Decision threshold per label for :meth:`predict` (0.5 when missing).
    n_jobs : int
        Threads of each XGBoost model, fitting and predicting.
    random_state : int

    Attributes
    ----------
    types_ : features.types.TypeClassifier
        Set by ``train.py`` after fitting: the product types, saved in the same model file.
    """

    def __init__(self, *, labels=LABELS, calibration="sigmoid", calibration_share=0.2,
                 n_estimators=300, learning_rate=0.08, max_depth=4, colsample_bytree=0.2,
                 subsample=0.8, screen_columns=1000, screen_trees=40, balance=True,
                 thresholds=None, n_jobs=1, random_state=0):
        self.labels = labels
        self.calibration = calibration
        self.calibration_share = calibration_share
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.colsample_bytree = colsample_bytree
        self.subsample = subsample
        self.screen_columns = screen_columns
        self.screen_trees = screen_trees
        self.balance = balance
        self.thresholds = thresholds
        self.n_jobs = n_jobs
        self.random_state = random_state

    def set_params(self, **params):
        """Set parameters; ``n_jobs`` also reaches the fitted boosters (workers predict with
        one thread each)."""
        super().set_params(**params)
        if "n_jobs" in params and hasattr(self, "estimators_"):
            for model in self.estimators_:
                model.estimator.estimator.set_params(n_jobs=self.n_jobs)
        if "n_jobs" in params and hasattr(self, "types_"):
            self.types_.set_params(n_jobs=self.n_jobs)
        return self

    def _booster(self, y, **settings):
        positives = max(int(y.sum()), 1)
        weight = np.sqrt((len(y) - positives) / positives) if self.balance else 1.0
        settings = {"n_estimators": self.n_estimators, "learning_rate": self.learning_rate,
                    "colsample_bytree": self.colsample_bytree, **settings}
        return XGBClassifier(max_depth=self.max_depth, subsample=self.subsample,
                             tree_method="hist", max_bin=64, scale_pos_weight=weight,
                             n_jobs=self.n_jobs, random_state=self.random_state,
                             eval_metric="logloss", **settings)

    def _screen(self, X, y):
        """Indices of the columns the label's booster will see (see the class docstring)."""
        columns = np.arange(X.shape[1])
        if self.screen_columns is None:
            return columns
        if len(columns) > self.screen_columns:
            with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
                warnings.simplefilter("ignore", UserWarning)  # constant columns: F is NaN
                # in slices of columns: f_classif works on float64 copies of what it gets
                score = np.concatenate([f_classif(X[:, start:start + 256], y)[0]
                                        for start in range(0, X.shape[1], 256)])
            score = np.nan_to_num(score, nan=0.0)
            columns = np.sort(np.argsort(-score, kind="stable")[:self.screen_columns])
        screen = self._booster(y, n_estimators=self.screen_trees, learning_rate=0.3,
                               colsample_bytree=0.5).fit(X[:, columns], y)
        used = columns[screen.feature_importances_ > 0]
        return used if len(used) else columns

    def fit(self, X, Y, groups=None):
        """Fit one calibrated classifier per label.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        Y : array-like of shape (n_samples, n_labels)
            0/1 per label.
        groups : array-like of shape (n_samples,), optional
            Person of each sample; the calibration share takes whole people.

        Returns
        -------
        self
        """
        X = np.asarray(X, dtype=np.float32)
        Y = np.asarray(Y, dtype=int)
        if Y.ndim != 2 or Y.shape[1] != len(self.labels):
            raise ValueError(f"Y must have one column per label {self.labels}, got shape {Y.shape}")
        groups = np.arange(len(X)) if groups is None else np.asarray(groups)
        self.estimators_, self.columns_ = [], []
        for column, label in enumerate(self.labels):
            y = Y[:, column]
            boost, calibrate = self._split(y, groups)
            columns = self._screen(X[boost], y[boost])
            booster = self._booster(y[boost]).fit(X[np.ix_(boost, columns)], y[boost])
            model = CalibratedClassifierCV(FrozenEstimator(booster), method=self.calibration)
            self.estimators_.append(model.fit(X[np.ix_(calibrate, columns)], y[calibrate]))
            self.columns_.append(columns)
        thresholds = self.thresholds or {}
        self.thresholds_ = np.array([thresholds.get(label, 0.5) for label in self.labels])
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = X.shape[1]
        return self

    def _split(self, y, groups):
        """Boosting and calibration rows, whole groups each; both sides need both classes."""
        for seed in range(self.random_state, self.random_state + 20):
            splitter = GroupShuffleSplit(n_splits=1, test_size=self.calibration_share, random_state=seed)
            boost, calibrate = next(splitter.split(y, y, groups))
            if all(0 < y[rows].sum() < len(rows) for rows in (boost, calibrate)):
                return boost, calibrate
        raise ValueError(f"{int(y.sum())} positives of {len(y)} samples: too few to hold out a "
                         "calibration share with both classes")

    def predict_proba(self, X):
        """Calibrated probability of each label, shape (n_samples, n_labels)."""
        check_is_fitted(self, "estimators_")
        X = np.asarray(X, dtype=np.float32)
        return np.column_stack([m.predict_proba(X[:, c])[:, 1]
                                for m, c in zip(self.estimators_, self.columns_)])

    def predict_proba_uncalibrated(self, X):
        """XGBoost's own probabilities before calibration, for reliability plots."""
        check_is_fitted(self, "estimators_")
        X = np.asarray(X, dtype=np.float32)
        return np.column_stack([m.estimator.predict_proba(X[:, c])[:, 1]
                                for m, c in zip(self.estimators_, self.columns_)])

    def predict(self, X):
        """0/1 per label: the probability reaches the label's stored threshold."""
        return (self.predict_proba(X) >= self.thresholds_).astype(int)


def best_threshold(y_true, y_score, *, min_precision=None):
    """Threshold that maximises F1 or, with ``min_precision``, recall at that precision.

    Returns
    -------
    float
    """
    precision, recall, thresholds = precision_recall_curve(y_true, y_score)
    precision, recall = precision[:-1], recall[:-1]
    if min_precision is not None:
        ok = precision >= min_precision
        if ok.any():
            return float(thresholds[ok][np.argmax(recall[ok])])
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0)
    return float(thresholds[np.argmax(f1)])
