"""The plan cuDNN's exhaustive search (an algo=find run) made, read back from the run's layer rows."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.errors import AnalysisError
from analysis.plans.where import Where, at_point, optional_str, plan_key
from harness.algorithms.geometry import ConvGeometry
from harness.algorithms.plan import Evidence, Plan, PlanLayer
from harness.results import hostbound
from harness.results.uncertainty import interval, log_se


def from_find(
    points: pd.DataFrame, layers: pd.DataFrame, where: Where, modules: list[tuple[str, ConvGeometry]], made_by: str = ""
) -> Plan:
    """The plan cuDNN's exhaustive search made at ``where`` (an algo=find run): each layer the algorithm
    Find picked (its row's ``algo_used``), source ``find``, with its p50 and interval from the find run's
    layer pass (none where that time is host-bound) and Find's own times in the note (the row's detail)."""
    pts = at_point(points, where)
    pts = pts[(pts["status"] == "ok") & (pts["algo"].astype(str) == "find")]
    if pts.empty:
        raise AnalysisError(
            f"{where.describe()}: no algo=find point measured ok (python -m harness algo=find ... on a GPU)"
        )
    where = where.pinned(pts)
    pts = at_point(pts, where)
    rows = at_point(layers, where)
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
    key = plan_key(where, pts, optional_str(pts.iloc[0].get("backend")))
    return Plan(key, tuple(plan_layers), "find", made_by)
