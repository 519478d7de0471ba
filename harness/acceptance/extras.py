"""The checks of the extra runs and of timing (pure): the same point again, guess vs torch, energy,
out of memory, launch-bound points."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from harness.acceptance.checks import AcceptanceCheck, _verdict
from harness.acceptance.plan import (
    BASE,
    ENERGY_GOAL,
    GUESS_TORCH_GOAL,
    MODELS,
    OOM_BATCHES,
    REPEAT_GOAL,
    Config,
)
from harness.acceptance.rows import (
    FAIL,
    INFO,
    Row,
    _clean,
    _first_line,
    _g,
    _num,
    _ok,
    _order,
    _pct,
    _ratio,
    config_label,
    point_label,
)
from harness.results.uncertainty import between_process, log_se

_POINT_KEY = ("model", "algo", "input_size", "batch_size", "dtype", "math_type", "fallback_policy")


def _key(row: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(row.get(k) for k in _POINT_KEY)


def check_repeat(first_rows: Sequence[Row], second_rows: Sequence[Row], goal: float = REPEAT_GOAL) -> AcceptanceCheck:
    """The same point measured by the sweep and again, later, in separate processes (repeats): each process's
    p50 over the sweep's, and the spread between the processes (with the between-process share of the
    variance where there are two or more)."""
    name, goal_text = "same point again, in separate processes", f"every p50 within {_pct(goal)} of the sweep's"
    firsts = {_key(r): r for r in _ok(first_rows)}
    again = [r for r in _ok(second_rows) if _key(r) in firsts]
    if not again:
        return AcceptanceCheck(
            name,
            goal_text,
            "no pair of ok measurements of the same point "
            f"({len(second_rows)} repeat row(s), statuses {[r.get('status') for r in second_rows]})",
            FAIL,
        )
    details, ratios, ok = [], [], True
    for b in again:
        a = firsts[_key(b)]
        p1, p2 = _num(a, "p50_ms"), _num(b, "p50_ms")
        ratio = p2 / p1 if p1 and p2 is not None else None
        ratios.append(ratio if ratio is not None else 0.0)
        ok &= ratio is not None and abs(ratio - 1) <= goal
        details.append(
            {
                "point": point_label(b),
                "process": b.get("repeat"),
                "sweep p50 ms": _g(p1),
                "p50 ms": _g(p2),
                "ratio": _ratio(ratio),
                "sweep cv": _pct(_num(a, "cv")),
                "cv": _pct(_num(b, "cv")),
            }
        )
    p50s = [v for v in (_num(r, "p50_ms") for r in again) if v]
    figure = (
        f"{details[0]['point']}: sweep p50 {details[0]['sweep p50 ms']} ms; in {len(p50s)} process(es) "
        f"{' / '.join(_g(v) for v in p50s)} ms: worst ratio {_ratio(max(ratios))}"
    )
    if len(p50s) >= 2:
        spread = max(p50s) / min(p50s) - 1
        frame = pd.DataFrame(again)
        b = between_process(np.log(frame["p50_ms"].astype(float)), log_se(frame), np.zeros(len(frame)))
        figure += (
            f"; spread between processes {_pct(spread)}, between-process sd {_pct(float(np.sqrt(b.tau2)))} "
            f"({_pct(b.share)} of the variance)"
        )
    return AcceptanceCheck(name, goal_text, figure, _verdict(ok), tuple(details))


def check_guess_vs_torch(
    rows: Sequence[Row], goal: float = GUESS_TORCH_GOAL, config: Config = BASE, graph: bool = True
) -> AcceptanceCheck:
    """Whole-model p50 of algo=guess over algo=torch, per model and input size, in one configuration, timed
    as CUDA graph replays (the GPU's time, the harness's default on a GPU: judged against the goal) or eagerly
    (what a Python caller waits for, the host's issuing included: information; cuDNN's legacy calls through
    ctypes cost the host far more than PyTorch's own path, e.g. 3.5x on resnet50 at batch 1 on an H100)."""
    name = f"guess / torch ({'CUDA graph' if graph else 'eager'})"
    goal_text = f"p50(guess) / p50(torch) <= {goal:g} per model and size ({config.label})"
    if not graph:
        goal_text += " (information)"
    same = [r for r in rows if config_label(r) == config.label and bool(_clean(r.get("cuda_graph"))) == graph]
    points = {
        (r.get("algo"), r.get("model"), r.get("input_size"), r.get("batch_size")): r
        for r in same
        if r.get("algo") in ("guess", "torch")
    }
    models = _order((k[1] for k in points), MODELS)
    keys = sorted({k[1:] for k in points}, key=lambda k: (models.index(k[0]), k[1] or 0, k[2] or 0))
    details, ratios, missing = [], [], 0
    for model, size, batch in keys:
        g, t = points.get(("guess", model, size, batch)), points.get(("torch", model, size, batch))
        pg = _num(g, "p50_ms") if g and g.get("status") == "ok" else None
        pt = _num(t, "p50_ms") if t and t.get("status") == "ok" else None
        ratio = pg / pt if pg is not None and pt else None
        missing += ratio is None
        if ratio is not None:
            ratios.append(ratio)
        details.append(
            {
                "model": model,
                "input size": size,
                "batch": batch,
                "torch p50 ms": _g(pt),
                "guess p50 ms": _g(pg),
                "ratio": _ratio(ratio),
                "verdict": "-" if ratio is None else _verdict(ratio <= goal),
            }
        )
    figure = (
        f"worst {max(ratios):.3f}, best {min(ratios):.3f} over {len(ratios)} model/size pair(s)"
        if ratios
        else "no pair"
    )
    if missing:
        figure += f"; {missing} pair(s) without an ok guess and torch point"
    ok = bool(ratios) and not missing and max(ratios) <= goal
    return AcceptanceCheck(name, goal_text, figure, _verdict(ok) if graph else INFO, tuple(details))


ENERGY_COLUMNS = (
    "energy_per_inference_j",
    "energy_integral_per_inference_j",
    "energy_method",
    "energy_window_s",
    "energy_inferences",
    "idle_power_w",
    "power_mean_w",
    "sm_clock_mhz",
    "temperature_c",
    "throttle_reasons",
)


def check_energy(rows: Sequence[Row], goal: float = ENERGY_GOAL) -> AcceptanceCheck:
    """The NVML energy counter against the trapezoid integral of sampled power over the same window."""
    name, goal_text = "energy: counter vs integral", f"within {_pct(goal)}"
    ok_rows = _ok(rows)
    if not ok_rows:
        return AcceptanceCheck(
            name, goal_text, f"no ok energy point (statuses {[r.get('status') for r in rows]})", FAIL
        )
    details, verdicts, figures = [], [], []
    for r in ok_rows:
        counter, integral = _num(r, "energy_per_inference_j"), _num(r, "energy_integral_per_inference_j")
        method = r.get("energy_method")
        apart = abs(integral - counter) / counter if counter and integral is not None else None
        verdicts.append(method == "nvml_counter" and apart is not None and apart <= goal)
        details.append({"point": point_label(r), "apart": _pct(apart)} | {c: _shown(r.get(c)) for c in ENERGY_COLUMNS})
        if method != "nvml_counter":
            figures.append(f"energy_method {method}: no NVML energy counter to compare")
        else:
            figures.append(
                f"counter {_g(counter)} J, integral {_g(integral)} J per inference: {_pct(apart)} apart "
                f"(window {_g(_num(r, 'energy_window_s'), 3)} s, throttle: {r.get('throttle_reasons')})"
            )
    return AcceptanceCheck(name, goal_text, "; ".join(figures), _verdict(all(verdicts)), tuple(details))


def _shown(v: Any) -> Any:
    v = _clean(v)
    return _g(v, 5) if isinstance(v, float) else v


def check_oom(rows: Sequence[Row], completed: bool, batches: tuple[int, int] = OOM_BATCHES) -> AcceptanceCheck:
    small, large = batches
    by_batch = {r.get("batch_size"): r for r in rows}
    s, b = by_batch.get(small), by_batch.get(large)
    status_s, status_b = (r.get("status") if r else "missing" for r in (s, b))
    figure = (
        f"batch {small}: {status_s}; batch {large}: {status_b}; job {'completed' if completed else 'did not complete'}"
    )
    details = tuple(
        {"batch": r.get("batch_size"), "status": r.get("status"), "error": _first_line(r.get("error"))} for r in rows
    )
    ok = status_s == "ok" and status_b == "oom" and completed
    return AcceptanceCheck(
        "out of memory",
        f"batch {large} gives an oom row, batch {small} ok, the job goes on",
        figure,
        _verdict(ok),
        details,
    )


def check_launch_bound(rows: Sequence[Row]) -> AcceptanceCheck:
    ok = _ok(rows)
    flagged = [r for r in ok if _clean(r.get("launch_bound")) is True]
    details = tuple(
        {
            "point": point_label(r),
            "p50 ms": _g(_num(r, "p50_ms")),
            "host_p50 ms": _g(_num(r, "host_p50_ms")),
            "host_issue ms": _g(_num(r, "host_issue_ms")),
            "cuda_graph": r.get("cuda_graph"),
        }
        for r in flagged
    )
    return AcceptanceCheck(
        "launch-bound points",
        "points where the host sets the pace (information)",
        f"{len(flagged)} of {len(ok)} ok points launch-bound",
        INFO,
        details,
    )
