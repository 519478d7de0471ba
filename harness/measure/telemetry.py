"""What the GPU was doing through a whole point: power, SM clock, temperature and throttle reasons from NVML.

One background thread (``PowerSampler``) samples the device every ``interval_s`` from the first pass of a
point to its last; each sample carries the pass it was taken in (``Telemetry.phase``), so a row can say
which pass a slowdown hit. The summary of a point (``TelemetrySummary``) is taken over the passes that ran
work (timing, layers, steady state, energy), not over the idle and cooldown readings, where the clocks drop
by design. ``nvmlDeviceGetPowerUsage`` is a 1-second average on Ampere and newer: the samples are never
attributed to one inference or one layer, only integrated over a window (``trapezoid_j``).

The NVML module is passed in (``pynvml`` by default), so tests can use a fake one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

_FI_POWER_INSTANT = 186  # NVML_FI_DEV_POWER_INSTANT

# nvmlClocksEventReason* bits and their current names (nvml.h; NVML 12). Bit 0x2 is
# ApplicationsClocksSetting: its alias UserDefinedClocks is deprecated. Unknown bits print in hex.
CLOCKS_EVENT_REASONS = {
    0x1: "GpuIdle",
    0x2: "ApplicationsClocksSetting",
    0x4: "SwPowerCap",
    0x8: "HwSlowdown",
    0x10: "SyncBoost",
    0x20: "SwThermalSlowdown",
    0x40: "HwThermalSlowdown",
    0x80: "HwPowerBrakeSlowdown",
    0x100: "DisplayClockSetting",
}
# The reasons that slow a busy GPU down (power cap, thermal, hardware slowdown, power brake): ``throttled``.
# GpuIdle, ApplicationsClocksSetting (clocks an administrator pinned), SyncBoost and DisplayClockSetting are
# listed per pass but are not a slowdown of the work.
THROTTLE_BITS = 0x4 | 0x8 | 0x20 | 0x40 | 0x80
# The passes of a point that run work: the summary's clocks and temperature are theirs.
WORK_PHASES = ("memory", "timing", "layers", "steady", "energy")


def describe_reasons(bits: int) -> str:
    """Clocks-event (throttle) reason bits as names, comma-separated; "none" for no bit."""
    names = [name for bit, name in CLOCKS_EVENT_REASONS.items() if bits & bit]
    unknown = bits & ~sum(CLOCKS_EVENT_REASONS)
    if unknown:
        names.append(hex(unknown))
    return ",".join(sorted(names)) or "none"


@dataclass(frozen=True)
class PowerSample:
    t: float  # seconds (the sampler's clock)
    watts: float
    sm_clock_mhz: float | None
    temperature_c: float | None
    reasons: int  # throttle (clocks event) reason bits
    phase: str | None = None  # the pass of the point it was taken in (Telemetry.phase)


class NvmlGpu:
    """The NVML device that is a given CUDA device, with the readings the harness uses."""

    def __init__(self, nvml: Any, handle: Any) -> None:
        self.nvml, self.handle = nvml, handle
        self.has_counter = self.energy_mj() is not None
        self.has_instant_power = self._instant_power() is not None

    @classmethod
    def open(cls, bus_id: str, nvml: Any = None) -> NvmlGpu | None:
        """The device with PCI bus id ``bus_id``, or None (with one log line) where NVML cannot be used."""
        try:
            if nvml is None:
                import pynvml as nvml
            nvml.nvmlInit()
            return cls(nvml, nvml.nvmlDeviceGetHandleByPciBusId(bus_id))
        except Exception as e:  # no library, no driver, no such device: energy is not measured
            log.warning("energy not measured: NVML is not usable here (%s)", e)
            return None

    def name(self) -> str:
        n = self.nvml.nvmlDeviceGetName(self.handle)
        return n.decode() if isinstance(n, bytes) else str(n)

    def energy_mj(self) -> int | None:
        try:
            return int(self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle))
        except self.nvml.NVMLError:
            return None

    def _instant_power(self) -> float | None:
        try:
            (value,) = self.nvml.nvmlDeviceGetFieldValues(self.handle, [_FI_POWER_INSTANT])
            if value.nvmlReturn != 0:
                return None
            return value.value.uiVal / 1000.0
        except (self.nvml.NVMLError, AttributeError, ValueError):
            return None

    def power_w(self) -> float:
        """The instant power where the driver has it, else the power reading (a 1 s average on Ampere+)."""
        if self.has_instant_power:
            instant = self._instant_power()
            if instant is not None:
                return instant
        return self.average_power_w()

    def average_power_w(self) -> float:
        """``nvmlDeviceGetPowerUsage``: a 1-second average on Ampere and newer (smooth: the steady-state and
        cooldown rules read it)."""
        return self.nvml.nvmlDeviceGetPowerUsage(self.handle) / 1000.0

    def temperature_c(self) -> float | None:
        try:
            return float(self.nvml.nvmlDeviceGetTemperature(self.handle, self.nvml.NVML_TEMPERATURE_GPU))
        except self.nvml.NVMLError:
            return None

    def sample(self, t: float, phase: str | None = None) -> PowerSample:
        def optional(read: Callable[[], Any]) -> Any:
            try:
                return read()
            except self.nvml.NVMLError:
                return None

        nvml, h = self.nvml, self.handle
        reasons_fn = (
            getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None)
            or nvml.nvmlDeviceGetCurrentClocksThrottleReasons
        )
        return PowerSample(
            t=t,
            watts=self.power_w(),
            sm_clock_mhz=optional(lambda: float(nvml.nvmlDeviceGetClockInfo(h, nvml.NVML_CLOCK_SM))),
            temperature_c=self.temperature_c(),
            reasons=optional(lambda: int(reasons_fn(h))) or 0,
            phase=phase,
        )


class PowerSampler:
    """Samples a GPU every ``interval_s`` in a background thread, inside a ``with`` block; each sample is
    labelled with ``phase`` as it stands when the sample is taken."""

    def __init__(self, gpu: NvmlGpu, interval_s: float = 0.02, clock: Callable[[], float] = time.perf_counter) -> None:
        self.gpu, self.interval_s, self.clock = gpu, interval_s, clock
        self.samples: list[PowerSample] = []
        self.phase: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="power-sampler", daemon=True)

    def _run(self) -> None:
        while True:
            self.samples.append(self.gpu.sample(self.clock(), self.phase))
            if self._stop.wait(self.interval_s):
                break

    def __enter__(self) -> PowerSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(self.gpu.sample(self.clock(), self.phase))  # close the window

    @contextmanager
    def labelled(self, phase: str) -> Iterator[None]:
        """Label the samples taken inside the block with ``phase`` (one sample at each end, so that a pass
        shorter than the interval still has its readings)."""
        before = self.phase
        self.phase = phase
        self.samples.append(self.gpu.sample(self.clock(), phase))
        try:
            yield
        finally:
            self.samples.append(self.gpu.sample(self.clock(), phase))
            self.phase = before


def trapezoid_j(samples: list[PowerSample], t0: float, t1: float) -> float:
    """Energy in joules under the sampled power curve between t0 and t1 (trapezoid rule; the power at the
    window's ends is interpolated between the samples around them)."""
    if not samples or t1 <= t0:
        return 0.0
    ordered = sorted(samples, key=lambda s: s.t)
    ts = np.array([s.t for s in ordered])
    ws = np.array([s.watts for s in ordered])
    grid = np.concatenate(([t0], ts[(ts > t0) & (ts < t1)], [t1]))
    return float(np.trapezoid(np.interp(grid, ts, ws), grid))


@dataclass(frozen=True)
class TelemetrySummary:
    """The points row's summary of the samples taken through every pass of a point."""

    sm_clock_min_mhz: float | None  # over the work passes (WORK_PHASES)
    sm_clock_p50_mhz: float | None
    temperature_max_c: float | None
    throttled: bool  # a THROTTLE_BITS reason in any work pass
    reasons_by_pass: str  # "timing:SwPowerCap; energy:SwPowerCap" (GpuIdle left out), or "none"
    telemetry_samples: int

    def columns(self) -> dict[str, Any]:
        return dict(self.__dict__)


def summarize_samples(samples: list[PowerSample]) -> TelemetrySummary:
    """Min and median SM clock and the highest temperature over the work passes; each pass's reasons."""
    work = [s for s in samples if s.phase in WORK_PHASES]
    clocks = [s.sm_clock_mhz for s in work if s.sm_clock_mhz is not None]
    temps = [s.temperature_c for s in work if s.temperature_c is not None]
    by_pass: dict[str, int] = {}
    for s in samples:
        if s.phase is not None:
            by_pass[s.phase] = by_pass.get(s.phase, 0) | (s.reasons & ~0x1)  # GpuIdle is not a slowdown
    seen = [f"{phase}:{describe_reasons(bits)}" for phase, bits in by_pass.items() if bits]
    return TelemetrySummary(
        sm_clock_min_mhz=float(min(clocks)) if clocks else None,
        sm_clock_p50_mhz=float(np.median(clocks)) if clocks else None,
        temperature_max_c=float(max(temps)) if temps else None,
        throttled=any(by_pass.get(p, 0) & THROTTLE_BITS for p in WORK_PHASES),
        reasons_by_pass="; ".join(seen) or "none",
        telemetry_samples=len(samples),
    )


class Telemetry:
    """The sampler of one point, running across all of ``profile()``'s passes (``with Telemetry(gpu) as t:
    with t.phase("timing"): ...``); ``Telemetry(None)`` (no NVML) samples nothing and summarises to None."""

    def __init__(self, gpu: NvmlGpu | None, interval_s: float = 0.05, clock: Callable[[], float] = time.perf_counter):
        self.clock = clock
        self.sampler = PowerSampler(gpu, interval_s, clock) if gpu is not None else None

    def __enter__(self) -> Telemetry:
        if self.sampler is not None:
            self.sampler.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.sampler is not None:
            self.sampler.__exit__(*exc)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        if self.sampler is None:
            yield
            return
        with self.sampler.labelled(name):
            yield

    @property
    def samples(self) -> list[PowerSample]:
        return list(self.sampler.samples) if self.sampler is not None else []

    def summary(self) -> TelemetrySummary | None:
        return summarize_samples(self.samples) if self.sampler is not None else None
