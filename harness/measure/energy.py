"""Energy per inference that a referee accepts: idle subtracted, at thermal steady state, in repeated windows.

The procedure of one point (``measure_energy``), after its timing and layer passes:

1. **Steady state.** The forward runs, paced as the timing paces it, until the power and the temperature stop
   moving: the least-squares slopes over the last ``steady_span_s`` are below ``steady_power_slope`` (a
   fraction of the mean power, per second) and ``steady_temp_slope_c_s``; or ``steady_cap_s`` has passed
   (``steady_state_reached`` false). How long it took is recorded.
2. **Windows.** ``windows`` windows of at least ``window_s`` seconds each, of the SAME forward callable and the
   same synchronisation as harness.measure.timing: ``timer(fn, CHUNK)`` (CUDA events around each forward,
   one host synchronisation per chunk of CHUNK forwards; perf_counter on the CPU). The energy of each window
   is the counter's difference (NVML ``nvmlDeviceGetTotalEnergyConsumption``, mJ; RAPL on the CPU), or,
   where the GPU has no counter, the trapezoid integral of the sampled power (harness.measure.telemetry).
3. **Cooldown and idle.** The device idles until its (averaged) power is within ``cooldown_margin`` of the
   idle power measured before the point's work, or ``cooldown_cap_s`` has passed; then the idle power is
   measured again (``idle_power_after_w``), and becomes the idle-before of the job's next point.

Per window, the total energy per inference is E / n and the dynamic energy per inference is
(E - P_idle x T) / n, with P_idle the mean of the idle power before and after (the before alone where the
after is missing). A point reports, for each, the mean over its windows, their median, and a 95% interval of
the mean: Student's t with n - 1 degrees of freedom (``harness.stats.t_quantile95``, exact at n = 2 and 3),
which holds at n = 3 windows where a distribution-free interval of a median does not exist (it needs 6).

``linearity_check`` (dynamic energy of 2N inferences over N inferences: 2 within its interval) and
``counter_update_period`` (how often the energy counter really changes) are the checks the acceptance command
calls.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np
import torch

from harness.measure.telemetry import (  # re-exported: the names this module has always had
    CLOCKS_EVENT_REASONS,
    NvmlGpu,
    PowerSample,
    PowerSampler,
    Telemetry,
    describe_reasons,
    trapezoid_j,
)
from harness.measure.timing import CHUNK, ChunkTimer
from harness.stats import t_quantile95

__all__ = [
    "CLOCKS_EVENT_REASONS",
    "Cooldown",
    "CounterPeriod",
    "EnergyMeter",
    "EnergyReading",
    "EnergySettings",
    "Linearity",
    "NvmlGpu",
    "NvmlMeter",
    "PowerSample",
    "PowerSampler",
    "SteadyState",
    "Window",
    "cool_down",
    "counter_update_period",
    "describe_reasons",
    "idle_power_w",
    "linearity_check",
    "mean_interval95",
    "measure_energy",
    "pci_bus_id",
    "reach_steady_state",
    "run_window",
    "trapezoid_j",
]

log = logging.getLogger(__name__)


def pci_bus_id(device: torch.device) -> str:
    """NVML's PCI bus id ("00000000:3B:00.0") of a CUDA device, as CUDA numbers it in this process."""
    p = torch.cuda.get_device_properties(device)
    return f"{p.pci_domain_id:08X}:{p.pci_bus_id:02X}:{p.pci_device_id:02X}.0"


