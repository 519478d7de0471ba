"""The device a job measured on, as NVML describes it: board, memory, power limit, modes, clocks, other processes.

Read once per job, before its first point (``read_inventory``); every row of the job carries it
(``GpuInventory.columns``). Each query is optional: a field NVML refuses (not supported on this board, no
permission, an older driver or pynvml without the call) is null, never a crash. The NVML module is passed in
(``pynvml`` by default), so tests use a fake one (tests/fake_nvml.py); every name called here exists in the
installed pynvml (tests/test_inventory.py checks the fake against it).

"Clocks locked" is what NVML can tell: application clocks (``nvidia-smi -ac``) set away from their defaults.
NVML has no getter for a locked range (``nvidia-smi -lgc``): such a lock shows in the clocks event reasons
(ApplicationsClocksSetting) and in the SM clock the energy pass samples, not here.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
MIB = 1024**2


@dataclass(frozen=True)
class GpuInventory:
    """One NVML device, as read at a job's start (None: NVML did not say)."""

    nvml_name: str | None = None
    board_part_number: str | None = None
    uuid: str | None = None
    memory_bytes: int | None = None
    sm_count: int | None = None  # CUDA's multiprocessor count (NVML has no SM count): filled by the caller
    power_limit_w: float | None = None  # enforced
    power_limit_default_w: float | None = None
    ecc: bool | None = None  # current mode
    persistence: bool | None = None
    mig: bool | None = None  # current mode
    compute_mode: str | None = None  # default, exclusive_process, prohibited, exclusive_thread
    app_sm_clock_mhz: int | None = None
    app_mem_clock_mhz: int | None = None
    default_app_sm_clock_mhz: int | None = None
    default_app_mem_clock_mhz: int | None = None
    max_sm_clock_mhz: int | None = None
    max_mem_clock_mhz: int | None = None
    other_processes: str | None = None  # "none", or "pid (MiB), ..." of the processes other than this one

    @property
    def clocks_locked(self) -> bool | None:
        """Application clocks set away from their defaults (SM or memory); None where NVML did not say."""
        pairs = [
            (self.app_sm_clock_mhz, self.default_app_sm_clock_mhz),
            (self.app_mem_clock_mhz, self.default_app_mem_clock_mhz),
        ]
        known = [(a, d) for a, d in pairs if a is not None and d is not None]
        return any(a != d for a, d in known) if known else None

    def columns(self) -> dict[str, Any]:
        """The rows' gpu_* columns."""
        return {
            "gpu_board_part_number": self.board_part_number,
            "gpu_uuid": self.uuid,
            "gpu_memory_bytes": self.memory_bytes,
            "gpu_sm_count": self.sm_count,
            "gpu_power_limit_w": self.power_limit_w,
            "gpu_power_limit_default_w": self.power_limit_default_w,
            "gpu_ecc": self.ecc,
            "gpu_persistence": self.persistence,
            "gpu_mig": self.mig,
            "gpu_compute_mode": self.compute_mode,
            "gpu_app_sm_clock_mhz": self.app_sm_clock_mhz,
            "gpu_app_mem_clock_mhz": self.app_mem_clock_mhz,
            "gpu_max_sm_clock_mhz": self.max_sm_clock_mhz,
            "gpu_max_mem_clock_mhz": self.max_mem_clock_mhz,
            "gpu_clocks_locked": self.clocks_locked,
            "gpu_other_processes": self.other_processes,
        }

    def lines(self) -> list[tuple[str, str]]:
        """(what, value) for people (the doctor): every field, "unknown" where NVML did not say."""

        def show(v: Any, unit: str = "") -> str:
            if v is None:
                return "unknown"
            if isinstance(v, bool):
                return "on" if v else "off"
            return f"{v:g}{unit}" if isinstance(v, float) else f"{v}{unit}"

        memory = None if self.memory_bytes is None else round(self.memory_bytes / MIB)
        clocks = (
            "unknown"
            if self.clocks_locked is None
            else ("set away from defaults" if self.clocks_locked else "defaults")
        )
        return [
            ("device", f"{show(self.nvml_name)}, board {show(self.board_part_number)}, {show(self.uuid)}"),
            ("memory, SMs", f"memory {show(memory, ' MiB')}, SMs {show(self.sm_count)}"),
            (
                "power limit",
                f"{show(self.power_limit_w, ' W')} enforced (default {show(self.power_limit_default_w, ' W')})",
            ),
            (
                "modes",
                f"ECC {show(self.ecc)}, persistence {show(self.persistence)}, MIG {show(self.mig)}, "
                f"compute {show(self.compute_mode)}",
            ),
            (
                "clocks",
                f"application SM {show(self.app_sm_clock_mhz, ' MHz')} / memory {show(self.app_mem_clock_mhz, ' MHz')} "
                f"({clocks}); max SM {show(self.max_sm_clock_mhz, ' MHz')} / memory "
                f"{show(self.max_mem_clock_mhz, ' MHz')}",
            ),
            ("other processes", show(self.other_processes)),
        ]


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _processes(nvml: Any, handle: Any, own_pid: int) -> str:
    """The compute and graphics processes on the device other than ``own_pid``: "pid (MiB)", or "none"."""
    seen: dict[int, int | None] = {}
    for list_fn in (nvml.nvmlDeviceGetComputeRunningProcesses, nvml.nvmlDeviceGetGraphicsRunningProcesses):
        for p in list_fn(handle):
            if p.pid != own_pid:
                used = getattr(p, "usedGpuMemory", None)
                seen[p.pid] = used if used is not None else seen.get(p.pid)
    if not seen:
        return "none"
    return ", ".join(f"{pid} ({'?' if used is None else round(used / MIB)} MiB)" for pid, used in sorted(seen.items()))


