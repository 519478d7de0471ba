"""The noise rules the report's answers rest on: standard errors from summary statistics, ratio intervals,
the bootstrap of a geometric mean, and "tied with the fastest"."""

import numpy as np
import pandas as pd
import pytest

from harness.results.uncertainty import (
    Z95,
    between_run_sd,
    classify_ratio,
    geomean_interval,
    log_se,
    ratio_interval,
    row_interval,
    tied_with_fastest,
)


def test_log_se_prefers_the_medians_interval_and_falls_back_to_std():
    rows = pd.DataFrame(
        {
            "p50_ms": [10.0, 10.0, 10.0],
            "ci95_low_ms": [9.0, None, None],
            "ci95_high_ms": [11.0, None, None],
            "std_ms": [1.0, 1.0, None],
            "n": [100, 100, 100],
        }
    )
    se = log_se(rows)
    assert se[0] == pytest.approx((np.log(11) - np.log(9)) / (2 * Z95))
    # sqrt(pi/2) std / sqrt(n) / p50, widened by t(99) / 1.96
    assert se[1] == pytest.approx(np.sqrt(np.pi / 2) * 1.0 / 10 / 10 * 1.9842 / Z95, rel=1e-4)
    assert np.isnan(se[2])


def test_ratio_interval_contains_the_ratio_and_widens_with_noise():
    tight = ratio_interval([2.0], [0.01], [1.0], [0.01])
    loose = ratio_interval([2.0], [0.2], [1.0], [0.2])
    assert tight.ratio[0] == pytest.approx(2.0)
    assert tight.low[0] < 2.0 < tight.high[0]
    assert loose.high[0] - loose.low[0] > 10 * (tight.high[0] - tight.low[0])


def test_geomean_interval_is_the_mean_of_the_points_own_noise():
    g, lo, hi = geomean_interval(np.log([1.1, 1.3]), np.array([0.03, 0.04]))
    centre, half = np.log([1.1, 1.3]).mean(), Z95 * np.hypot(0.03, 0.04) / 2
    assert g == pytest.approx(np.exp(centre)) and lo == pytest.approx(np.exp(centre - half))
    assert hi == pytest.approx(np.exp(centre + half))
    g, lo, hi = geomean_interval(np.log([1.1, 1.3]), np.array([0.03, np.nan]))  # a point without interval
    assert g == pytest.approx(np.sqrt(1.1 * 1.3)) and np.isnan(lo) and np.isnan(hi)
    assert all(np.isnan(geomean_interval(np.array([]), np.array([]))))


def test_t_quantile_matches_the_table():
    from harness.stats import t_quantile95

    assert t_quantile95(np.array([3, 5, 7, 19, 29])) == pytest.approx([3.182, 2.571, 2.365, 2.093, 2.045], rel=1.5e-3)
    assert t_quantile95(np.array([1, 2])) == pytest.approx([12.7062, 4.3027], abs=1e-4)  # exact where the series is off
    assert np.isnan(t_quantile95(0)) and np.isnan(t_quantile95(np.nan))


def test_log_se_says_not_enough_samples_below_six_iterations_and_widens_by_t():
    rows = pd.DataFrame(
        {
            "p50_ms": [10.0, 10.0, 10.0],
            "std_ms": [1.0, 1.0, 1.0],
            "n": [5, 6, 8],
            "ci95_low_ms": [9.0, None, None],
            "ci95_high_ms": [11.0, None, None],
        }
    )
    se = log_se(rows)
    assert np.isnan(se[0])  # an interval with 5 samples is not trusted even where a file holds one
    assert se[1] == pytest.approx(np.sqrt(np.pi / 2) * 0.1 / np.sqrt(6) * 2.5706 / Z95, rel=1e-3)
    assert se[2] == pytest.approx(np.sqrt(np.pi / 2) * 0.1 / np.sqrt(8) * 2.3646 / Z95, rel=1e-3)


def _log_se_as_written_first(rows: pd.DataFrame) -> pd.Series:
    """log_se as it was first written, step by step in pandas: the rule, read plainly."""
    from harness.results.uncertainty import MEDIAN_SE_FACTOR
    from harness.stats import MIN_SAMPLES, t_quantile95

    c = rows["p50_ms"].astype(float)
    se = pd.Series(np.nan, index=rows.index)
    if {"ci95_low_ms", "ci95_high_ms"} <= set(rows.columns):
        lo, hi = rows["ci95_low_ms"].astype(float), rows["ci95_high_ms"].astype(float)
        ok = (lo > 0) & (hi >= lo)
        se = se.where(~ok, (np.log(hi.where(ok)) - np.log(lo.where(ok))) / (2 * Z95))
    if {"std_ms", "n"} <= set(rows.columns):
        std, n = rows["std_ms"].astype(float), rows["n"].astype(float)
        n = n.where(n >= MIN_SAMPLES)
        se = se.fillna(MEDIAN_SE_FACTOR * std / np.sqrt(n) / c.where(c > 0) * (t_quantile95(n - 1) / Z95))
    if "n" in rows.columns:
        se = se.where(~(rows["n"].astype(float) < MIN_SAMPLES))
    return se


