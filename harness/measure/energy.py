"""Energy per inference from NVML: the energy counter over a window of back-to-back inferences.

``nvmlDeviceGetTotalEnergyConsumption`` (mJ since the driver loaded; Volta and newer) is read before and
after a window of inferences lasting at least ``window_s`` (the counter ticks every 10-100 ms, so a window
of seconds keeps its resolution well under 1%), and the difference is divided by the count. A background
thread samples power meanwhile, for the mean power, the clocks, temperature and throttle reasons, and the
trapezoid-rule integral, which is the energy where the counter is missing and a cross-check where it is
not. ``nvmlDeviceGetPowerUsage`` is a 1-second average on Ampere and newer: it is never attributed to one
inference or one layer, only integrated over the whole window. The instant power field is used where the
driver has it.

The NVML module is passed in (``pynvml`` by default), so tests can use a fake one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

log = logging.getLogger(__name__)

_FI_POWER_INSTANT = 186  # NVML_FI_DEV_POWER_INSTANT


def pci_bus_id(device: torch.device) -> str:
    """NVML's PCI bus id ("00000000:3B:00.0") of a CUDA device, as CUDA numbers it in this process."""
    p = torch.cuda.get_device_properties(device)
    return f"{p.pci_domain_id:08X}:{p.pci_bus_id:02X}:{p.pci_device_id:02X}.0"


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
        if self.has_instant_power:
            instant = self._instant_power()
            if instant is not None:
                return instant
        return self.nvml.nvmlDeviceGetPowerUsage(self.handle) / 1000.0

    def sample(self, t: float) -> PowerSample:
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
            temperature_c=optional(lambda: float(nvml.nvmlDeviceGetTemperature(h, nvml.NVML_TEMPERATURE_GPU))),
            reasons=optional(lambda: int(reasons_fn(h))) or 0,
        )


class PowerSampler:
    """Samples a GPU's power every ``interval_s`` in a background thread, inside a ``with`` block."""

    def __init__(self, gpu: NvmlGpu, interval_s: float = 0.02, clock: Callable[[], float] = time.perf_counter) -> None:
        self.gpu, self.interval_s, self.clock = gpu, interval_s, clock
        self.samples: list[PowerSample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="power-sampler", daemon=True)

    def _run(self) -> None:
        while True:
            self.samples.append(self.gpu.sample(self.clock()))
            if self._stop.wait(self.interval_s):
                break

    def __enter__(self) -> PowerSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(self.gpu.sample(self.clock()))  # close the window


def trapezoid_j(samples: list[PowerSample], t0: float, t1: float) -> float:
    """Energy in joules under the sampled power curve between t0 and t1 (trapezoid rule; the power at the
    window's ends is interpolated between the samples around them)."""
    if not samples or t1 <= t0:
        return 0.0
    ts = np.array([s.t for s in samples])
    ws = np.array([s.watts for s in samples])
    grid = np.concatenate(([t0], ts[(ts > t0) & (ts < t1)], [t1]))
    return float(np.trapezoid(np.interp(grid, ts, ws), grid))


@dataclass(frozen=True)
class EnergyReading:
    energy_per_inference_j: float | None
    energy_method: str  # "nvml_counter", "nvml_power_integral" or "none"
    energy_window_s: float
    energy_inferences: int
    energy_integral_per_inference_j: float | None  # the trapezoid integral: a cross-check of the counter
    power_mean_w: float | None
    sm_clock_mhz: float | None
    temperature_c: float | None
    throttle_reasons: str | None
    samples: list[PowerSample] = field(default_factory=list, repr=False)

    def columns(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "samples"}


def measure_energy(
    fn: Callable[[], object],
    gpu: NvmlGpu,
    window_s: float,
    sync: Callable[[], None],
    *,
    interval_s: float = 0.02,
    clock: Callable[[], float] = time.perf_counter,
) -> EnergyReading:
    """Run ``fn`` back to back for at least ``window_s`` seconds and attribute the energy per inference."""
    sync()
    with PowerSampler(gpu, interval_s, clock) as sampler:
        e0, t0 = gpu.energy_mj(), clock()
        count = 0
        while True:
            fn()
            count += 1
            if count % 8 == 0 or clock() - t0 >= window_s:
                sync()  # the window is closed on finished work, not on queued work
                if clock() - t0 >= window_s:
                    break
        t1, e1 = clock(), gpu.energy_mj()
    window = t1 - t0
    inside = [s for s in sampler.samples if t0 <= s.t <= t1] or sampler.samples
    integral = trapezoid_j(sampler.samples, t0, t1) / count
    if e0 is not None and e1 is not None and e1 >= e0:
        per_inference, method = (e1 - e0) / 1000.0 / count, "nvml_counter"
    else:
        per_inference, method = integral, "nvml_power_integral"
    clocks = [s.sm_clock_mhz for s in inside if s.sm_clock_mhz is not None]
    temps = [s.temperature_c for s in inside if s.temperature_c is not None]
    reasons = 0
    for s in inside:
        reasons |= s.reasons
    return EnergyReading(
        energy_per_inference_j=per_inference,
        energy_method=method,
        energy_window_s=window,
        energy_inferences=count,
        energy_integral_per_inference_j=integral,
        power_mean_w=float(np.mean([s.watts for s in inside])),
        sm_clock_mhz=float(np.median(clocks)) if clocks else None,
        temperature_c=float(max(temps)) if temps else None,
        throttle_reasons=describe_reasons(reasons),
        samples=sampler.samples,
    )


def idle_power_w(gpu: NvmlGpu, seconds: float = 1.0, interval_s: float = 0.05) -> float:
    """Mean power with no work, measured once per job before any."""
    with PowerSampler(gpu, interval_s) as sampler:
        time.sleep(seconds)
    return float(np.mean([s.watts for s in sampler.samples]))
