"""A plan for a point never measured, from the latency predictor."""

from __future__ import annotations

import pandas as pd

from analysis.errors import AnalysisError
from analysis.plans.where import Where
from harness.algorithms.geometry import ConvGeometry
from harness.algorithms.plan import Evidence, Plan, PlanKey, PlanLayer

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
