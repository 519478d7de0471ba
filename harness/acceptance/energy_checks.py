"""The energy suite's checks (pure): the procedure each energy point went through (windows, their interval,
idle power before and after, steady state, cooldown), clocks and throttling through every pass, and the probe's
linearity and counter period. The counter against the power integral is harness.acceptance.extras.check_energy."""

from __future__ import annotations

from collections.abc import Sequence

from harness.acceptance.checks import AcceptanceCheck, _verdict
from harness.acceptance.energy_probe import EnergyProbe
from harness.acceptance.plan import ENERGY_WINDOW_S, ENERGY_WINDOWS
from harness.acceptance.rows import FAIL, INFO, Row, _clean, _g, _num, _ok, _pct, point_label


def check_energy_procedure(
    rows: Sequence[Row], windows: int = ENERGY_WINDOWS, window_s: float = ENERGY_WINDOW_S
) -> AcceptanceCheck:
    """Each ok energy point: at least ``windows`` windows of at least ``window_s`` s, an interval of its dynamic
    energy, idle power before and after, steady state and cooldown reached. Figures: dynamic and total energy per
    inference with the dynamic share."""
    name = "energy: the procedure per point"
    goal = (
        f">= {windows} windows of >= {window_s:g} s, a 95% interval of dynamic energy, idle before and after, "
        "steady state and cooldown reached"
    )
    ok_rows = _ok(rows)
    if not ok_rows:
        return AcceptanceCheck(name, goal, f"no ok energy point (statuses {[r.get('status') for r in rows]})", FAIL)
    details, failures = [], []
    for r in ok_rows:
        problems = []
        if (_num(r, "energy_windows") or 0) < windows:
            problems.append(f"{r.get('energy_windows')} window(s)")
        if (_num(r, "energy_window_s") or 0.0) < window_s * 0.999:
            problems.append(f"shortest window {_g(_num(r, 'energy_window_s'), 3)} s")
        if _num(r, "dynamic_energy_ci95_low_j") is None or _num(r, "dynamic_energy_ci95_high_j") is None:
            problems.append("no interval of dynamic energy")
        if _num(r, "idle_power_w") is None or _num(r, "idle_power_after_w") is None:
            problems.append("idle power not measured before and after")
        if _clean(r.get("steady_state_reached")) is not True:
            problems.append(f"steady state not reached in {_g(_num(r, 'steady_state_s'), 3)} s")
        if _clean(r.get("cooldown_reached")) is not True:
            problems.append(f"cooldown not reached in {_g(_num(r, 'cooldown_s'), 3)} s")
        total, dynamic = _num(r, "energy_per_inference_j"), _num(r, "dynamic_energy_per_inference_j")
        details.append(
            {
                "point": point_label(r),
                "total mJ": _g(total * 1e3 if total is not None else None),
                "dynamic mJ": _g(dynamic * 1e3 if dynamic is not None else None),
                "dynamic 95% CI mJ": _interval_mj(r),
                "dynamic share": _pct(dynamic / total if total and dynamic is not None else None),
                "idle W before/after": f"{_g(_num(r, 'idle_power_w'))}/{_g(_num(r, 'idle_power_after_w'))}",
                "steady state s": _g(_num(r, "steady_state_s"), 3),
                "cooldown s": _g(_num(r, "cooldown_s"), 3),
                "problems": "; ".join(problems) or "-",
            }
        )
        failures += problems
    shares = [d["dynamic share"] for d in details]
    figure = f"{len(ok_rows) - sum(d['problems'] != '-' for d in details)} of {len(ok_rows)} points complete; "
    figure += f"dynamic share of total energy {', '.join(shares)}"
    return AcceptanceCheck(name, goal, figure, _verdict(not failures), tuple(details))


def _interval_mj(r: Row) -> str:
    low, high = _num(r, "dynamic_energy_ci95_low_j"), _num(r, "dynamic_energy_ci95_high_j")
    return "-" if low is None or high is None else f"[{_g(low * 1e3)}, {_g(high * 1e3)}]"


def check_telemetry(rows: Sequence[Row]) -> AcceptanceCheck:
    """Clocks, temperature and throttle reasons sampled through every pass of each point (information: a
    throttled point is named, with the passes it throttled in)."""
    measured = [r for r in _ok(rows) if _num(r, "telemetry_samples")]
    details = tuple(
        {
            "point": point_label(r),
            "SM clock min/median MHz": f"{_g(_num(r, 'sm_clock_min_mhz'))}/{_g(_num(r, 'sm_clock_p50_mhz'))}",
            "max temperature C": _g(_num(r, "temperature_max_c"), 3),
            "throttled": _clean(r.get("throttled")),
            "reasons by pass": r.get("reasons_by_pass"),
            "samples": r.get("telemetry_samples"),
        }
        for r in measured
    )
    throttled = [r for r in measured if _clean(r.get("throttled")) is True]
    figure = (
        f"{len(throttled)} of {len(measured)} points throttled in some pass"
        + (f" ({', '.join(point_label(r) for r in throttled[:3])})" if throttled else "")
        if measured
        else "no point with telemetry (NVML not usable?)"
    )
    return AcceptanceCheck(
        "clocks and throttling through every pass", "recorded per point (information)", figure, INFO, details
    )


LINEARITY_WIDTH = 1.2  # the ratio's interval may span at most high / low = 1.2 (about +-9%): else it tells nothing


def check_linearity(probe: EnergyProbe | None, width: float = LINEARITY_WIDTH) -> AcceptanceCheck:
    """Dynamic energy of 2N forwards over N: 2 inside the ratio's 95% interval, and the interval narrow enough
    to tell (high / low <= ``width``): windows short against the counter's update period give a ratio far
    from 2 with an interval so wide that it holds 2 anyway."""
    name = "energy: 2N over N"
    goal = f"E(2N) / E(N) after idle subtraction: 2 inside the 95% interval, the interval within x{width:g}"
    if probe is None or probe.linearity is None:
        why = probe.error if probe is not None and probe.error else "the probe did not run"
        return AcceptanceCheck(name, goal, why, FAIL)
    lin = probe.linearity
    detail = {
        "work": probe.what,
        "forward ms": _g(probe.forward_ms),
        "N": lin.n,
        "windows each": lin.repeats,
        "idle W": _g(probe.idle_w),
        "ratio": f"{lin.ratio:.3f}",
        "95% CI": "-" if lin.low is None else f"[{lin.low:.3f}, {lin.high:.3f}]",
    }
    narrow = lin.low is not None and lin.high is not None and lin.low > 0 and lin.high / lin.low <= width
    figure = str(lin) + ("" if narrow else f"; the interval is too wide to tell (goal: high / low <= {width:g})")
    return AcceptanceCheck(name, goal, figure, _verdict(lin.passed and narrow), (detail,))


def check_counter_period(probe: EnergyProbe | None) -> AcceptanceCheck:
    """The energy counter's update period as observed (information: a window should be long against it)."""
    name, goal = "energy: counter update period", "observed by polling the counter (information)"
    if probe is None or probe.period is None:
        return AcceptanceCheck(name, goal, probe.error if probe and probe.error else "the probe did not run", INFO)
    return AcceptanceCheck(name, goal, str(probe.period), INFO)
