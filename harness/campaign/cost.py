"""The per-phase cost model of a point and a job, fitted from what runs record.

A point's wall time is the sum of its phases (harness.measure: ``phase_*_s`` columns), each a fitted ratio
times what the stage asks of it at the point's latency ``t`` (one forward, seconds):

    plan     ratio x t                                  planning forward, verification, FLOP count
    warmup   ratio x max((warmup_iters + 1) x t, warmup_s)   memory pass, graph capture, timer warmup
    timing   ratio x min(n x t, max(max_time_s, min_iters x t)),  n = clip(c / target_ci_rel^2, min, max)
    layers   ratio x layer_iters x t                        the per-layer pass (hooks, a sync per layer)
    energy   ratio x energy_windows x energy_window_s       the energy window(s); ~0 where no meter runs
    + other  seconds: the point's wall time not in a phase (input, rows, the write)

``c`` is the noise constant of the timing: a recorded point that ran n iterations to a relative half-width h
of its median's 95% interval gives c = n h^2 (the half-width shrinks as 1 / sqrt(n)), so the iterations to
another stage's target are c / target^2. A job adds its start-up (``startup_s`` of its run record: model,
device, idle power) once; repeats are separate jobs, each with its own start-up.

Each ratio (and c, and the start-up) is fitted per GPU type as the median of the recorded points, with the
10th and 90th percentiles as its range (fewer than ``MIN_ROWS`` records: their median x/÷ 2; none: a stated
default). The latency
comes from, in order: the same point in the tree; the model's own latencies at other sizes (the size law:
log t against log size, least squares); the stage's ``cost_default_ms``. A range adds every low end and
every high end: a bound on the cost, not a confidence interval.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from harness.config.spec import RunSpec, StageSpec
from harness.results import layout
from harness.results.read import fill_point_axes, latest
from harness.results.store import DONE_STATUSES

PHASES = ("plan", "warmup", "timing", "layers", "energy")
SOURCES = ("measured", "tree", "size law", "default")
"""Where a point's cost comes from: already measured with this config (the run skips it: no cost), the same
point's latency in the tree, the size law, or the stage's default latency."""

MIN_ROWS = 3  # records a coefficient needs for its range to be their 10th..90th percentiles
FEW_SPREAD = 2.0  # with fewer: their median x/÷ this
QUANTILES = (0.1, 0.5, 0.9)
SIZE_LAW_SLOPE = 2.0  # a single measured size: the latency scales with the pixels
SIZE_LAW_MIN_SPREAD = 1.25  # the size law's latency range: at least x/÷ this
DEFAULT_SPREAD = 3.0  # the default latency's range: x/÷ this


@dataclass(frozen=True)
class Range:
    """A low, middle and high estimate of one quantity."""

    low: float
    mid: float
    high: float

    def __add__(self, other: Range) -> Range:
        return Range(self.low + other.low, self.mid + other.mid, self.high + other.high)

    def times(self, k: float) -> Range:
        return Range(self.low * k, self.mid * k, self.high * k)

    @classmethod
    def of(cls, values: Iterable[float]) -> Range:
        low, mid, high = np.quantile(np.asarray(list(values), dtype=float), QUANTILES)
        return cls(float(low), float(mid), float(high))

    @classmethod
    def spread(cls, mid: float, factor: float) -> Range:
        return cls(mid / factor, mid, mid * factor)


ZERO = Range(0.0, 0.0, 0.0)

# The stated defaults where nothing recorded covers a coefficient (docs/running.md, Dry run).
DEFAULT_RATIOS = {
    "plan": Range(1.5, 3.0, 8.0),  # a planning forward with probes and a verification forward or two
    "warmup": Range(1.0, 1.2, 2.0),
    "timing": Range(1.0, 1.2, 2.0),
    "layers": Range(1.0, 2.0, 4.0),  # hooks and a synchronization per layer
    "energy": Range(1.0, 1.1, 1.5),
}
DEFAULT_OTHER_S = Range(0.05, 0.5, 2.0)
DEFAULT_STARTUP_S = Range(20.0, 60.0, 180.0)  # CUDA and cuDNN start-up, the model, 1 s of idle power
DEFAULT_NOISE = Range(0.01, 0.05, 0.25)  # c = n h^2: 20 iterations reach +-5%, 500 reach +-1%


@dataclass(frozen=True)
class StageLoad:
    """What a stage asks of every point: the passes' lengths (a StageSpec, or a run record's stage mapping)."""

    warmup_iters: int
    warmup_s: float
    min_iters: int
    max_iters: int
    max_time_s: float
    target_ci_rel: float
    layer_iters: int
    energy_s: float  # energy windows x window length

    @classmethod
    def of(cls, stage: StageSpec | Mapping[str, Any]) -> StageLoad:
        get = stage.get if isinstance(stage, Mapping) else lambda k, d=None: getattr(stage, k, d)
        windows = get("energy_windows", 1) or 1  # more than one window per point where a stage asks for them
        return cls(
            int(get("warmup_iters", 0)),
            float(get("warmup_s", 0.0)),
            int(get("min_iters", 1)),
            int(get("max_iters", 1)),
            float(get("max_time_s", 0.0)),
            float(get("target_ci_rel", 0.05)),
            int(get("layer_iters", 0)),
            float(get("energy_window_s", 0.0) or 0.0) * int(windows),
        )

    def iterations(self, noise_c: float) -> float:
        """Timed iterations to this stage's CI target for a point of noise constant ``noise_c``."""
        return float(np.clip(noise_c / self.target_ci_rel**2, self.min_iters, self.max_iters))

    def nominal(self, phase: str, t: float, noise_c: float) -> float:
        """What the stage asks of ``phase`` at latency ``t`` seconds (before the fitted ratio)."""
        if phase == "plan":
            return t
        if phase == "warmup":
            return max((self.warmup_iters + 1) * t, self.warmup_s)
        if phase == "timing":
            return min(self.iterations(noise_c) * t, max(self.max_time_s, self.min_iters * t))
        if phase == "layers":
            return self.layer_iters * t
        if phase == "energy":
            return self.energy_s
        raise ValueError(f"unknown phase {phase!r}; valid: {', '.join(PHASES)}")


