"""Pictures of the cross-validation: ROC and precision-recall curves, reliability diagrams."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from sklearn.metrics import auc, precision_recall_curve, roc_curve  # noqa: E402

from features.model.evaluation import reliability_bins  # noqa: E402


def save_curves(Y, proba, labels, raw, folder):
    """Write ``roc.png``, ``precision_recall.png`` and ``reliability.png`` into ``folder``.

    Returns
    -------
    list of Path
    """
    paths = []
    fig, ax = plt.subplots(figsize=(5, 5))
    for j, label in enumerate(labels):
        fpr, tpr, _ = roc_curve(Y[:, j], proba[:, j])
        ax.plot(fpr, tpr, label=f"{label} (AUC {auc(fpr, tpr):.3f})")
    ax.plot([0, 1], [0, 1], "k:", lw=1)
    ax.set(xlabel="false positive rate", ylabel="true positive rate",
           title="ROC, out-of-fold (grouped CV)")
    ax.legend(loc="lower right")
    paths.append(_save(fig, folder / "roc.png"))

    fig, ax = plt.subplots(figsize=(5, 5))
    for j, label in enumerate(labels):
        precision, recall, _ = precision_recall_curve(Y[:, j], proba[:, j])
        ax.plot(recall, precision, label=f"{label} (base rate {Y[:, j].mean():.3f})")
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall, out-of-fold")
    ax.legend(loc="lower left")
    paths.append(_save(fig, folder / "precision_recall.png"))

    paths.append(_save(reliability_figure(Y, proba, labels, raw), folder / "reliability.png"))
    return paths


def reliability_figure(Y, proba, labels, raw):
    """Per label: observed frequency against mean score in 10 equal-width bins, before and
    after calibration, and below it the number of faces in each bin (log scale)."""
    fig, axes = plt.subplots(2, len(labels), figsize=(4 * len(labels), 5.5), sharex=True,
                             gridspec_kw={"height_ratios": (3, 1)})
    for j, label in enumerate(labels):
        top, bottom = axes[0, j], axes[1, j]
        for scores, name, style in ((raw, "XGBoost", "o--"), (proba, "calibrated", "s-")):
            bins = reliability_bins(Y[:, j], scores[:, j])
            top.plot([b["mean_score"] for b in bins], [b["observed"] for b in bins], style, label=name, ms=4)
            if name == "calibrated":
                bottom.bar([(b["low"] + b["high"]) / 2 for b in bins], [b["count"] for b in bins],
                           width=0.09, color="C1", log=True)
                for b in bins:
                    bottom.text((b["low"] + b["high"]) / 2, b["count"], str(b["count"]),
                                ha="center", va="bottom", fontsize=7)
        top.plot([0, 1], [0, 1], "k:", lw=1)
        top.set(title=label, ylim=(0, 1))
        top.legend(loc="upper left")
        bottom.set(xlabel="predicted probability", xlim=(0, 1))
    axes[0, 0].set_ylabel("observed frequency")
    axes[1, 0].set_ylabel("faces (calibrated)")
    fig.suptitle("Reliability before and after calibration, out-of-fold")
    return fig


def _save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
