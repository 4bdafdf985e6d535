"""Calibrated one-vs-rest XGBoost: one calibrated classifier per label, with stored thresholds."""
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
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

    Parameters
    ----------
    labels : tuple of str
        Names of the columns of ``Y``, in order.
    calibration : {"sigmoid", "isotonic"}
        Calibration method (README: measured choice).
    calibration_share : float
        Share of the photos (whole groups) held out to fit the calibrators.
    n_estimators, learning_rate, max_depth, colsample_bytree, subsample : XGBoost settings.
    balance : bool
        Weigh each label's positives by ``sqrt(negatives / positives)`` (hats are under 5%).
    thresholds : dict of str to float, optional
        Decision threshold per label for :meth:`predict` (0.5 when missing).
    n_jobs : int
        Threads of each XGBoost model.
    random_state : int
    """

    def __init__(self, *, labels=LABELS, calibration="sigmoid", calibration_share=0.2,
                 n_estimators=300, learning_rate=0.08, max_depth=4, colsample_bytree=0.2,
                 subsample=0.8, balance=True, thresholds=None, n_jobs=1, random_state=0):
        self.labels = labels
        self.calibration = calibration
        self.calibration_share = calibration_share
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.colsample_bytree = colsample_bytree
        self.subsample = subsample
        self.balance = balance
        self.thresholds = thresholds
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _booster(self, y):
        positives = max(int(y.sum()), 1)
        weight = np.sqrt((len(y) - positives) / positives) if self.balance else 1.0
        return XGBClassifier(n_estimators=self.n_estimators, learning_rate=self.learning_rate,
                             max_depth=self.max_depth, colsample_bytree=self.colsample_bytree,
                             subsample=self.subsample, tree_method="hist", max_bin=64,
                             scale_pos_weight=weight, n_jobs=self.n_jobs,
                             random_state=self.random_state, eval_metric="logloss")

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
        self.estimators_ = []
        for column, label in enumerate(self.labels):
            y = Y[:, column]
            boost, calibrate = self._split(y, groups)
            booster = self._booster(y[boost]).fit(X[boost], y[boost])
            model = CalibratedClassifierCV(FrozenEstimator(booster), method=self.calibration)
            self.estimators_.append(model.fit(X[calibrate], y[calibrate]))
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
        return np.column_stack([m.predict_proba(X)[:, 1] for m in self.estimators_])

    def predict_proba_uncalibrated(self, X):
        """XGBoost's own probabilities before calibration, for reliability plots."""
        check_is_fitted(self, "estimators_")
        X = np.asarray(X, dtype=np.float32)
        return np.column_stack([m.estimator.predict_proba(X)[:, 1] for m in self.estimators_])

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
