"""CPU energy from RAPL through Linux's powercap interface (``/sys/class/powercap``).

Each RAPL zone is a folder with ``name``, ``energy_uj`` (a counter in microjoules that wraps around at
``max_energy_range_uj``) and ``max_energy_range_uj``. The package zones are ``intel-rapl:N`` (named
``package-N``; AMD Zen CPUs use the same ``intel-rapl`` names, through the same driver); their subzones
``intel-rapl:N:M`` include ``dram`` on most Intel servers (AMD has none), beside ``core`` and ``uncore``,
which are parts of the package and so are not added. ``psys`` (the platform) contains the package and is
not added either; ``intel-rapl-mmio:N`` is a second view of the same package counter and is skipped.

The energy of a window is the sum over the package zones and the DRAM zones of each counter's increase,
read before, during (at least once a second) and after the window, so that a counter wrapping around
(every few minutes at worst on a busy server) is counted once per wrap: an increase read as negative is
``max_energy_range_uj`` added. RAPL measures whole sockets: every process on them counts, so a CPU energy
figure is only that of the measured model on a node nothing else runs on.

Reading ``energy_uj`` is root-only on most distributions since the 2020 fix for CVE-2020-8694 (the
Platypus power side channel); ``probe`` says why the counters cannot be read, for the doctor.

Zeus (zeus-ml) reads RAPL too, but needs pydantic, tyro, httpx, amdsmi, pandas and scikit-learn, reads a
fixed path (no fake tree for tests) and tracks each counter's wraps in a separate process; this module is
the small part the harness needs.
"""

from __future__ import annotations

import errno
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

POWERCAP = Path("/sys/class/powercap")
READ_EVERY_S = 1.0  # during a window: far more often than any counter can wrap


@dataclass(frozen=True)
class RaplZone:
    """One counter: a package (``package-0``) or a DRAM zone."""

    path: Path
    name: str
    max_range_uj: int

    @property
    def kind(self) -> str:
        return "dram" if self.name == "dram" else "package"

    def energy_uj(self) -> int:
        return int((self.path / "energy_uj").read_text().strip())


def zones(root: Path) -> list[RaplZone]:
    """The package and DRAM zones under ``root`` (not read yet: ``energy_uj`` may be root-only)."""
    found = []
    for path in sorted(root.glob("intel-rapl:*")):
        try:
            name = (path / "name").read_text().strip()
            max_range = int((path / "max_energy_range_uj").read_text().strip())
        except (OSError, ValueError):
            continue
        if name.startswith("package") or name == "dram":
            found.append(RaplZone(path, name, max_range))
    return found


@dataclass(frozen=True)
class Probe:
    """Whether RAPL can be read under a powercap root, and if not, why and what to do."""

    zones: list[RaplZone]
    problem: str | None = None
    fix: str = ""

    @property
    def readable(self) -> bool:
        return self.problem is None

    def describe(self) -> str:
        names = ", ".join(f"{z.name} ({z.path.name})" for z in self.zones)
        return f"RAPL readable: {names}" if self.readable else f"{self.problem}"


