"""The check record and the checks of the sweep itself (pure functions over rows): the GPU tests, the jobs,
errors, correctness, the support matrix and cv."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from harness.acceptance.plan import ALGOS, CONFIGS, CV_GOAL, MODELS
from harness.acceptance.rows import (
    FAIL,
    INFO,
    PASS,
    Row,
    _clean,
    _g,
    _num,
    _ok,
    _order,
    _pct,
    config_label,
    point_label,
)
from harness.acceptance.suite import SuiteReport
from harness.acceptance.sweep import JobResult


@dataclass(frozen=True)
class AcceptanceCheck:
    name: str
    goal: str
    figure: str
    verdict: str  # PASS | FAIL | INFO
    details: tuple[Row, ...] = ()  # a detail table: one dict per row, keys are the columns


def _verdict(ok: bool) -> str:
    return PASS if ok else FAIL


def check_gpu_tests(report: SuiteReport) -> AcceptanceCheck:
    """Pass: some tests ran, none failed, none skipped, and pytest itself ended normally."""
    figure = f"{report.passed} passed, {report.failed} failed, {report.skipped} skipped"
    ran = report.passed + report.failed + report.skipped > 0
    if report.note:
        figure += f"; {report.note}"
    elif not ran:
        figure += "; no test ran"
    elif report.returncode not in (None, 0, 1):
        figure += f"; pytest exit code {report.returncode}"
    ok = ran and report.failed == report.skipped == 0 and report.note is None and report.returncode in (None, 0)
    details = tuple({"test": n, "outcome": o, "message": m} for n, o, m in report.cases)
    return AcceptanceCheck("GPU test suite", "all GPU tests pass, none skipped", figure, _verdict(ok), details)


def check_jobs(jobs: Sequence[JobResult]) -> AcceptanceCheck:
    done = [j for j in jobs if j.outcome == "completed"]
    points = sum(len(j.rows) for j in jobs)
    figure = f"{len(done)} of {len(jobs)} jobs completed, {points} points"
    details = tuple(
        {"job": j.job.label, "outcome": j.outcome, "error": j.error or ""} for j in jobs if j.outcome != "completed"
    )
    not_run = sum(j.outcome == "not run" for j in jobs)
    if not_run:
        figure += f"; {not_run} not run (time budget)"
    return AcceptanceCheck(
        "runs completed",
        "every job of the sweep and the extra runs returns",
        figure,
        _verdict(bool(jobs) and len(done) == len(jobs)),
        details,
    )


def check_errors(rows: Sequence[Row]) -> AcceptanceCheck:
    bad = [r for r in rows if r.get("status") == "error"]
    details = tuple({"point": point_label(r), "error": r.get("error") or ""} for r in bad)
    return AcceptanceCheck(
        "errors",
        "no point with status error",
        f"{len(bad)} of {len(rows)} points are errors",
        _verdict(not bad),
        details,
    )


def check_correctness(rows: Sequence[Row]) -> AcceptanceCheck:
    """Every algorithm's output against the torch baseline's (verified at every point of the sweep).

    Details: a row per model x algorithm, a column per configuration: the worst max_rel_err of its ok points,
    and how many points were not verified (beyond tolerance, or not compared)."""
    compared = [r for r in rows if r.get("algo") != "torch" and r.get("status") in ("ok", "error")]
    failing = [
        r
        for r in compared
        if _clean(r.get("verified")) is False or (r.get("status") == "ok" and _clean(r.get("verified")) is not True)
    ]
    configs = _order((config_label(r) for r in compared), [c.label for c in CONFIGS])
    cells: dict[tuple[str, str], dict[str, list[Row]]] = {}
    for r in compared:
        cells.setdefault((str(r.get("model")), str(r.get("algo"))), {}).setdefault(config_label(r), []).append(r)
    details = tuple(
        {"model": m, "algo": a} | {c: _error_cell(cells[(m, a)].get(c, []), failing) for c in configs}
        for m in _order((k[0] for k in cells), MODELS)
        for a in _order((k[1] for k in cells), ALGOS)
        if (m, a) in cells
    )
    worst = {
        c: max(
            (e for r in _ok(compared) if config_label(r) == c and (e := _num(r, "max_rel_err")) is not None),
            default=None,
        )
        for c in configs
    }
    figure = "; ".join(f"{c}: {_g(e, 3)}" for c, e in worst.items() if e is not None) or "no verified point"
    figure = (f"{len(failing)} point(s) not verified; " if failing else "") + "worst max_rel_err " + figure
    return AcceptanceCheck(
        "correctness vs torch",
        "every ok point verified against the torch baseline (within tolerance)",
        figure,
        _verdict(bool(_ok(compared)) and not failing),
        details,
    )


def _error_cell(rs: Sequence[Row], failing: Sequence[Row]) -> str:
    if not rs:
        return "-"
    errs = [e for e in (_num(r, "max_rel_err") for r in _ok(rs)) if e is not None]
    bad = sum(any(r is f for f in failing) for r in rs)
    text = _g(max(errs), 2) if errs else "-"
    return text + (f" (NOT VERIFIED: {bad} of {len(rs)})" if bad else "")


def _cell(rs: Sequence[Row]) -> str:
    statuses = Counter(str(r.get("status")) for r in rs)
    text = (
        next(iter(statuses))
        if len(statuses) == 1
        else ", ".join(f"{s} {n}/{len(rs)}" for s, n in sorted(statuses.items()))
    )
    fallback = max((int(v) for v in (_num(r, "algo_fallback_layers") for r in rs) if v is not None), default=0)
    return text + (f" (fallback layers {fallback})" if fallback else "")


def check_support(rows: Sequence[Row]) -> AcceptanceCheck:
    """Which algorithm runs each model in each configuration: the point statuses, and layers that fell back."""
    configs = _order((config_label(r) for r in rows), [c.label for c in CONFIGS])
    cells: dict[tuple[str, str], dict[str, list[Row]]] = {}
    for r in rows:
        cells.setdefault((str(r.get("model")), str(r.get("algo"))), {}).setdefault(config_label(r), []).append(r)
    models = _order((m for m, _ in cells), MODELS)
    algos = _order((a for _, a in cells), ALGOS)
    details = tuple(
        {"model": m, "algo": a} | {c: _cell(cells[(m, a)].get(c, [])) if c in cells[(m, a)] else "-" for c in configs}
        for m in models
        for a in algos
        if (m, a) in cells
    )
    counts = Counter(str(r.get("status")) for r in rows)
    figure = ", ".join(f"{s} {counts[s]}" for s in ("ok", "unsupported", "oom", "error") if counts[s]) or "no point"
    return AcceptanceCheck(
        "support matrix",
        "which algorithms run which models (information)",
        f"{figure} of {len(rows)} points",
        INFO,
        details,
    )


def check_cv(
    rows: Sequence[Row], goal: float = CV_GOAL, name: str = "cv per point", judged: bool = True
) -> AcceptanceCheck:
    """The cv of each ok point against the goal; ``judged=False`` reports it as information only."""
    measured = [(r, _num(r, "cv")) for r in _ok(rows)]
    values = [(r, cv) for r, cv in measured if cv is not None]
    over = sorted(((r, cv) for r, cv in values if cv > goal), key=lambda rc: -rc[1])
    missing = len(measured) - len(values)
    worst = max(values, key=lambda rc: rc[1], default=None)
    figure = (
        (
            f"{len(values) - len(over)} of {len(values)} ok points ({_pct((len(values) - len(over)) / len(values))}) "
            f"meet it; worst {_pct(worst[1])} ({point_label(worst[0])})"
        )
        if values
        else "no ok point"
    )
    if missing:
        figure += f"; {missing} ok point(s) without a cv"
    details = tuple(
        {"point": point_label(r), "cv": _pct(cv), "n": r.get("n"), "p50 ms": _g(_num(r, "p50_ms"))} for r, cv in over
    )
    if not judged:
        return AcceptanceCheck(name, f"cv <= {_pct(goal)} (information)", figure, INFO, details)
    return AcceptanceCheck(
        name, f"cv <= {_pct(goal)}", figure, _verdict(bool(values) and not over and not missing), details
    )
