"""How sure a latency (and a ratio of latencies) is, from the summary statistics a results row holds.

The tree keeps no raw samples: a point row has its p50, the median's distribution-free 95% confidence
interval (``ci95_low_ms``/``ci95_high_ms``), mean, std and n; imported rows and layer rows have mean, std
and n only. Everything here works on the log scale, where a ratio is a difference:

- ``log_se``: the standard error of log(p50) per row: from the median's CI where the row has one
  (half its log width / 1.96), otherwise the large-sample standard error of a median,
  sqrt(pi/2) * std / sqrt(n), relative to the centre. NaN where the row has neither (no uncertainty known).
- ``ratio_interval``: a ratio of two independent medians with its 95% interval (delta method).
- ``bootstrap_geomean``: the geometric mean of ratios over a group of points with a 95% percentile
  interval from a two-level parametric bootstrap: resample the group's points (sizes, batches) with
  replacement, and draw each chosen ratio from its own measurement noise (normal on the log scale, from
  ``log_se``). The interval covers both "which sizes were measured" and "how noisy each one was".
- ``between_run_sd``: the noise between runs that no row's own CI holds (clocks, other load, the node):
  from run-to-run pairs of identical settings, by the method of moments; added to each side's standard
  error, it keeps a comparison of runs from calling that noise a change.
- ``classify_ratio``: the rule for "slower" / "faster" / "same" of a ratio (new / old) beyond a relative
  tolerance: the whole 95% interval must lie beyond it, so noise is never called a regression.
- ``tied_with_fastest``: the noise rule for "best": an entry whose 95% interval overlaps the fastest's is
  tied with it; an entry with no known uncertainty is tied only when its value equals the fastest's.

Pure numpy/pandas; nothing reads files.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

Z95 = 1.959963984540054
MEDIAN_SE_FACTOR = float(np.sqrt(np.pi / 2))  # SE(median) / SE(mean) for large normal samples
BOOTSTRAP_REPLICATES = 1000


def log_se(rows: pd.DataFrame, center: str = "p50_ms") -> pd.Series:
    """Standard error of log(``center``) per row (see the module docstring); NaN where unknown."""
    c = rows[center].astype(float)
    se = pd.Series(np.nan, index=rows.index)
    if {"ci95_low_ms", "ci95_high_ms"} <= set(rows.columns):
        lo, hi = rows["ci95_low_ms"].astype(float), rows["ci95_high_ms"].astype(float)
        ok = (lo > 0) & (hi >= lo)
        se = se.where(~ok, (np.log(hi.where(ok)) - np.log(lo.where(ok))) / (2 * Z95))
    if {"std_ms", "n"} <= set(rows.columns):
        std, n = rows["std_ms"].astype(float), rows["n"].astype(float)
        from_std = MEDIAN_SE_FACTOR * std / np.sqrt(n.where(n > 0)) / c.where(c > 0)
        se = se.fillna(from_std)
    return se


def interval(log_value: np.ndarray | pd.Series, se: np.ndarray | pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """The 95% interval (low, high) of exp(log_value) for a normal log with standard error ``se``."""
    lv, s = np.asarray(log_value, dtype=float), np.asarray(se, dtype=float)
    return np.exp(lv - Z95 * s), np.exp(lv + Z95 * s)


@dataclass(frozen=True)
class Ratio:
    """``reference / value`` (> 1: value is faster) with its 95% interval; arrays, one entry per row."""

    ratio: np.ndarray
    low: np.ndarray
    high: np.ndarray
    log_se: np.ndarray


def ratio_interval(reference_ms, reference_se, value_ms, value_se) -> Ratio:
    """Speedup = reference / value of independent medians; se of the log ratio = hypot of the two."""
    lr = np.log(np.asarray(reference_ms, dtype=float)) - np.log(np.asarray(value_ms, dtype=float))
    se = np.hypot(np.asarray(reference_se, dtype=float), np.asarray(value_se, dtype=float))
    lo, hi = interval(lr, se)
    return Ratio(np.exp(lr), lo, hi, se)


def bootstrap_geomean(log_ratio: np.ndarray, se: np.ndarray, replicates: int = BOOTSTRAP_REPLICATES,
                      seed: int = 0) -> tuple[float, float, float]:
    """Geometric mean of exp(log_ratio) and its 95% percentile interval (see the module docstring). Rows
    with an unknown se contribute no measurement noise (only the resampling)."""
    lr = np.asarray(log_ratio, dtype=float)
    s = np.nan_to_num(np.asarray(se, dtype=float), nan=0.0)
    if lr.size == 0:
        return np.nan, np.nan, np.nan
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, lr.size, size=(replicates, lr.size))
    # The mean of the chosen ratios' independent normal noises is itself normal, with variance
    # sum(se^2) / n^2: one draw per replicate has the same distribution as n draws averaged, n times cheaper.
    noise = np.sqrt((s[pick] ** 2).sum(axis=1)) / lr.size
    means = lr[pick].mean(axis=1) + rng.standard_normal(replicates) * noise
    lo, hi = np.quantile(means, [0.025, 0.975])
    return float(np.exp(lr.mean())), float(np.exp(lo)), float(np.exp(hi))


MIN_PAIRS = 3  # fewer run-to-run pairs say too little about the noise between runs


def between_run_sd(log_ratio, se) -> float:
    """The standard deviation of log latency between runs beyond each run's own standard error.

    From pairs of runs of the same point with identical settings: their log ratios (later / earlier) have,
    with nothing changed, mean 0 and variance ``se_pair**2 + 2 * sd**2`` (``se_pair``: the pair's own
    standard error, both runs' in quadrature, NaN counted as 0), so ``sd**2 = mean(lr**2 - se_pair**2) / 2``,
    floored at 0. NaN with fewer than MIN_PAIRS pairs."""
    lr = np.asarray(log_ratio, dtype=float)
    s = np.nan_to_num(np.asarray(se, dtype=float), nan=0.0)
    if lr.size < MIN_PAIRS:
        return float("nan")
    return float(np.sqrt(max(0.0, float(np.mean(lr ** 2 - s ** 2)) / 2)))


RATIO_CLASSES = ("faster", "same", "slower")  # classify_ratio's labels, in the order of ratio_class's codes


def ratio_class(low, high, tolerance) -> np.ndarray:
    """classify_ratio as codes into RATIO_CLASSES (0 faster, 1 same, 2 slower): millions of rows without
    a string each."""
    lo, hi = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    tol = np.asarray(tolerance, dtype=float)
    return np.where(lo > 1 + tol, 2, np.where(hi < 1 / (1 + tol), 0, 1)).astype(np.int8)


def classify_ratio(low, high, tolerance) -> np.ndarray:
    """Per ratio new/old with its 95% interval [low, high]: "slower" when the whole interval lies above
    1 + tolerance, "faster" when it lies below 1 / (1 + tolerance), else "same" (inside the tolerance or
    inside the noise). An unknown interval (NaN) is "same": nothing is shown beyond noise."""
    code = ratio_class(low, high, tolerance)
    return np.array(RATIO_CLASSES, dtype=object)[code.ravel()].reshape(code.shape)  # a 0-d array for scalars


def tied_with_fastest(value: pd.Series, low: pd.Series, high: pd.Series, groups: list[pd.Series] | pd.Series
                      ) -> pd.Series:
    """Per row: True when its interval overlaps the interval of the fastest row of its group (the fastest
    itself included). Rows without a value are never tied; a missing interval is the value itself."""
    v = value.astype(float)
    lo = low.astype(float).fillna(v)
    hi = high.astype(float).fillna(v)
    keys = groups if isinstance(groups, list) else [groups]
    fastest_v = v.groupby(keys, observed=True, sort=False, dropna=False).transform("min")
    hi_at_fastest = hi.where(v == fastest_v, np.inf)
    best_hi = hi_at_fastest.groupby(keys, observed=True, sort=False, dropna=False).transform("min")
    return v.notna() & (lo <= best_hi)
