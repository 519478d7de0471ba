"""CPU energy from RAPL, against a fake powercap tree (a folder laid out as /sys/class/powercap)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pandas as pd
import pytest

from harness import doctor
from harness.measure import rapl
from harness.measure.energy import EnergySettings, measure_energy
from harness.measure.rapl import RaplEnergy, RaplMeter, probe, zones
from harness.results import read
from harness.run import runner
from tests.conftest import FAST
from tests.helpers import make_spec

BIG = 262_143_328_850  # a real package zone's max_energy_range_uj


def _zone(root: Path, folder: str, name: str, energy_uj: int, max_range_uj: int = BIG) -> Path:
    path = root / folder
    path.mkdir(parents=True)
    energy_uj %= max_range_uj  # a counter is always within its range
    (path / "name").write_text(name + "\n")
    (path / "max_energy_range_uj").write_text(f"{max_range_uj}\n")
    _set(path, energy_uj)
    return path


def _set(zone: Path, energy_uj: int) -> None:
    tmp = zone / "energy_uj.tmp"  # as the kernel does it: a reader never sees half a number
    tmp.write_text(f"{energy_uj}\n")
    os.replace(tmp, zone / "energy_uj")


def _get(zone: Path) -> int:
    return int((zone / "energy_uj").read_text())


def _server(root: Path, max_range_uj: int = BIG) -> dict[str, Path]:
    """Two sockets with DRAM zones, as on an Intel server, plus the zones that must not be added."""
    return {
        "pkg0": _zone(root, "intel-rapl:0", "package-0", 1_000, max_range_uj),
        "core0": _zone(root, "intel-rapl:0:0", "core", 500),
        "dram0": _zone(root, "intel-rapl:0:1", "dram", 2_000, max_range_uj),
        "pkg1": _zone(root, "intel-rapl:1", "package-1", 3_000, max_range_uj),
        "dram1": _zone(root, "intel-rapl:1:0", "dram", 4_000, max_range_uj),
        "psys": _zone(root, "intel-rapl:2", "psys", 9_000),  # the platform: contains the packages
        "mmio": _zone(root, "intel-rapl-mmio:0", "package-0", 1_000),  # a second view of package-0
    }


def test_the_package_and_dram_zones_are_the_ones_added(tmp_path: Path):
    _server(tmp_path)
    found = zones(tmp_path)
    assert [(z.path.name, z.name, z.kind) for z in found] == [
        ("intel-rapl:0", "package-0", "package"),
        ("intel-rapl:0:1", "dram", "dram"),
        ("intel-rapl:1", "package-1", "package"),
        ("intel-rapl:1:0", "dram", "dram"),
    ]
    assert RaplMeter(found).method == "rapl_package_dram"
    amd = tmp_path / "amd"
    _zone(amd, "intel-rapl:0", "package-0", 0)  # AMD Zen: the same names, no DRAM zone
    _zone(amd, "intel-rapl:0:0", "core", 0)
    assert RaplMeter(zones(amd)).method == "rapl_package"


def test_a_counter_that_wraps_around_is_counted_once_per_wrap(tmp_path: Path):
    z = _server(tmp_path, max_range_uj=10_000)
    _set(z["pkg0"], 9_900)
    counter = RaplMeter(zones(tmp_path)).counter()
    counter.start()
    _set(z["pkg0"], 50)  # wrapped: 100 to the top, then 50
    _set(z["dram0"], 2_300)
    assert counter.read() == 150 + 300
    _set(z["pkg0"], 9_000)  # no wrap
    _set(z["pkg1"], 2_000)  # wrapped: 7_000 to the top, then 2_000
    assert counter.read() == 450 + 8_950 + 9_000
    assert counter.total_uj == {"package": 150 + 8_950 + 9_000, "dram": 300}


def test_energy_per_inference_over_windows_with_many_wraps_and_idle_subtracted(tmp_path: Path):
    """Every inference (0.25 s) adds 300 uJ to each package and 70 to each DRAM zone of counters that wrap at
    2000; idle, each package gains 50 uJ per 0.25 s. Read between chunks (as the timing synchronises), each
    wrap counts once: the total and the dynamic energy per inference are exact, in each of the windows."""
    z = _server(tmp_path, max_range_uj=2_000)
    now = [0.0]

    def add(steps: tuple[tuple[str, int], ...]) -> None:
        for key, step in steps:
            _set(z[key], (_get(z[key]) + step) % 2_000)

    def inference() -> None:
        add((("pkg0", 300), ("pkg1", 300), ("dram0", 70), ("dram1", 70)))
        now[0] += 0.25

    def sleep(s: float) -> None:
        for _ in range(round(s / 0.25)):
            add((("pkg0", 50), ("pkg1", 50)))
            now[0] += 0.25

    meter = RaplEnergy(RaplMeter(zones(tmp_path)), clock=lambda: now[0], sleep=sleep, read_every_s=0.25)
    settings = EnergySettings(window_s=5.0, windows=3, steady_cap_s=0.0, cooldown_cap_s=1.0, idle_s=0.5, poll_s=0.25)
    reading = measure_energy(
        inference, lambda fn, k: [fn() for _ in range(k)], meter, settings, clock=lambda: now[0], sleep=sleep
    )
    assert reading.energy_windows == 3 and reading.energy_inferences == 60 and reading.energy_window_s == 5.0
    assert reading.energy_method == "rapl_package_dram"
    assert reading.idle_power_w == pytest.approx(100e-6 / 0.25) == reading.idle_power_after_w
    assert reading.energy_per_inference_j == pytest.approx(740e-6)
    assert reading.dynamic_energy_per_inference_j == pytest.approx(740e-6 - 400e-6 * 0.25)
    assert reading.energy_ci95_low_j == pytest.approx(740e-6) == reading.energy_ci95_high_j
    assert reading.power_mean_w == pytest.approx(740e-6 / 0.25)
    assert reading.cooldown_reached and reading.cooldown_s == 0.25  # the first power reading is a start
    assert reading.energy_integral_per_inference_j is None and reading.sm_clock_mhz is None
    assert reading.columns()["throttle_reasons"] is None


def test_why_rapl_cannot_be_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    guest, host = tmp_path / "cpuinfo-vm", tmp_path / "cpuinfo"
    guest.write_text("model name\t: Intel Xeon\nflags\t\t: fpu vme sse2 hypervisor avx2\n")
    host.write_text("model name\t: Intel Xeon\nflags\t\t: fpu vme sse2 avx2\n")
    missing = tmp_path / "no-powercap"
    assert "virtual machine" in probe(missing, guest).problem and "does not exist" in probe(missing, guest).problem
    no_driver = probe(missing, host)
    assert "no RAPL driver" in no_driver.problem and "modprobe intel_rapl_msr" in no_driver.fix
    other = tmp_path / "other"
    _zone(other, "dtpm:0", "soc", 0)  # powercap, but no RAPL zone
    assert "no RAPL package zone" in probe(other, host).problem and "dtpm:0" in probe(other, host).problem
    _server(tmp_path / "rapl")
    assert probe(tmp_path / "rapl", host).readable
    monkeypatch.setattr(rapl.RaplZone, "energy_uj", lambda self: (_ for _ in ()).throw(PermissionError(13, "denied")))
    denied = probe(tmp_path / "rapl", host)  # the tests may run as root, who reads anything: EACCES is faked
    assert not denied.readable and "root only" in denied.problem and "CVE-2020-8694" in denied.problem
    assert denied.fix.startswith("sudo chmod a+r ") and str(tmp_path / "rapl/intel-rapl:0:1/energy_uj") in denied.fix
    assert RaplMeter.open(tmp_path / "rapl") is None


def test_the_doctor_says_whether_cpu_energy_is_measured(tmp_path: Path):
    _server(tmp_path / "rapl")
    (ok,) = doctor.cpu_energy_checks(tmp_path / "rapl")
    assert ok.status == doctor.OK and "rapl_package_dram" in ok.found and "package-1" in ok.found
    (missing,) = doctor.cpu_energy_checks(tmp_path / "none")
    assert missing.status == doctor.WARNING and not missing.needed and "CPU runs record no energy" in missing.found


# the CPU path's energy procedure, kept short: three 0.1 s windows, a short warm-up and cooldown
SHORT_ENERGY = [
    "stage.energy_window_s=0.1",
    "stage.steady_span_s=0.2",
    "stage.steady_cap_s=0.3",
    "stage.cooldown_cap_s=0.1",
]


def test_a_cpu_run_records_rapl_energy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A real CPU run, its powercap tree a fake one whose counters a thread advances (and wraps)."""
    # At most 20 W a zone (100 mJ every 5 ms or more), a range of 30 J wraps at most every 1.5 s: longer than
    # the meter's READ_EVERY_S, as a real counter's (minutes to hours) is. A faster wrap aliases: 50 ticks
    # between two reads would read as no energy at all. Each zone starts just below its range: it wraps early.
    span = 30_000_000
    assert span / (100_000 / 0.005) > rapl.READ_EVERY_S
    z = _server(tmp_path / "powercap", max_range_uj=span)
    for key in ("pkg0", "pkg1", "dram0", "dram1"):
        _set(z[key], span - 500_000)
    monkeypatch.setattr(rapl, "POWERCAP", tmp_path / "powercap")
    stop = threading.Event()
    wrapped = threading.Event()

    def load() -> None:
        while not stop.wait(0.005):
            for key in ("pkg0", "pkg1", "dram0", "dram1"):
                now = _get(z[key]) + 100_000
                if now >= span:
                    wrapped.set()
                _set(z[key], now % span)

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    try:
        spec = make_spec(tmp_path / "results", *FAST, *SHORT_ENERGY)
        result = runner.run(spec)
    finally:
        stop.set()
        thread.join()
    assert [p["status"] for p in result.points] == ["ok"] and wrapped.is_set()
    (row,) = read(tmp_path / "results").to_dict("records")
    assert row["energy_method"] == "rapl_package_dram" and row["energy_per_inference_j"] > 0
    assert row["energy_window_s"] >= 0.1 and row["energy_inferences"] >= 3 * 5 and row["energy_windows"] == 3
    assert row["power_mean_w"] > 0 and row["idle_power_w"] > 0 and row["idle_power_after_w"] > 0
    assert row["dynamic_energy_per_inference_j"] is not None and row["energy_ci95_low_j"] <= row["energy_ci95_high_j"]
    assert row["steady_state_reached"] in (True, False) and row["cooldown_s"] >= 0.0
    assert pd.isna(row["sm_clock_min_mhz"]) and pd.isna(row["telemetry_samples"])  # no NVML on the CPU
