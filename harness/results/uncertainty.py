"""How sure a latency (and a ratio of latencies) is, from the summary statistics a results row holds.

The tree keeps no raw samples: a point row has its p50, the median's distribution-free 95% confidence
interval (``ci95_low_ms``/``ci95_high_ms``), mean, std and n; imported rows and layer rows have mean, std
and n only. Everything here works on the log scale, where a ratio is a difference:

- ``log_se``: the standard error of log(p50) per row, for comparing rows. Where the row has the median's
  95% interval (an order-statistic one, right at any n from 6: harness.stats.median_ci95), half
  its log width / 1.96: a ratio of two rows with it covers 94-96% (tests/test_calibration.py; the larger
  half instead would cover 98% and be a third wider than needed). Rows that hold only mean, std and n
  (layer rows written before their interval columns, imported rows): the standard error of a median,
  sqrt(pi/2) * std / sqrt(n) relative to the centre, widened by t(n-1) / 1.96 so that it holds at small n.
  NaN ("not enough samples") below 6 iterations, where no honest 95% interval of a median exists, and
  where the row has neither: such rows take part in no decision.
- ``row_interval``: a row's own 95% interval: the stored one (not symmetric about the median; +-1.96
  ``log_se`` around it would cover only ~93%), else +-1.96 ``log_se``.
- ``ratio_interval``: a ratio of two independent medians with its 95% interval (delta method).
- ``geomean_interval``: the geometric mean of ratios over the points measured (sizes, batches) with the
  95% interval of their measurement noise.
- ``between_run_sd``: the noise between runs that no row's own CI holds (clocks, other load, the node):
  from run-to-run pairs of identical settings, by the method of moments; added to each side's standard
  error, it keeps a comparison of runs from calling that noise a change.
- ``classify_ratio``: the rule for "slower" / "faster" / "same" of a ratio (new / old) beyond a relative
  tolerance: the whole 95% interval must lie beyond it, so noise is never called a regression.
- ``tied_with_fastest``: the noise rule for "best": an entry whose 95% interval overlaps the fastest's is
  tied with it; an entry with no interval ("not enough samples") is tied with the fastest.

Pure numpy/pandas; nothing reads files.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.stats import MIN_SAMPLES, t_quantile95

Z95 = 1.959963984540054
MEDIAN_SE_FACTOR = float(np.sqrt(np.pi / 2))  # SE(median) / SE(mean) for large normal samples


def log_se(rows: pd.DataFrame, center: str = "p50_ms") -> pd.Series:
    """Standard error of log(``center``) per row (see the module docstring); NaN where unknown.

    In numpy, in place, and the t quantile worked out once per count of iterations: the tables over the layers
    take it of tens of millions of rows (20,000,000 in slices of 1,000,000: 1.0 s as pandas Series, each step
    a new column, 0.5 s so)."""
    c = _floats(rows, center)
    se = np.full(len(rows), np.nan)
    columns = set(rows.columns)
    if {"ci95_low_ms", "ci95_high_ms"} <= columns:
        lo, hi = _floats(rows, "ci95_low_ms"), _floats(rows, "ci95_high_ms")
        ok = (lo > 0) & (hi >= lo)  # NaN is neither
        se[ok] = (np.log(hi[ok]) - np.log(lo[ok])) / (2 * Z95)
    n = _floats(rows, "n") if "n" in columns else None
    if n is not None and "std_ms" in columns:
        need = np.flatnonzero(np.isnan(se) & (n >= MIN_SAMPLES))  # the rows without an interval of their own
        std, cn, c_need = _floats(rows, "std_ms")[need], n[need], c[need]
        with np.errstate(invalid="ignore", divide="ignore"):
            c_need[~(c_need > 0)] = np.nan
            se[need] = MEDIAN_SE_FACTOR * std / np.sqrt(cn) / c_need * (_t_quantile95_of_counts(cn) / Z95)
    if n is not None:  # an interval written with fewer samples (none are, but a file may say so)
        se[n < MIN_SAMPLES] = np.nan
    return pd.Series(se, index=rows.index)


def _floats(rows: pd.DataFrame, column: str) -> np.ndarray:
    """A column as float64, missing values as NaN (the column itself where it is float64: not written to)."""
    return rows[column].astype(float).to_numpy()


def _t_quantile95_of_counts(n: np.ndarray) -> np.ndarray:
    """``t_quantile95(n - 1)`` of iteration counts: looked up in a table of every count between the least and
    the largest where they are whole numbers in a short range (they are: a run's iterations), else computed
    row by row. The same values bit for bit."""
    if not len(n):
        return t_quantile95(n - 1)
    least, most = np.min(n), np.max(n)
    if np.isfinite(least) and np.isfinite(most) and most - least < 1 << 16:
        whole = n.astype(np.int64)
        if np.array_equal(whole, n):
            table = t_quantile95(np.arange(int(least), int(most) + 1, dtype=float) - 1)
            return table[whole - int(least)]
    return t_quantile95(n - 1)


def row_interval(rows: pd.DataFrame, center: str = "p50_ms") -> tuple[pd.Series, pd.Series]:
    """Each row's own 95% interval of its median (low, high): the stored order-statistic interval where the
    row has one, else exp(log centre +- 1.96 ``log_se``); NaN where the row has no honest one."""
    lo, hi = interval(np.log(rows[center].astype(float)), log_se(rows, center))
    lo, hi = pd.Series(lo, index=rows.index), pd.Series(hi, index=rows.index)
    if {"ci95_low_ms", "ci95_high_ms"} <= set(rows.columns):
        stored = rows["ci95_low_ms"].notna() & rows["ci95_high_ms"].notna()
        if "n" in rows.columns:
            stored &= ~(rows["n"].astype(float) < MIN_SAMPLES)
        lo = lo.where(~stored, rows["ci95_low_ms"].astype(float))
        hi = hi.where(~stored, rows["ci95_high_ms"].astype(float))
    return lo, hi


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


def geomean_interval(log_ratio: np.ndarray, se: np.ndarray) -> tuple[float, float, float]:
    """Geometric mean of exp(log_ratio) over the points given, and its 95% interval from their own noise.

    The claim is about the points measured (these sizes and batches): the mean of independent, normal log
    ratios is normal with variance sum(se**2) / k**2, right at any k, 1 included. A bootstrap over the
    points (what this replaced) claims more, a population of sizes, and is too narrow at the 2 to 10 sizes
    the stages measure. NaN interval where any point has no interval ("not enough samples")."""
    lr, s = np.asarray(log_ratio, dtype=float), np.asarray(se, dtype=float)
    if lr.size == 0:
        return np.nan, np.nan, np.nan
    centre = float(lr.mean())
    half = Z95 * float(np.sqrt(np.sum(s**2))) / lr.size
    if not np.isfinite(half):
        return float(np.exp(centre)), np.nan, np.nan
    return float(np.exp(centre)), float(np.exp(centre - half)), float(np.exp(centre + half))


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
    return float(np.sqrt(max(0.0, float(np.mean(lr**2 - s**2)) / 2)))


@dataclass(frozen=True)
class BetweenProcess:
    """The variance of log latency between processes (``tau2``) beyond each process's own, from repeats of
    points (the same point measured in separate processes), with its degrees of freedom; and the share of
    a process's total variance it makes (the rest is the within-process noise of its median)."""

    tau2: float
    df: int  # sum over points of (repeats - 1): 0 means nothing was estimated
    within2: float  # mean squared standard error of one process's log median

    @property
    def share(self) -> float:
        total = self.tau2 + self.within2
        return self.tau2 / total if total > 0 else np.nan


def between_process(log_p50, se, point) -> BetweenProcess:
    """Method of moments over the points of a group (a model on a GPU type, say): with k_j processes of
    point j, the sample variance of their log medians has expectation tau2 + mean_i(se_ij**2), so tau2 is
    the df-weighted mean of (s_j**2 - mean_i se_ij**2), floored at 0. Points with one process, or a process
    without a standard error, add nothing."""
    frame = pd.DataFrame(
        {"y": np.asarray(log_p50, dtype=float), "se2": np.asarray(se, dtype=float) ** 2, "point": np.asarray(point)}
    )
    frame = frame[np.isfinite(frame["y"]) & np.isfinite(frame["se2"])]
    g = frame.groupby("point", sort=False)
    k = g["y"].transform("size")
    multi = frame[k >= 2]
    if multi.empty:
        return BetweenProcess(np.nan, 0, float(frame["se2"].mean()) if len(frame) else np.nan)
    g = multi.groupby("point", sort=False)
    df_j = g["y"].size() - 1
    excess = g["y"].var(ddof=1) - g["se2"].mean()
    tau2 = max(0.0, float((excess * df_j).sum() / df_j.sum()))
    return BetweenProcess(tau2, int(df_j.sum()), float(multi["se2"].mean()))


def pooled_se(se, processes, between: BetweenProcess) -> np.ndarray:
    """Standard error of a point's mean log median over ``processes`` separate processes (each with
    standard error ``se``, their mean square if several): sqrt((tau2 + se**2) / k), widened by
    t(df) / 1.96 for the estimated tau2. Where tau2 is unknown (no repeats anywhere in the group), the
    process's own standard error, with nothing added: the caller says so."""
    s2 = np.asarray(se, dtype=float) ** 2
    k = np.asarray(processes, dtype=float)
    if not np.isfinite(between.tau2) or between.df == 0:
        return np.sqrt(s2 / k)
    widen = float(t_quantile95(between.df)) / Z95
    return np.sqrt((between.tau2 + s2) / k) * widen


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


def tied_with_fastest(
    value: pd.Series, low: pd.Series, high: pd.Series, groups: list[pd.Series] | pd.Series
) -> pd.Series:
    """Per row: True when its interval overlaps the interval of the fastest row of its group (the fastest
    itself included). Rows without a value are never tied; a row with a value but no interval ("not enough
    samples") can be told apart from nothing: it is tied with the fastest, and a fastest without an
    interval is tied with every row of its group."""
    v = value.astype(float)
    known = low.notna() & high.notna()
    lo = low.astype(float).where(known, -np.inf)
    hi = high.astype(float).where(known, np.inf)
    keys = groups if isinstance(groups, list) else [groups]
    fastest_v = v.groupby(keys, observed=True, sort=False, dropna=False).transform("min")
    hi_at_fastest = hi.where(v == fastest_v, np.inf)
    best_hi = hi_at_fastest.groupby(keys, observed=True, sort=False, dropna=False).transform("min")
    # a fastest without an interval (any row sharing the fastest value) can be told apart from nothing
    fastest_unknown = (v == fastest_v) & ~known
    any_unknown_fastest = fastest_unknown.groupby(keys, observed=True, sort=False, dropna=False).transform("any")
    best_hi = best_hi.where(~any_unknown_fastest, np.inf)
    return v.notna() & (lo <= best_hi)