@dataclass(frozen=True)
class CostModel:
    """The fitted coefficients of one GPU type (``fitted``: how many records each came from; 0: its default)."""

    ratios: dict[str, Range] = field(default_factory=lambda: dict(DEFAULT_RATIOS))
    other_s: Range = DEFAULT_OTHER_S
    startup_s: Range = DEFAULT_STARTUP_S
    noise: Range = DEFAULT_NOISE
    fitted: dict[str, int] = field(default_factory=dict)

    @classmethod
    def fit(cls, rows: pd.DataFrame, stages: Mapping[str, Mapping[str, Any]], startup_s: list[float]) -> CostModel:
        """Fit from recorded points (``rows``: evidence COLUMNS of one GPU type), the stage settings of their runs
        (by run id), and the start-up seconds of its runs. Rows older than the phase columns are left out."""
        ok = rows[(rows["status"] == "ok") & rows["p50_ms"].notna() & rows["point_wall_s"].notna()]
        samples: dict[str, list[float]] = {p: [] for p in (*PHASES, "other", "noise")}
        for row in ok.itertuples(index=False):
            stage = stages.get(row.run_id)
            t = float(row.p50_ms) / 1e3
            if stage is None or t <= 0:
                continue
            load, n = StageLoad.of(stage), float(row.n)
            phases = {p: getattr(row, f"phase_{p}_s") for p in PHASES}
            if any(v is None or pd.isna(v) for v in phases.values()):
                continue
            half = (float(row.ci95_high_ms) - float(row.ci95_low_ms)) / 2 / float(row.p50_ms)
            if math.isfinite(half) and half > 0:
                samples["noise"].append(n * half**2)
            nominal = {p: load.nominal(p, t, 0.0) for p in PHASES} | {"timing": n * t}  # the iterations it ran
            for p in PHASES:
                if nominal[p] > 0:
                    samples[p].append(float(phases[p]) / nominal[p])
            samples["other"].append(max(0.0, float(row.point_wall_s) - sum(float(v) for v in phases.values())))
        samples["startup"] = list(startup_s)

        def pick(name: str, default: Range) -> Range:
            values = samples[name]
            if len(values) >= MIN_ROWS:
                return Range.of(values)
            return Range.spread(float(np.median(values)), FEW_SPREAD) if values else default

        fitted = {name: len(v) for name, v in samples.items()}
        return cls(
            {p: pick(p, DEFAULT_RATIOS[p]) for p in PHASES},
            pick("other", DEFAULT_OTHER_S),
            pick("startup", DEFAULT_STARTUP_S),
            pick("noise", DEFAULT_NOISE),
            fitted,
        )

    def point_s(self, load: StageLoad, t: Range) -> Range:
        """A point's wall seconds at latency ``t`` (seconds, a range) under the stage's ``load``."""
        ends = []
        for end in ("low", "mid", "high"):
            latency, noise = getattr(t, end), getattr(self.noise, end)
            phases = sum(getattr(self.ratios[p], end) * load.nominal(p, latency, noise) for p in PHASES)
            ends.append(phases + getattr(self.other_s, end))
        return Range(*ends)


# A point as the cost model knows it: the results' point key without the stage (a point's latency is the same
# whatever stage measured it), in POINT_KEY's order; owned by harness.results.layout, so a new axis of the key
# (layout, l2, direction: a training step costs about three forwards) separates latencies here too.
BOOK_KEY = tuple(k for k in layout.POINT_KEY if k != "stage")
SIZE = BOOK_KEY.index("input_size")
PointId = tuple[Any, ...]  # the values of BOOK_KEY


