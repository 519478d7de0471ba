"""The noise rules the report's answers rest on: standard errors from summary statistics, ratio intervals,
the bootstrap of a geometric mean, and "tied with the fastest"."""

import numpy as np
import pandas as pd
import pytest

from harness.results.uncertainty import (
    Z95,
    between_run_sd,
    bootstrap_geomean,
    classify_ratio,
    log_se,
    ratio_interval,
    tied_with_fastest,
)


def test_log_se_prefers_the_medians_interval_and_falls_back_to_std():
    rows = pd.DataFrame({"p50_ms": [10.0, 10.0, 10.0], "ci95_low_ms": [9.0, None, None],
                         "ci95_high_ms": [11.0, None, None], "std_ms": [1.0, 1.0, None], "n": [100, 100, 100]})
    se = log_se(rows)
    assert se[0] == pytest.approx((np.log(11) - np.log(9)) / (2 * Z95))
    assert se[1] == pytest.approx(np.sqrt(np.pi / 2) * 1.0 / 10 / 10)  # sqrt(pi/2) std / sqrt(n) / p50
    assert np.isnan(se[2])


def test_ratio_interval_contains_the_ratio_and_widens_with_noise():
    tight = ratio_interval([2.0], [0.01], [1.0], [0.01])
    loose = ratio_interval([2.0], [0.2], [1.0], [0.2])
    assert tight.ratio[0] == pytest.approx(2.0)
    assert tight.low[0] < 2.0 < tight.high[0]
    assert loose.high[0] - loose.low[0] > 10 * (tight.high[0] - tight.low[0])


def test_bootstrap_geomean_covers_the_truth_and_excludes_one_only_when_clear():
    rng = np.random.default_rng(1)
    clear = np.log(1.2) + rng.normal(0, 0.01, 30)
    g, lo, hi = bootstrap_geomean(clear, np.full(30, 0.01))
    assert lo < 1.2 < hi and lo > 1.0
    noisy = np.log(1.02) + rng.normal(0, 0.2, 10)
    _, lo, hi = bootstrap_geomean(noisy, np.full(10, 0.2))
    assert lo < 1.0 < hi  # a 2% gain in 20% noise is not a gain
    assert all(np.isnan(bootstrap_geomean(np.array([]), np.array([]))))


def test_bootstrap_draws_the_mean_noise_once_with_the_distribution_of_each_points_own_noise():
    """One normal per replicate for the mean of the chosen points' noises: the same interval as drawing
    every chosen point's noise (the definition), here where the noise dominates the spread of sizes."""
    rng = np.random.default_rng(3)
    lr, se = np.log(1.1) + rng.normal(0, 0.01, 20), rng.uniform(0.1, 0.3, 20)
    _, lo, hi = bootstrap_geomean(lr, se, replicates=20000, seed=5)
    pick = rng.integers(0, lr.size, size=(20000, lr.size))
    means = (lr[pick] + rng.standard_normal(pick.shape) * se[pick]).mean(axis=1)
    ref_lo, ref_hi = np.exp(np.quantile(means, [0.025, 0.975]))
    assert lo == pytest.approx(ref_lo, rel=0.01) and hi == pytest.approx(ref_hi, rel=0.01)
    assert (hi - lo) == pytest.approx(ref_hi - ref_lo, rel=0.1)


def test_ties_are_overlapping_intervals_within_a_group():
    df = pd.DataFrame({"g": [1, 1, 1, 2, 2, 3], "v": [1.0, 1.05, 2.0, 3.0, np.nan, 5.0],
                       "lo": [0.9, 1.0, 1.9, 2.9, np.nan, np.nan], "hi": [1.1, 1.1, 2.1, 3.1, np.nan, np.nan]})
    tied = tied_with_fastest(df["v"], df["lo"], df["hi"], df["g"])
    assert tied.tolist() == [True, True, False, True, False, True]


def test_between_run_sd_recovers_the_noise_the_rows_own_errors_do_not_hold():
    rng = np.random.default_rng(3)
    se = np.full(4000, 0.01)  # each pair's own standard error
    lr = rng.normal(0, np.sqrt(0.01 ** 2 + 2 * 0.05 ** 2), se.size)  # plus 5% between runs, on each run
    assert between_run_sd(lr, se) == pytest.approx(0.05, rel=0.05)
    assert between_run_sd(rng.normal(0, 0.01, 4000), se) < 0.005  # nothing beyond the rows' own noise
    assert np.isnan(between_run_sd(lr[:2], se[:2]))  # too few pairs to say


def test_classify_ratio_needs_the_whole_interval_beyond_the_tolerance():
    got = classify_ratio([1.06, 1.04, 0.90, 0.94, np.nan], [1.2, 1.2, 0.95, 0.99, np.nan], 0.05)
    assert got.tolist() == ["slower", "same", "faster", "same", "same"]  # 0.95 < 1/1.05 = 0.952: faster
