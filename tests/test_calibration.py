"""Calibration: every interval the analysis rests on is checked against known truth.

Latencies are drawn from known distributions (log-normal with cv 0.3% to 10%, and a heavy tail where an
iteration is now and then 3x slower), at the sample sizes the stages really use. Each interval is built by
the project's own code path (a layer record's or a point's summary, then ``log_se`` and ``interval``, as
the analysis reads a row) and must:

- cover the true median in at least 93% of replicates (nominal 95%; 4000 replicates put 93% about six
  standard errors below 95%, so a correct interval does not fail by chance and a 90% one cannot pass);
- be at most 1.5x as wide as an oracle interval that knows the true distribution (the 2.5% and 97.5%
  quantiles of the sample median itself): on average where the latencies have no outliers, and in the
  median replicate where they do (at n = 8 to 10 a distribution-free interval must reach the extreme
  order statistics, so a sample that caught a 3x outlier gets a wide interval: the price of holding
  whatever the tail; the benchmark benchmarks/calibration.py prints the means);
- or say "not enough samples" (NaN): exempt from coverage, but counted, and never at the sizes where an
  honest 95% interval of a median exists (n >= 6).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from harness.measure.layers import LayerRecord
from harness.results.uncertainty import Z95, geomean_interval, log_se, ratio_interval, row_interval
from harness.stats import summarize

REPLICATES = 4000
MIN_COVERAGE = 0.93
MAX_WIDTH_RATIO = 1.5
LAYER_N = (3, 5, 8, 20, 30)  # acceptance (before), sanity, acceptance (now), quick, full: stage.layer_iters
POINT_N = (10, 20, 50)  # points: stage.min_iters upwards


class Truth:
    """Latencies with a known median: log-normal with coefficient of variation ``cv``; with ``outliers`` > 0
    each iteration is 3x slower with that probability."""

    def __init__(self, cv: float, outliers: float = 0.0) -> None:
        self.cv, self.outliers = cv, outliers
        self.sigma = math.sqrt(math.log1p(cv * cv))

    def __repr__(self) -> str:
        return f"cv={self.cv:.1%}" + (f"+{self.outliers:.0%}x3" if self.outliers else "")

    def draw(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        x = np.exp(rng.normal(0.0, self.sigma, shape))
        if self.outliers:
            x = np.where(rng.random(shape) < self.outliers, 3.0 * x, x)
        return x

    def median(self) -> float:
        """The distribution's median: the root of its CDF - 1/2 (bisection on the log scale)."""
        phi = lambda z: 0.5 * (1 + math.erf(z / math.sqrt(2)))  # noqa: E731
        cdf = lambda t: (1 - self.outliers) * phi(t / self.sigma) + self.outliers * phi((t - math.log(3)) / self.sigma)  # noqa: E731
        lo, hi = -10 * self.sigma, 10 * self.sigma + math.log(3)
        for _ in range(200):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if cdf(mid) < 0.5 else (lo, mid)
        return math.exp((lo + hi) / 2)


TRUTHS = [Truth(0.003), Truth(0.01), Truth(0.03), Truth(0.10), Truth(0.01, outliers=0.05)]


def oracle_width(truth: Truth, n: int, rng: np.random.Generator) -> float:
    """Width (log scale) of the interval that knows the distribution: the sample median's own 2.5-97.5%."""
    medians = np.median(truth.draw(rng, (20000, n)), axis=1)
    lo, hi = np.quantile(np.log(medians), [0.025, 0.975])
    return float(hi - lo)


def score(lo: np.ndarray, hi: np.ndarray, truth: float, oracle: float) -> dict[str, float]:
    """Coverage of ``truth``, widths (log scale) over the oracle's, and the share with no interval."""
    lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    claimed = np.isfinite(lo) & np.isfinite(hi)
    covered = (lo[claimed] <= truth) & (truth <= hi[claimed])
    width = np.log(hi[claimed]) - np.log(lo[claimed])
    some = bool(claimed.any())
    return {
        "no_claim": float(1 - claimed.mean()),
        "coverage": float(covered.mean()) if some else math.nan,
        "width_ratio": float(width.mean() / oracle) if some else math.nan,
        "median_width_ratio": float(np.median(width) / oracle) if some else math.nan,
    }


def judge(rows: pd.DataFrame, truth: Truth, n: int, rng: np.random.Generator) -> dict[str, float]:
    """A row's own interval of its median, as the analysis reads it, against the truth."""
    lo, hi = row_interval(rows)
    return score(lo, hi, truth.median(), oracle_width(truth, n, rng))


