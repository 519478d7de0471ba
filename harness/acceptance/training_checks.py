"""The training suite's checks (pure functions over point and layer rows, and the plan step's record): the
support matrix per backward direction, the gradients against torch's, graph capture per direction and
algorithm, and the training plan's projected step against its measured one.

The columns read are the measurement's own (harness.measure.train_point): ``direction`` (the point's),
``grad_ok`` and ``grad_max_rel_err`` (the gradient check every training point makes against torch's convolution
in float64, within GRAD_TOLERANCES of the dtype), ``cuda_graph`` and ``graph_error``; a layer row's
``point_direction``, ``status`` (ok, fallback, unsupported), ``algo_used`` and ``detail`` (why it fell back); the
projection row is analysis.tables.catalog.training_projection's (``measured_over_projected`` with
``error_low``/``error_high``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from harness.acceptance.checks import AcceptanceCheck, _verdict, check_gpu_tests
from harness.acceptance.plan import PROJECTION_GOAL, TRAIN_DIRECTIONS, TRAIN_MODELS
from harness.acceptance.rows import (
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
    capture_cell,
    point_label,
)
from harness.acceptance.suite import SuiteReport
from harness.acceptance.training import TrainingPlanStep

STEP = "train_step"
DIRECTION_ORDER = (*TRAIN_DIRECTIONS, STEP)
LAYER_STATUSES = ("ok", "fallback", "unsupported")


def _direction(row: Row) -> str:
    return str(_clean(row.get("direction")) or "forward")


def training_tests(report: SuiteReport | None, cpu: bool) -> AcceptanceCheck:
    """The backward families' GPU tests (``check_gpu_tests``); on the CPU (--cpu-smoke) none runs: information."""
    if report is not None:
        return check_gpu_tests(report)
    if cpu:
        return AcceptanceCheck(
            "GPU test suite", "all GPU tests pass, none skipped", "not run: a CPU smoke run has no GPU", INFO
        )
    return check_gpu_tests(SuiteReport(note="not run"))


def check_direction_support(
    points: Sequence[Row], layers: Sequence[Row], directions: Sequence[str] = TRAIN_DIRECTIONS
) -> AcceptanceCheck:
    """Per backward direction and algorithm: its points' statuses per model and its layer calls' statuses
    (ok: the algorithm ran the call; fallback: another ran it, the row's detail says why; unsupported), with
    each distinct fallback reason and how many calls gave it. Fails where a direction has no ok point."""
    name, goal = "support per direction", "every backward direction measured; which algorithm runs which call"
    by_point: dict[tuple[str, str], list[Row]] = {}
    for r in points:
        by_point.setdefault((_direction(r), str(r.get("algo"))), []).append(r)
    by_layer: dict[tuple[str, str], list[Row]] = {}
    for r in layers:
        d = str(_clean(r.get("point_direction")) or _clean(r.get("direction")) or "forward")
        by_layer.setdefault((d, str(r.get("algo"))), []).append(r)
    models = _order((str(r.get("model")) for r in points), TRAIN_MODELS)
    details, figures, missing = [], [], []
    for d in directions:
        keys = [k for k in {**by_point, **by_layer} if k[0] == d]
        ok_points = [r for k in keys for r in _ok(by_point.get(k, []))]
        if not ok_points:
            missing.append(d)
        for _, algo in sorted(keys, key=lambda k: k[1]):
            rs, ls = by_point.get((d, algo), []), by_layer.get((d, algo), [])
            counts = Counter(str(r.get("status")) for r in ls)
            reasons = Counter(_first_line(r.get("detail"), 120) for r in ls if r.get("status") != "ok")
            row: Row = {"direction": d, "algo": algo}
            row |= {m: ", ".join(str(r.get("status")) for r in rs if r.get("model") == m) or "-" for m in models}
            row |= {f"calls {s}": counts.get(s, 0) for s in LAYER_STATUSES}
            row["fallback reasons"] = "; ".join(f"{why or '?'} ({n})" for why, n in reasons.most_common()) or "-"
            details.append(row)
        calls = Counter(str(r.get("status")) for k in keys for r in by_layer.get(k, []))
        figures.append(
            f"{d}: {len(ok_points)} ok point(s) of {sum(len(by_point.get(k, [])) for k in keys)}, calls "
            + ", ".join(f"{s} {calls.get(s, 0)}" for s in LAYER_STATUSES)
        )
    figure = "; ".join(figures) + (f"; NO ok point in {', '.join(missing)}" if missing else "")
    return AcceptanceCheck(name, goal, figure, _verdict(not missing), tuple(details))


