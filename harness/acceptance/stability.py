"""The checks of acceptance v2 over timing and capture (pure functions over point rows): each CUDA-graph point's
95% interval against the goal, which points were captured as CUDA graphs (and why not), and how the ranking of
the algorithms moves with batch, dtype and layout."""

from __future__ import annotations

from collections.abc import Sequence

from harness.acceptance.checks import AcceptanceCheck, _verdict
from harness.acceptance.plan import INTERVAL_GOAL, MODELS
from harness.acceptance.rows import (
    INFO,
    Row,
    _clean,
    _g,
    _num,
    _ok,
    _order,
    _pct,
    capture_cell,
    config_label,
    point_label,
)


def interval_halfwidth(row: Row) -> float | None:
    """The median's 95% interval half-width over the median (null where the row has no interval: fewer than 6
    iterations, or a row older than the columns)."""
    low, high, p50 = _num(row, "ci95_low_ms"), _num(row, "ci95_high_ms"), _num(row, "p50_ms")
    if low is None or high is None or not p50:
        return None
    return (high - low) / 2 / p50


def check_interval(rows: Sequence[Row], goal: float = INTERVAL_GOAL) -> AcceptanceCheck:
    """Each ok CUDA-graph point's 95% interval half-width within ``goal`` of its median (the timing went on
    until it was, up to the stage's time limit). Replaces the cv check: a cv over 2% is crossed by chance on
    small, fast points, where the interval of the median is what a reader relies on."""
    name, goal_text = "interval per point (CUDA graph)", f"95% interval half-width <= {_pct(goal)} of the median"
    graphs = [r for r in _ok(rows) if _clean(r.get("cuda_graph")) is True]
    widths = [(r, interval_halfwidth(r)) for r in graphs]
    over = sorted(((r, w) for r, w in widths if w is None or w > goal), key=lambda rw: -(rw[1] or 1.0))
    judged = [w for _, w in widths if w is not None]
    if not graphs:
        return AcceptanceCheck(name, goal_text, "no ok CUDA-graph point", _verdict(False))
    figure = (
        f"{len(graphs) - len(over)} of {len(graphs)} ok graph points meet it; "
        f"median {_pct(sorted(judged)[len(judged) // 2]) if judged else '-'}, worst {_pct(max(judged, default=None))}"
    )
    details = tuple(
        {
            "point": point_label(r),
            "half-width": _pct(w) if w is not None else "no interval",
            "n": r.get("n"),
            "p50 ms": _g(_num(r, "p50_ms")),
            "target met": r.get("target_met"),
        }
        for r, w in over
    )
    return AcceptanceCheck(name, goal_text, figure, _verdict(not over), details)


def check_capture(rows: Sequence[Row]) -> AcceptanceCheck:
    """Which model x algorithm x configuration was timed as CUDA-graph replays, and for those that were not, why
    (the ``graph_error`` column where the rows have it). Information: a forward that cannot be captured is timed
    eagerly and says so; the verdict lists which captured."""
    ok = [r for r in _ok(rows)]
    cells: dict[tuple[str, str], dict[str, list[Row]]] = {}
    for r in ok:
        cells.setdefault((str(r.get("model")), str(r.get("algo"))), {}).setdefault(config_label(r), []).append(r)
    configs = _order(config_label(r) for r in ok)

    details = tuple(
        {"model": m, "algo": a} | {c: capture_cell(cells[(m, a)][c]) if c in cells[(m, a)] else "-" for c in configs}
        for m in _order((k[0] for k in cells), MODELS)
        for a in _order(k[1] for k in cells if k[0] == m)
    )
    captured = sum(_clean(r.get("cuda_graph")) is True for r in ok)
    algos = sorted({str(r.get("algo")) for r in ok if _clean(r.get("cuda_graph")) is True})
    figure = f"{captured} of {len(ok)} ok points captured" + (f" (algorithms: {', '.join(algos)})" if algos else "")
    return AcceptanceCheck(
        "CUDA-graph capture", "which points were timed as graph replays (information)", figure, INFO, details
    )


def check_ranking(rows: Sequence[Row]) -> AcceptanceCheck:
    """Per model, batch and configuration (dtype, math, layout): the algorithms by p50, fastest first, with each
    one's ratio to the fastest: how the ranking moves with batch, dtype and layout. Information."""
    groups: dict[tuple[str, int, str], list[Row]] = {}
    for r in _ok(rows):
        if _num(r, "p50_ms") is not None:
            groups.setdefault((str(r.get("model")), int(r.get("batch_size") or 0), config_label(r)), []).append(r)
    details = []
    for (model, batch, config), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2])):
        ranked = sorted(rs, key=lambda r: _num(r, "p50_ms") or 0.0)
        best = _num(ranked[0], "p50_ms") or 0.0
        details.append(
            {
                "model": model,
                "batch": batch,
                "configuration": config,
                "fastest": ranked[0].get("algo"),
                "p50 ms": _g(best),
                "ranking (p50 / fastest)": ", ".join(
                    f"{r.get('algo')} {(_num(r, 'p50_ms') or 0.0) / best:.2f}" for r in ranked[1:]
                )
                if best
                else "-",
            }
        )
    fastest = {d["fastest"] for d in details}
    figure = f"{len(details)} regime(s); fastest algorithms: {', '.join(sorted(map(str, fastest))) or 'none'}"
    return AcceptanceCheck(
        "ranking per regime",
        "how the ranking moves with batch, dtype and layout (information)",
        figure,
        INFO,
        tuple(details),
    )
