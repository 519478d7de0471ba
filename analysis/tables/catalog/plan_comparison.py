"""``plan_vs_others``: per per_layer point, its measured p50 and energy against guess, torch (the heuristic, or
cudnn.benchmark where the torch row was measured with it), find, and the best single algorithm at the same point
(stage, gpu, model, input size, batch, dtype): speedup = other p50 / plan p50 with its 95% interval (delta
method) and verdict (faster / tied / slower, Benjamini-Hochberg over the whole table as in
analysis.tables.catalog.speedups; no_interval without an interval), and the energy ratio (of the dynamic
energies per inference, above idle: harness.results.columns.DEFINITIONS; NaN where either has none).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.stats.intervals import with_interval
from analysis.stats.verdicts import verdict
from analysis.tables.columns import (
    POINT,
    SINGLE,
)
from analysis.tables.registry import Table
from harness.results.columns import dynamic_energy_per_inference_j
from harness.results.read import latest
from harness.results.uncertainty import ratio_interval

COMPARISON_COLUMNS = [
    *POINT,
    "plan_hash",
    "plan_p50_ms",
    "plan_low_ms",
    "plan_high_ms",
    "plan_energy_j",
    "other",
    "other_algo",
    "other_p50_ms",
    "other_low_ms",
    "other_high_ms",
    "speedup",
    "speedup_low",
    "speedup_high",
    "verdict",
    "energy_ratio",
    "p_value",
    "q_value",
]


def ok_points(points: pd.DataFrame) -> pd.DataFrame:
    """The ok points with a p50, algorithms as strings, each with its 95% interval (the plans and the rest)."""
    ok = points[(points["status"] == "ok") & points["p50_ms"].notna()].copy()
    ok["algo"] = ok["algo"].astype(str)
    return with_interval(ok)


def torch_settings(points: pd.DataFrame) -> pd.DataFrame:
    """The latest torch row of each point per cudnn_benchmark setting, from UNRESOLVED points rows (the
    resolved tree keeps one row per point, so a torch point measured with and without cudnn.benchmark
    keeps only the later one; analysis.tree.read_points gives them all)."""
    torch_rows = points[points["algo"].astype(str) == "torch"]
    if torch_rows.empty or "cudnn_benchmark" not in torch_rows:
        return torch_rows
    key = [*POINT, "algo", "_bench"]
    rows = torch_rows.assign(_bench=torch_rows["cudnn_benchmark"].astype(object).fillna(False).astype(bool))
    return latest(rows, key).drop(columns="_bench").reset_index(drop=True)


def plan_vs_others(points: pd.DataFrame, torch_rows: pd.DataFrame | None = None) -> pd.DataFrame:
    """See the module docstring; one row per per_layer point x other (guess, torch, find, best single).
    ``torch_rows``: torch's rows per cudnn_benchmark setting (``torch_settings``), where both were measured;
    else the resolved points' torch row."""
    ok = ok_points(points)
    plans = ok[ok["algo"] == "per_layer"]
    if plans.empty:
        return pd.DataFrame(columns=COMPARISON_COLUMNS)
    if torch_rows is not None and len(torch_rows):
        ok = pd.concat([ok[ok["algo"] != "torch"], ok_points(torch_rows)], ignore_index=True)
    energy = "_dynamic_energy_j"  # the analysis' energy: above idle (harness.results.columns.DEFINITIONS)
    ok = ok.assign(**{energy: dynamic_energy_per_inference_j(ok)})
    plans = plans.assign(**{energy: dynamic_energy_per_inference_j(plans)})
    others = []
    for name in ("guess", "torch", "find"):
        o = ok[ok["algo"] == name].copy()
        if name == "torch" and "cudnn_benchmark" in o:
            o["other"] = np.where(
                o["cudnn_benchmark"].astype(object).fillna(False).astype(bool), "torch (cudnn.benchmark)", "torch"
            )
        else:
            o["other"] = name
        others.append(o)
    single = ok[ok["algo"].isin(SINGLE)].sort_values([*POINT, "p50_ms", "algo"]).drop_duplicates(POINT)
    others.append(single.assign(other="best single"))
    o = pd.concat(others, ignore_index=True)
    keep = [*POINT, "other", "algo", "p50_ms", "low_ms", "high_ms", "log_se", energy]
    o = o[keep].rename(
        columns={
            "algo": "other_algo",
            "p50_ms": "other_p50_ms",
            "low_ms": "other_low_ms",
            "high_ms": "other_high_ms",
            "log_se": "other_log_se",
            energy: "other_energy_j",
        }
    )
    p = plans[[*POINT, "plan_hash", "p50_ms", "low_ms", "high_ms", "log_se", energy]].rename(
        columns={
            "p50_ms": "plan_p50_ms",
            "low_ms": "plan_low_ms",
            "high_ms": "plan_high_ms",
            "log_se": "plan_log_se",
            energy: "plan_energy_j",
        }
    )
    m = p.merge(o, on=POINT)
    if m.empty:
        return pd.DataFrame(columns=COMPARISON_COLUMNS)
    r = ratio_interval(m["other_p50_ms"], m["other_log_se"], m["plan_p50_ms"], m["plan_log_se"])
    m["speedup"], m["speedup_low"], m["speedup_high"] = r.ratio, r.low, r.high
    m["p_value"], m["q_value"], m["verdict"] = verdict(r.ratio, r.log_se)
    m["energy_ratio"] = m["other_energy_j"] / m["plan_energy_j"]
    order = {"guess": 0, "torch": 1, "torch (cudnn.benchmark)": 2, "find": 3, "best single": 4}
    m = m.sort_values([*POINT, "other"], key=lambda s: s.map(order) if s.name == "other" else s)
    return m[COMPARISON_COLUMNS].reset_index(drop=True)


TABLE = Table(
    name="plan_comparison",
    inputs=("points", "torch_rows"),
    compute=plan_vs_others,
    position=150,
    about="per-layer plans against the rest",
)
