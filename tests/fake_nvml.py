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


class FakeNvmlDevice(FakeNvml):
    """FakeNvml with a whole device to describe (harness.measure.inventory): an H100 SXM by default. ``info``
    replaces fields; a field set to None is one NVML refuses (NVML_ERROR_NOT_SUPPORTED). Every ``nvml*`` name
    here is one the installed pynvml has (tests/test_inventory.py checks)."""

    NVML_CLOCK_MEM = 2
    NVML_FEATURE_DISABLED = 0
    NVML_FEATURE_ENABLED = 1
    NVML_COMPUTEMODE_DEFAULT = 0
    NVML_COMPUTEMODE_EXCLUSIVE_THREAD = 1
    NVML_COMPUTEMODE_PROHIBITED = 2
    NVML_COMPUTEMODE_EXCLUSIVE_PROCESS = 3

    H100_SXM = {
        "name": "NVIDIA H100 80GB HBM3",
        "board_part_number": "692-2G520-0200-000",
        "uuid": "GPU-00000000-1111-2222-3333-444444444444",
        "memory_bytes": 81559 * 1024**2,
        "power_limit_mw": 700_000,
        "power_limit_default_mw": 700_000,
        "ecc": 1,
        "persistence": 1,
        "mig": [0, 0],
        "compute_mode": 0,
        "app_clocks": {1: 1980, 2: 2619},  # by NVML_CLOCK_SM / NVML_CLOCK_MEM
        "default_app_clocks": {1: 1980, 2: 2619},
        "max_clocks": {1: 1980, 2: 2619},
        "compute_processes": [],  # (pid, used bytes or None)
        "graphics_processes": [],
    }

    def __init__(self, info: dict | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.info = self.H100_SXM | (info or {})
        self.shutdowns = 0

    def _get(self, key: str):
        value = self.info[key]
        if value is None:
            raise self.NVMLError("NVML_ERROR_NOT_SUPPORTED")
        return value

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1

    def nvmlDeviceGetName(self, handle: str) -> str:
        return self._get("name")

    def nvmlDeviceGetBoardPartNumber(self, handle: str) -> str:
        return self._get("board_part_number")

    def nvmlDeviceGetUUID(self, handle: str) -> str:
        return self._get("uuid")

    def nvmlDeviceGetMemoryInfo(self, handle: str) -> SimpleNamespace:
        total = self._get("memory_bytes")
        return SimpleNamespace(total=total, free=total, used=0)

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: str) -> int:
        return self._get("power_limit_mw")

    def nvmlDeviceGetPowerManagementDefaultLimit(self, handle: str) -> int:
        return self._get("power_limit_default_mw")

    def nvmlDeviceGetCurrentEccMode(self, handle: str) -> int:
        return self._get("ecc")

    def nvmlDeviceGetPersistenceMode(self, handle: str) -> int:
        return self._get("persistence")

    def nvmlDeviceGetMigMode(self, handle: str) -> list[int]:
        return self._get("mig")

    def nvmlDeviceGetComputeMode(self, handle: str) -> int:
        return self._get("compute_mode")

    def nvmlDeviceGetApplicationsClock(self, handle: str, clock: int) -> int:
        return self._get("app_clocks")[clock]

    def nvmlDeviceGetDefaultApplicationsClock(self, handle: str, clock: int) -> int:
        return self._get("default_app_clocks")[clock]

    def nvmlDeviceGetMaxClockInfo(self, handle: str, clock: int) -> int:
        return self._get("max_clocks")[clock]

    def nvmlDeviceGetComputeRunningProcesses(self, handle: str) -> list:
        return [SimpleNamespace(pid=p, usedGpuMemory=m) for p, m in self._get("compute_processes")]

    def nvmlDeviceGetGraphicsRunningProcesses(self, handle: str) -> list:
        return [SimpleNamespace(pid=p, usedGpuMemory=m) for p, m in self._get("graphics_processes")]