def read_inventory(nvml: Any, handle: Any, own_pid: int | None = None) -> GpuInventory:
    """The inventory of the NVML device ``handle``; each field NVML refuses is None (logged at debug level)."""
    own_pid = os.getpid() if own_pid is None else own_pid

    def ask(what: str, read: Callable[[], T]) -> T | None:
        try:
            return read()
        except (nvml.NVMLError, AttributeError, TypeError, ValueError) as e:  # refused, or absent from this pynvml
            log.debug("NVML did not give %s: %s", what, e)
            return None

    def watts(mw: int | None) -> float | None:
        return None if mw is None else mw / 1000.0

    def feature(v: Any) -> bool | None:
        return None if v is None else v == nvml.NVML_FEATURE_ENABLED

    h = nvml
    modes = {
        h.NVML_COMPUTEMODE_DEFAULT: "default",
        h.NVML_COMPUTEMODE_EXCLUSIVE_THREAD: "exclusive_thread",
        h.NVML_COMPUTEMODE_PROHIBITED: "prohibited",
        h.NVML_COMPUTEMODE_EXCLUSIVE_PROCESS: "exclusive_process",
    }
    mode = ask("compute mode", lambda: nvml.nvmlDeviceGetComputeMode(handle))
    sm, mem = nvml.NVML_CLOCK_SM, nvml.NVML_CLOCK_MEM
    return GpuInventory(
        nvml_name=ask("name", lambda: _text(nvml.nvmlDeviceGetName(handle))),
        board_part_number=ask("board part number", lambda: _text(nvml.nvmlDeviceGetBoardPartNumber(handle))),
        uuid=ask("uuid", lambda: _text(nvml.nvmlDeviceGetUUID(handle))),
        memory_bytes=ask("memory", lambda: int(nvml.nvmlDeviceGetMemoryInfo(handle).total)),
        power_limit_w=watts(ask("power limit", lambda: nvml.nvmlDeviceGetEnforcedPowerLimit(handle))),
        power_limit_default_w=watts(
            ask("default power limit", lambda: nvml.nvmlDeviceGetPowerManagementDefaultLimit(handle))
        ),
        ecc=feature(ask("ECC mode", lambda: nvml.nvmlDeviceGetCurrentEccMode(handle))),
        persistence=feature(ask("persistence mode", lambda: nvml.nvmlDeviceGetPersistenceMode(handle))),
        mig=feature(ask("MIG mode", lambda: nvml.nvmlDeviceGetMigMode(handle)[0])),
        compute_mode=None if mode is None else modes.get(mode, f"mode {mode}"),
        app_sm_clock_mhz=ask("application SM clock", lambda: int(nvml.nvmlDeviceGetApplicationsClock(handle, sm))),
        app_mem_clock_mhz=ask(
            "application memory clock", lambda: int(nvml.nvmlDeviceGetApplicationsClock(handle, mem))
        ),
        default_app_sm_clock_mhz=ask(
            "default application SM clock", lambda: int(nvml.nvmlDeviceGetDefaultApplicationsClock(handle, sm))
        ),
        default_app_mem_clock_mhz=ask(
            "default application memory clock", lambda: int(nvml.nvmlDeviceGetDefaultApplicationsClock(handle, mem))
        ),
        max_sm_clock_mhz=ask("max SM clock", lambda: int(nvml.nvmlDeviceGetMaxClockInfo(handle, sm))),
        max_mem_clock_mhz=ask("max memory clock", lambda: int(nvml.nvmlDeviceGetMaxClockInfo(handle, mem))),
        other_processes=ask("processes", lambda: _processes(nvml, handle, own_pid)),
    )
