"""The notebooks' pictures: what a person would rather look at than read as numbers."""
import matplotlib.pyplot as plt
import numpy as np

from serving.feedback_log import OUTCOMES

CLASS_NAMES = {0: "malignant (0)", 1: "benign (1)"}


def scores_against_threshold(scores, y_true, threshold=0.0):
    """Each test row's decision score (the log-odds of benign), by true class, against the threshold."""
    fig, ax = plt.subplots(figsize=(9, 3.2))
    low = -20  # a few malignant rows score far below: they are drawn at the left edge
    shown = np.clip(scores, low, None)
    bins = np.arange(low, shown.max() + 1, 1.0)
    for label, color in ((0, "tab:red"), (1, "tab:blue")):
        ax.hist(shown[y_true == label], bins=bins, alpha=0.6, color=color, label=f"truly {CLASS_NAMES[label]}")
    ax.axvline(threshold, color="black", linestyle="--", linewidth=1, label=f"threshold {threshold:g}")
    ax.set(xlabel="decision score: the log-odds of benign (scores below -20 are drawn at -20)", ylabel="test rows",
           title="red right of the line: false positives; blue left of it: false negatives")
    ax.legend()
    fig.tight_layout()
    return fig


def confusion_matrix(counts, title):
    """A confusion-matrix figure from counts {"tp": .., "fp": .., "tn": .., "fn": ..}."""
    cells = np.array([[counts["tn"], counts["fp"]], [counts["fn"], counts["tp"]]])
    names = np.array([["TN", "FP"], ["FN", "TP"]])
    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    ax.imshow(cells, cmap="Blues")
    for (i, j), n in np.ndenumerate(cells):
        ax.text(j, i, f"{names[i, j]}\n{n}", ha="center", va="center", fontsize=13,
                color="white" if n > cells.max() / 2 else "black")
    ax.set_xticks([0, 1], [CLASS_NAMES[0], CLASS_NAMES[1]])
    ax.set_yticks([0, 1], [CLASS_NAMES[0], CLASS_NAMES[1]])
    ax.set(xlabel="predicted", ylabel="truth", title=title)
    fig.tight_layout()
    return fig


def replica_counts(shares):
    """Per-replica confusion counts (a DataFrame, one row a replica) beside their sum."""
    table = shares[list(OUTCOMES)].copy()
    table.loc["sum of all replicas"] = table.sum()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), gridspec_kw={"width_ratios": [len(shares), 1]})
    table.iloc[:-1].plot.bar(ax=axes[0], rot=0, title="what each replica counted")
    table.iloc[-1:].plot.bar(ax=axes[1], rot=0, legend=False, title="summed: the model's confusion matrix")
    for ax in axes:
        for bars in ax.containers:
            ax.bar_label(bars, fontsize=8)
    fig.tight_layout()
    return fig


def variant_accuracy(table, title):
    """Each variant's accuracy with its confidence interval: a DataFrame with accuracy, low, high."""
    fig, ax = plt.subplots(figsize=(7, 3))
    y = np.arange(len(table))
    ax.errorbar(table["accuracy"], y, xerr=[table["accuracy"] - table["low"], table["high"] - table["accuracy"]],
                fmt="o", capsize=6, color="tab:blue")
    for i, (name, row) in enumerate(table.iterrows()):
        ax.annotate(f"{row['accuracy']:.3f}  [{row['low']:.3f}, {row['high']:.3f}]", (row["high"], i),
                    xytext=(8, -4), textcoords="offset points", fontsize=9)
    ax.set_yticks(y, table.index)
    ax.set_ylim(-0.7, len(table) - 0.3)
    ax.set(xlabel="accuracy on the live feedback, with its 95 % interval (Wilson)",
           title=title)
    ax.set_xlim(min(table["low"].min() - 0.02, 0.85), 1.0)
    fig.tight_layout()
    return fig
