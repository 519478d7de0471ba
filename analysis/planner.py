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

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.errors import AnalysisError
from harness.algorithms import ALGORITHMS
from harness.algorithms.geometry import ConvGeometry
from harness.algorithms.plan import Evidence, Plan, PlanKey, PlanLayer
from harness.results import hostbound
from harness.results import multiplicity as mt
from harness.results.uncertainty import interval, log_se

BASELINE_ORDER = ("guess", "torch")  # the first measured at the point is the baseline
# What competes for a layer: every algorithm but find, which is itself a choice per layer (see from_find).
SINGLE = tuple(a for a in ALGORITHMS if a != "find")


@dataclass(frozen=True)
class Where:
    """The point a plan is made for."""

    model: str
    input_size: int
    batch_size: int = 1
    dtype: str = "float32"
    gpu: str | None = None  # None: the only one the tree holds
    stage: str | None = None  # None: the only one holding the point

    def describe(self) -> str:
        return (
            f"model={self.model} input_size={self.input_size} batch_size={self.batch_size} dtype={self.dtype}"
            + (f" gpu={self.gpu}" if self.gpu else "")
            + (f" stage={self.stage}" if self.stage else "")
        )


def _only(values: pd.Series, what: str, where: Where) -> str:
    found = sorted(set(values.astype(str)))
    if len(found) != 1:
        raise AnalysisError(
            f"{where.describe()}: the tree holds this point for {what} {', '.join(found)}; " f"choose one with --{what}"
        )
    return found[0]


# where's values and their plan make flags, in the order they narrow a model's points
WHERE_FLAGS = (
    ("input_size", "--size"),
    ("batch_size", "--batch"),
    ("dtype", "--dtype"),
    ("gpu", "--gpu"),
    ("stage", "--stage"),
)


def not_held(points: pd.DataFrame, where: Where) -> str:
    """Why no ok point is at ``where``: its first value the tree does not hold (narrowed by the ones before
    it), with the values it holds there, e.g. ``--size 999 is not valid: ...; held there: 224, 256``."""
    rows = points[points["model"].astype(str) == where.model]
    for column, flag in WHERE_FLAGS:
        value = getattr(where, column)
        if value is None:
            continue
        held = sorted({int(v) for v in rows[column]} if column.endswith("_size") else set(rows[column].astype(str)))
        if value not in held:
            return (
                f"{flag} {value} is not valid: no point of {where.model} measured ok at it in the tree; held "
                f"there: {', '.join(map(str, held)) or 'none'}"
            )
        rows = rows[(rows[column] if column.endswith("_size") else rows[column].astype(str)) == value]
    return f"{where.describe()}: no point measured ok in the tree"


def _at(df: pd.DataFrame, where: Where) -> pd.DataFrame:
    m = (
        (df["model"].astype(str) == where.model)
        & (df["input_size"] == where.input_size)
        & (df["batch_size"] == where.batch_size)
        & (df["dtype"].astype(str) == where.dtype)
    )
    for col in ("gpu", "stage"):
        if getattr(where, col) is not None:
            m &= df[col].astype(str) == getattr(where, col)
    return df[m]


def _evidence(row: pd.Series | None) -> Evidence | None:
    if row is None:
        return None
    lo, hi = (None if np.isnan(v) else v for v in (float(row["lo"]), float(row["hi"])))  # no interval: None
    return Evidence(str(row["algo"]), float(row["p50_ms"]), lo, hi)


def layer_candidates(layers: pd.DataFrame) -> pd.DataFrame:
    """Per algorithm x layer (module name): p50 (summed over the module's calls), the standard error of its
    log (``log_se``; NaN where a call has none), its 95% interval, and the layer's geometry; only single
    algorithms whose own code ran the layer (status ok) and timed it at the GPU's pace (an algorithm with a
    host-bound row of a module, any of its calls, does not compete there)."""
    ok = layers[(layers["status"] == "ok") & layers["p50_ms"].notna() & layers["algo"].astype(str).isin(SINGLE)].copy()
    ok["algo"] = ok["algo"].astype(str)
    late = _host_bound(ok)
    if late:  # one point's rows: few
        ok = ok[[pair not in late for pair in zip(ok["algo"], ok["layer_name"].astype(str))]]
    ok["abs_var"] = (ok["p50_ms"] * log_se(ok)) ** 2
    ok["unknown"] = ok["abs_var"].isna()
    geometry = [
        "in_channels",
        "out_channels",
        "kernel_h",
        "kernel_w",
        "stride_h",
        "stride_w",
        "pad_h",
        "pad_w",
        "dilation_h",
        "dilation_w",
        "groups",
    ]
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


