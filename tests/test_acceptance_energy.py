"""The energy suite: the probe's sequence on a simulated device of known truth (energy = idle power x time +
a fixed energy per forward), and the checks of the procedure, telemetry, linearity and the counter's period."""

from __future__ import annotations

import pytest

from harness.acceptance import FAIL, INFO, PASS
from harness.acceptance.energy_checks import (
    check_counter_period,
    check_energy_procedure,
    check_linearity,
    check_telemetry,
)
from harness.acceptance.energy_probe import EnergyProbe, forwards_for, probe_energy
from tests.acceptance_rows import energy_point

IDLE_W, FORWARD_J, FORWARD_S, COUNTER_PERIOD_S = 70.0, 0.05, 0.002, 0.1


class SimulatedGpu:
    """A device on a simulated clock: forwards take FORWARD_S each and cost FORWARD_J above idle; the energy
    counter (mJ) updates every COUNTER_PERIOD_S, as NVML's does, in steps."""

    def __init__(self, reported_idle_w: float = IDLE_W) -> None:
        self.now, self.forwards = 0.0, 0
        self.method = "nvml_counter"
        self.reported_idle_w = reported_idle_w  # what idle_power_w says (a wrong one breaks linearity)

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def forward(self) -> None:
        self.forwards += 1

    def timer(self, fn, k: int) -> list[float]:
        for _ in range(k):
            fn()
            self.now += FORWARD_S
        return [FORWARD_S * 1e3] * k

    def energy_mj(self) -> int:
        ticks = int(self.now / COUNTER_PERIOD_S) * COUNTER_PERIOD_S  # the counter lags, in steps
        return int(1000 * (IDLE_W * ticks + FORWARD_J * self.forwards))

    # EnergyMeter
    def energy_j(self) -> float:
        return self.energy_mj() / 1000.0

    def poll(self) -> None:
        pass

    def power_w(self) -> float:
        return IDLE_W

    def temperature_c(self) -> float:
        return 40.0

    def idle_power_w(self, seconds: float) -> float:
        self.now += seconds
        return self.reported_idle_w


def probe(gpu: SimulatedGpu) -> EnergyProbe:
    return probe_energy(
        gpu.forward, gpu.timer, gpu, gpu.energy_mj, "simulated", window_s=1.0, clock=gpu.clock, sleep=gpu.sleep
    )


def test_the_probe_finds_the_counter_period_and_linear_dynamic_energy():
    result = probe(SimulatedGpu())
    assert result.period is not None and result.period.median_s == pytest.approx(COUNTER_PERIOD_S, abs=0.002)
    lin = result.linearity
    assert lin is not None and lin.n == forwards_for(1.0, FORWARD_S * 1e3) == 500
    assert lin.ratio == pytest.approx(2.0, rel=0.02) and lin.passed
    check = check_linearity(result)
    assert check.verdict == PASS and "2 inside" in check.figure and check.details[0]["N"] == 500
    assert check_counter_period(result).verdict == INFO and "100.0 ms" in check_counter_period(result).figure


def test_windows_short_against_the_counters_period_break_linearity_and_the_check_says_so():
    """Windows of 0.05 and 0.1 s against a counter that updates every 0.1 s: each reading is off by up to a
    whole update, so 2N over N is not 2 (the reason energy windows last seconds)."""
    gpu = SimulatedGpu()
    result = probe_energy(
        gpu.forward, gpu.timer, gpu, gpu.energy_mj, "simulated", window_s=0.05, clock=gpu.clock, sleep=gpu.sleep
    )
    assert result.linearity is not None and abs(result.linearity.ratio - 2) > 1
    check = check_linearity(result)
    assert check.verdict == FAIL and "too wide to tell" in check.figure


def test_a_probe_that_could_not_run_fails_linearity_and_says_why():
    failed = EnergyProbe("resnet50", error="NVML is not usable here")
    assert check_linearity(failed).verdict == FAIL and check_linearity(failed).figure == "NVML is not usable here"
    assert check_linearity(None).verdict == FAIL and check_counter_period(None).verdict == INFO


def test_the_procedure_passes_complete_points_and_names_what_is_missing():
    good = energy_point()
    check = check_energy_procedure([good])
    assert check.verdict == PASS and "1 of 1 points complete" in check.figure and "60.00%" in check.figure
    short = energy_point() | {"energy_windows": 1, "steady_state_reached": False, "idle_power_after_w": None}
    check = check_energy_procedure([good, short])
    assert check.verdict == FAIL and "1 of 2 points complete" in check.figure
    problems = check.details[1]["problems"]
    assert "1 window(s)" in problems and "steady state not reached" in problems and "idle power" in problems
    assert check_energy_procedure([energy_point() | {"status": "error"}]).verdict == FAIL


def test_telemetry_names_throttled_points_and_their_passes():
    rows = [energy_point(), energy_point() | {"throttled": True, "reasons_by_pass": "energy:SwPowerCap"}]
    check = check_telemetry(rows)
    assert check.verdict == INFO and check.figure.startswith("1 of 2 points throttled")
    assert check.details[1]["reasons by pass"] == "energy:SwPowerCap"
