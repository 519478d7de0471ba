"""The adaptive size grid's policy: from the rows measured so far, the next input sizes to measure, each with
the reason it was chosen. Pure and deterministic: the same rows give the same sizes (no clock, no random
state, ties broken by size); nothing here reads or writes files.

A round starts from a coarse, evenly spaced grid (``coarse_sizes``); every later round looks at each pair of
neighbouring measured sizes of a group (a model on a GPU type, at one batch size) and asks for the size
halfway between them (snapped to a size the grid allows) where one of these holds, in this order:

1. ``crossover``: the answer at a size is its fastest algorithm and those tied with it within noise (their
   95% intervals overlap the fastest's: harness.results.uncertainty; each row's own interval widened by the
   noise between sizes, ``jitter_sd``, which the old system's curves show to be several times larger than
   a row's own). Where the fastest differs between the two sizes, at least one of them has a clear answer
   (one algorithm, tied with no other), and they are more than ``resolution`` pixels apart: bisection, so
   each change of the fastest is located within ``resolution`` in about log2(gap / resolution) rounds.
2. ``tie``: the fastest differs but both sizes are ties, and they are more than ``tie_resolution`` apart: a
   tie is an answer too ("either"), so it is located more coarsely than a clear answer, and two algorithms
   that are the same code (the old system's "implicit gemm" and "guess") do not pull the grid down to every
   size. Algorithms joining or leaving the tie of an unchanged fastest ask for nothing.
3. ``curve``: the curve of an algorithm among the top ones (tied with the fastest at that size) bends where the
   grid does not see it: at a measured size, the latency interpolated from its two neighbours (linearly in
   size, on the log scale: the predictor that fills the unmeasured sizes) misses the measured one by more
   than ``tolerance`` (relative) and by more than the noise (1.96 standard errors of the difference). The
   larger of the two gaps around it is halved, if wider than ``resolution``.

The policy stops (``Decision.stop``) when no pair asks for a size (``converged``: every crossover located
within resolution, every curve interpolated within tolerance), when the budget is spent (``budget``), or
after ``max_rounds`` rounds (``max_rounds``), whichever comes first. A round adds at most ``per_round`` sizes
per group and no more than the budget left pays for (at the cost per size measured so far).

Multiplicity: each round compares every pair of neighbouring sizes with uncorrected 95% overlap tests, many
per campaign. That is sound here because these decisions only choose where to measure next: a false "they
differ" costs a size, a false "tied" a coarser location. The error that would reach a user is a clear answer
(one algorithm, tied with no other) naming the wrong algorithm; tests/test_adaptive_grid.py simulates
campaigns of known truth with calibrated noise and measured none in 300 campaigns at 1% and at 3% intervals
(with ties ignored, 19 and 38 of 60 campaigns gave one), the band between the last clear answer on each side
holding the true crossover in all of them. The claims a report makes from the rows (which algorithm wins
where, by how much) come from the analysis, which controls its own error over its comparisons (Holm or
Benjamini-Hochberg: harness.results.multiplicity).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from harness.errors import ConfigError
from harness.results.uncertainty import Z95, interval, log_se, row_interval, tied_with_fastest

GRID_NAME = "adaptive"
REASON_KINDS = ("crossover", "tie", "curve")  # in priority order
STOP_REASONS = ("converged", "budget", "max_rounds")
GROUP_KEYS = ("model", "gpu", "batch_size")


@dataclass(frozen=True)
class AdaptiveGrid:
    """The parameters of ``stage.sizes=adaptive`` (the ``stage.adaptive`` node)."""

    start: int = 224
    stop: int = 512
    coarse: int = 9  # sizes of the first round, evenly spaced over [start, stop], both ends included
    resolution: int = 8  # a clear crossover is located within this many pixels
    tie_resolution: int = 16  # a change of the fastest within noise is located within this many pixels
    tolerance: float = 0.05  # accepted relative error of a latency interpolated between measured sizes
    budget_gpu_h: float | None = None  # stop when the rounds have spent this many GPU-hours (None: no budget)
    max_rounds: int = 8  # rounds in all, the coarse one included
    per_round: int = 16  # at most this many new sizes per group and round
    step: int = 1  # sizes are multiples of this many pixels (8: sizes a GPU kernel tiles evenly)

    def __post_init__(self) -> None:
        check_grid(self)

    def allowed(self) -> np.ndarray:
        """Every size the grid may ask for: the multiples of ``step`` in [start, stop], and both ends."""
        first = -(-self.start // self.step) * self.step
        inner = np.arange(first, self.stop + 1, self.step, dtype=int)
        return np.unique(np.concatenate([[self.start], inner, [self.stop]]))


def check_grid(g: AdaptiveGrid) -> None:
    """A ConfigError naming the bad value and what is valid; nothing where the grid is sound."""

    def bad(key: str, value: object, valid: str) -> ConfigError:
        return ConfigError(f"stage.adaptive.{key}={value!r} is not valid: {valid}")

    for key in ("start", "stop", "coarse", "resolution", "tie_resolution", "max_rounds", "per_round", "step"):
        v = getattr(g, key)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise bad(key, v, "a positive integer")
    if g.stop <= g.start:
        raise bad("stop", g.stop, f"an integer above stage.adaptive.start={g.start}")
    span = g.stop - g.start
    if g.coarse < 2:
        raise bad("coarse", g.coarse, "at least 2 sizes (both ends of the range)")
    if g.coarse > span + 1:
        raise bad("coarse", g.coarse, f"at most {span + 1} sizes in the range {g.start}..{g.stop}")
    for key in ("resolution", "tie_resolution", "step"):
        if getattr(g, key) > span:
            raise bad(key, getattr(g, key), f"an integer from 1 to the range's width, {span} ({g.start}..{g.stop})")
    if isinstance(g.tolerance, bool) or not isinstance(g.tolerance, (int, float)) or not 0 < g.tolerance < 1:
        raise bad("tolerance", g.tolerance, "a relative error between 0 and 1, e.g. 0.03")
    b = g.budget_gpu_h
    if b is not None and (isinstance(b, bool) or not isinstance(b, (int, float)) or not b > 0 or math.isinf(b)):
        raise ConfigError(f"stage.budget_gpu_h={b!r} is not valid: a number of GPU-hours above 0, or null (no budget)")


def grid_from_stage(stage: Mapping[str, object]) -> AdaptiveGrid:
    """The grid of a resolved ``stage`` node: ``stage.adaptive`` (any key left out keeps its default) and
    ``stage.budget_gpu_h``; a ConfigError naming an unknown key or a bad value, and what is valid."""
    node = stage.get("adaptive") or {}
    if not isinstance(node, Mapping):
        raise ConfigError(f"stage.adaptive={node!r} is not valid: a mapping of the grid's parameters")
    names = [f for f in AdaptiveGrid.__dataclass_fields__ if f != "budget_gpu_h"]
    unknown = sorted(set(node) - set(names))
    if unknown:
        raise ConfigError(f"unknown key stage.adaptive.{unknown[0]}; valid keys: {', '.join(names)}")
    return AdaptiveGrid(**dict(node), budget_gpu_h=stage.get("budget_gpu_h"))


def coarse_sizes(g: AdaptiveGrid, allowed: np.ndarray | None = None) -> tuple[int, ...]:
    """The first round: ``coarse`` sizes evenly spaced over [start, stop], each snapped to the nearest
    allowed size (``allowed``: the grid's own, or the sizes a replay holds; both ends kept)."""
    allowed = g.allowed() if allowed is None else np.asarray(allowed, dtype=int)
    targets = np.linspace(g.start, g.stop, g.coarse)
    idx = np.abs(allowed[None, :] - targets[:, None]).argmin(axis=1)
    return tuple(int(s) for s in np.unique(allowed[idx]))


@dataclass(frozen=True)
class Choice:
    """One size asked for, and why (``kind`` one of REASON_KINDS; ``why`` in words for the status)."""

    size: int
    kind: str
    why: str
    score: float  # larger first within a kind: the gap (crossover, tie) or the error / tolerance (curve)


@dataclass(frozen=True)
class Decision:
    """One group's next round: the sizes (at most per_round), or why it stops (``stop``, then no sizes)."""

    sizes: tuple[Choice, ...]
    stop: str | None = None
    left_out: int = 0  # sizes asked for beyond per_round or the budget (the next round asks again)


@dataclass(frozen=True)
class SizeAnswer:
    """The answer at one measured size: the fastest algorithm and the set tied with it within noise."""

    size: int
    fastest: str
    tied: frozenset[str] = field(default_factory=frozenset)


def _ok(rows: pd.DataFrame, value: str) -> pd.DataFrame:
    """The rows that carry a latency: status ok (where the column exists) and a positive value; one per
    (input_size, algo) (the narrowest interval where a size was measured twice, then the smaller value)."""
    r = rows
    if "status" in r.columns:
        r = r[r["status"].fillna("ok") == "ok"]
    r = r[r[value].astype(float) > 0].copy()
    r["_se"] = log_se(r, value).to_numpy() if len(r) else np.array([], dtype=float)
    r = r.sort_values(["input_size", "algo", "_se", value], na_position="last", kind="mergesort")
    return r.drop_duplicates(["input_size", "algo"], keep="first").reset_index(drop=True)


CHI2_1_MEDIAN = 0.45493642311957  # the median of a chi-square with 1 degree of freedom
MIN_JITTER_TERMS = 6  # fewer inner points say too little about the noise between sizes


def jitter_sd(rows: pd.DataFrame, value: str = "p50_ms") -> float:
    """The noise between sizes that no row's own interval holds (clocks, other load, the moment each size
    was measured), as a standard deviation of log latency, from ONE group's rows.

    Each inner size of each algorithm's curve misses the line through its two neighbours by ``r``; with
    independent noise of sd ``tau`` per size beyond each row's own standard error, r is normal with variance
    own + k tau**2 (own: the three rows' standard errors, weighted as in the line; k = 1 + (1-w)**2 + w**2).
    The median of r**2 / k over all inner sizes is CHI2_1_MEDIAN * (own / k + tau**2): robust to the few
    sizes where the curve really bends. Only the finest triples count where there are enough of them (a bend
    adds to a wide triple's miss, not to the noise). 0 with fewer than MIN_JITTER_TERMS inner sizes;
    floored at 0."""
    r = _ok(rows, value)
    terms = []  # (span of the triple, r**2 / k, own / k)
    for _, c in r.groupby("algo", sort=True):
        c = c.sort_values("input_size")
        s = c["input_size"].to_numpy(dtype=float)
        y = np.log(c[value].to_numpy(dtype=float))
        se = np.nan_to_num(c["_se"].to_numpy(dtype=float), nan=0.0)
        for i in range(1, len(s) - 1):
            w = (s[i] - s[i - 1]) / (s[i + 1] - s[i - 1])
            resid = y[i] - ((1 - w) * y[i - 1] + w * y[i + 1])
            k = 1 + (1 - w) ** 2 + w**2
            own = se[i] ** 2 + ((1 - w) * se[i - 1]) ** 2 + (w * se[i + 1]) ** 2
            terms.append((s[i + 1] - s[i - 1], resid**2 / k, own / k))
    if len(terms) < MIN_JITTER_TERMS:
        return 0.0
    t = np.array(terms)
    # the finest triples see the least of the curves' real bends: those within twice the finest span, if
    # there are enough of them (the coarse round has only its own span, and says the most it can)
    fine = t[t[:, 0] <= 2 * t[:, 0].min()]
    t = fine if len(fine) >= MIN_JITTER_TERMS else t
    return float(np.sqrt(max(0.0, float(np.median(t[:, 1])) / CHI2_1_MEDIAN - float(np.median(t[:, 2])))))


def answers(rows: pd.DataFrame, value: str = "p50_ms", jitter: float | None = None) -> dict[int, SizeAnswer]:
    """Per measured size of ONE group: the fastest algorithm and the algorithms tied with it, each row's
    interval widened by the noise between sizes (``jitter``: the sd of log latency; None: ``jitter_sd``
    of these rows; 0: each row's own interval only)."""
    r = _ok(rows, value)
    if r.empty:
        return {}
    tau = jitter_sd(rows, value) if jitter is None else jitter
    if tau > 0:
        lo, hi = interval(np.log(r[value].astype(float)), np.sqrt(r["_se"] ** 2 + tau**2))
        lo, hi = pd.Series(lo, index=r.index), pd.Series(hi, index=r.index)
    else:
        lo, hi = row_interval(r, value)
    tied = tied_with_fastest(r[value], lo, hi, r["input_size"])
    out: dict[int, SizeAnswer] = {}
    for size, g in r.groupby("input_size", sort=True):
        best = g.sort_values([value, "algo"], kind="mergesort").iloc[0]["algo"]
        out[int(size)] = SizeAnswer(int(size), str(best), frozenset(g.loc[tied[g.index], "algo"].astype(str)))
    return out


def _say(a: SizeAnswer) -> str:
    return a.fastest if len(a.tied) <= 1 else "a tie of " + "/".join(sorted(a.tied))


def _between(allowed: np.ndarray, a: int, b: int, measured: set[int]) -> int | None:
    """The allowed, unmeasured size strictly between a and b nearest to their midpoint (the smaller on a
    tie); None where there is none."""
    inside = allowed[(allowed > a) & (allowed < b)]
    inside = np.array([s for s in inside if int(s) not in measured], dtype=int)
    if inside.size == 0:
        return None
    mid = (a + b) / 2
    return int(inside[np.lexsort((inside, np.abs(inside - mid)))][0])


def candidates(
    rows: pd.DataFrame, g: AdaptiveGrid, value: str = "p50_ms", allowed: np.ndarray | None = None
) -> list[Choice]:
    """Every size the rows of ONE group ask for, most urgent first (REASON_KINDS order, then the larger
    score, then the smaller size); a size asked for twice keeps its most urgent reason."""
    measured = {int(s) for s in rows["input_size"].unique()} if len(rows) else set()
    tau = jitter_sd(rows, value)
    ans = answers(rows, value, tau)
    sizes = sorted(ans)
    allowed = g.allowed() if allowed is None else np.asarray(allowed, dtype=int)
    out: list[Choice] = []
    for a, b in zip(sizes, sizes[1:]):
        A, B = ans[a], ans[b]
        if A.fastest == B.fastest:
            continue  # the same fastest at both sizes (others joining or leaving its tie change no choice)
        clear = len(A.tied) <= 1 or len(B.tied) <= 1  # an edge of a clear answer lies between them
        limit = g.resolution if clear else g.tie_resolution
        if b - a <= limit:
            continue
        s = _between(allowed, a, b, measured)
        if s is None:
            continue
        why = f"the answer changes from {_say(A)} at {a} to {_say(B)} at {b}, {b - a} px apart"
        out.append(Choice(s, "crossover" if clear else "tie", why, float(b - a)))
    out.extend(_curve_candidates(rows, g, ans, allowed, measured, value, tau))
    rank = {k: i for i, k in enumerate(REASON_KINDS)}
    out.sort(key=lambda c: (rank[c.kind], -c.score, c.size))
    seen: set[int] = set()
    unique = []
    for c in out:
        if c.size not in seen:
            seen.add(c.size)
            unique.append(c)
    return unique


def _curve_candidates(
    rows: pd.DataFrame,
    g: AdaptiveGrid,
    ans: Mapping[int, SizeAnswer],
    allowed: np.ndarray,
    measured: set[int],
    value: str,
    tau: float,
) -> list[Choice]:
    r = _ok(rows, value)
    out: list[Choice] = []
    tol = math.log1p(g.tolerance)
    for algo, curve in r.groupby("algo", sort=True):
        c = curve.sort_values("input_size")
        s = c["input_size"].to_numpy(dtype=int)
        y = np.log(c[value].to_numpy(dtype=float))
        se = np.nan_to_num(c["_se"].to_numpy(dtype=float), nan=0.0)
        for i in range(1, len(s) - 1):
            a, m, b = s[i - 1], s[i], s[i + 1]
            if m not in ans or algo not in ans[m].tied:
                continue  # a curve away from the fastest changes no answer
            w = (m - a) / (b - a)
            pred = (1 - w) * y[i - 1] + w * y[i + 1]
            err = abs(y[i] - pred)
            own = se[i] ** 2 + ((1 - w) * se[i - 1]) ** 2 + (w * se[i + 1]) ** 2
            noise = Z95 * math.sqrt(own + (1 + (1 - w) ** 2 + w**2) * tau**2)
            if err <= tol or err <= noise:
                continue
            left, right = (a, m) if m - a >= b - m else (m, b)
            if right - left <= g.resolution:
                continue
            size = _between(allowed, int(left), int(right), measured)
            if size is None:
                continue
            why = (
                f"{algo}'s latency at {m} is {math.expm1(err):.1%} off the line through {a} and {b} "
                f"(tolerance {g.tolerance:.1%}, noise {math.expm1(noise):.1%})"
            )
            out.append(Choice(size, "curve", why, err / tol))
    return out


def decide(
    rows: pd.DataFrame,
    g: AdaptiveGrid,
    rounds_done: int,
    spent_gpu_h: float = 0.0,
    size_cost_gpu_h: float | None = None,
    value: str = "p50_ms",
    allowed: np.ndarray | None = None,
) -> Decision:
    """The next round of ONE group. ``rounds_done``: the rounds measured so far (0: nothing yet, the coarse
    grid comes back); ``spent_gpu_h``: what they cost; ``size_cost_gpu_h``: what one more size (every
    algorithm of the group) is expected to cost (``cost_per_size``), for the budget; ``allowed``: the sizes
    that may be asked for (None: the grid's own; a replay passes the sizes it holds)."""
    if rounds_done == 0:
        why = f"round 1: {g.coarse} sizes evenly spaced over {g.start}..{g.stop}"
        return Decision(tuple(Choice(s, "coarse", why, 0.0) for s in coarse_sizes(g, allowed)))
    if g.budget_gpu_h is not None and spent_gpu_h >= g.budget_gpu_h:
        return Decision((), "budget")
    if rounds_done >= g.max_rounds:
        return Decision((), "max_rounds")
    wanted = candidates(rows, g, value, allowed)
    if not wanted:
        return Decision((), "converged")
    room = g.per_round
    if g.budget_gpu_h is not None and size_cost_gpu_h and size_cost_gpu_h > 0:
        room = min(room, int((g.budget_gpu_h - spent_gpu_h) // size_cost_gpu_h))
        if room < 1:
            return Decision((), "budget", left_out=len(wanted))
    chosen = tuple(sorted(wanted[:room], key=lambda c: c.size))
    return Decision(chosen, None, left_out=max(0, len(wanted) - room))


def group_frames(rows: pd.DataFrame, keys: Sequence[str] = GROUP_KEYS) -> Iterable[tuple[tuple, pd.DataFrame]]:
    """The rows split by group (the keys the rows have), in sorted order: each group gets its own sizes."""
    present = [k for k in keys if k in rows.columns]
    if not present:
        yield (), rows
        return
    for key, frame in rows.groupby(present, sort=True, dropna=False):
        yield (key if isinstance(key, tuple) else (key,)), frame
