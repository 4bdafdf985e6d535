"""Honest cross-validation: grouped folds, out-of-fold scores, per-label metrics and plots."""
import numpy as np
from scipy.special import logit
from sklearn.base import clone
from sklearn.metrics import (accuracy_score, average_precision_score, brier_score_loss, f1_score,
                             log_loss, precision_score, recall_score, roc_auc_score)
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold

from features.model.classifier import reaches

METRICS = ("roc_auc", "average_precision", "f1", "precision", "recall", "brier", "log_loss",
           "accuracy", "majority_baseline_accuracy")
#: Scores are clipped this far from 0 and 1 before a log or logit (isotonic maps reach 0 and 1).
SCORE_CLIP = 1e-6


def grouped_folds(Y, groups, *, n_splits=5, random_state=0):
    """Folds that keep each group (person) on one side, stratified by label combination.

    Returns
    -------
    ndarray of shape (n_samples,)
        Fold number of each sample.
    """
    Y = np.asarray(Y, dtype=int)
    combination = Y @ (2 ** np.arange(Y.shape[1]))
    codes, counts = np.unique(combination, return_counts=True)
    rare = np.isin(combination, codes[counts < n_splits])
    # pool the rarest mixes; if even the pool is too small, it joins the commonest one
    combination[rare] = -1 if rare.sum() >= n_splits else codes[np.argmax(counts)]
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
    fold = np.empty(len(Y), dtype=int)
    for k, (_, test) in enumerate(splitter.split(Y, combination, groups)):
        fold[test] = k
    return fold


def out_of_fold(classifier, X, Y, fold, groups, *, extra=None):
    """Out-of-fold probabilities, calibrated and not, and each fold model's thresholds: each
    sample is scored, and decided, by the model fitted without its fold.

    Parameters
    ----------
    extra : tuple of (X, Y, fold, groups), optional
        Training copies of the samples (``train.py``'s tight copies): each joins the training
        side of every fold but its own and is scored by the model fitted without it.

    Returns
    -------
    calibrated, raw : ndarray of shape Y.shape
    thresholds : ndarray of shape (n_folds, n_labels)
        Row k: the thresholds the model fitted without fold k chose for itself.
    extra_calibrated : ndarray of shape (n_extra, n_labels)
        The copies' calibrated out-of-fold probabilities (no rows without ``extra``).
    """
    X_extra, Y_extra, fold_extra, groups_extra = extra or (X[:0], Y[:0], fold[:0], groups[:0])
    calibrated = np.zeros(Y.shape, dtype=float)
    raw = np.zeros(Y.shape, dtype=float)
    extra_calibrated = np.zeros(Y_extra.shape, dtype=float)
    thresholds = []
    for k in np.unique(fold):
        train, test = fold != k, fold == k
        copies = fold_extra != k
        model = clone(classifier).fit(np.vstack([X[train], X_extra[copies]]),
                                      np.vstack([Y[train], Y_extra[copies]]),
                                      groups=np.concatenate([groups[train], groups_extra[copies]]))
        calibrated[test] = model.predict_proba(X[test])
        raw[test] = model.predict_proba_uncalibrated(X[test])
        if (~copies).any():
            extra_calibrated[~copies] = model.predict_proba(X_extra[~copies])
        thresholds.append(model.thresholds_)
    return calibrated, raw, np.array(thresholds), extra_calibrated


def label_scores(y, p, threshold):
    """Every metric of one label on one fold, at ``threshold``."""
    decided = reaches(p, threshold).astype(int)
    majority = max(y.mean(), 1 - y.mean())
    two_classes = len(np.unique(y)) == 2
    return {
        "roc_auc": roc_auc_score(y, p) if two_classes else np.nan,
        "average_precision": average_precision_score(y, p) if two_classes else np.nan,
        "f1": f1_score(y, decided, zero_division=0),
        "precision": precision_score(y, decided, zero_division=0),
        "recall": recall_score(y, decided, zero_division=0),
        "brier": brier_score_loss(y, p),
        "log_loss": log_loss(y, np.clip(p, SCORE_CLIP, 1 - SCORE_CLIP), labels=[0, 1]),
        "accuracy": accuracy_score(y, decided),
        "majority_baseline_accuracy": majority,
    }


def cv_report(Y, proba, labels, fold, fold_thresholds):
    """Per-label mean and spread over folds of every metric.

    Fold k is decided at the thresholds its own model chose on its training people
    (``fold_thresholds[k]``), so no fold's labels choose its threshold; ``threshold`` in
    the report is their mean.
    """
    report = {}
    for j, label in enumerate(labels):
        y, p = Y[:, j], proba[:, j]
        per_fold = [label_scores(y[fold == k], p[fold == k], fold_thresholds[n, j])
                    for n, k in enumerate(np.unique(fold))]
        report[label] = {m: {"mean": float(np.nanmean([s[m] for s in per_fold])),
                             "std": float(np.nanstd([s[m] for s in per_fold]))} for m in METRICS}
        report[label]["threshold"] = float(np.mean(fold_thresholds[:, j]))
        report[label]["positives"] = int(y.sum())
    return report