@dataclass(frozen=True)
class EnergySettings:
    """How a point's energy is measured (the stage's keys of the same names; conf/stage/*.yaml)."""

    window_s: float = 5.0  # each window at least this long
    windows: int = 3  # windows per point (the interval needs 2; 3 is the least a t interval is useful at)
    steady_power_slope: float = 0.005  # |d power / dt| / mean power, per second, below which power is steady
    steady_temp_slope_c_s: float = 0.05  # |d temperature / dt| in degrees C per second (3 C a minute)
    steady_span_s: float = 20.0  # the slopes are fitted over the last this many seconds: at least
    # 1 C / steady_temp_slope_c_s, since NVML reads whole degrees (a shorter span can miss every step of a rise)
    steady_cap_s: float = 60.0  # at most this long to reach steady state (0: no warm-up to steady state)
    cooldown_margin: float = 0.1  # cooled down: power at most (1 + this) x the idle power before the point
    cooldown_cap_s: float = 30.0  # at most this long to cool down (then measured anyway, flagged)
    idle_s: float = 1.0  # length of each idle power measurement
    poll_s: float = 0.25  # how often the steady-state and cooldown rules read power and temperature


class EnergyMeter(Protocol):
    """What the procedure reads from a device: an energy counter (None where there is none: the sampled power
    is integrated instead), power and temperature for the steady-state and cooldown rules, and idle power."""

    method: str

    def energy_j(self) -> float | None: ...  # a cumulative counter in joules (any origin), or None

    def poll(self) -> None: ...  # called between chunks: RAPL reads its counters to count wraps once

    def power_w(self) -> float | None: ...  # smoothed power now (None: not known yet)

    def temperature_c(self) -> float | None: ...

    def idle_power_w(self, seconds: float) -> float: ...


