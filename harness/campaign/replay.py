"""The adaptive policy replayed on a campaign whose full grid is known, and scored against it.

The full grid is the truth: the policy (harness.campaign.adaptive) asks for sizes round by round and gets
only the full grid's rows at those sizes. The score compares what the measured sizes answer with what the
full grid answers, and the same score is computed for uniform subsampling at the same number of sizes:

- ``share_right`` / ``share_tied`` / ``share_wrong``: over the full grid's sizes, the fastest algorithm
  predicted from the measured sizes (each algorithm's log latency interpolated linearly in size between
  measured sizes: the grid's predictor) is the full grid's fastest / is tied with it within noise (its 95%
  interval overlaps the fastest's) / neither;
- ``speedup`` over the baseline (cuDNN's own choice, ``guess``; ``torch`` on the CPU), the geometric mean
  over the full grid's sizes of baseline / fastest as the subset says it (both interpolated), and whether it
  lies inside the full grid's own 95% interval of it (``speedup_low``..``speedup_high``: each size's
  interval counting the noise between sizes); ``speedup_realised``: what the subset's map gives when run
  (the full grid's latency of the predicted fastest);
- crossovers: where the full grid's clear answer changes and stays changed (``clear_crossovers``), and how
  far the nearest change of the predicted map lies from each.

Pure: takes and returns frames; the benchmark (benchmarks/adaptive_grid.py) reads the data and prints.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.campaign.adaptive import AdaptiveGrid, SizeAnswer, _ok, answers, decide, jitter_sd
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


def interpolated(rows: pd.DataFrame, sizes: np.ndarray, value: str = "p50_ms") -> pd.DataFrame:
    """Each algorithm's log latency at ``sizes``, interpolated linearly in size between its measured sizes
    (held flat beyond its ends): the grid's predictor. One column per algorithm, sorted by name."""
    r = _ok(rows, value)
    out = {}
    for algo in sorted(r["algo"].astype(str).unique()):
        c = r[r["algo"] == algo].sort_values("input_size")
        out[algo] = np.interp(sizes, c["input_size"].to_numpy(float), np.log(c[value].to_numpy(float)))
    return pd.DataFrame(out, index=sizes)


def predicted_fastest(rows: pd.DataFrame, sizes: np.ndarray, value: str = "p50_ms") -> pd.Series:
    """Per size in ``sizes``: the fastest algorithm of the interpolated curves (the name sorted first on a
    tie)."""
    curves = interpolated(rows, sizes, value)
    return pd.Series(np.asarray(curves.columns, dtype=object)[np.argmin(curves.to_numpy(), axis=1)], index=sizes)


def clear_crossovers(ans: dict[int, SizeAnswer]) -> list[float]:
    """Where the clear answer changes and stays changed: over the sizes whose fastest algorithm is tied with
    no other, runs of one fastest algorithm; a run of one size (an outlier of the noise between sizes) is
    dropped and the runs around it joined; each boundary between two runs, at the midpoint of its sizes."""
    clear = [ans[s] for s in sorted(ans) if len(ans[s].tied) <= 1]
    runs: list[list[SizeAnswer]] = []
    for a in clear:
        if runs and runs[-1][-1].fastest == a.fastest:
            runs[-1].append(a)
        else:
            runs.append([a])
    kept: list[list[SizeAnswer]] = []
    for run in (r for r in runs if len(r) >= 2):
        if kept and kept[-1][-1].fastest == run[0].fastest:
            kept[-1].extend(run)
        else:
            kept.append(run)
    return [(a[-1].size + b[0].size) / 2 for a, b in zip(kept, kept[1:])]


@dataclass(frozen=True)
class Score:
    """How the answers of a subset of sizes compare with the full grid's (see the module docstring)."""

    sizes: int
    full_sizes: int
    share_right: float
    share_tied: float
    share_wrong: float
    speedup: float  # what the subset says: geomean of baseline / the fastest, both interpolated
    speedup_realised: float  # what its map gives: geomean of baseline / the predicted fastest, full grid's
    speedup_best: float  # the full grid's own: baseline / its fastest, with its 95% interval
    speedup_low: float
    speedup_high: float
    crossovers: int  # the full grid's changes of the clear answer
    changes: int  # the predicted map's changes of the fastest
    crossover_err_px: float  # mean distance from each crossover to the nearest change of the map (NaN: none)

    @property
    def share(self) -> float:
        return self.sizes / self.full_sizes

    @property
    def speedup_inside(self) -> bool:
        return bool(self.speedup_low <= self.speedup <= self.speedup_high)


def score(truth: pd.DataFrame, sizes: tuple[int, ...], baseline: str, value: str = "p50_ms") -> Score:
    """Score the subset ``sizes`` of ONE group's full grid ``truth`` (rows of every algorithm). The full
    grid's answers and intervals count the noise between sizes (harness.campaign.adaptive.jitter_sd of
    the full grid) as noise."""
    tau = jitter_sd(truth, value)
    ans = answers(truth, value, tau)
    full = np.array(sorted(ans), dtype=int)
    subset = truth[truth["input_size"].isin(sizes)]
    pred = predicted_fastest(subset, full, value)
    right = np.array([pred[s] == ans[s].fastest for s in full])
    tied = np.array([pred[s] != ans[s].fastest and pred[s] in ans[s].tied for s in full])
    r = _ok(truth, value).set_index(["input_size", "algo"])
    lat = np.log(r[value].astype(float))
    se = np.sqrt(r["_se"].astype(float).fillna(0.0) ** 2 + tau**2)
    has = [s for s in full if (s, baseline) in lat.index and (s, pred[s]) in lat.index]
    if has:
        base = np.array([lat[(s, baseline)] for s in has])
        best = np.array([lat[(s, ans[s].fastest)] for s in has])
        se_best = np.hypot([se[(s, baseline)] for s in has], [se[(s, ans[s].fastest)] for s in has])
        best_c, low, high = geomean_interval(base - best, se_best)
        realised = float(np.exp(np.mean(base - np.array([lat[(s, pred[s])] for s in has]))))
        curves = interpolated(subset, np.array(has), value)
        estimate = float(np.exp(np.mean(curves[baseline] - curves.min(axis=1)))) if baseline in curves else np.nan
    else:
        estimate = realised = best_c = low = high = float("nan")
    truth_x = clear_crossovers(ans)
    changes = [(a + b) / 2 for a, b in zip(full, full[1:]) if pred[a] != pred[b]]
    if truth_x and changes:
        err = float(np.mean([min(abs(x - c) for c in changes) for x in truth_x]))
    else:
        err = float("nan") if truth_x else 0.0
    return Score(
        len(sizes), len(full), right.mean(), tied.mean(), max(0.0, 1 - right.mean() - tied.mean()),
        estimate, realised, best_c, low, high, len(truth_x), len(changes), err,
    )  # fmt: skip