@dataclass(frozen=True)
class LatencyBook:
    """The latencies the tree holds (the latest ok row of each point, whatever its stage) and the points each
    config hash has already measured (which a run skips)."""

    latency_ms: dict[PointId, float]
    failed_wall_s: dict[PointId, float]  # the latest row not ok: what it cost (unsupported, oom, error)
    done: set[tuple[str, PointId, str, int]]  # (stage, point, config hash, repeat)
    by_curve: dict[tuple[Any, ...], list[tuple[int, float]]] = field(default_factory=dict)  # (size, ms) per curve

    @classmethod
    def of(cls, rows: pd.DataFrame) -> LatencyBook:
        latency: dict[PointId, float] = {}
        failed: dict[PointId, float] = {}
        rows = fill_point_axes(rows.copy())  # rows from before an axis of the key: measured at its earlier value
        if len(rows):
            for row in latest(rows, BOOK_KEY).itertuples(index=False):
                pid = _pid(row)
                if row.status == "ok" and pd.notna(row.p50_ms):
                    latency[pid] = float(row.p50_ms)
                elif pd.notna(row.point_wall_s):
                    failed[pid] = float(row.point_wall_s)
        done = {
            (str(r.stage), _pid(r), str(r.config_hash), int(r.repeat) if pd.notna(r.repeat) else 0)
            for r in rows.itertuples(index=False)
            if r.status in DONE_STATUSES
        }
        curves: dict[tuple[Any, ...], list[tuple[int, float]]] = {}
        for pid, ms in latency.items():
            curves.setdefault(_curve(pid), []).append((pid[SIZE], ms))
        return cls(latency, failed, done, curves)

    def latency(self, pid: PointId, default_ms: float) -> tuple[str, Range]:
        """(source, latency range in seconds) of a point (not the "measured" source: see ``is_done``)."""
        if pid in self.latency_ms:
            return "tree", Range.spread(self.latency_ms[pid] / 1e3, 1.0)
        law = self._size_law(pid)
        if law is not None:
            return "size law", law
        return "default", Range.spread(default_ms / 1e3, DEFAULT_SPREAD)

    def is_done(self, stage: str, pid: PointId, config_hash: str, repeat: int) -> bool:
        return (stage, pid, config_hash, repeat) in self.done

    def _size_law(self, pid: PointId) -> Range | None:
        """log t = a + b log size over the same point at other sizes (every axis of the key but the size)."""
        size = pid[SIZE]
        known = self.by_curve.get(_curve(pid), [])
        if not known:
            return None
        x = np.log([s for s, _ in known])
        y = np.log([t for _, t in known])
        if len(set(x)) >= 2:
            slope, intercept = np.polyfit(x, y, 1)
            spread = float(np.exp(np.max(np.abs(y - (intercept + slope * x)))))
        else:
            slope, intercept, spread = SIZE_LAW_SLOPE, float(y[0] - SIZE_LAW_SLOPE * x[0]), 1.0
        mid_ms = float(np.exp(intercept + slope * math.log(size)))
        return Range.spread(mid_ms / 1e3, max(spread, SIZE_LAW_MIN_SPREAD))


def _curve(pid: PointId) -> tuple[Any, ...]:
    """What a point shares with the other sizes of its curve: all of its key but the size."""
    return (*pid[:SIZE], *pid[SIZE + 1 :])


def point_id(values: Mapping[str, Any]) -> PointId:
    """The PointId of a row or a spec's point (``values``: BOOK_KEY's columns; sizes as int, the rest as str)."""
    return tuple(int(values[k]) if k in ("input_size", "batch_size") else str(values[k]) for k in BOOK_KEY)


def _pid(row: Any) -> PointId:
    return point_id(row._asdict())


@dataclass
class TaskCost:
    """One job's predicted wall seconds, its points and where each point's prediction came from."""

    seconds: Range = ZERO
    points: int = 0
    by_source: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SOURCES, 0))


def predict_task(spec: RunSpec, model: CostModel, book: LatencyBook) -> TaskCost:
    """The predicted cost of one job (one task of a sweep) measuring every point of ``spec``."""
    load = StageLoad.of(spec.stage)
    cost = TaskCost(seconds=model.startup_s)
    config_hash = spec.config_hash()
    for batch in spec.batch_sizes:
        for size in spec.stage.sizes:
            pid = point_id(
                {"model": spec.model.name, "algo": spec.algo, "gpu": spec.gpu.name, "input_size": size}
                | {"batch_size": batch, "dtype": spec.dtype, "layout": spec.layout, "l2": spec.l2}
                | {"direction": spec.direction}
            )
            cost.points += 1
            if not spec.remeasure and book.is_done(spec.stage.name, pid, config_hash, spec.repeat):
                cost.by_source["measured"] += 1
                continue
            if pid in book.failed_wall_s and pid not in book.latency_ms:
                cost.by_source["tree"] += 1
                cost.seconds += Range.spread(book.failed_wall_s[pid], 1.0)
                continue
            source, latency = book.latency(pid, spec.stage.cost_default_ms)
            cost.by_source[source] += 1
            cost.seconds += model.point_s(load, latency)
    return cost
