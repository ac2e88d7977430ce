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


def drift_false_alarms(min_p_values, threshold, rows_per_test):
    """Each test's smallest p-value on undrifted traffic, against the drift threshold."""
    fig, ax = plt.subplots(figsize=(9, 3.2))
    tests = np.arange(1, len(min_p_values) + 1)
    alarm = min_p_values < threshold
    ax.scatter(tests[~alarm], min_p_values[~alarm], s=4, color="tab:blue", label="no drift found")
    ax.scatter(tests[alarm], min_p_values[alarm], s=12, color="tab:red", label=f"false alarm ({alarm.sum()})")
    ax.axhline(threshold, color="black", linestyle="--", linewidth=1, label=f"threshold {threshold:.2g}")
    ax.set_yscale("log")
    ax.set(xlabel=f"test (one every {rows_per_test} rows)", ylabel="smallest p-value of the 30 features",
           title="undrifted traffic: every red point is a false alarm")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def drift_traces(traces, threshold):
    """Smallest p-value of each test against the rows since a change began, one line per change."""
    fig, ax = plt.subplots(figsize=(9, 3.6))
    for label, trace in traces.items():
        ax.plot(trace.rows - trace.shift_at, trace.min_p, marker="o", markersize=3, label=label)
    ax.axhline(threshold, color="black", linestyle="--", linewidth=1, label="threshold")
    ax.axvline(0, color="grey", linewidth=1)
    ax.annotate("the change begins", (0, 1), xytext=(4, -12), textcoords="offset points", fontsize=8)
    ax.set_yscale("log")
    ax.set_ylim(max(1e-30, min(t.min_p.min() for t in traces.values()) / 10), 2)
    ax.set(xlabel="rows since the change began", ylabel="smallest p-value of the 30 features",
           title="under the dashed line the monitor reports drift")
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig


def detection_delays(delays, interval):
    """The detection delay of each run, per change: rows from the change to the first alarm."""
    fig, ax = plt.subplots(figsize=(9, 0.6 + 0.5 * len(delays)))
    for i, (label, runs) in enumerate(delays.items()):
        seen = [d for d in runs if d is not None]
        jitter = np.random.default_rng(i).uniform(-0.15, 0.15, len(seen))
        ax.scatter(seen, i + jitter, s=12, alpha=0.7)
        ax.annotate(f"median {np.median(seen):.0f}" if seen else "never seen", (max(seen or [0]), i),
                    xytext=(8, -3), textcoords="offset points", fontsize=8)
    ax.set_yticks(range(len(delays)), list(delays))
    ax.set(xlabel=f"rows from the change to the first test finding drift (tests every {interval} rows)",
           title="how soon each change is seen (one point a run)")
    fig.tight_layout()
    return fig


def ks_distance(reference, window, changed, name):
    """The distribution functions of one feature: reference, a window of traffic, the same window
    changed; the KS distance is the largest vertical gap between two of them."""
    fig, ax = plt.subplots(figsize=(9, 3.4))
    for values, label, color in ((reference, f"reference: {len(reference)} training rows", "black"),
                                 (window, f"window: {len(window)} recent rows", "tab:blue"),
                                 (changed, "the same window, changed", "tab:red")):
        x = np.sort(values)
        ax.step(x, np.arange(1, len(x) + 1) / len(x), where="post", label=label, color=color)
    for values, color in ((window, "tab:blue"), (changed, "tab:red")):
        grid = np.sort(np.concatenate([reference, values]))
        gap = (np.searchsorted(np.sort(reference), grid, side="right") / len(reference)
               - np.searchsorted(np.sort(values), grid, side="right") / len(values))
        i = int(np.argmax(np.abs(gap)))
        top = np.searchsorted(np.sort(reference), grid[i], side="right") / len(reference)
        ax.vlines(grid[i], top, top - gap[i], color=color, linewidth=3, alpha=0.5)
        ax.annotate(f"D = {abs(gap[i]):.2f}", (grid[i], top - gap[i] / 2), xytext=(6, 0), textcoords="offset points",
                    color=color, fontsize=9)
    ax.set(xlabel=name, ylabel="share of rows at most x", title="the KS distance: the largest gap between two curves")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def canary_paths(histories):
    """The canary test's log-likelihood ratio after each batch of feedback, one line per canary,
    between its two boundaries: over the upper one it is rolled back, under the lower one promoted."""
    fig, ax = plt.subplots(figsize=(9, 3.6))
    for label, history in histories.items():
        ax.plot([0] + [v["canary_rows"] for v in history], [0] + [v["llr"] for v in history], marker="o",
                markersize=3, label=f"{label}: {history[-1]['decision']}")
    first = next(iter(histories.values()))[-1]
    ax.axhline(first["upper"], color="tab:red", linestyle="--", linewidth=1, label="roll back above")
    ax.axhline(first["lower"], color="tab:green", linestyle="--", linewidth=1, label="promote below")
    ax.set(xlabel="canary rows fed back", ylabel="log-likelihood ratio\n(worse by the margin : as good)",
           title="each error pushes the line up, each right answer down")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
