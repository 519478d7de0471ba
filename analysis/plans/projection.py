"""A measured plan's projected latency: the sum of its chosen layers in place of the baseline's."""

from __future__ import annotations

import pandas as pd

from harness.algorithms.plan import Plan


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