def layer_rows(samples: np.ndarray) -> pd.DataFrame:
    """What a layers row holds for each replicate's iterations (the measuring code's own summary)."""
    return pd.DataFrame([LayerRecord(0, "conv", None, (1, 3, 8, 8), (1, 3, 8, 8), list(s)).summary() for s in samples])


def point_rows(samples: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame([summarize(s, batch_size=1) for s in samples])


def check(result: dict[str, float], n: int, truth: Truth, pair: bool = False) -> None:
    """The criteria of the module docstring. One exemption from the width: a ratio of two layer rows of 8
    iterations under outliers, where 56% of replicates hold a 3x outlier among their 16 samples and a
    95% interval at n = 8 must lean on the extreme order statistics (its coverage is still checked)."""
    if n >= 6:
        assert result["no_claim"] == 0, result
    if result["no_claim"] < 1:
        assert result["coverage"] >= MIN_COVERAGE, result
        if truth.outliers and pair and n < 10:
            return
        width = "median_width_ratio" if truth.outliers else "width_ratio"
        assert result[width] <= MAX_WIDTH_RATIO, result


@pytest.mark.parametrize("truth", TRUTHS, ids=repr)
def test_layer_interval_holds_at_every_stages_layer_iterations(truth: Truth):
    rng = np.random.default_rng(11)
    for n in LAYER_N:
        check(judge(layer_rows(truth.draw(rng, (REPLICATES, n))), truth, n, rng), n, truth)


@pytest.mark.parametrize("truth", TRUTHS, ids=repr)
def test_point_interval_holds_at_the_iterations_points_use(truth: Truth):
    rng = np.random.default_rng(12)
    for n in POINT_N:
        check(judge(point_rows(truth.draw(rng, (REPLICATES, n))), truth, n, rng), n, truth)


def ratio_of_rows(truth: Truth, n: int, rows_of, rng: np.random.Generator, slower: float = 1.1):
    """B/A at one point, B truly ``slower`` x A: the interval the analysis gives, and the oracle's width."""
    a = rows_of(truth.draw(rng, (REPLICATES, n)))
    b = rows_of(slower * truth.draw(rng, (REPLICATES, n)))
    r = ratio_interval(b["p50_ms"], log_se(b), a["p50_ms"], log_se(a))
    oracle_draws = np.median(slower * truth.draw(rng, (20000, n)), axis=1) / np.median(
        truth.draw(rng, (20000, n)), axis=1
    )
    oracle = float(np.diff(np.quantile(np.log(oracle_draws), [0.025, 0.975]))[0])
    return r, oracle


@pytest.mark.parametrize("truth", TRUTHS, ids=repr)
def test_ratio_of_two_medians_holds(truth: Truth):
    """The speedup of one algorithm over another at one point, and compare's B/A (layers and points)."""
    rng = np.random.default_rng(13)
    for rows_of, sizes in ((layer_rows, LAYER_N), (point_rows, POINT_N)):
        for n in sizes:
            r, oracle = ratio_of_rows(truth, n, rows_of, rng)
            check(score(r.low, r.high, 1.1, oracle), n, truth, pair=True)


@pytest.mark.parametrize("sizes", [1, 2, 10])
def test_geometric_mean_over_the_sizes_measured_holds(sizes: int):
    """The speedup summary's geometric mean over a model's sizes (1 to 10 of them, each with its own true
    ratio between 0.8 and 1.3), from points of 10 iterations: coverage of the true geometric mean."""
    rng = np.random.default_rng(14)
    truth = Truth(0.03)
    true_ratios = rng.uniform(0.8, 1.3, sizes)
    reps = 1000
    a = point_rows(truth.draw(rng, (reps * sizes, 10)))
    b = point_rows(np.tile(true_ratios, reps)[:, None] * truth.draw(rng, (reps * sizes, 10)))
    r = ratio_interval(b["p50_ms"], log_se(b), a["p50_ms"], log_se(a))
    lr, se = np.log(r.ratio).reshape(reps, sizes), np.asarray(r.log_se).reshape(reps, sizes)
    lows, highs = np.array([geomean_interval(lr[i], se[i])[1:] for i in range(reps)]).T
    result = score(lows, highs, float(np.exp(np.log(true_ratios).mean())), oracle=1.0)
    assert result["no_claim"] == 0 and result["coverage"] >= MIN_COVERAGE, result


@pytest.mark.parametrize("tau", [0.0, 0.02])
def test_repeats_pooled_across_processes_hold_where_one_process_does_not(tau: float):
    """A model on a GPU: 6 points (3 algorithms x 2 sizes), each measured in 3 processes of 20 iterations
    (cv 1%); each process runs `tau` (sd of log latency) off the point's true median (another allocation,
    node, clock). The pooled interval covers the true median; one process's own interval does not once the
    between-process noise exceeds its own (so the test can fail)."""
    from harness.results.uncertainty import between_process, pooled_se

    rng = np.random.default_rng(15)
    truth, points, k, n, reps = Truth(0.01), 6, 3, 20, 400
    pooled, single, widths = [], [], []
    for _ in range(reps):
        offset = rng.normal(0.0, tau, (points, k))
        rows = point_rows((np.exp(offset)[:, :, None] * truth.draw(rng, (points, k, n))).reshape(points * k, n))
        y, se = np.log(rows["p50_ms"].to_numpy()), log_se(rows).to_numpy()
        point = np.repeat(np.arange(points), k)
        between = between_process(y, se, point)
        centre = y.reshape(points, k).mean(axis=1)
        rms = np.sqrt((se.reshape(points, k) ** 2).mean(axis=1))
        half = Z95 * pooled_se(rms, k, between)
        widths.append(float(np.mean(2 * half)))
        pooled.append(score(np.exp(centre - half), np.exp(centre + half), 1.0, oracle=1.0)["coverage"])
        lo, hi = row_interval(rows.iloc[::k])  # the first process of each point alone
        single.append(score(lo, hi, 1.0, oracle=1.0)["coverage"])
    assert np.mean(pooled) >= MIN_COVERAGE, np.mean(pooled)
    processes = np.median(truth.draw(rng, (20000, k, n)), axis=2) * np.exp(rng.normal(0.0, tau, (20000, k)))
    oracle = float(np.diff(np.quantile(np.log(processes).mean(axis=1), [0.025, 0.975]))[0])
    assert np.mean(widths) / oracle <= MAX_WIDTH_RATIO, np.mean(widths) / oracle
    if tau > 0:
        assert np.mean(single) < 0.6, np.mean(single)  # one process's interval misses most of that noise


@pytest.mark.parametrize("n", LAYER_N)
def test_layer_speedup_verdicts_keep_their_false_discovery_rate_at_the_stages_layer_iterations(n: int):
    """layer_speedups' path (each layer row's summary -> log_se -> ratio_interval -> corrected: Benjamini-Hochberg
    over the whole table, both directions of every pair) on 60 campaigns of 400 layer pairs of known truth at
    cv 3%: 300 pairs equal, 50 truly 10% faster than the reference, 50 truly 10% slower. Where the rows have
    an interval (n >= 6 always), the speedup's interval covers the truth in >= 93% of pairs, the share of false
    claims (a pair called faster or slower that is not, or the wrong way) is at most 5% on average over the
    campaigns, and at n >= 8 most true differences are found (a test of nothing would pass the first two)."""
    from analysis.stats.verdicts import corrected

    rng, truth = np.random.default_rng(15), Truth(0.03)
    campaigns, pairs = 60, 400
    effect = np.ones(pairs)
    effect[:50], effect[50:100] = 1 / 1.1, 1.1  # the algorithm's time over the reference's
    said_truth = np.sign(1 - effect)  # 1: truly faster, -1: truly slower, 0: equal
    fdp, found, covered, claimed = [], [], [], []
    for _ in range(campaigns):
        ref = layer_rows(truth.draw(rng, (pairs, n)))
        mine = layer_rows(truth.draw(rng, (pairs, n)) * effect[:, None])
        s = ratio_interval(ref["p50_ms"], log_se(ref), mine["p50_ms"], log_se(mine))
        _, _, code = corrected(s.ratio, s.log_se)
        claim = np.select([code == 0, code == 2], [1, -1], 0)  # VERDICTS: faster, tied, slower, no_interval
        has = np.isfinite(np.asarray(s.low)) & np.isfinite(np.asarray(s.high))
        true_speedup = 1 / effect
        covered.append(((s.low <= true_speedup) & (true_speedup <= s.high))[has])
        claimed.append(has.mean())
        fdp.append(((claim != 0) & (claim != said_truth)).sum() / max(1, (claim != 0).sum()))
        found.append(((claim == said_truth) & (said_truth != 0)).sum() / 100)
    if n >= 6:
        assert min(claimed) == 1.0, f"n={n}: rows without an interval"
    if np.mean(claimed) > 0:
        coverage = float(np.concatenate(covered).mean())
        assert coverage >= MIN_COVERAGE, f"n={n}: the speedup interval covers the truth in {coverage:.1%}"
    assert np.mean(fdp) <= 0.05, f"n={n}: false claims {np.mean(fdp):.2%} of claims on average"
    if n >= 8:
        assert np.mean(found) >= 0.5, f"n={n}: {np.mean(found):.1%} of the true differences found"
