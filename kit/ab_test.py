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
