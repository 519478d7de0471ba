"""A stand-in for the pynvml module: one GPU at a known PCI bus id drawing a known power.

``watts`` and ``temperature`` are numbers or functions of the seconds since the fake was made (on its
``clock``); with a function for ``watts``, ``energy_j`` (the same seconds -> joules since then) gives the
counter. ``counter_period_s`` makes the counter move in steps, as NVML's does."""

from __future__ import annotations

import time
from collections.abc import Callable
from types import SimpleNamespace


class FakeNvml:
    NVML_CLOCK_SM = 1
    NVML_TEMPERATURE_GPU = 0
    nvmlClocksEventReasonGpuIdle = 0x1
    nvmlClocksEventReasonSwPowerCap = 0x4
    nvmlClocksEventReasonHwSlowdown = 0x8
    nvmlClocksEventReasonAll = 0xFF
    nvmlClocksEventReasonNone = 0x0

    class NVMLError(Exception):
        pass

    def __init__(
        self,
        bus_id: str = "00000000:3B:00.0",
        watts: float = 200.0,
        counter: bool = True,
        instant: bool = True,
        reasons: int | Callable[[float], int] = 0,
        clock: Callable[[], float] = time.perf_counter,
        temperature: float | Callable[[float], float] = 61.0,
        energy_j: Callable[[float], float] | None = None,
        counter_period_s: float | None = None,
    ) -> None:
        self.bus_id, self.counter, self.instant = bus_id, counter, instant
        self._watts, self._reasons, self._temperature, self._energy_j = watts, reasons, temperature, energy_j
        if callable(watts) and energy_j is None:
            raise ValueError("a power that varies needs energy_j, its integral")
        self.counter_period_s = counter_period_s
        self.clock = clock  # the energy counter grows by watts x this clock's seconds
        self.t0 = clock()
        self.initialized = False

    def _t(self) -> float:
        return self.clock() - self.t0

    @property
    def watts(self) -> float:
        return self._watts(self._t()) if callable(self._watts) else self._watts

    @property
    def reasons(self) -> int:
        return self._reasons(self._t()) if callable(self._reasons) else self._reasons

    def nvmlInit(self) -> None:
        self.initialized = True

    def nvmlDeviceGetHandleByPciBusId(self, bus_id: str) -> str:
        if bus_id != self.bus_id:
            raise self.NVMLError(f"NVML_ERROR_NOT_FOUND: no device at {bus_id}")
        return "handle"

    def nvmlDeviceGetName(self, handle: str) -> str:
        return "NVIDIA Fake 80GB"

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: str) -> int:
        if not self.counter:
            raise self.NVMLError("NVML_ERROR_NOT_SUPPORTED")
        t = self._t()
        if self.counter_period_s:
            t = self.counter_period_s * (t // self.counter_period_s)
        joules = self._energy_j(t) if self._energy_j is not None else self._watts * t
        return int(1_000_000 + joules * 1000)  # mJ

    def nvmlDeviceGetPowerUsage(self, handle: str) -> int:
        return int(self.watts * 1000)  # mW

    def nvmlDeviceGetFieldValues(self, handle: str, fields: list[int]) -> list:
        ok = 0 if self.instant else 3
        return [SimpleNamespace(nvmlReturn=ok, value=SimpleNamespace(uiVal=int(self.watts * 1000)))]

    def nvmlDeviceGetClockInfo(self, handle: str, clock: int) -> int:
        return 1755

    def nvmlDeviceGetTemperature(self, handle: str, sensor: int) -> int:
        t = self._temperature(self._t()) if callable(self._temperature) else self._temperature
        return int(t)  # whole degrees, as NVML reports them

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: str) -> int:
        return self.reasons
