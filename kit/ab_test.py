"""The statistics of an A/B test of two models on live feedback: each variant's accuracy with a
confidence interval, the test of their difference, and the rows a decision would need."""
import math

from scipy.stats import norm

from kit.client import parse_samples
from serving.feedback_log import OUTCOMES


def variant_counts(metrics_texts):
    """{model version: {tp, fp, tn, fn}} summed over the metrics pages of every replica."""
    counts = {}
    for text in metrics_texts:
        for name, labels, value in parse_samples(text):
            if name == "feedback_outcomes_total" and "model" in labels:
                per_model = counts.setdefault(labels["model"], dict.fromkeys(OUTCOMES, 0))
                per_model[labels["outcome"]] += int(value)
    return counts


def wilson_interval(right, n, confidence=0.95):
    """The Wilson score interval of a proportion right/n: unlike p ± z·se, it stays within [0, 1]
    and keeps its coverage for proportions near 1, as accuracies are."""
    z = norm.ppf(0.5 + confidence / 2)
    p = right / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def difference_test(right_a, n_a, right_b, n_b, confidence=0.95):
    """Two-proportion z-test of accuracy A against B: the difference, its confidence interval
    (unpooled standard error) and the two-sided p-value (pooled, under 'no difference')."""
    p_a, p_b = right_a / n_a, right_b / n_b
    pooled = (right_a + right_b) / (n_a + n_b)
    z = (p_a - p_b) / math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    se = math.sqrt(p_a * (1 - p_a) / n_a + p_b * (1 - p_b) / n_b)
    margin = norm.ppf(0.5 + confidence / 2) * se
    return {"difference": p_a - p_b, "low": p_a - p_b - margin, "high": p_a - p_b + margin,
            "z": z, "p_value": 2 * norm.sf(abs(z))}


def rows_needed(p_a, p_b, alpha=0.05, power=0.8):
    """Rows per variant for a two-sided test at `alpha` to detect accuracies p_a against p_b with
    probability `power` (the normal approximation)."""
    z_alpha, z_power = norm.ppf(1 - alpha / 2), norm.ppf(power)
    variance = p_a * (1 - p_a) + p_b * (1 - p_b)
    return math.ceil((z_alpha + z_power) ** 2 * variance / (p_a - p_b) ** 2)


def canary_verdict(current, canary, worse_by=0.05, alpha=0.05, beta=0.05, min_current_rows=200):
    """Wald's sequential probability ratio test of a canary against the current model, on the
    confusion counts {tp, fp, tn, fn} each got during the canary: may it take all the traffic?

    H0: the canary errs as often as the current model (p0, its error rate measured live alongside);
    H1: it errs `worse_by` more often (p1 = p0 + worse_by). After every row the log-likelihood
    ratio of the canary's answers moves up with an error, down with a right answer. "roll back"
    once it crosses log((1 - beta) / alpha), "promote" once under log(beta / (1 - alpha)), else
    "continue". However often it is looked at, a canary as good as the current model is rolled back
    with probability at most alpha, and one worse by `worse_by` promoted with at most beta.
    p0 is estimated, not known: no decision is taken before the current model has
    `min_current_rows`, and the guarantees hold approximately, better as its rows grow."""
    if not 0 < worse_by < 0.5:
        raise ValueError(f"worse_by={worse_by}: a difference of error rates between 0 and 0.5")
    current_rows, canary_rows = sum(current.values()), sum(canary.values())
    errors = canary["fp"] + canary["fn"]
    upper, lower = math.log((1 - beta) / alpha), math.log(beta / (1 - alpha))
    verdict = {"decision": "continue", "llr": 0.0, "upper": upper, "lower": lower, "canary_rows": canary_rows,
               "current_rows": current_rows, "p0": None, "p1": None,
               "canary_error": errors / canary_rows if canary_rows else None}
    if current_rows < min_current_rows:
        return verdict
    # A current model with no error yet would make one canary error infinitely damning.
    p0 = min(max((current["fp"] + current["fn"]) / current_rows, 0.005), 0.5)
    p1 = p0 + worse_by
    llr = errors * math.log(p1 / p0) + (canary_rows - errors) * math.log((1 - p1) / (1 - p0))
    decision = "roll back" if llr >= upper else "promote" if llr <= lower else "continue"
    return {**verdict, "decision": decision, "llr": llr, "p0": p0, "p1": p1}
