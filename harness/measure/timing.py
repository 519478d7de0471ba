"""Timing of a callable: warmup, then timed iterations until the median is known well enough.

On a GPU each iteration is bracketed by CUDA events on the current stream and the host synchronizes once
per chunk of iterations, never inside one; on the CPU each iteration is timed with perf_counter_ns.
With ``l2=cold`` a flush of the last cache level (harness.measure.cache) runs before each iteration, outside
its interval: queued ahead of the start event on a GPU, done before perf_counter starts on the CPU.

Next to each iteration's device time, the host time of the call is kept (how long issuing it took). On a
GPU, where the GPU waits for the host the device time is the host's pace, not the GPU's: ``launch_bound``
states the rule that flags such points.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from harness.stats import MIN_SAMPLES, ci_relative_halfwidth, median_ci95

CHUNK = 5  # iterations between two looks at the stopping rule (and per synchronisation of an energy window)

ChunkTimer = Callable[..., list[float]]  # (fn, k[, before]) -> each of k iterations' time in ms


@dataclass(frozen=True)
class SamplingPolicy:
    """How long to warm up and when to stop timing (a stage's settings)."""

    warmup_iters: int = 3
    warmup_s: float = 0.0
    min_iters: int = 10
    max_iters: int = 50
    max_time_s: float = 5.0
    target_ci_rel: float = 0.05


# A point is launch-bound when issuing one forward costs the host at least this share of its device time.
LAUNCH_BOUND_SHARE = 0.8


@dataclass(frozen=True)
class Timing:
    """The timed iterations of one function, and what they say (like torch.utils.benchmark's Measurement)::

    >>> print(time_adaptively(fn, device, policy))
    median 12.345 ms, 95% CI [12.101, 12.598] ms (+-2.0%), 30 iterations after 3 warmup, target met
    """

    samples_ms: np.ndarray  # device time of each timed iteration (CUDA events; perf_counter on the CPU)
    target_met: bool  # the median's 95% CI reached the target before a bound stopped the loop
    warmup_iters: int
    host_ms: np.ndarray | None = None  # host wall time of each timed call of the function (issue time)
    warmup_wall_s: float | None = None  # wall time of the warmup (what the cost model fits: harness.campaign)
    timing_wall_s: float | None = None  # wall time of the timed loop, synchronizations included

    @property
    def n(self) -> int:
        return int(self.samples_ms.size)

    @property
    def median_ms(self) -> float:
        return float(np.median(self.samples_ms))

    @property
    def ci95_ms(self) -> tuple[float, float]:
        """Distribution-free 95% confidence interval of the median."""
        return median_ci95(np.sort(self.samples_ms))

    def __str__(self) -> str:
        lo, hi = self.ci95_ms
        half = (hi - lo) / 2 / self.median_ms if self.median_ms > 0 else float("inf")
        ci = (
            f"95% CI [{lo:.3f}, {hi:.3f}] ms (+-{half:.1%})"
            if hi == hi
            else f"no 95% CI below {MIN_SAMPLES} iterations"
        )
        stop = "target met" if self.target_met else "target not met (a bound stopped it)"
        text = f"median {self.median_ms:.3f} ms, {ci}, {self.n} iterations after {self.warmup_iters} warmup, {stop}"
        if self.host_ms is not None and self.host_ms.size:
            text += f"; host {float(np.median(self.host_ms)):.3f} ms per call"
        return text

    def __repr__(self) -> str:
        return f"<{type(self).__module__}.{type(self).__name__}: {self}>"


def launch_bound(host_ms: np.ndarray, device_ms: np.ndarray) -> bool:
    """Whether the host, not the GPU, may set the measured pace.

    The issue cost is the shortest host time of one call: the first call after each synchronize never
    waits for a full launch queue, so its host time is the pure cost of issuing the work (Python, hooks,
    ctypes, kernel launches). Where that cost is at least LAUNCH_BOUND_SHARE of the median device time,
    the GPU spends a large share of each iteration waiting for the next launch, and the device time
    measures the CPU. (A GPU-bound forward issues in a small fraction of its device time.)
    """
    if host_ms.size == 0 or device_ms.size == 0:
        raise ValueError("launch_bound needs host and device samples")
    return bool(float(np.min(host_ms)) >= LAUNCH_BOUND_SHARE * float(np.median(device_ms)))


def _time_chunk_cpu(fn: Callable[[], object], k: int, before: Callable[[], object] | None = None) -> list[float]:
    out = []
    for _ in range(k):
        if before is not None:
            before()  # outside the interval: perf_counter starts after it returns
        t0 = time.perf_counter_ns()
        fn()
        out.append((time.perf_counter_ns() - t0) / 1e6)
    return out


def _time_chunk_cuda(fn: Callable[[], object], k: int, before: Callable[[], object] | None = None) -> list[float]:
    events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(k)]
    for start, end in events:
        if before is not None:
            before()  # queued ahead of the start event: the events do not time it
        start.record()
        fn()
        end.record()
    events[-1][1].synchronize()
    return [start.elapsed_time(end) for start, end in events]


def chunk_timer(device: torch.device) -> ChunkTimer:
    """A function that runs ``fn`` k times and returns each iteration's time in ms; its optional third
    argument, ``before``, runs before each iteration outside its timed interval (the cold-cache flush)."""
    return _time_chunk_cuda if device.type == "cuda" else _time_chunk_cpu


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_adaptively(
    fn: Callable[[], object],
    device: torch.device,
    policy: SamplingPolicy,
    timer: ChunkTimer | None = None,
    before: Callable[[], object] | None = None,
) -> Timing:
    """Warm up, then time ``fn`` until the median's CI is within target or a bound is reached.

    ``timer`` (default: CUDA events or perf_counter_ns by device) runs ``fn`` k times and returns each
    time in ms; tests pass a synthetic one. ``before`` (the cold-cache flush, harness.measure.cache) runs
    before every timed iteration, outside its interval and outside its host time.
    """
    warm = 0
    t_start = t_warm = time.perf_counter()
    while warm < policy.warmup_iters or time.perf_counter() - t_start < policy.warmup_s:
        fn()
        warm += 1
    _sync(device)
    warmup_wall_s = time.perf_counter() - t_warm

    timer = timer or chunk_timer(device)
    host: list[float] = []

    def timed_call() -> None:
        t0 = time.perf_counter_ns()
        fn()
        host.append((time.perf_counter_ns() - t0) / 1e6)

    samples: list[float] = []
    t_start = time.perf_counter()
    target_met = False
    while True:
        k = policy.min_iters if not samples else CHUNK
        k = min(k, policy.max_iters - len(samples))
        samples += timer(timed_call, k) if before is None else timer(timed_call, k, before)
        if ci_relative_halfwidth(samples) <= policy.target_ci_rel:
            target_met = True
            break
        if len(samples) >= policy.max_iters or time.perf_counter() - t_start >= policy.max_time_s:
            break
    timing_wall_s = time.perf_counter() - t_start
    return Timing(np.asarray(samples), target_met, warm, np.asarray(host), warmup_wall_s, timing_wall_s)