class NvmlMeter:
    """A GPU's NVML readings as an ``EnergyMeter``."""

    def __init__(
        self,
        gpu: NvmlGpu,
        clock: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.gpu, self.clock, self.sleep = gpu, clock, sleep
        self.method = "nvml_counter" if gpu.has_counter else "nvml_power_integral"

    def energy_j(self) -> float | None:
        mj = self.gpu.energy_mj()
        return mj / 1000.0 if mj is not None else None

    def poll(self) -> None:
        pass

    def power_w(self) -> float | None:
        return self.gpu.average_power_w()

    def temperature_c(self) -> float | None:
        return self.gpu.temperature_c()

    def idle_power_w(self, seconds: float) -> float:
        return idle_power_w(self.gpu, seconds, clock=self.clock, sleep=self.sleep)


def idle_power_w(
    gpu: NvmlGpu,
    seconds: float = 1.0,
    interval_s: float = 0.05,
    *,
    clock: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Mean power with no work over ``seconds`` (samples every ``interval_s``)."""
    watts = []
    t0 = clock()
    while True:
        watts.append(gpu.power_w())
        if clock() - t0 >= seconds:
            break
        sleep(interval_s)
    return float(np.mean(watts))


# -- steady state, cooldown --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SteadyState:
    seconds: float  # how long the forward ran before the windows
    reached: bool | None  # None: not attempted (steady_cap_s = 0)
    power_slope: float | None = None  # the last fitted slopes: relative power per second,
    temp_slope_c_s: float | None = None  # and degrees C per second


def _slope(t: np.ndarray, y: np.ndarray) -> float:
    tc = t - t.mean()
    return float(tc @ (y - y.mean()) / (tc @ tc))


def steady_slopes(readings: list[tuple[float, float | None, float | None]]) -> tuple[float | None, float | None]:
    """Least-squares slopes of (t, power, temperature) readings: power relative to its mean, per second;
    temperature in degrees C per second. None where fewer than 3 readings have the value (or no time spread)."""

    def fit(i: int, relative: bool) -> float | None:
        pts = [(r[0], r[i]) for r in readings if r[i] is not None]
        if len(pts) < 3:
            return None
        t, y = (np.array(v, dtype=float) for v in zip(*pts))
        if np.ptp(t) <= 0:
            return None
        s = _slope(t, y)
        if relative:
            mean = float(y.mean())
            return s / mean if mean > 0 else None
        return s

    return fit(1, True), fit(2, False)


def reach_steady_state(
    run_chunk: Callable[[], object],
    meter: EnergyMeter,
    settings: EnergySettings,
    clock: Callable[[], float] = time.perf_counter,
) -> SteadyState:
    """Run ``run_chunk`` until the power and temperature slopes over the last ``steady_span_s`` are under
    their thresholds (temperature only where the meter has it), or ``steady_cap_s`` has passed."""
    if settings.steady_cap_s <= 0:
        return SteadyState(0.0, None)
    readings: list[tuple[float, float | None, float | None]] = []
    t0 = clock()
    last = -math.inf
    power_slope = temp_slope = None
    while True:
        run_chunk()
        meter.poll()
        now = clock()
        if now - last >= settings.poll_s:
            readings.append((now, meter.power_w(), meter.temperature_c()))
            last = now
            if now - t0 >= settings.steady_span_s:
                recent = [r for r in readings if r[0] >= now - settings.steady_span_s]
                power_slope, temp_slope = steady_slopes(recent)
                has_temp = any(r[2] is not None for r in recent)
                if (
                    power_slope is not None
                    and abs(power_slope) <= settings.steady_power_slope
                    and (not has_temp or (temp_slope is not None and abs(temp_slope) <= settings.steady_temp_slope_c_s))
                ):
                    return SteadyState(now - t0, True, power_slope, temp_slope)
        if now - t0 >= settings.steady_cap_s:
            log.info(
                "no thermal steady state within %g s (power slope %s /s, temperature slope %s C/s): measured anyway",
                settings.steady_cap_s,
                power_slope,
                temp_slope,
            )
            return SteadyState(now - t0, False, power_slope, temp_slope)


@dataclass(frozen=True)
class Cooldown:
    seconds: float
    reached: bool  # power came within the margin of idle before the cap


def cool_down(
    meter: EnergyMeter,
    idle_w: float,
    settings: EnergySettings,
    clock: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], None] = time.sleep,
) -> Cooldown:
    """Wait, idle, until the power is at most (1 + cooldown_margin) x ``idle_w``, or cooldown_cap_s passes."""
    t0 = clock()
    while True:
        p = meter.power_w()
        if p is not None and p <= idle_w * (1 + settings.cooldown_margin):
            return Cooldown(clock() - t0, True)
        if clock() - t0 >= settings.cooldown_cap_s:
            log.info("power %s W still above idle %.1f W after %g s of cooldown", p, idle_w, settings.cooldown_cap_s)
            return Cooldown(clock() - t0, False)
        sleep(settings.poll_s)


# -- windows ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """One energy window: its span on the clock, its forwards, and its energy (counter and/or integral)."""

    t0: float
    t1: float
    inferences: int
    counter_j: float | None  # the counter's difference (None: no counter, or it went backwards)
    integral_j: float | None = None  # the sampled power integrated over the window (None: no samples)

    @property
    def seconds(self) -> float:
        return self.t1 - self.t0

    @property
    def joules(self) -> float | None:
        return self.counter_j if self.counter_j is not None else self.integral_j

    def per_inference_j(self) -> float | None:
        return self.joules / self.inferences if self.joules is not None else None

    def dynamic_j(self, idle_w: float) -> float | None:
        """The energy above what the idle device would have used over the same time."""
        return self.joules - idle_w * self.seconds if self.joules is not None else None


def run_window(
    fn: Callable[[], object],
    timer: ChunkTimer,
    meter: EnergyMeter,
    clock: Callable[[], float] = time.perf_counter,
    *,
    seconds: float | None = None,
    count: int | None = None,
    samples: Callable[[], list[PowerSample]] | None = None,
) -> Window:
    """One window of ``fn`` run as the timing runs it (``timer(fn, k)``: CHUNK forwards, then a synchronisation),
    for at least ``seconds`` or for exactly ``count`` forwards. The window opens after a synchronised chunk
    (nothing queued) and closes on finished work."""
    if (seconds is None) == (count is None):
        raise ValueError("run_window needs seconds or count, not both")
    meter.poll()
    e0, t0 = meter.energy_j(), clock()
    done = 0
    while True:
        k = CHUNK if count is None else min(CHUNK, count - done)
        timer(fn, k)
        done += k
        meter.poll()
        if (count is not None and done >= count) or (seconds is not None and clock() - t0 >= seconds):
            break
    t1, e1 = clock(), meter.energy_j()
    counter = e1 - e0 if e0 is not None and e1 is not None and e1 >= e0 else None
    integral = trapezoid_j(samples(), t0, t1) if samples is not None else None
    return Window(t0, t1, done, counter, integral)


def mean_interval95(values: list[float]) -> tuple[float, float, float | None, float | None]:
    """(mean, median, low, high) of per-window values: the 95% Student t interval of the mean,
    mean +- t(0.975, n-1) s / sqrt(n) (exact quantiles at n = 2 and 3); no interval below 2 values."""
    x = np.asarray(values, dtype=float)
    mean, median = float(x.mean()), float(np.median(x))
    if x.size < 2:
        return mean, median, None, None
    half = float(t_quantile95(x.size - 1)) * float(x.std(ddof=1)) / math.sqrt(x.size)
    return mean, median, mean - half, mean + half


# -- the reading of a point ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnergyReading:
    """A point's energy: columns of the points row (``columns``), and the windows behind them."""

    energy_per_inference_j: float | None  # total energy per inference: the mean over the windows
    energy_method: str  # "nvml_counter", "nvml_power_integral", "rapl_package_dram", "rapl_package"
    energy_window_s: float  # the shortest window (every window lasted at least this)
    energy_inferences: int  # forwards over all windows
    energy_integral_per_inference_j: float | None  # the trapezoid integral: a cross-check of the counter
    power_mean_w: float | None  # energy over all windows / their time
    sm_clock_mhz: float | None  # median SM clock in the windows
    temperature_c: float | None  # highest temperature in the windows
    throttle_reasons: str | None  # reasons seen in the windows
    energy_windows: int = 1
    energy_p50_j: float | None = None
    energy_ci95_low_j: float | None = None
    energy_ci95_high_j: float | None = None
    dynamic_energy_per_inference_j: float | None = None
    dynamic_energy_p50_j: float | None = None
    dynamic_energy_ci95_low_j: float | None = None
    dynamic_energy_ci95_high_j: float | None = None
    idle_power_w: float | None = None  # before the point's work
    idle_power_after_w: float | None = None  # after the point's cooldown
    cooldown_s: float | None = None
    cooldown_reached: bool | None = None
    steady_state_s: float | None = None
    steady_state_reached: bool | None = None
    windows: list[Window] = field(default_factory=list, repr=False)
    samples: list[PowerSample] = field(default_factory=list, repr=False)

    def columns(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("samples", "windows")}


def baseline_idle_w(before: float | None, after: float | None) -> float | None:
    """The idle power subtracted: the mean of before and after, the one that exists, or None."""
    known = [w for w in (before, after) if w is not None]
    return float(np.mean(known)) if known else None


def summarize_windows(
    windows: list[Window],
    method: str,
    idle_before_w: float | None,
    idle_after_w: float | None,
    samples: list[PowerSample] | None = None,
) -> EnergyReading:
    """The columns of a point from its windows and idle powers (pure: tests feed it windows)."""
    if not windows:
        raise ValueError("no energy windows to summarize")
    totals = [w.per_inference_j() for w in windows]
    known = [v for v in totals if v is not None]
    mean, p50, lo, hi = mean_interval95(known) if known else (None, None, None, None)
    idle = baseline_idle_w(idle_before_w, idle_after_w)
    dynamic = (None, None, None, None)
    if idle is not None and known:
        dyn = [w.dynamic_j(idle) / w.inferences for w in windows if w.joules is not None]
        dynamic = mean_interval95(dyn)
    inferences = sum(w.inferences for w in windows)
    seconds = sum(w.seconds for w in windows)
    joules = [w.joules for w in windows if w.joules is not None]
    integrals = [w.integral_j for w in windows]
    inside = [s for s in samples or [] if any(w.t0 <= s.t <= w.t1 for w in windows)]
    clocks = [s.sm_clock_mhz for s in inside if s.sm_clock_mhz is not None]
    temps = [s.temperature_c for s in inside if s.temperature_c is not None]
    reasons = 0
    for s in inside:
        reasons |= s.reasons
    if method == "nvml_counter" and any(w.counter_j is None for w in windows):
        method = "nvml_power_integral"  # the counter went backwards (a driver reload): the integral stands in
    return EnergyReading(
        energy_per_inference_j=mean,
        energy_method=method,
        energy_window_s=min(w.seconds for w in windows),
        energy_inferences=inferences,
        energy_integral_per_inference_j=(  # averaged as the counter's figure is, window by window
            float(np.mean([i / w.inferences for i, w in zip(integrals, windows)]))  # type: ignore[operator]
            if all(i is not None for i in integrals)
            else None
        ),
        power_mean_w=sum(joules) / seconds if joules and len(joules) == len(windows) and seconds > 0 else None,
        sm_clock_mhz=float(np.median(clocks)) if clocks else None,
        temperature_c=float(max(temps)) if temps else None,
        throttle_reasons=describe_reasons(reasons) if samples is not None else None,
        energy_windows=len(windows),
        energy_p50_j=p50,
        energy_ci95_low_j=lo,
        energy_ci95_high_j=hi,
        dynamic_energy_per_inference_j=dynamic[0],
        dynamic_energy_p50_j=dynamic[1],
        dynamic_energy_ci95_low_j=dynamic[2],
        dynamic_energy_ci95_high_j=dynamic[3],
        idle_power_w=idle_before_w,
        idle_power_after_w=idle_after_w,
        windows=list(windows),
        samples=list(samples or []),
    )


def measure_energy(
    fn: Callable[[], object],
    timer: ChunkTimer,
    meter: EnergyMeter,
    settings: EnergySettings,
    *,
    idle_w: float | None = None,
    telemetry: Telemetry | None = None,
    clock: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], None] = time.sleep,
) -> EnergyReading:
    """The whole procedure of one point (module docstring): steady state, ``settings.windows`` windows, cooldown,
    idle after. ``idle_w``: the idle power before the point's work (measured here, first, when None).
    ``telemetry``: the point's sampler (its clock must be ``clock``); on a GPU without one, one is started here."""
    own = telemetry is None and isinstance(meter, NvmlMeter)
    if own:
        telemetry = Telemetry(meter.gpu, clock=clock)  # type: ignore[attr-defined]
    phase = telemetry.phase if telemetry is not None else (lambda name: nullcontext())
    samples = (lambda: telemetry.samples) if telemetry is not None and telemetry.sampler is not None else None
    with telemetry if own else nullcontext():  # type: ignore[attr-defined]
        if idle_w is None:
            with phase("idle"):
                idle_w = meter.idle_power_w(settings.idle_s)
        with phase("steady"):
            steady = reach_steady_state(lambda: timer(fn, CHUNK), meter, settings, clock)
        with phase("energy"):
            windows = [run_window(fn, timer, meter, clock, seconds=settings.window_s) for _ in range(settings.windows)]
        with phase("cooldown"):
            cooldown = cool_down(meter, idle_w, settings, clock, sleep)
        with phase("idle"):
            idle_after = meter.idle_power_w(settings.idle_s)
        all_samples = samples() if samples is not None else None
    # the integral needs samples after each window's end: recomputed over all of them, now that they exist
    if all_samples is not None:
        windows = [replace(w, integral_j=trapezoid_j(all_samples, w.t0, w.t1)) for w in windows]
    reading = summarize_windows(windows, meter.method, idle_w, idle_after, all_samples)
    return replace(
        reading,
        cooldown_s=cooldown.seconds,
        cooldown_reached=cooldown.reached,
        steady_state_s=steady.seconds,
        steady_state_reached=steady.reached,
    )


