"""Making a per-layer plan from measurements already in a results tree (pure: DataFrames in, a Plan out).

At one point (gpu, model, input size, batch size, dtype, stage), each conv layer gets the fastest of the
single algorithms whose own code ran it there (layer rows with status ``ok``), chosen only beyond noise and
corrected for the number of layers (``switches``): per layer, one test of "the fastest other algorithm is
faster than the baseline" (one-sided, its p-value times the number of other algorithms it was picked from:
harness.results.multiplicity.fastest_of), and Benjamini-Hochberg at a false discovery rate of 5% over the
family of the plan's layers that have a baseline row and another algorithm with an interval. A layer
switches where its q-value is at most 5%; elsewhere the baseline is kept (a tie), so a plan never switches
on noise, and at most about 5% of its switches are expected to be wrong however many layers it has. The
baseline is ``guess`` where guess was measured at the point (a GPU), else ``torch``.

A layer's interval comes from its row's summary statistics (``log_se``; a row without one, not enough
samples, makes the layer untested: the baseline is kept); a module called more than once per forward sums
its calls. The plan's ``extra`` says how many layers were tested and how they were corrected.

A host-bound layer row (its time is the host's: harness.results.hostbound) is no evidence: that algorithm
does not compete at that layer, and where it is the baseline's, the layer keeps the baseline (nothing says
switching helps; the note says why) and the plan has no projection.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.errors import AnalysisError
from analysis.plans.projection import projection
from analysis.plans.where import Where, at_point, evidence, not_held, plan_key, single_backend
from harness.algorithms import ALGORITHMS
from harness.algorithms.geometry import ConvGeometry
from harness.algorithms.plan import Plan, PlanLayer
from harness.results import hostbound
from harness.results import multiplicity as mt
from harness.results.schema import CONV_PARAMETERS
from harness.results.uncertainty import interval, log_se

BASELINE_ORDER = ("guess", "torch")  # the first measured at the point is the baseline
# What competes for a layer: every algorithm but find, which is itself a choice per layer (see from_find).
SINGLE = tuple(a for a in ALGORITHMS if a != "find")


def layer_candidates(layers: pd.DataFrame) -> pd.DataFrame:
    """Per algorithm x layer (module name): p50 (summed over the module's calls), the standard error of its
    log (``log_se``; NaN where a call has none), its 95% interval, and the layer's geometry; only single
    algorithms whose own code ran the layer (status ok) and timed it at the GPU's pace (an algorithm with a
    host-bound row of a module, any of its calls, does not compete there)."""
    ok = layers[(layers["status"] == "ok") & layers["p50_ms"].notna() & layers["algo"].astype(str).isin(SINGLE)].copy()
    ok["algo"] = ok["algo"].astype(str)
    late = host_bound_pairs(ok)
    if late:  # one point's rows: few
        ok = ok[[pair not in late for pair in zip(ok["algo"], ok["layer_name"].astype(str))]]
    ok["abs_var"] = (ok["p50_ms"] * log_se(ok)) ** 2
    ok["unknown"] = ok["abs_var"].isna()
    geometry = list(CONV_PARAMETERS)
    g = ok.groupby(["algo", "layer_name"], observed=True, sort=False)
    out = g.agg(
        p50_ms=("p50_ms", "sum"),
        abs_var=("abs_var", "sum"),
        unknown=("unknown", "any"),
        first_index=("layer_index", "min"),
        in_h=("in_h", "first"),
        in_w=("in_w", "first"),
        **{c: (c, "first") for c in geometry},
    ).reset_index()
    out["log_se"] = (np.sqrt(out.pop("abs_var")) / out["p50_ms"]).where(~out.pop("unknown"))
    out["lo"], out["hi"] = interval(np.log(out["p50_ms"]), out["log_se"])
    return out


def host_bound_pairs(layers: pd.DataFrame) -> set[tuple[str, str]]:
    """The (algorithm, module name) pairs of which some row is host-bound."""
    hb = layers[hostbound.mask(layers)]
    return set(zip(hb["algo"].astype(str), hb["layer_name"].astype(str)))


SWITCH_FAMILY = "one per layer with a baseline row and another algorithm: the fastest other against the baseline"


def switches(cand: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """Per layer of ``cand`` (layer_candidates) with a baseline row and at least one other algorithm: the
    fastest other (``challenger``), how many others it was picked from, the p-value of "it is faster than
    the baseline" (fastest_of its one-sided p), its Benjamini-Hochberg q-value over the layers, and
    ``switch`` (q <= 5%). NaN p: no interval, not tested, never a switch."""
    base = cand[cand["algo"] == baseline].set_index("layer_name")
    others = cand[cand["algo"] != baseline].sort_values(["layer_name", "p50_ms", "algo"])
    count = others.groupby("layer_name", sort=False).size()
    best = others.drop_duplicates("layer_name").set_index("layer_name")
    layers = best.index.intersection(base.index)
    b, c = base.loc[layers], best.loc[layers]
    lr = np.log(c["p50_ms"].to_numpy(dtype=float) / b["p50_ms"].to_numpy(dtype=float))
    se = np.hypot(c["log_se"].to_numpy(dtype=float), b["log_se"].to_numpy(dtype=float))
    p = mt.fastest_of(mt.p_faster(lr, se), count.loc[layers].to_numpy())
    q = mt.benjamini_hochberg(p)
    return pd.DataFrame(
        {
            "challenger": c["algo"].to_numpy(),
            "candidates": count.loc[layers].to_numpy(),
            "p_value": p,
            "q_value": q,
            "switch": mt.rejected(q),
        },
        index=layers,
    )


def choose(
    points: pd.DataFrame,
    layers: pd.DataFrame,
    where: Where,
    modules: list[tuple[str, ConvGeometry]],
    made_by: str = "",
    algos: tuple[str, ...] = (),
    baseline: str | None = None,
) -> Plan:
    """The plan for ``where`` from resolved points and layers (analysis.load), in the order of ``modules``
    (the model's conv layers: name and geometry, harness.algorithms.plan.conv_layers). ``algos``: only these
    compete (all measured where empty), e.g. the ones ai3 can run; ``baseline``: what a tie keeps (default:
    guess where measured, else torch, else the first of ``algos``). Refused (AnalysisError) where the point
    has no baseline, or a module has no timed row."""
    pts = at_point(points, where)
    pts = pts[pts["status"] == "ok"]
    if pts.empty:
        raise AnalysisError(not_held(points[points["status"] == "ok"], where))
    where = where.pinned(pts)
    pts = at_point(pts, where)
    measured = set(pts["algo"].astype(str)) & set(SINGLE)
    missing = [a for a in algos if a not in measured]
    if missing:
        raise AnalysisError(
            f"{where.describe()}: algorithm(s) {', '.join(missing)} not measured ok at this point; "
            f"measured: {', '.join(sorted(measured))}"
        )
    competing = set(algos) or measured
    if baseline is None:
        baseline = next((b for b in (*BASELINE_ORDER, *algos) if b in competing), None)
    if baseline not in competing:
        raise AnalysisError(
            f"{where.describe()}: no baseline among the competing algorithms "
            f"({', '.join(sorted(competing))}): measure algo=torch (or guess on a GPU) at this "
            "point, or name one with --baseline"
        )
    measured = competing
    pts = pts[pts["algo"].astype(str).isin(measured)]
    here = at_point(layers, where)[lambda d: d["algo"].astype(str).isin(measured)]
    cand = layer_candidates(here)
    tests = switches(cand, baseline)
    base_host_bound = {name for algo, name in host_bound_pairs(here) if algo == baseline}
    plan_layers = []
    for name, geometry in modules:
        rows = cand[cand["layer_name"] == name].sort_values(["p50_ms", "algo"])
        if name in base_host_bound:
            plan_layers.append(keep_host_bound_baseline(name, geometry, baseline, rows, here))
            continue
        if rows.empty:
            raise AnalysisError(
                f"{where.describe()}: layer {name} has no timed row of any algorithm "
                f"(measured: {', '.join(sorted(measured))})"
            )
        fastest = rows.iloc[0]
        runner_up = rows.iloc[1] if len(rows) > 1 else None
        base = rows[rows["algo"] == baseline]
        base = base.iloc[0] if len(base) else None
        note = None
        if base is None:
            algo, source = str(fastest["algo"]), "measured"
            note = f"the baseline {baseline} has no timed row here"
        elif len(rows) == 1:
            algo, source = baseline, "baseline"
        elif bool(tests.loc[name, "switch"]):
            algo, source = str(tests.loc[name, "challenger"]), "measured"
        else:
            algo, source = baseline, ("measured" if fastest["algo"] == baseline else "tie")
            if np.isnan(tests.loc[name, "p_value"]):
                note = f"{mt.NO_INTERVAL}: the baseline kept"
        plan_layers.append(
            PlanLayer(
                name,
                geometry,
                algo,
                source,
                (int(fastest["in_h"]), int(fastest["in_w"])),
                evidence(fastest),
                evidence(runner_up),
                evidence(base),
                note,
            )
        )
    key = plan_key(where, pts, single_backend(pts))
    plan = Plan(key, tuple(plan_layers), baseline, made_by)
    family = mt.family(tests["p_value"], mt.BH, SWITCH_FAMILY)
    extra = {
        **projection(plan, pts, cand),
        "switch_tests": family.tests,
        "switch_no_interval": family.untested,
        "switch_correction": family.line(),
    }
    return Plan(key, plan.layers, baseline, made_by, extra)


def keep_host_bound_baseline(
    name: str, geometry: ConvGeometry, baseline: str, rows: pd.DataFrame, layers: pd.DataFrame
) -> PlanLayer:
    """A layer whose baseline time is host-bound: the baseline is kept (its time is the host's, so nothing
    shows another algorithm beats it on the GPU), with the GPU-paced candidates as evidence."""
    mine = layers[layers["layer_name"].astype(str) == name].sort_values("layer_index")
    fastest = rows.iloc[0] if len(rows) else None
    runner_up = rows.iloc[1] if len(rows) > 1 else None
    in_hw = (int(mine["in_h"].iloc[0]), int(mine["in_w"].iloc[0]))
    note = (
        f"the baseline {baseline}'s time here is host-bound (the host's issuing, not the GPU's): kept, "
        "no evidence to switch"
    )
    return PlanLayer(name, geometry, baseline, "baseline", in_hw, evidence(fastest), evidence(runner_up), None, note)
