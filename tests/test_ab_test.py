"""The statistics of the A/B test (notebook 08) and of the canary's verdict (notebook 10)."""
import numpy as np
import pytest
from scipy.stats import binomtest

from kit.ab_test import canary_verdict, difference_test, rows_needed, wilson_interval


def counts(right, wrong):
    return {"tp": right, "tn": 0, "fp": wrong, "fn": 0}


def test_wilson_interval_is_the_textbook_one():
    for right, n in ((240, 257), (5, 5), (0, 12)):
        ci = binomtest(right, n).proportion_ci(method="wilson")
        assert wilson_interval(right, n) == pytest.approx((ci.low, ci.high))


def test_difference_test_p_value_matches_the_chi_square_test():
    from scipy.stats import chi2_contingency

    test = difference_test(240, 257, 232, 256)
    chi2 = chi2_contingency([[240, 17], [232, 24]], correction=False)[1]
    assert test["p_value"] == pytest.approx(chi2) and test["low"] < test["difference"] < test["high"]


def test_rows_needed_gives_the_power_asked_for():
    n = rows_needed(0.95, 0.90)
    rng = np.random.default_rng(0)
    seen = sum(difference_test(rng.binomial(n, 0.95), n, rng.binomial(n, 0.90), n)["p_value"] < 0.05 for _ in range(2000))
    assert 0.76 < seen / 2000 < 0.84


def test_the_canary_verdict_waits_then_decides():
    current = counts(930, 70)  # p0 = 0.07
    assert canary_verdict(current, counts(10, 0))["decision"] == "continue"
    good = canary_verdict(current, counts(200, 12))
    assert good["decision"] == "promote" and good["p1"] == pytest.approx(0.12)
    assert canary_verdict(current, counts(14, 6))["decision"] == "continue"
    assert canary_verdict(current, counts(13, 7))["decision"] == "roll back"
    assert canary_verdict(counts(0, 0), counts(5, 5))["decision"] == "continue"


def _sequential(p_canary, p_current=0.07, rng=None, max_rows=5000):
    """Feeds a canary's answers one at a time until the verdict is not 'continue'."""
    current = counts(int(10_000 * (1 - p_current)), int(10_000 * p_current))
    errors = 0
    for n in range(1, max_rows + 1):
        errors += rng.random() < p_canary
        verdict = canary_verdict(current, counts(n - errors, errors))
        if verdict["decision"] != "continue":
            return verdict["decision"], n
    return "continue", max_rows


def test_the_canary_verdict_errs_at_most_as_often_as_stated():
    rng = np.random.default_rng(1)
    as_good = [_sequential(0.07, rng=rng) for _ in range(400)]
    worse = [_sequential(0.12, rng=rng) for _ in range(400)]
    rolled_back = sum(d == "roll back" for d, _ in as_good)
    promoted = sum(d == "promote" for d, _ in worse)
    # alpha = beta = 0.05: at most 5 % of each, within what 400 runs can tell
    assert binomtest(rolled_back, 400, 0.05, alternative="greater").pvalue > 0.01
    assert binomtest(promoted, 400, 0.05, alternative="greater").pvalue > 0.01
    assert all(d != "continue" for d, _ in as_good + worse)
    shuffled = [_sequential(0.36, rng=rng) for _ in range(100)]
    assert all(d == "roll back" for d, _ in shuffled) and np.median([n for _, n in shuffled]) < 30


def _as_in_notebook_10(p_canary, rng, p_current=0.07, batch=40, share=0.25):
    """p0 estimated from the current model's rows of the same traffic, looked at every `batch` rows."""
    current, canary = counts(0, 0), counts(0, 0)
    while True:
        for _ in range(batch):
            target, p = (canary, p_canary) if rng.random() < share else (current, p_current)
            target["fp" if rng.random() < p else "tp"] += 1
        verdict = canary_verdict(current, canary)
        if verdict["decision"] != "continue":
            return verdict["decision"]


def test_with_p0_estimated_live_the_error_rates_stay_near_the_stated_ones():
    rng = np.random.default_rng(2)
    as_good = [_as_in_notebook_10(0.07, rng) for _ in range(600)]
    worse = [_as_in_notebook_10(0.12, rng) for _ in range(600)]
    # stated 5 % each; with p0 estimated from 200 rows and more, about 7.5 % and 6 % (2,000 runs)
    assert as_good.count("roll back") / 600 < 0.11 and worse.count("promote") / 600 < 0.10
