"""Summary statistics of timing samples (pure numpy; no torch, no I/O)."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

Z95 = 1.959963984540054


def median_ci95(sorted_ms: np.ndarray) -> tuple[float, float]:
    """Distribution-free 95% confidence interval of the median, from order statistics.

    1-based ranks floor(n/2 - 0.98 sqrt(n)) and ceil(n/2 + 1 + 0.98 sqrt(n)) (Le Boudec, Performance
    Evaluation of Computer and Communication Systems, 2.2.1; the normal approximation of binomial(n, 1/2)),
    clamped to the sample: with few samples the interval widens to the whole range.
    """
    n = len(sorted_ms)
    half = Z95 * math.sqrt(n) / 2
    lo = max(1, math.floor(n / 2 - half))
    hi = min(n, math.ceil(n / 2 + 1 + half))
    return float(sorted_ms[lo - 1]), float(sorted_ms[hi - 1])


def ci_relative_halfwidth(samples_ms: Sequence[float]) -> float:
    """Half the width of the median's 95% CI as a fraction of the median (inf for < 2 samples)."""
    if len(samples_ms) < 2:
        return math.inf
    s = np.sort(np.asarray(samples_ms, dtype=float))
    lo, hi = median_ci95(s)
    median = float(np.median(s))
    return (hi - lo) / 2 / median if median > 0 else math.inf


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
        "ci95_low_ms": lo,
        "ci95_high_ms": hi,
        "throughput_ips": batch_size / (mean / 1000.0) if mean > 0 else math.nan,
    }
