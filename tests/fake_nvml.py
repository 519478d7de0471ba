"""A stand-in for the pynvml module: one GPU at a known PCI bus id drawing a known power."""

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
        reasons: int = 0,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.bus_id, self.watts, self.counter, self.instant, self.reasons = bus_id, watts, counter, instant, reasons
        self.clock = clock  # the energy counter grows by watts x this clock's seconds
        self.t0 = clock()
        self.initialized = False

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
        return int(1_000_000 + self.watts * (self.clock() - self.t0) * 1000)  # mJ

    def nvmlDeviceGetPowerUsage(self, handle: str) -> int:
        return int(self.watts * 1000)  # mW

    def nvmlDeviceGetFieldValues(self, handle: str, fields: list[int]) -> list:
        ok = 0 if self.instant else 3
        return [SimpleNamespace(nvmlReturn=ok, value=SimpleNamespace(uiVal=int(self.watts * 1000)))]

    def nvmlDeviceGetClockInfo(self, handle: str, clock: int) -> int:
        return 1755

    def nvmlDeviceGetTemperature(self, handle: str, sensor: int) -> int:
        return 61

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: str) -> int:
        return self.reasons
