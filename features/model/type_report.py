"""Grouped cross-validation of the type models: out-of-fold probabilities, per-target scores
with their spread over folds, confusion matrices, and the trained-versus-measured hat colour."""
import warnings

import numpy as np
from sklearn.base import clone
from sklearn.metrics import balanced_accuracy_score, confusion_matrix, f1_score, roc_auc_score

from features.model.types import BEARD_STYLES, MISSING, TARGETS, TypeClassifier

#: The positive class of each yes/no target (its AUC is of this class's probability).
POSITIVE = {"eyewear": "dark", **{s: "1" for s in BEARD_STYLES}}
#: Colour swaps reported apart: the label itself is a soft call between these.
COLOUR_GROUPS = {"dark": ("black", "navy"), "light": ("white", "beige", "grey")}
#: The scores each target is judged by (its targets in issue 13).
HEADLINE = {"eyewear": ("roc_auc", "balanced_accuracy"), "hat": ("macro_f1", "roc_auc_cap"),
            "hat_colour": ("accuracy", "macro_f1"), **{s: ("roc_auc", "roc_auc_given_beard", "balanced_accuracy") for s in BEARD_STYLES}}


def target_classes(model, X, T, groups):
    """The classes each target is fitted with on all rows (:meth:`TypeClassifier.target_rows`)."""
    classes = {}
    for target in model.targets:
        kept = model.target_rows(target, X, T, groups)[0]
        if len(kept) >= 2:
            classes[target] = kept
    return classes


def out_of_fold_types(model, X, T, fold, groups):
    """Each labelled row's type probabilities from the model fitted without its fold.

    Returns
    -------
    dict of str to (classes, ndarray, list)
        Target -> its classes (fitted on all rows), an (n_samples, n_classes) array, NaN on
        rows without a label, and the folds whose model has no model of the target, each
        ``{"fold": k, "why": ...}`` (:attr:`TypeClassifier.skipped_`): their rows stay NaN.
        Rows labelled with a class too rare to learn are scored too.
    """
    oof = {t: (c, np.full((len(X), len(c)), np.nan), [])
           for t, c in target_classes(model, X, T, groups).items()}
    for k in np.unique(fold):
        train, test = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
        fitted = clone(model).fit(X[train], T.iloc[train].reset_index(drop=True), groups=groups[train])
        proba = fitted.predict_proba(X[test])
        for target, (classes, values, skipped) in oof.items():
            # a training side without enough photos of a class, or no member's columns (a
            # block ablation): NaN, and said
            if target not in proba:
                skipped.append({"fold": int(k), "why": fitted.skipped_[target]})
                continue
            at = T[target].to_numpy()[test] != MISSING
            scored = np.zeros((at.sum(), len(classes)))
            for j, name in enumerate(fitted.classes_.get(target, [])):
                scored[:, np.searchsorted(classes, name)] = proba[target][at, j]
            values[test[at]] = scored
    return oof


def train_types(X, T, fold, groups, paths, *, feature_names, detection, n_jobs, random_state):
    """Cross-validate the type models, compare the trained hat colour with the measured one,
    and fit the final model (with the better colour read).

    Returns
    -------
    model : TypeClassifier
    report : dict
        ``targets`` (:func:`type_cv_report`); ``skipped_folds``: target -> the folds whose
        model had no model of it, each ``{"fold": k, "why": ...}`` (targets skipped by no
        fold left out), their rows out of ``targets``' scores, and out of the report when
        every fold skipped it; and, with a trained hat colour, ``hat_colour_reads``
        (:func:`compare_colour_reads`).
    """
    model = TypeClassifier(feature_names=feature_names, n_jobs=n_jobs, random_state=random_state)
    oof = out_of_fold_types(model, X, T, fold, groups)
    report = {"targets": type_cv_report(T, oof, fold),
              "skipped_folds": {target: skipped for target, (_, _, skipped) in oof.items() if skipped}}
    colour = compare_colour_reads(T, oof, paths, detection=detection)
    if colour is not None:
        report["hat_colour_reads"] = colour
    targets = tuple(t for t in TARGETS if t != "hat_colour" or colour is None or colour["kept"] == "trained")
    return model.set_params(targets=targets).fit(X, T, groups=groups), report


def compare_colour_reads(T, oof, paths, *, detection):
    """The trained and the measured hat colour against the labelled colour of every hat the
    trained read scored: a hat of a fold whose model had no colour model (or without the hat
    crop's block) is left out of both reads' scores, not read as the first colour.  A hat
    whose face the measured read does not find is scored as wrong.

    Returns
    -------
    dict or None
        ``trained`` and ``measured`` (:func:`colour_agreement`), ``left_out`` (labelled hats
        without a trained read) and ``kept``, the read with the higher accuracy; None without
        trained colours.
    """
    if "hat_colour" not in oof:
        return None
    classes, values, _ = oof["hat_colour"]
    labelled = T["hat_colour"].to_numpy() != MISSING
    rows = np.flatnonzero(labelled & ~np.isnan(values).any(axis=1))
    truth = T["hat_colour"].to_numpy()[rows]
    trained = np.asarray(classes)[np.argmax(values[rows], axis=1)]
    measured = measured_hat_colours([paths[i] for i in rows], detection=detection)
    reads = {"trained": colour_agreement(truth, trained), "measured": colour_agreement(truth, measured),
             "left_out": int(labelled.sum() - len(rows))}
    reads["kept"] = max(("trained", "measured"), key=lambda read: reads[read]["accuracy"])
    return reads


