"""Making a training plan (harness.algorithms.plan, version 2: one algorithm per conv layer per direction) from
the train_step points of a results tree (pure: DataFrames in, a Plan out).

Each call (a layer in one direction) gets the training oracle's choice (analysis.tables.training.choices): the fastest
other algorithm that ran the call itself where it beats the baseline's run beyond noise, Benjamini-Hochberg at 5%
over the plan's calls, else the baseline (guess where its train_step point measured, else torch). A call no row
timed (layer 0's backward_data where the step computes no input gradient) keeps the baseline, and the layer's
note says so. The plan's ``extra`` holds its projected step (the baseline's measured step less the switched
calls' gains, with its 95% interval) for the training_projection table to compare with the step measured with
``python -m harness direction=train_step algo=per_layer plan=PLAN``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.errors import AnalysisError
from analysis.plans.where import Where, at_point, not_held, plan_key, single_backend
from analysis.tables.training import BASELINES, choices, oracle, step_layers, step_points, timed_calls
from harness.algorithms.geometry import ConvGeometry
from harness.algorithms.plan import DIRECTIONS, Evidence, Plan, PlanLayer
from harness.results import multiplicity as mt
from harness.results.uncertainty import row_interval

FAMILY = "one per call (layer x direction) with a baseline row and another algorithm: the fastest other against it"


def choose_training(
    points: pd.DataFrame,
    layers: pd.DataFrame,
    where: Where,
    modules: list[tuple[str, ConvGeometry]],
    made_by: str = "",
    algos: tuple[str, ...] = (),
    baseline: str | None = None,
) -> Plan:
    """The training plan for ``where`` from resolved points and layers (their train_step rows), in the order of
    ``modules`` (the model's conv layers). ``algos``: only these compete (all measured where empty);
    ``baseline``: what a tie keeps (default guess, else torch). Refused (AnalysisError) where the point has no
    train_step row measured ok, no baseline, or a module has no timed call in any direction."""
    pts = at_point(step_points(points), where)
    pts = pts[pts["status"] == "ok"]
    if pts.empty:
        held = step_points(points)
        raise AnalysisError(
            "direction train_step: "
            + not_held(held[held["status"] == "ok"], where)
            + " (measure it: python -m harness direction=train_step ...)"
        )
    where = where.pinned(pts)
    pts = at_point(pts, where)
    order = (baseline,) if baseline else BASELINES
    measured = set(pts["algo"].astype(str))
    if not measured & set(order):
        raise AnalysisError(
            f"{where.describe()} direction=train_step: no baseline measured ({' or '.join(order)}); measured: "
            f"{', '.join(sorted(measured))}"
        )
    missing = [a for a in algos if a not in measured]
    if missing:
        raise AnalysisError(
            f"{where.describe()} direction=train_step: algorithm(s) {', '.join(missing)} not measured ok at this "
            f"point; measured: {', '.join(sorted(measured))}"
        )
    here = at_point(layers, where)
    if algos:
        keep = {*algos, *order}
        here = here[here["algo"].astype(str).isin(keep)]
        pts = pts[pts["algo"].astype(str).isin(keep)]
    ch = choices(pts, here, order)
    chosen_base = str(ch["baseline"].iloc[0]) if len(ch) else next(b for b in order if b in measured)
    rows = timed_calls(step_layers(here))
    rows = rows.assign(low=row_interval(rows)[0], high=row_interval(rows)[1])
    plan_layers = [_layer(name, geometry, chosen_base, ch, rows, where) for name, geometry in modules]
    key = plan_key(where, pts, single_backend(pts))
    projected = oracle(pts, here)
    family = mt.family(ch["p_value"], mt.BH, FAMILY)
    extra = {"direction": "train_step", **_projection(projected, chosen_base)}
    extra.update(
        {"switch_tests": family.tests, "switch_no_interval": family.untested, "switch_correction": family.line()}
    )
    return Plan(key, tuple(plan_layers), chosen_base, made_by, extra)


def _projection(projected: pd.DataFrame, baseline: str) -> dict[str, float | str]:
    """The plan's projected step at its point (the training oracle's row: the same choices)."""
    if projected.empty:
        return {}
    r = projected.iloc[0]
    out = {
        "baseline_p50_ms": float(r["baseline_p50_ms"]),
        "projected_ms": float(r["projected_ms"]),
        "projected_low_ms": float(r["projected_low_ms"]),
        "projected_high_ms": float(r["projected_high_ms"]),
        "projected_speedup": float(r["speedup"]),
        "projected_speedup_low": float(r["speedup_low"]),
        "projected_speedup_high": float(r["speedup_high"]),
        "calls_over_step": float(r["calls_over_step"]),  # the baseline's calls timed alone, over its step
    }
    return {k: v for k, v in out.items() if np.isfinite(v)}


def _evidence(row: pd.Series | None) -> Evidence | None:
    if row is None:
        return None
    lo, hi = (None if np.isnan(float(v)) else float(v) for v in (row["low"], row["high"]))
    return Evidence(str(row["algo"]), float(row["p50_ms"]), lo, hi)


def _layer(
    name: str, geometry: ConvGeometry, baseline: str, ch: pd.DataFrame, rows: pd.DataFrame, where: Where
) -> PlanLayer:
    """One module's choices in every direction; evidence (winner, runner-up, baseline) of its forward call."""
    mine = ch[ch["layer_name"].astype(str) == name]
    timed = rows[rows["layer_name"].astype(str) == name]
    if mine.empty and timed.empty:
        raise AnalysisError(f"{where.describe()} direction=train_step: layer {name} has no timed call of any algorithm")
    algo: dict[str, str] = {}
    sources: dict[str, str] = {}
    for d in DIRECTIONS:
        call = mine[mine["direction"] == d]
        if call.empty or not bool(call["baseline_timed"].iloc[0]):
            algo[d], sources[d] = baseline, "baseline"
            continue
        c = call.iloc[0]
        algo[d] = str(c["chosen"])
        if bool(c["switch"]) or pd.isna(c["challenger"]) or c["challenger_ms"] >= c["baseline_call_ms"]:
            sources[d] = "measured" if pd.notna(c["challenger"]) else "baseline"
        else:
            sources[d] = "tie"
    fwd = timed[timed["direction"] == "forward"].sort_values(["p50_ms", "algo"])
    winner = fwd.iloc[0] if len(fwd) else None
    runner_up = fwd.iloc[1] if len(fwd) > 1 else None
    base = fwd[fwd["algo"] == baseline]
    in_hw = (int(timed["in_h"].iloc[0]), int(timed["in_w"].iloc[0])) if len(timed) and "in_h" in timed else None
    untimed = [d for d in DIRECTIONS if sources[d] == "baseline" and mine[mine["direction"] == d].empty]
    note = "; ".join(f"{d}: {sources[d]}" for d in DIRECTIONS[1:])
    if untimed:
        note += f"; no timed {', '.join(untimed)} call here: the baseline kept"
    return PlanLayer(
        name,
        geometry,
        algo["forward"],
        sources["forward"],
        in_hw,
        _evidence(winner),
        _evidence(runner_up),
        _evidence(base.iloc[0] if len(base) else None),
        note,
        algo_backward_data=algo["backward_data"],
        algo_backward_filter=algo["backward_filter"],
    )