@pytest.mark.parametrize("counts", ["few", "nullable", "fractional", "far_apart"])
@pytest.mark.parametrize("columns", ["all", "no_interval", "no_std", "no_n"])
def test_log_se_equals_the_rule_as_first_written_bit_for_bit(counts, columns):
    """The numpy log_se (its t quantile looked up per count of iterations) against the plain pandas rule, on
    rows with and without intervals, empty and reversed ones, p50 of 0, below and above six iterations, and
    counts of every kind: whole and close (looked up), missing, fractional or far apart (computed per row)."""
    rng = np.random.default_rng(7)
    k = 2000
    p50 = rng.lognormal(0, 1, k)
    p50[:20] = [0.0, -1.0, np.nan] * 6 + [0.0, 0.0]
    lo, hi = p50 * rng.uniform(0.8, 1.0, k), p50 * rng.uniform(1.0, 1.2, k)
    lo[::7], hi[::11] = np.nan, np.nan
    lo[::13], hi[::13] = hi[::13], lo[::13]  # reversed: no interval
    n = rng.integers(3, 40, k).astype(float)
    if counts == "nullable":
        n = pd.array(np.where(np.arange(k) % 9 == 0, None, n.astype(int)), dtype="Int64")
    elif counts == "fractional":
        n[::5] += 0.5
    elif counts == "far_apart":
        n[::17] = 1e6
    rows = pd.DataFrame({"p50_ms": p50, "ci95_low_ms": lo, "ci95_high_ms": hi, "std_ms": p50 * 0.1, "n": n})
    rows.loc[::19, "std_ms"] = np.nan
    drop = {"all": [], "no_interval": ["ci95_low_ms", "ci95_high_ms"], "no_std": ["std_ms"], "no_n": ["n"]}
    rows = rows.drop(columns=drop[columns])
    pd.testing.assert_series_equal(log_se(rows), _log_se_as_written_first(rows), check_exact=True)
    assert log_se(rows.iloc[:0]).empty


def test_row_interval_keeps_the_stored_asymmetric_interval():
    rows = pd.DataFrame(
        {
            "p50_ms": [10.0, 10.0],
            "ci95_low_ms": [9.5, None],
            "ci95_high_ms": [12.0, None],
            "std_ms": [1.0, 1.0],
            "n": [20, 3],
        }
    )
    lo, hi = row_interval(rows)
    assert (lo[0], hi[0]) == (9.5, 12.0)
    assert np.isnan(lo[1]) and np.isnan(hi[1])  # 3 iterations: no claim


def test_ties_are_overlapping_intervals_within_a_group():
    df = pd.DataFrame(
        {
            "g": [1, 1, 1, 2, 2, 3],
            "v": [1.0, 1.05, 2.0, 3.0, np.nan, 5.0],
            "lo": [0.9, 1.0, 1.9, 2.9, np.nan, np.nan],
            "hi": [1.1, 1.1, 2.1, 3.1, np.nan, np.nan],
        }
    )
    tied = tied_with_fastest(df["v"], df["lo"], df["hi"], df["g"])
    assert tied.tolist() == [True, True, False, True, False, True]
    # no interval ("not enough samples"): tied with the fastest; a fastest without one ties its whole group
    df = pd.DataFrame(
        {
            "g": [1, 1, 2, 2],
            "v": [1.0, 5.0, 1.0, 5.0],
            "lo": [0.9, np.nan, np.nan, 4.9],
            "hi": [1.1, np.nan, np.nan, 5.1],
        }
    )
    assert tied_with_fastest(df["v"], df["lo"], df["hi"], df["g"]).tolist() == [True, True, True, True]


def test_between_run_sd_recovers_the_noise_the_rows_own_errors_do_not_hold():
    rng = np.random.default_rng(3)
    se = np.full(4000, 0.01)  # each pair's own standard error
    lr = rng.normal(0, np.sqrt(0.01**2 + 2 * 0.05**2), se.size)  # plus 5% between runs, on each run
    assert between_run_sd(lr, se) == pytest.approx(0.05, rel=0.05)
    assert between_run_sd(rng.normal(0, 0.01, 4000), se) < 0.005  # nothing beyond the rows' own noise
    assert np.isnan(between_run_sd(lr[:2], se[:2]))  # too few pairs to say


def test_classify_ratio_needs_the_whole_interval_beyond_the_tolerance():
    got = classify_ratio([1.06, 1.04, 0.90, 0.94, np.nan], [1.2, 1.2, 0.95, 0.99, np.nan], 0.05)
    assert got.tolist() == ["slower", "same", "faster", "same", "same"]  # 0.95 < 1/1.05 = 0.952: faster
