"""Summary statistics of timing samples (pure numpy; no torch, no I/O)."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np

Z95 = 1.959963984540054
LEVEL = 0.95
# The fewest iterations with a distribution-free 95% interval of a median: [min, max] of n samples misses the
# median only when all n fall on one side of it, with probability 2 / 2**n: 6.3% at n = 5, 3.1% at n = 6.
MIN_SAMPLES = 6


# Student's t 97.5% quantiles where the series below is too far off: exact for 1 and 2 degrees of freedom.
_T975_EXACT = {1.0: 12.706204736174698, 2.0: 4.302652729749464}


def t_quantile95(df: np.ndarray | float) -> np.ndarray:
    """Student's t 97.5% quantile for ``df`` degrees of freedom: exact at 1 and 2, else the Cornish-Fisher
    series in 1/df (0.12% below the exact value at df = 3, within 0.02% from df = 5: 2.5703 for 2.5706);
    nan below 1 or for nan."""
    v = np.asarray(df, dtype=float)
    z = Z95
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (
            z
            + (z**3 + z) / (4 * v)
            + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * v**2)
            + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * v**3)
            + (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / (92160 * v**4)
        )
    for exact_df, exact in _T975_EXACT.items():
        t = np.where(v == exact_df, exact, t)
    return np.where((v >= 3) | np.isin(v, list(_T975_EXACT)), t, np.nan)


@functools.lru_cache(maxsize=4096)
def _order_statistic_rule(n: int) -> tuple[int, float]:
    """For n samples: the k of the pair (x(k), x(n+1-k)) and the interpolation weight towards the next
    pair inwards (see median_ci95). Depends on n only, so it is worked out once per n."""
    log_pmf = [math.lgamma(n + 1) - math.lgamma(j + 1) - math.lgamma(n - j + 1) - n * math.log(2) for j in range(n + 1)]
    cdf = np.cumsum(np.exp(log_pmf))  # P(B <= j), B ~ Binomial(n, 1/2)
    coverage = 1 - 2 * cdf[: (n + 1) // 2]  # coverage[k - 1] of the pair (k, n + 1 - k), k = 1 .. (n+1)//2
    k = int(np.nonzero(coverage >= LEVEL)[0][-1]) + 1
    if 2 * k + 1 > n or coverage[k - 1] == LEVEL:
        return k, 0.0
    share = (coverage[k - 1] - LEVEL) / (coverage[k - 1] - coverage[k])
    return k, float((n - k) * share / (k + (n - 2 * k) * share))


def median_ci95(sorted_ms: np.ndarray) -> tuple[float, float]:
    """A 95% confidence interval of the median from order statistics; (nan, nan) below MIN_SAMPLES.

    [x(k), x(n+1-k)] covers the true median with probability 1 - 2 P(B <= k-1), B ~ Binomial(n, 1/2), for
    any continuous distribution of independent samples: no normality, and one 3x outlier moves it by at
    most one rank. The k whose coverage is the smallest at or above 95% is taken, and the ends are moved
    towards the next pair inwards by Hettmansperger and Sheather's interpolation (1986), so that the
    coverage is close to 95% instead of jumping between the discrete levels (at n = 10 the pairs cover
    97.9% and 89.1%; without interpolation the interval would be a third wider than it needs to be).
    """
    x = np.asarray(sorted_ms, dtype=float)
    n = int(x.size)
    if n < MIN_SAMPLES:
        return math.nan, math.nan
    k, lam = _order_statistic_rule(n)
    lo, hi = x[k - 1], x[n - k]
    if lam == 0.0:
        return float(lo), float(hi)
    return float((1 - lam) * lo + lam * x[k]), float((1 - lam) * hi + lam * x[n - k - 1])


def lag1_autocorrelation(samples_ms: Sequence[float]) -> float:
    """Correlation of each iteration with the next (nan below 3 samples or with no spread). Order-statistic
    intervals assume independent iterations; a value well above 2 / sqrt(n) says they are not (clocks
    ramping, a neighbour's load), and the report counts such rows."""
    x = np.asarray(samples_ms, dtype=float)
    if x.size < 3:
        return math.nan
    d = x - x.mean()
    denom = float(d @ d)
    return float(d[:-1] @ d[1:]) / denom if denom > 0 else math.nan


def ci_relative_halfwidth(samples_ms: Sequence[float]) -> float:
    """Half the width of the median's 95% CI as a fraction of the median (inf below MIN_SAMPLES)."""
    if len(samples_ms) < MIN_SAMPLES:
        return math.inf
    s = np.sort(np.asarray(samples_ms, dtype=float))
    lo, hi = median_ci95(s)
    median = float(np.median(s))
    return (hi - lo) / 2 / median if median > 0 else math.inf


def _or_none(v: float) -> float | None:
    """A results cell: null where the statistic does not exist (too few samples), never a made-up NaN."""
    return None if math.isnan(v) else v


def layer_summary(samples_ms: Sequence[float]) -> dict[str, float | int | None]:
    """The layers table's latency columns for one layer (nulls where there are no samples)."""
    x = np.asarray(samples_ms, dtype=float)
    if x.size == 0:
        return {"n": 0, "mean_ms": None, "p50_ms": None, "std_ms": None}
    lo, hi = median_ci95(np.sort(x))
    return {
        "n": int(x.size),
        "mean_ms": float(x.mean()),
        "p50_ms": float(np.median(x)),
        "std_ms": float(x.std(ddof=1)) if x.size > 1 else None,
        "ci95_low_ms": _or_none(lo),
        "ci95_high_ms": _or_none(hi),
        "lag1_autocorr": _or_none(lag1_autocorrelation(x)),
    }


def summarize(samples_ms: Sequence[float], batch_size: int) -> dict[str, float | int]:
    """The points table's latency columns for one point."""
    x = np.sort(np.asarray(samples_ms, dtype=float))
    if x.size == 0:
        raise ValueError("no timing samples to summarize")
    mean = float(x.mean())
    std = float(x.std(ddof=1)) if x.size > 1 else 0.0
    lo, hi = median_ci95(x)
    p50, p95, p99 = (float(v) for v in np.percentile(x, [50, 95, 99]))
    return {
        "n": int(x.size),
        "mean_ms": mean,
        "std_ms": std,
        "cv": std / mean if mean > 0 else math.nan,
        "min_ms": float(x[0]),
        "p50_ms": p50,
        "p95_ms": p95,
        "p99_ms": p99,
        "max_ms": float(x[-1]),
        "ci95_low_ms": _or_none(lo),
        "ci95_high_ms": _or_none(hi),
        "lag1_autocorr": _or_none(lag1_autocorrelation(samples_ms)),
        "throughput_ips": batch_size / (mean / 1000.0) if mean > 0 else math.nan,
    }
