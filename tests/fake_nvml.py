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
