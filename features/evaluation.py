"""Honest cross-validation: grouped folds, out-of-fold scores, per-label metrics and plots."""
import numpy as np
from sklearn.base import clone
from sklearn.metrics import (accuracy_score, average_precision_score, brier_score_loss, f1_score,
                             log_loss, precision_score, recall_score, roc_auc_score)
from sklearn.model_selection import StratifiedGroupKFold

from features.classifier import best_threshold

METRICS = ("roc_auc", "average_precision", "f1", "precision", "recall", "brier", "log_loss",
           "accuracy", "majority_baseline_accuracy")


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


def out_of_fold(classifier, X, Y, fold, groups):
    """Calibrated and uncalibrated out-of-fold probabilities: each sample scored by the
    model fitted without its fold."""
    calibrated = np.zeros(Y.shape, dtype=float)
    raw = np.zeros(Y.shape, dtype=float)
    for k in np.unique(fold):
        train, test = fold != k, fold == k
        model = clone(classifier).fit(X[train], Y[train], groups=groups[train])
        calibrated[test] = model.predict_proba(X[test])
        raw[test] = model.predict_proba_uncalibrated(X[test])
    return calibrated, raw


def label_scores(y, p, threshold):
    """Every metric of one label on one fold, at ``threshold``."""
    decided = (p >= threshold).astype(int)
    majority = max(y.mean(), 1 - y.mean())
    two_classes = len(np.unique(y)) == 2
    return {
        "roc_auc": roc_auc_score(y, p) if two_classes else np.nan,
        "average_precision": average_precision_score(y, p) if two_classes else np.nan,
        "f1": f1_score(y, decided, zero_division=0),
        "precision": precision_score(y, decided, zero_division=0),
        "recall": recall_score(y, decided, zero_division=0),
        "brier": brier_score_loss(y, p),
        "log_loss": log_loss(y, np.clip(p, 1e-7, 1 - 1e-7), labels=[0, 1]),
        "accuracy": accuracy_score(y, decided),
        "majority_baseline_accuracy": majority,
    }


def cv_report(Y, proba, fold, labels, *, min_precision=None):
    """Per-label mean and spread over folds of every metric, and the thresholds to store.

    Fold k is scored at a threshold chosen on the other folds' out-of-fold scores, so no
    fold's labels choose its own threshold; the stored threshold uses all of them.
    """
    report = {}
    thresholds = {}
    for j, label in enumerate(labels):
        y, p = Y[:, j], proba[:, j]
        per_fold = []
        for k in np.unique(fold):
            other = fold != k
            threshold = best_threshold(y[other], p[other], min_precision=min_precision)
            per_fold.append(label_scores(y[fold == k], p[fold == k], threshold))
        thresholds[label] = best_threshold(y, p, min_precision=min_precision)
        report[label] = {m: {"mean": float(np.nanmean([s[m] for s in per_fold])),
                             "std": float(np.nanstd([s[m] for s in per_fold]))} for m in METRICS}
        report[label]["threshold"] = thresholds[label]
        report[label]["positives"] = int(y.sum())
    return report, thresholds


def format_report(report):
    """The report as a fixed-width table for the terminal."""
    shown = ("roc_auc", "average_precision", "f1", "precision", "recall", "brier", "log_loss",
             "accuracy", "majority_baseline_accuracy")
    heads = ("AUC", "AP", "F1", "prec", "recall", "Brier", "logloss", "acc", "baseline")
    lines = [f"{'label':<9}{'thresh':>7}" + "".join(f"{h:>15}" for h in heads)]
    for label, scores in report.items():
        cells = "".join(f"{scores[m]['mean']:>8.3f}±{scores[m]['std']:<6.3f}" for m in shown)
        lines.append(f"{label:<9}{scores['threshold']:>7.3f}{cells}")
    return "\n".join(lines)