# -- the acceptance command's checks --------------------------------------------------------------------------


@dataclass(frozen=True)
class Linearity:
    """Dynamic energy of 2N forwards over that of N: 2 where the idle subtraction and the counter are right."""

    n: int
    repeats: int
    ratio: float
    low: float | None
    high: float | None

    @property
    def passed(self) -> bool:
        return self.low is not None and self.high is not None and self.low <= 2.0 <= self.high

    def __str__(self) -> str:
        ci = f"95% CI [{self.low:.3f}, {self.high:.3f}]" if self.low is not None else "no interval"
        verdict = "2 inside: linear" if self.passed else "2 outside: NOT linear"
        return f"E(2N)/E(N) = {self.ratio:.3f}, {ci} ({verdict}; N = {self.n}, {self.repeats} windows each)"


def linearity_check(
    run_count: Callable[[int], Window],
    n: int,
    idle_w: float,
    repeats: int = 3,
) -> Linearity:
    """Windows of N and of 2N forwards, alternated (so that a drift hits both), ``repeats`` of each; the
    ratio of the mean dynamic energies, with a 95% interval from the delta method on the log ratio:
    se^2 = s1^2 / (k m1^2) + s2^2 / (k m2^2), t quantile with k - 1 degrees of freedom (the smaller sample's:
    conservative), the interval exp(log ratio +- t se)."""
    if n < 1 or repeats < 2:
        raise ValueError(f"linearity_check needs n >= 1 and repeats >= 2 (got n={n}, repeats={repeats})")
    single: list[float] = []
    double: list[float] = []
    for _ in range(repeats):
        for count, out in ((n, single), (2 * n, double)):
            w = run_count(count)
            d = w.dynamic_j(idle_w)
            if d is None:
                raise ValueError("linearity_check: a window has no energy (no counter and no power samples)")
            out.append(d)
    m1, m2 = float(np.mean(single)), float(np.mean(double))
    ratio = m2 / m1 if m1 > 0 else math.nan
    if m1 <= 0 or m2 <= 0:
        return Linearity(n, repeats, ratio, None, None)
    se = math.sqrt(np.var(single, ddof=1) / (repeats * m1**2) + np.var(double, ddof=1) / (repeats * m2**2))
    t = float(t_quantile95(repeats - 1))
    return Linearity(n, repeats, ratio, ratio * math.exp(-t * se), ratio * math.exp(t * se))


