"""Pictures of the cross-validation: ROC and precision-recall curves, reliability diagrams."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from sklearn.calibration import calibration_curve  # noqa: E402
from sklearn.metrics import auc, precision_recall_curve, roc_curve  # noqa: E402


def save_curves(Y, proba, raw, labels, folder):
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

    fig, axes = plt.subplots(1, len(labels), figsize=(4 * len(labels), 4), sharey=True)
    for ax, j, label in zip(axes, range(len(labels)), labels):
        for scores, name, style in ((raw, "XGBoost", "o--"), (proba, "calibrated", "s-")):
            true, predicted = calibration_curve(Y[:, j], scores[:, j], n_bins=10, strategy="uniform")
            ax.plot(predicted, true, style, label=name, ms=4)
        ax.plot([0, 1], [0, 1], "k:", lw=1)
        ax.set(title=label, xlabel="predicted probability")
        ax.legend(loc="upper left")
    axes[0].set_ylabel("observed frequency")
    fig.suptitle("Reliability before and after calibration, out-of-fold")
    paths.append(_save(fig, folder / "reliability.png"))
    return paths


def _save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
