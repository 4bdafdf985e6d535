"""A second look at one label: a costly feature block computed only for the faces that might
show it.

The first classifier scores every face on the main feature row.  Faces whose probability of
``label`` reaches ``gate`` are scored for that label again by a second classifier that also
reads the trailing block of the row (the hat crop's embedding: a close look at the hat, which
the head crop sees at half the size).  Most faces are far under the gate and never pay for
the block (README, "The second look at hats").
"""
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils.validation import check_is_fitted, validate_data

from features.model.classifier import ThresholdDecisions, chosen_thresholds, operating_points
from features.vision.embeddings import CNN_SIZE


class GatedClassifier(ThresholdDecisions, ClassifierMixin, BaseEstimator):
    """Two :class:`~features.model.classifier.MultiLabelClassifier`: every label from the
    first, ``label`` from the second where the first's probability reaches ``gate``.

    ``X``'s last ``n_gated_columns`` columns are the gated block: the first classifier never
    reads them, the second reads the whole row.  In training every row has the block; in
    :meth:`predict_proba` only the rows :meth:`needs_block` names need it (NaN elsewhere; a row
    past the gate without it keeps the first's probability).
    ``label``'s out-of-fold probability, which sets its threshold and precision-recall points,
    is the second's where the first's out-of-fold probability reaches the gate, else the
    first's: the decision rule of the gated model, not of either part.

    Parameters
    ----------
    first : MultiLabelClassifier
        Every label, on the main row.
    second : MultiLabelClassifier
        Refitted for ``label`` alone, on the whole row; its threshold settings are not used.
    label : str
        The label with a second look.
    gate : float
        The first's probability of ``label`` from which the second looks.  0.03: out of fold
        on CelebA 6 of the 372 hats score under it, and about one news face in eight over it.
    n_gated_columns : int
        Width of the gated block, at the end of the row (by default one CNN embedding's).
    n_jobs : int
        XGBoost threads of both classifiers' fits.
    """

    def __init__(self, first, second, *, label="hat", gate=0.03, n_gated_columns=CNN_SIZE, n_jobs=1):
        self.first = first
        self.second = second
        self.label = label
        self.gate = gate
        self.n_gated_columns = n_gated_columns
        self.n_jobs = n_jobs

    @property
    def labels(self):
        """Label names, in the order of probability columns (the first classifier's)."""
        return tuple(self.first.labels)

    def _column(self):
        if self.label not in self.labels:
            raise ValueError(f"label {self.label!r} is not one of {self.labels}")
        return self.labels.index(self.label)

    def fit(self, X, Y, groups=None):
        """Fit both classifiers (the second on ``label`` alone) and the gated label's threshold.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The main row followed by the gated block, on every row.
        Y : array-like of shape (n_samples, n_labels)
        groups : array-like of shape (n_samples,), optional
            Person of each sample.

        Returns
        -------
        self
        """
        X, Y = validate_data(self, X, Y, multi_output=True, ensure_all_finite="allow-nan", dtype=np.float32)
        Y = Y.reshape(len(Y), -1)
        if not 0 < self.n_gated_columns < X.shape[1]:
            raise ValueError(f"n_gated_columns must leave a main row: {self.n_gated_columns} of {X.shape[1]} columns")
        j = self._column()
        self.first_ = clone(self.first).set_params(n_jobs=self.n_jobs).fit(X[:, :-self.n_gated_columns], Y, groups)
        self.second_ = clone(self.second).set_params(labels=(self.label,), thresholds=None, n_jobs=self.n_jobs)
        self.second_.fit(X, Y[:, [j]], groups)
        gated = self.first_.oof_proba_.copy()
        looked = gated[:, j] >= self.gate
        gated[looked, j] = self.second_.oof_proba_[looked, 0]
        self.oof_proba_ = gated
        self.operating_points_ = list(self.first_.operating_points_)
        self.operating_points_[j] = operating_points(Y[:, j], gated[:, j])
        self.thresholds_ = chosen_thresholds(self.operating_points_, self.labels,
                                             min_precision=self.first.min_precision, fixed=self.first.thresholds)
        self.classes_ = np.array([0, 1])
        return self

    def _first(self, X):
        """Checked ``X``, the first's probabilities and which rows pass the gate."""
        check_is_fitted(self, "first_")
        X = validate_data(self, X, reset=False, ensure_all_finite="allow-nan", dtype=np.float32)
        probabilities = self.first_.predict_proba(X[:, :-self.n_gated_columns])
        return X, probabilities, probabilities[:, self._column()] >= self.gate

    def needs_block(self, X):
        """Which rows of ``X`` (the gated block may be NaN) the second classifier scores: the
        first's probability of ``label`` reaches ``gate``."""
        return self._first(X)[2]

    def _scores(self, X, *, calibrated):
        X, probabilities, past = self._first(X)
        main, block = X[:, :-self.n_gated_columns], X[:, -self.n_gated_columns:]
        looked = past & ~np.isnan(block).all(axis=1)
        scores = probabilities if calibrated else self.first_.predict_proba_uncalibrated(main)
        if looked.any():
            second = self.second_.predict_proba if calibrated else self.second_.predict_proba_uncalibrated
            scores[looked, self._column()] = second(X[looked])[:, 0]
        return scores

    def predict_proba(self, X):
        """Calibrated probability of each label, shape (n_samples, n_labels)."""
        return self._scores(X, calibrated=True)

    def predict_proba_uncalibrated(self, X):
        """The boosters' own probabilities, gated the same way (for reliability plots)."""
        return self._scores(X, calibrated=False)