def _host_bound(layers: pd.DataFrame) -> set[tuple[str, str]]:
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
    pts = _at(points, where)
    pts = pts[pts["status"] == "ok"]
    if pts.empty:
        raise AnalysisError(not_held(points[points["status"] == "ok"], where))
    where = Where(
        where.model,
        where.input_size,
        where.batch_size,
        where.dtype,
        where.gpu or _only(pts["gpu"], "gpu", where),
        where.stage or _only(pts["stage"], "stage", where),
    )
    pts = _at(pts, where)
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
    here = _at(layers, where)[lambda d: d["algo"].astype(str).isin(measured)]
    cand = layer_candidates(here)
    tests = switches(cand, baseline)
    base_host_bound = {name for algo, name in _host_bound(here) if algo == baseline}
    plan_layers = []
    for name, geometry in modules:
        rows = cand[cand["layer_name"] == name].sort_values(["p50_ms", "algo"])
        if name in base_host_bound:
            plan_layers.append(_keep_host_bound_baseline(name, geometry, baseline, rows, here))
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
                _evidence(fastest),
                _evidence(runner_up),
                _evidence(base),
                note,
            )
        )
    first = pts.iloc[0]
    backends = set(pts.loc[pts["algo"].astype(str) != "torch", "backend"].dropna().astype(str)) - {"torch"}
    key = PlanKey(
        where.model,
        where.gpu,
        _str(first.get("device_name")),
        where.dtype,
        where.input_size,
        where.batch_size,
        _str(first.get("cudnn_version")),
        backends.pop() if len(backends) == 1 else None,
    )
    plan = Plan(key, tuple(plan_layers), baseline, made_by)
    family = mt.family(tests["p_value"], mt.BH, SWITCH_FAMILY)
    extra = {
        **projection(plan, pts, cand),
        "switch_tests": family.tests,
        "switch_no_interval": family.untested,
        "switch_correction": family.line(),
    }
    return Plan(key, plan.layers, baseline, made_by, extra)


def _keep_host_bound_baseline(
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
    return PlanLayer(name, geometry, baseline, "baseline", in_hw, _evidence(fastest), _evidence(runner_up), None, note)


def _str(v: object) -> str | None:
    return None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)


def projection(plan: Plan, points: pd.DataFrame, cand: pd.DataFrame) -> dict[str, float]:
    """The plan's own sum-of-layers projection at its point: the baseline's p50 minus its conv layers'
    sum plus the chosen layers' sum (what analysis.perlayer compares with the measured mixed model)."""
    base_point = points[points["algo"].astype(str) == plan.baseline]
    if base_point.empty:
        return {}
    p50 = float(base_point["p50_ms"].iloc[0])
    base = cand[cand["algo"] == plan.baseline].set_index("layer_name")["p50_ms"]
    chosen = cand.set_index(["algo", "layer_name"])["p50_ms"]
    try:
        base_sum = float(sum(base[layer.name] for layer in plan.layers))
        chosen_sum = float(sum(chosen[(layer.algo, layer.name)] for layer in plan.layers))
    except KeyError:
        return {}
    projected = max(p50 - base_sum, 0.0) + chosen_sum
    return {
        "baseline_p50_ms": p50,
        "baseline_conv_ms": base_sum,
        "plan_conv_ms": chosen_sum,
        "projected_ms": projected,
        "projected_speedup": p50 / projected,
    }


def from_find(
    points: pd.DataFrame, layers: pd.DataFrame, where: Where, modules: list[tuple[str, ConvGeometry]], made_by: str = ""
) -> Plan:
    """The plan cuDNN's exhaustive search made at ``where`` (an algo=find run): each layer the algorithm
    Find picked (its row's ``algo_used``), source ``find``, with its p50 and interval from the find run's
    layer pass (none where that time is host-bound) and Find's own times in the note (the row's detail)."""
    pts = _at(points, where)
    pts = pts[(pts["status"] == "ok") & (pts["algo"].astype(str) == "find")]
    if pts.empty:
        raise AnalysisError(
            f"{where.describe()}: no algo=find point measured ok (python -m harness algo=find ... on a GPU)"
        )
    where = Where(
        where.model,
        where.input_size,
        where.batch_size,
        where.dtype,
        where.gpu or _only(pts["gpu"], "gpu", where),
        where.stage or _only(pts["stage"], "stage", where),
    )
    pts = _at(pts, where)
    rows = _at(layers, where)
    rows = rows[(rows["algo"].astype(str) == "find") & rows["p50_ms"].notna()].copy()
    se = log_se(rows).fillna(0.0)
    rows["lo"], rows["hi"] = interval(np.log(rows["p50_ms"].astype(float)), se)
    plan_layers = []
    for name, geometry in modules:
        mine = rows[rows["layer_name"] == name].sort_values("layer_index")
        if mine.empty:
            raise AnalysisError(f"{where.describe()}: layer {name} has no row in the find run")
        r = mine.iloc[0]
        used = str(r["algo_used"])
        evidence = Evidence(used, float(r["p50_ms"]), float(r["lo"]), float(r["hi"]))
        detail = r.get("detail")
        note = str(detail) if isinstance(detail, str) else None
        if hostbound.mask(mine).any():  # Find's choice stands; the pass's time of it is the host's, not evidence
            evidence, note = (
                None,
                "; ".join(
                    filter(None, [note, "the find run's time of this layer is host-bound: " "no evidence shown"])
                ),
            )
        plan_layers.append(
            PlanLayer(name, geometry, used, "find", (int(r["in_h"]), int(r["in_w"])), evidence, note=note)
        )
    first = pts.iloc[0]
    key = PlanKey(
        where.model,
        where.gpu,
        _str(first.get("device_name")),
        where.dtype,
        where.input_size,
        where.batch_size,
        _str(first.get("cudnn_version")),
        _str(first.get("backend")),
    )
    return Plan(key, tuple(plan_layers), "find", made_by)