def check_training_gradients(rows: Sequence[Row]) -> AcceptanceCheck:
    """Every training point's gradients against torch's (the check the measurement makes at every point:
    ``grad_ok``, within the dtype's tolerance); a point without the check (status ok, grad_ok not true) fails
    too. Details: per direction and algorithm, the worst ``grad_max_rel_err`` per model."""
    checked = [r for r in rows if _direction(r) != "forward" and r.get("status") in ("ok", "error")]
    failing = [r for r in checked if _clean(r.get("grad_ok")) is not True]
    models = _order((str(r.get("model")) for r in checked), TRAIN_MODELS)
    cells: dict[tuple[str, str], list[Row]] = {}
    for r in checked:
        cells.setdefault((_direction(r), str(r.get("algo"))), []).append(r)
    details = []
    for d, algo in sorted(cells, key=lambda k: (_rank(k[0]), k[1])):
        rs = cells[(d, algo)]
        row: Row = {"direction": d, "algo": algo}
        for m in models:
            mine = [r for r in rs if r.get("model") == m]
            errs = [e for e in (_num(r, "grad_max_rel_err") for r in mine) if e is not None]
            bad = sum(any(r is f for f in failing) for r in mine)
            text = _g(max(errs), 2) if errs else "-"
            row[m] = text + (f" (NOT WITHIN TOLERANCE: {bad} of {len(mine)})" if bad else "")
        details.append(row)
    errors = [(_direction(r), _num(r, "grad_max_rel_err")) for r in checked]
    worst = {
        d: max((e for dd, e in errors if dd == d and e is not None), default=None)
        for d in _order((d for d, _ in errors), DIRECTION_ORDER)
    }
    figure = "worst grad_max_rel_err " + ("; ".join(f"{d}: {_g(e, 3)}" for d, e in worst.items()) or "-")
    if failing:
        figure = f"{len(failing)} point(s) beyond tolerance or not checked ({point_label(failing[0])}); " + figure
    return AcceptanceCheck(
        "gradients vs torch",
        "every training point's gradients within the dtype's tolerance of torch's (grad_ok)",
        figure,
        _verdict(bool(checked) and not failing),
        tuple(details),
    )


def _rank(direction: str) -> int:
    return DIRECTION_ORDER.index(direction) if direction in DIRECTION_ORDER else len(DIRECTION_ORDER)


def check_training_capture(rows: Sequence[Row], judged: bool = True) -> AcceptanceCheck:
    """Per direction and algorithm, whether its points were timed as CUDA-graph replays (``cuda_graph``) and,
    where not, why (``graph_error``). Judged (on a GPU): every ok training-step point captured (the gradient
    calls of the backward directions are shown beside them); ``judged=False`` (the CPU, where every point is
    eager): information."""
    ok = [r for r in _ok(rows) if _direction(r) != "forward"]
    cells: dict[tuple[str, str], list[Row]] = {}
    for r in ok:
        cells.setdefault((_direction(r), str(r.get("algo"))), []).append(r)
    models = _order((str(r.get("model")) for r in ok), TRAIN_MODELS)

    details = tuple(
        {"direction": d, "algo": a}
        | {m: capture_cell([r for r in cells[(d, a)] if r.get("model") == m]) for m in models}
        for d, a in sorted(cells, key=lambda k: (_rank(k[0]), k[1]))
    )
    captured = [r for r in ok if _clean(r.get("cuda_graph")) is True]
    steps = [r for r in ok if _direction(r) == STEP]
    figure = (
        f"{len(captured)} of {len(ok)} ok points captured; training step: "
        f"{sum(_clean(r.get('cuda_graph')) is True for r in steps)} of {len(steps)}"
    )
    goal = "every ok training step timed as a CUDA graph's replays"
    if not judged:
        return AcceptanceCheck("CUDA-graph capture (training)", goal + " (information here)", figure, INFO, details)
    return AcceptanceCheck(
        "CUDA-graph capture (training)",
        goal,
        figure,
        _verdict(bool(steps) and all(_clean(r.get("cuda_graph")) is True for r in steps)),
        details,
    )


def check_plan_projection(step: TrainingPlanStep | None, goal: float = PROJECTION_GOAL) -> AcceptanceCheck:
    """The training plan's run (algo=per_layer, direction=train_step): its measured step over the step its
    calls project (training_projection's ``measured_over_projected``, each call's time from its algorithm's own
    train_step run, the rest of the step from the baseline's), within ``goal`` of 1. Fails where the plan was
    not made, its run wrote no ok row, or no projection could be computed."""
    name, goal_text = "training plan: projected vs measured step", f"|measured / projected - 1| <= {_pct(goal)}"
    if step is None:
        return AcceptanceCheck(name, goal_text, "no training plan step ran", "FAIL")
    if step.error is not None or step.path is None:
        return AcceptanceCheck(name, goal_text, f"no plan made: {step.error or 'no file'}", "FAIL")
    head = f"plan {step.path.name}: {step.switched} of {step.calls} calls off the baseline"
    own = _num(step.plan_extra, "projected_ms")
    if own is not None:
        head += f" (the plan's own projection {_g(own)} ms, x{_ratio(_num(step.plan_extra, 'projected_speedup'))})"
    rows = list(step.projection)  # one per per_layer point
    if not rows:
        return AcceptanceCheck(name, goal_text, f"{head}; {step.projection_error or 'no projection row'}", "FAIL")
    details, ok = [], True
    for r in rows:
        ratio = _num(r, "measured_over_projected")
        within = ratio is not None and abs(ratio - 1) <= goal
        ok &= within
        details.append(
            {
                "point": f"{r.get('model')} {r.get('input_size')} px b{r.get('batch_size')} {r.get('dtype')}",
                "baseline": r.get("baseline"),
                "baseline p50 ms": _g(_num(r, "baseline_p50_ms")),
                "projected ms": _g(_num(r, "projected_ms")),
                "measured ms": _g(_num(r, "measured_ms")),
                "measured / projected": _ratio(ratio),
                "95% interval": f"{_ratio(_num(r, 'error_low'))} - {_ratio(_num(r, 'error_high'))}",
                "calls": r.get("layers"),
                "unrun calls": r.get("unrun_layers"),
                "oracle projected ms": _g(_num(r, "oracle_projected_ms")),
                "verdict": _verdict(within),
            }
        )
    first = details[0]
    figure = (
        f"{head}; projected {first['projected ms']} ms, measured {first['measured ms']} ms: measured / projected "
        f"{first['measured / projected']} (95% interval {first['95% interval']})"
    )
    return AcceptanceCheck(name, goal_text, figure, _verdict(ok), tuple(details))