def type_ablation(model, X, T, fold, groups, block_columns):
    """The type CV with each feature block alone: target -> block -> headline scores."""
    ablation = {}
    for block, columns in block_columns.items():
        alone = clone(model).set_params(feature_names=np.asarray(model.feature_names)[columns])
        report = type_cv_report(T, out_of_fold_types(alone, X[:, columns], T, fold, groups), fold)
        for target, s in report.items():
            ablation.setdefault(target, {})[block] = {m: s[m]["mean"] for m in HEADLINE[target] if m in s}
    return ablation


def target_scores(y, p, classes, fold, target, *, parent=None):
    """Scores of one target over its labelled rows: mean and spread over folds, and the
    out-of-fold confusion matrix (rows: true class, columns: predicted).  ``parent`` (bool
    per row) adds the AUC among the rows where the parent label is on."""
    predicted = classes[np.argmax(p, axis=1)]
    per_fold = []
    for k in np.unique(fold):
        at = fold == k
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # a fold without one of the rare classes
            balanced = balanced_accuracy_score(y[at], predicted[at])
        scores = {"accuracy": float(np.mean(y[at] == predicted[at])),
                  "balanced_accuracy": balanced,
                  "macro_f1": f1_score(y[at], predicted[at], labels=classes, average="macro", zero_division=0)}
        scores.update({f"recall_{c}": float(np.mean(predicted[at][y[at] == c] == c)) if (y[at] == c).any()
                       else np.nan for c in classes})
        positive = POSITIVE.get(target, "cap" if target == "hat" else None)
        if positive in classes and len(np.unique(y[at] == positive)) == 2:
            scores["roc_auc" if target in POSITIVE else "roc_auc_cap"] = roc_auc_score(
                y[at] == positive, p[at, np.searchsorted(classes, positive)])
        if parent is not None and len(np.unique(y[at & parent])) == 2:
            scores["roc_auc_given_beard"] = roc_auc_score(y[at & parent] == "1", p[at & parent, 1])
        per_fold.append(scores)
    names = sorted({m for s in per_fold for m in s})
    return {"n": int(len(y)), "classes": {str(c): int((y == c).sum()) for c in classes},
            **{m: {"mean": float(np.nanmean([s.get(m, np.nan) for s in per_fold])),
                   "std": float(np.nanstd([s.get(m, np.nan) for s in per_fold]))} for m in names},
            "confusion": confusion_matrix(y, predicted, labels=classes).tolist()}


def type_cv_report(T, oof, fold):
    """Per target: :func:`target_scores` over the rows labelled with one of its classes that
    their fold's model scored (a fold whose model has no model of the target is left out:
    :func:`out_of_fold_types` says which); a target no fold's model has is left out."""
    report = {}
    for target, (classes, values, _) in oof.items():
        rows = ~np.isnan(values).any(axis=1) & np.isin(T[target].to_numpy(), classes)
        if not rows.any():  # no fold's model of it (:func:`out_of_fold_types` says which and why)
            continue
        parent = (T["beard"].to_numpy()[rows] == "1") if target in BEARD_STYLES else None
        report[target] = target_scores(T[target].to_numpy()[rows], values[rows], np.asarray(classes),
                                       fold[rows], target, parent=parent)
    return report


def colour_agreement(truth, named):
    """How often a colour read names the labelled colour, and the swaps inside each group of
    colours that the labels themselves find hard to tell apart.

    Parameters
    ----------
    truth, named : sequence of str
        Labelled and read colour of each hat (labelled ``unsure`` rows left out by the caller).
    """
    truth, named = np.asarray(truth), np.asarray(named)
    swaps = {group: int(np.sum(np.isin(truth, members) & np.isin(named, members) & (truth != named)))
             for group, members in COLOUR_GROUPS.items()}
    return {"n": int(len(truth)), "accuracy": float(np.mean(truth == named)),
            **{f"{group}_swaps": n for group, n in swaps.items()},
            "accuracy_groups_merged": float(np.mean(merged(truth) == merged(named)))}


def merged(colours):
    """Colours with each of :data:`COLOUR_GROUPS` collapsed to its group's name."""
    out = np.asarray(colours, dtype=object).copy()
    for group, members in COLOUR_GROUPS.items():
        out[np.isin(out, members)] = group
    return out


def measured_hat_colours(paths, *, detection):
    """The colour rule's read of each photo's largest face (None when no face is found)."""
    from features.vision.colours import hat_colour
    from features.vision.faces import detect_faces
    from features.vision.images import load_image

    colours = []
    for path in paths:
        image = load_image(path)
        faces = detect_faces(image, settings=detection)
        colours.append(hat_colour(image, faces[0]) if faces else None)
    return colours


def format_type_report(report):
    """The type report as text: scores with their spread, then each confusion matrix."""
    lines = []
    for target, s in report.items():
        shown = [m for m in ("roc_auc", "roc_auc_given_beard", "roc_auc_cap", "accuracy", "balanced_accuracy",
                             "macro_f1") if m in s]
        cells = ", ".join(f"{m} {s[m]['mean']:.3f}±{s[m]['std']:.3f}" for m in shown)
        recalls = ", ".join(f"{c} {s['recall_' + c]['mean']:.2f}±{s['recall_' + c]['std']:.2f}"
                            for c in s["classes"])
        lines.append(f"{target:<11} n={s['n']:<5} {cells}\n{'':<11} recall per class over folds: {recalls}")
        classes = list(s["classes"])
        lines.append(f"{'':<11} confusion (rows true, columns predicted) " + " ".join(f"{c:>8}" for c in classes))
        lines += [f"{'':<11} {c:>40} " + " ".join(f"{v:>8}" for v in row) for c, row in zip(classes, s["confusion"])]
    return "\n".join(lines)