def in_virtual_machine(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether the CPU says it runs under a hypervisor (the ``hypervisor`` flag of x86 guests)."""
    try:
        return any(line.startswith("flags") and " hypervisor" in line for line in cpuinfo.read_text().splitlines())
    except OSError:
        return False


_NO_DRIVER_FIX = "on bare metal: modprobe intel_rapl_msr (Intel; AMD Zen on Linux >= 5.8)"
_VM = (
    "this is a virtual machine (the CPU has the hypervisor flag): hypervisors do not pass RAPL through, "
    "so the CPU's energy cannot be measured here"
)


def probe(root: Path | None = None, cpuinfo: Path = Path("/proc/cpuinfo")) -> Probe:
    """Can CPU energy be measured here? The zones, or the reason they cannot be read and the fix."""
    root = root or POWERCAP
    vm = in_virtual_machine(cpuinfo)
    if not root.is_dir():
        why = _VM if vm else "no RAPL driver is loaded (or the kernel has no powercap support)"
        return Probe(
            [],
            f"no powercap interface ({root} does not exist): {why}",
            "run CPU energy measurements on bare metal" if vm else _NO_DRIVER_FIX,
        )
    found = zones(root)
    if not found:
        present = ", ".join(sorted(p.name for p in root.iterdir())) or "nothing"
        why = _VM if vm else "no RAPL driver is loaded"
        return Probe(
            [],
            f"{root} has no RAPL package zone (intel-rapl:N; it has: {present}): {why}",
            "run CPU energy measurements on bare metal" if vm else _NO_DRIVER_FIX,
        )
    unreadable = []
    for zone in found:
        try:
            zone.energy_uj()
        except PermissionError:
            unreadable.append(zone)
        except OSError as e:
            if e.errno not in (errno.EACCES, errno.EPERM):
                return Probe(
                    found,
                    f"{zone.path}/energy_uj cannot be read: {e.strerror or e}",
                    "check the RAPL driver (dmesg | grep -i rapl)",
                )
            unreadable.append(zone)
    if unreadable:
        files = " ".join(str(z.path / "energy_uj") for z in unreadable)
        return Probe(
            found,
            f"RAPL present ({', '.join(z.name for z in found)}) but energy_uj is readable by root "
            "only (the fix for CVE-2020-8694)",
            f"sudo chmod a+r {files} (until reboot; a udev or tmpfiles.d rule keeps it), or ask your admins",
        )
    return Probe(found)


@dataclass
class RaplCounter:
    """The energy of the package and DRAM zones since ``start``, with wrap-around: ``read`` adds each
    counter's increase since the last read (plus its range where it went down)."""

    zones: list[RaplZone]
    last: dict[Path, int] = field(default_factory=dict)
    total_uj: dict[str, int] = field(default_factory=dict)  # by kind: package, dram

    def start(self) -> None:
        self.last = {z.path: z.energy_uj() for z in self.zones}
        self.total_uj = {z.kind: 0 for z in self.zones}

    def read(self) -> int:
        """Microjoules since ``start``, all zones."""
        for z in self.zones:
            now = z.energy_uj()
            delta = now - self.last[z.path]
            if delta < 0:  # wrapped around (once: reads are far closer than a wrap period)
                delta += z.max_range_uj
            self.total_uj[z.kind] += delta
            self.last[z.path] = now
        return sum(self.total_uj.values())


class RaplMeter:
    """The CPU's energy meter: the package (+ DRAM) zones of a readable powercap tree."""

    def __init__(self, zones: list[RaplZone]) -> None:
        self.zones = zones
        self.method = "rapl_package_dram" if any(z.kind == "dram" for z in zones) else "rapl_package"

    @classmethod
    def open(cls, root: Path | None = None) -> RaplMeter | None:
        """The meter, or None (with one log line saying why) where RAPL cannot be read."""
        found = probe(root)
        if not found.readable:
            log.info(
                "CPU energy not measured: %s (fix: %s); energy columns are null, energy_method 'none'",
                found.problem,
                found.fix,
            )
            return None
        return cls(found.zones)

    def counter(self) -> RaplCounter:
        return RaplCounter(self.zones)


class RaplEnergy:
    """A RAPL meter as the energy procedure's ``EnergyMeter`` (harness.measure.energy): the counter since it was
    made, read at least every ``read_every_s`` (``poll``) so that each wrap counts once; power from the
    counter's increase between two readings of it; no temperature."""

    def __init__(
        self,
        meter: RaplMeter,
        clock: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], None] = time.sleep,
        read_every_s: float = READ_EVERY_S,
    ) -> None:
        self.meter, self.clock, self.sleep, self.read_every_s = meter, clock, sleep, read_every_s
        self.method = meter.method
        self.counter = meter.counter()
        self.counter.start()
        self._last_read = clock()
        self._last_power: tuple[float, int] | None = None

    def energy_j(self) -> float:
        self._last_read = self.clock()
        return self.counter.read() / 1e6

    def poll(self) -> None:
        if self.clock() - self._last_read >= self.read_every_s:
            self.energy_j()

    def power_w(self) -> float | None:
        """Mean power since the previous call (None at the first, or where no time has passed)."""
        now, uj = self.clock(), int(self.energy_j() * 1e6)
        last, self._last_power = self._last_power, (now, uj)
        if last is None or now <= last[0]:
            return None
        return (uj - last[1]) / 1e6 / (now - last[0])

    def temperature_c(self) -> float | None:
        return None

    def idle_power_w(self, seconds: float) -> float:
        e0, t0 = self.energy_j(), self.clock()
        while self.clock() - t0 < seconds:
            self.sleep(min(self.read_every_s, max(seconds - (self.clock() - t0), 0.0)))
            self.poll()
        return (self.energy_j() - e0) / (self.clock() - t0)


def idle_power_w(meter: RaplMeter, seconds: float = 1.0) -> float:
    """Mean power of the package (+ DRAM) zones with no work, once per job before any."""
    return RaplEnergy(meter).idle_power_w(seconds)