def energy_linearity(
    fn: Callable[[], object],
    timer: ChunkTimer,
    meter: EnergyMeter,
    n: int,
    idle_w: float,
    repeats: int = 3,
    clock: Callable[[], float] = time.perf_counter,
) -> Linearity:
    """``linearity_check`` of ``fn`` on a device: windows of exactly N and 2N forwards, paced as the timing."""
    return linearity_check(lambda count: run_window(fn, timer, meter, clock, count=count), n, idle_w, repeats)


@dataclass(frozen=True)
class CounterPeriod:
    """How often an energy counter really changes, as observed by polling it."""

    changes: int  # changes seen (the intervals are between consecutive ones: changes - 1 of them)
    median_s: float | None
    min_s: float | None
    max_s: float | None
    polls: int

    def __str__(self) -> str:
        if self.median_s is None:
            return f"the counter changed {self.changes} times in {self.polls} polls: no update period observed"
        return (
            f"counter update period {self.median_s * 1e3:.1f} ms (median; {self.min_s * 1e3:.1f}-"
            f"{self.max_s * 1e3:.1f} ms over {self.changes - 1} intervals, {self.polls} polls)"
        )


def counter_update_period(
    read: Callable[[], float | int | None],
    duration_s: float = 2.0,
    poll_s: float = 0.0005,
    clock: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], None] = time.sleep,
) -> CounterPeriod:
    """Poll ``read`` (e.g. ``NvmlGpu.energy_mj``) every ``poll_s`` for ``duration_s``; the times between
    consecutive changes of its value. The first change is only a start: the time before it is not a period."""
    changes: list[float] = []
    t0 = clock()
    last = read()
    polls = 1
    while clock() - t0 < duration_s:
        sleep(poll_s)
        value = read()
        polls += 1
        if value != last:
            changes.append(clock())
            last = value
    gaps = np.diff(changes)
    if gaps.size == 0:
        return CounterPeriod(len(changes), None, None, None, polls)
    return CounterPeriod(len(changes), float(np.median(gaps)), float(gaps.min()), float(gaps.max()), polls)