#: Equal-width reliability bins, as the issue asks; ECE "above" leaves out scores under
#: 0.05, where most faces sit and the positives' errors would be averaged away.
N_BINS, LOW_SCORE = 10, 0.05


def reliability_bins(y, p):
    """Per equal-width bin: count, mean score and observed frequency (empty bins left out)."""
    which = np.minimum((np.asarray(p) * N_BINS).astype(int), N_BINS - 1)
    rows = []
    for b in range(N_BINS):
        inside = which == b
        if inside.any():
            rows.append({"low": b / N_BINS, "high": (b + 1) / N_BINS, "count": int(inside.sum()),
                         "mean_score": float(p[inside].mean()), "observed": float(y[inside].mean())})
    return rows


def expected_calibration_error(y, p, *, min_score=0.0):
    """Count-weighted mean |observed - mean score| over equal-width bins of the scores >=
    ``min_score`` (NaN when there are none)."""
    kept = p >= min_score
    if not kept.any():
        return float("nan")
    bins = reliability_bins(y[kept], p[kept])
    return float(sum(b["count"] * abs(b["observed"] - b["mean_score"]) for b in bins) / kept.sum())


def calibration_slope_intercept(y, p):
    """Logistic fit of the label on logit(score): slope 1 and intercept 0 when calibrated;
    a slope under 1 means over-confident scores."""
    z = logit(np.clip(p, SCORE_CLIP, 1 - SCORE_CLIP))[:, None]
    fit = LogisticRegression(C=np.inf, max_iter=1000).fit(z, y)
    return float(fit.coef_[0, 0]), float(fit.intercept_[0])


def calibration_report(Y, proba, labels):
    """Per label, on the pooled out-of-fold scores: Brier, log loss, ECE (all scores and
    scores >= 0.05), calibration slope and intercept, and the reliability bins."""
    report = {}
    for j, label in enumerate(labels):
        y, p = Y[:, j], proba[:, j]
        slope, intercept = calibration_slope_intercept(y, p)
        report[label] = {"brier": brier_score_loss(y, p),
                         "log_loss": log_loss(y, np.clip(p, SCORE_CLIP, 1 - SCORE_CLIP), labels=[0, 1]),
                         "ece": expected_calibration_error(y, p),
                         "ece_above_0.05": expected_calibration_error(y, p, min_score=LOW_SCORE),
                         "slope": slope, "intercept": intercept,
                         "bins": reliability_bins(y, p)}
    return report


def format_calibration(report):
    """The calibration report as a fixed-width table for the terminal."""
    heads = ("Brier", "logloss", "ECE", "ECE>=0.05", "slope", "intercept")
    keys = ("brier", "log_loss", "ece", "ece_above_0.05", "slope", "intercept")
    lines = [f"{'label':<9}" + "".join(f"{h:>11}" for h in heads)]
    lines += [f"{label:<9}" + "".join(f"{row[k]:>11.4f}" for k in keys) for label, row in report.items()]
    return "\n".join(lines)


#: Thresholds at which the model card lists precision and recall, besides the stored one.
STANDARD_THRESHOLDS = (0.5, 0.7, 0.9)


def decision_table(Y, proba, labels, thresholds):
    """Per label, out-of-fold precision, recall and share of faces decided positive at the
    stored threshold and at :data:`STANDARD_THRESHOLDS` (for the model card)."""
    table = {}
    for j, label in enumerate(labels):
        y, p = Y[:, j], proba[:, j]
        rows = {}
        for name, t in (("stored", thresholds[j]), *((f"{t:.1f}", t) for t in STANDARD_THRESHOLDS)):
            decided = reaches(p, t)
            rows[name] = {"threshold": float(t), "precision": precision_score(y, decided, zero_division=0),
                          "recall": recall_score(y, decided, zero_division=0),
                          "positive_share": float(decided.mean())}
        table[label] = rows
    return table


def format_report(report):
    """The report as a fixed-width table for the terminal."""
    heads = ("AUC", "AP", "F1", "prec", "recall", "Brier", "logloss", "acc", "baseline")  # of METRICS
    lines = [f"{'label':<9}{'thresh':>7}" + "".join(f"{h:>15}" for h in heads)]
    for label, scores in report.items():
        cells = "".join(f"{scores[m]['mean']:>8.3f}±{scores[m]['std']:<6.3f}" for m in METRICS)
        lines.append(f"{label:<9}{scores['threshold']:>7.3f}{cells}")
    return "\n".join(lines)