DEFAULT_MARGIN = 0.10  # a predicted switch must be at least this much faster (about a predictor's held-out error)


def predicted(
    where: Where,
    modules: list[tuple[str, ConvGeometry]],
    predict,
    specs: dict,
    algos: tuple[str, ...],
    baseline: str | None = None,
    margin: float = DEFAULT_MARGIN,
    backend: str | None = None,
    made_by: str = "",
) -> Plan:
    """A plan for a point never measured, from the latency predictor (analysis.predictor; ``predict``: its
    model's ``predict`` on ``layer_features`` rows): each layer's shapes traced on the meta device at
    ``where``'s input size and batch, every algorithm of ``algos`` predicted on it, and the fastest chosen
    only where it beats the baseline (default: the first of ``algos``) by more than ``margin`` (predictions
    carry no interval; the margin stands for the predictor's error). Every layer is marked ``predicted``;
    on the CPU (``backend`` reference) an algorithm that cannot run a layer is not offered there."""
    from analysis.layers import trace
    from analysis.predictor import layer_features
    from harness.algorithms import reference
    from harness.measure.roofline import conv_bytes

    if not algos:
        raise AnalysisError("a predicted plan needs the algorithms to choose among (--algos)")
    baseline = baseline or algos[0]
    if baseline not in algos:
        raise AnalysisError(f"--baseline {baseline} is not among --algos {','.join(algos)}")
    traced = trace(where.model, where.input_size, where.batch_size).layers
    rows = []
    for name, geometry in modules:
        t = traced.get(name)
        if t is None:
            raise AnalysisError(f"{where.describe()}: layer {name} is not called in a forward at this input size")
        g = t.geometry
        weight = g["out_channels"] * (g["in_channels"] // g["groups"]) * g["kernel_h"] * g["kernel_w"]
        for algo in algos:
            if backend == "reference" and algo != "torch" and reference.supports(algo, geometry) is not None:
                continue
            rows.append(
                {
                    **g,
                    "layer_name": name,
                    "algo": algo,
                    "algo_used": algo,
                    "gpu": where.gpu or "local",
                    "dtype": where.dtype,
                    "batch_size": where.batch_size,
                    "math_type": None,
                    "in_h": t.in_shape[2],
                    "in_w": t.in_shape[3],
                    "out_h": t.out_shape[2],
                    "out_w": t.out_shape[3],
                    "flops": t.flops,
                    "bytes": conv_bytes(t.in_shape, t.out_shape, weight, where.dtype),
                }
            )
    frame = pd.DataFrame(rows)
    frame["predicted_ms"] = predict(frame[["layer_name", "gpu"]].join(layer_features(frame, specs)))
    plan_layers = []
    for name, geometry in modules:
        mine = frame[frame["layer_name"] == name].sort_values(["predicted_ms", "algo"])
        best = mine.iloc[0]
        runner_up = mine.iloc[1] if len(mine) > 1 else None
        base = mine[mine["algo"] == baseline]
        base = base.iloc[0] if len(base) else None
        if base is None or best["predicted_ms"] * (1 + margin) < base["predicted_ms"]:
            algo = str(best["algo"])
        else:
            algo = baseline
        ev = [
            None if r is None else Evidence(str(r["algo"]), float(r["predicted_ms"])) for r in (best, runner_up, base)
        ]
        plan_layers.append(
            PlanLayer(
                name,
                geometry,
                algo,
                "predicted",
                (int(best["in_h"]), int(best["in_w"])),
                *ev,
                note=None if base is not None else f"the baseline {baseline} cannot run it",
            )
        )
    key = PlanKey(where.model, where.gpu, None, where.dtype, where.input_size, where.batch_size, None, backend)
    return Plan(
        key,
        tuple(plan_layers),
        baseline,
        made_by,
        {
            "predicted_conv_ms": float(
                sum(frame.set_index(["layer_name", "algo"]).loc[(x.name, x.algo), "predicted_ms"] for x in plan_layers)
            )
        },
    )
