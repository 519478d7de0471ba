"""The adaptive policy replayed on a campaign whose full grid is known, and scored against it.

The full grid is the truth: the policy (harness.campaign.adaptive) asks for sizes round by round and gets
only the full grid's rows at those sizes. The score compares what the measured sizes answer with what the
full grid answers, and the same score is computed for uniform subsampling at the same number of sizes:

- ``share_right`` / ``share_tied`` / ``share_wrong``: over the full grid's sizes, the fastest algorithm
  predicted from the measured sizes (each algorithm's log latency interpolated linearly in size between
  measured sizes: the grid's predictor) is the full grid's fastest / is tied with it within noise (its 95%
  interval overlaps the fastest's) / neither;
- ``speedup`` over the baseline (cuDNN's own choice, ``guess``; ``torch`` on the CPU): the geometric mean over
  the full grid's sizes of baseline / (the full grid's latency of the predicted fastest), and whether it lies
  inside the full grid's own 95% interval of its best speedup (``speedup_low``..``speedup_high``);
- crossovers: where the full grid's clear answer changes (over the sizes with one fastest algorithm, tied
  with no other, the neighbours whose fastest differ), and how far the nearest change of the predicted map
  lies from each.

Pure: takes and returns frames; the benchmark (benchmarks/adaptive_grid.py) reads the data and prints.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.campaign.adaptive import AdaptiveGrid, SizeAnswer, _ok, answers, decide
from harness.results.uncertainty import geomean_interval


@dataclass(frozen=True)
class Replayed:
    """The sizes the policy measured, round by round, and why it stopped."""

    sizes: tuple[int, ...]
    rounds: int
    stop: str
    reasons: dict[str, int]  # how many sizes each reason kind asked for


def replay(truth: pd.DataFrame, g: AdaptiveGrid, value: str = "p50_ms") -> Replayed:
    """Run the policy on ONE group's full-grid rows: each round measures (takes from ``truth``) every row
    at the sizes it asks for. No budget here: the share of points is what is scored."""
    full = np.unique(truth["input_size"].to_numpy(dtype=int))
    measured: list[int] = []
    reasons: dict[str, int] = {}
    rounds = 0
    while True:
        rows = truth[truth["input_size"].isin(measured)]
        d = decide(rows, g, rounds, value=value, allowed=full)
        if d.stop is not None:
            return Replayed(tuple(sorted(measured)), rounds, d.stop, reasons)
        new = [c for c in d.sizes if c.size not in measured]
        if not new:
            return Replayed(tuple(sorted(measured)), rounds, "converged", reasons)
        for c in new:
            reasons[c.kind] = reasons.get(c.kind, 0) + 1
            measured.append(c.size)
        rounds += 1


def uniform_sizes(full: np.ndarray, k: int) -> tuple[int, ...]:
    """``k`` of the full grid's sizes evenly spaced by index, both ends included."""
    full = np.unique(np.asarray(full, dtype=int))
    idx = np.unique(np.round(np.linspace(0, len(full) - 1, max(2, min(k, len(full))))).astype(int))
    return tuple(int(s) for s in full[idx])


def predicted_fastest(rows: pd.DataFrame, sizes: np.ndarray, value: str = "p50_ms") -> pd.Series:
    """Per size in ``sizes``: the fastest algorithm of ``rows`` with each algorithm's log latency
    interpolated linearly between its measured sizes (held flat beyond its ends); ties by name."""
    r = _ok(rows, value)
    algos = sorted(r["algo"].astype(str).unique())
    curves = []
    for algo in algos:
        c = r[r["algo"] == algo].sort_values("input_size")
        curves.append(np.interp(sizes, c["input_size"].to_numpy(float), np.log(c[value].to_numpy(float))))
    best = np.argmin(np.vstack(curves), axis=0)  # first minimum: the name sorted first on a tie
    return pd.Series(np.asarray(algos, dtype=object)[best], index=sizes)


def clear_crossovers(ans: dict[int, SizeAnswer]) -> list[float]:
    """Where the clear answer changes: over the sizes whose fastest algorithm is tied with no other, the
    midpoints of neighbours (sizes tied in between skipped) whose fastest algorithms differ."""
    clear = [ans[s] for s in sorted(ans) if len(ans[s].tied) <= 1]
    return [(a.size + b.size) / 2 for a, b in zip(clear, clear[1:]) if a.fastest != b.fastest]


@dataclass(frozen=True)
class Score:
    """How the answers of a subset of sizes compare with the full grid's (see the module docstring)."""

    sizes: int
    full_sizes: int
    share_right: float
    share_tied: float
    share_wrong: float
    speedup: float  # geomean of baseline / the predicted fastest, both from the full grid
    speedup_best: float  # the full grid's own: baseline / its fastest
    speedup_low: float
    speedup_high: float
    crossovers: int  # the full grid's clear crossovers
    crossover_err_px: float  # mean distance from each to the nearest change of the predicted map (NaN: none)

    @property
    def share(self) -> float:
        return self.sizes / self.full_sizes

    @property
    def speedup_inside(self) -> bool:
        return bool(self.speedup_low <= self.speedup <= self.speedup_high)


def score(truth: pd.DataFrame, sizes: tuple[int, ...], baseline: str, value: str = "p50_ms") -> Score:
    """Score the subset ``sizes`` of ONE group's full grid ``truth`` (rows of every algorithm)."""
    ans = answers(truth, value)
    full = np.array(sorted(ans), dtype=int)
    pred = predicted_fastest(truth[truth["input_size"].isin(sizes)], full, value)
    right = np.array([pred[s] == ans[s].fastest for s in full])
    tied = np.array([pred[s] != ans[s].fastest and pred[s] in ans[s].tied for s in full])
    r = _ok(truth, value).set_index(["input_size", "algo"])
    lat = r[value].astype(float)
    se = r["_se"].astype(float)
    has_base = [s for s in full if (s, baseline) in lat.index and (s, pred[s]) in lat.index]
    if has_base:
        base = np.log(np.array([lat[(s, baseline)] for s in has_base]))
        chosen = np.log(np.array([lat[(s, pred[s])] for s in has_base]))
        best = np.log(np.array([lat[(s, ans[s].fastest)] for s in has_base]))
        se_best = np.hypot(
            np.array([se[(s, baseline)] for s in has_base]), np.array([se[(s, ans[s].fastest)] for s in has_base])
        )
        speedup = float(np.exp(np.mean(base - chosen)))
        best_c, low, high = geomean_interval(base - best, np.nan_to_num(se_best, nan=0.0))
    else:
        speedup = best_c = low = high = float("nan")
    truth_x = clear_crossovers(ans)
    changes = [(a + b) / 2 for a, b in zip(full, full[1:]) if pred[a] != pred[b]]
    if truth_x and changes:
        err = float(np.mean([min(abs(x - c) for c in changes) for x in truth_x]))
    else:
        err = float("nan") if truth_x else 0.0
    n = len(full)
    return Score(
        len(sizes), n, right.mean(), tied.mean(), 1 - right.mean() - tied.mean(),
        speedup, best_c, low, high, len(truth_x), err,
    )  # fmt: skip
