"""Per-layer plans measured end to end (algo=per_layer) against the rest, and the projection against the
measurement. Pure functions from the resolved points/layers DataFrames to DataFrames.

- ``plan_vs_others``: per per_layer point, its measured p50 and energy against guess, torch (the heuristic,
  or cudnn.benchmark where the torch row was measured with it), find, and the best single algorithm at the
  same point (stage, gpu, model, input size, batch, dtype): speedup = other p50 / plan p50 with its 95%
  interval (delta method) and verdict (faster / tied / slower, Benjamini-Hochberg over the whole table as
  in analysis.answer.speedups; no_interval without an interval), and the energy ratio.
- ``projection``: per per_layer point, the sum-of-layers projection of exactly the mix that ran (each layer's
  ``algo_used`` looked up in that algorithm's own run of the same layer at the same point, else in the find
  run's layer that ran it with that algorithm; the non-conv
  remainder from the baseline's run: guess where measured, else torch) against the measured p50:
  ``measured / projected`` with its interval (> 1: the projection was optimistic), the projected and the
  measured gain over the baseline, and the report's oracle projection (tables.oracle) beside it. A layer
  time looked up is the GPU's where one is (a host-bound row, harness.results.hostbound, only where no other
  timing of that algorithm there exists); a projection that needs a host-bound time (the mix's or the
  baseline's) is NaN and counted in ``host_bound_layers``, one that finds no timing in ``unrun_layers``.
- ``projection_bias``: per (stage, gpu, model, dtype), the geometric mean of measured / projected over the
  points, with the 95% interval of their own noise (uncertainty.geomean_interval): was the projection
  biased at the points measured, and which way?
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.answer import _verdict, with_interval
from analysis.tables import POINT
from harness.algorithms import ALGORITHMS
from harness.results import hostbound
from harness.results.read import latest
from harness.results.uncertainty import geomean_interval, log_se, ratio_interval

MIXED = ("per_layer", "find")  # a choice per layer, not one algorithm: never "the best single algorithm"
SINGLE = tuple(a for a in ALGORITHMS if a not in ("guess", "torch", *MIXED))
BASELINES = ("guess", "torch")

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
PROJECTION_COLUMNS = [
    *POINT,
    "plan_hash",
    "baseline",
    "baseline_p50_ms",
    "layers",
    "unrun_layers",
    "host_bound_layers",
    "projected_ms",
    "measured_ms",
    "measured_over_projected",
    "error_low",
    "error_high",
    "projected_gain",
    "measured_gain",
    "measured_gain_low",
    "measured_gain_high",
    "oracle_projected_ms",
]


def singles(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of single algorithms only (what the oracle and the plans choose among); the frame itself where
    it holds no other (no copy of millions of layer rows)."""
    mixed = df["algo"].isin(MIXED)  # on the categorical's codes: no string per row
    return df[~mixed] if mixed.any() else df


def _ok(points: pd.DataFrame) -> pd.DataFrame:
    ok = points[(points["status"] == "ok") & points["p50_ms"].notna()].copy()
    ok["algo"] = ok["algo"].astype(str)
    return with_interval(ok)


def torch_settings(points: pd.DataFrame) -> pd.DataFrame:
    """The latest torch row of each point per cudnn_benchmark setting, from UNRESOLVED points rows (the
    resolved tree keeps one row per point, so a torch point measured with and without cudnn.benchmark
    keeps only the later one; analysis.load.read_points gives them all)."""
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
    ok = _ok(points)
    plans = ok[ok["algo"] == "per_layer"]
    if plans.empty:
        return pd.DataFrame(columns=COMPARISON_COLUMNS)
    if torch_rows is not None and len(torch_rows):
        ok = pd.concat([ok[ok["algo"] != "torch"], _ok(torch_rows)], ignore_index=True)
    energy = "energy_per_inference_j"
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
    m["p_value"], m["q_value"], m["verdict"] = _verdict(r.ratio, r.log_se)
    m["energy_ratio"] = m["other_energy_j"] / m["plan_energy_j"]
    order = {"guess": 0, "torch": 1, "torch (cudnn.benchmark)": 2, "find": 3, "best single": 4}
    m = m.sort_values([*POINT, "other"], key=lambda s: s.map(order) if s.name == "other" else s)
    return m[COMPARISON_COLUMNS].reset_index(drop=True)


def projection(points: pd.DataFrame, layers: pd.DataFrame, oracle: pd.DataFrame | None = None) -> pd.DataFrame:
    """See the module docstring; one row per per_layer point."""
    ok = _ok(points)
    plans = ok[ok["algo"] == "per_layer"]
    if plans.empty:
        return pd.DataFrame(columns=PROJECTION_COLUMNS)
    lay = layers[layers["p50_ms"].notna()].copy()
    lay["algo"] = lay["algo"].astype(str)
    lay["abs_var"] = (lay["p50_ms"] * log_se(lay).fillna(0.0)) ** 2
    lay["host_bound"] = hostbound.mask(lay)
    mixed = lay.loc[lay["algo"] == "per_layer", [*POINT, "layer_index", "algo_used"]]
    # each single algorithm's own timing of a layer (status ok: its code ran it), keyed by what ran; where an
    # algorithm was not measured alone, the find run's timing of the layer it ran with that algorithm; a
    # host-bound timing only where there is no other
    keep = [*POINT, "layer_index", "algo_used", "p50_ms", "abs_var", "host_bound"]
    own = (
        lay.loc[(lay["status"] == "ok") & lay["algo"].isin([*SINGLE, *BASELINES])]
        .drop(columns="algo_used")
        .rename(columns={"algo": "algo_used"})[keep]
    )
    by_find = lay.loc[(lay["status"] == "ok") & (lay["algo"] == "find"), keep]
    own = pd.concat([own, by_find], ignore_index=True).sort_values("host_bound", kind="stable")
    own = own.drop_duplicates([*POINT, "layer_index", "algo_used"])
    per = mixed.merge(own, on=[*POINT, "layer_index", "algo_used"], how="left")
    g = per.groupby(POINT, observed=True)
    sums = pd.DataFrame(
        {
            "layers": g.size(),
            "unrun_layers": g["p50_ms"].agg(lambda s: int(s.isna().sum())),
            "mix_host_bound": g["host_bound"].agg(lambda s: int(s.eq(True).sum())),
            "conv_ms": g["p50_ms"].sum(),
            "conv_var": g["abs_var"].sum(),
        }
    ).reset_index()
    base = (
        ok[ok["algo"].isin(BASELINES)]
        .sort_values(
            [*POINT, "algo"], key=lambda s: s.map({b: i for i, b in enumerate(BASELINES)}) if s.name == "algo" else s
        )
        .drop_duplicates(POINT)
    )
    base_layers = (
        lay[(lay["status"] == "ok")].merge(base[[*POINT, "algo"]], on=[*POINT, "algo"]).groupby(POINT, observed=True)
    )
    base_conv = pd.DataFrame(
        {"baseline_conv_ms": base_layers["p50_ms"].sum(), "baseline_host_bound": base_layers["host_bound"].sum()}
    ).reset_index()
    base = (
        base[[*POINT, "algo", "p50_ms", "log_se"]]
        .rename(columns={"algo": "baseline", "p50_ms": "baseline_p50_ms", "log_se": "baseline_log_se"})
        .merge(base_conv, on=POINT)
    )
    out = (
        plans[[*POINT, "plan_hash", "p50_ms", "log_se"]]
        .rename(columns={"p50_ms": "measured_ms", "log_se": "measured_log_se"})
        .merge(base, on=POINT, how="left")
        .merge(sums, on=POINT, how="left")
    )
    host_bound = out.pop("mix_host_bound").fillna(0) + out.pop("baseline_host_bound").fillna(0)
    out["host_bound_layers"] = host_bound.astype(np.int64)
    remainder = (out["baseline_p50_ms"] - out["baseline_conv_ms"]).clip(lower=0.0)
    out["projected_ms"] = (remainder + out["conv_ms"]).where((out["unrun_layers"] == 0) & (host_bound == 0))
    proj_se = (
        np.sqrt(out["conv_var"] + (out["baseline_p50_ms"] * out["baseline_log_se"].fillna(0)) ** 2)
        / out["projected_ms"]
    )
    err = ratio_interval(out["measured_ms"], out["measured_log_se"].fillna(0), out["projected_ms"], proj_se)
    out["measured_over_projected"], out["error_low"], out["error_high"] = err.ratio, err.low, err.high
    out["error_log_se"] = err.log_se
    out["projected_gain"] = out["baseline_p50_ms"] / out["projected_ms"]
    gain = ratio_interval(
        out["baseline_p50_ms"], out["baseline_log_se"].fillna(0), out["measured_ms"], out["measured_log_se"].fillna(0)
    )
    out["measured_gain"], out["measured_gain_low"], out["measured_gain_high"] = gain.ratio, gain.low, gain.high
    if oracle is not None and len(oracle):
        out = out.merge(
            oracle[[*POINT, "projected_ms"]].rename(columns={"projected_ms": "oracle_projected_ms"}),
            on=POINT,
            how="left",
        )
    else:
        out["oracle_projected_ms"] = np.nan
    return out[[*PROJECTION_COLUMNS, "error_log_se"]].sort_values(POINT).reset_index(drop=True)


def projection_bias(proj: pd.DataFrame) -> pd.DataFrame:
    """Per (stage, gpu, model, dtype): geometric mean of measured / projected over the points with its 95%
    95% interval over the points measured, and the verdict: ``optimistic`` (the mix runs slower than its layers' sum) or
    ``pessimistic`` when the interval excludes 1, else ``within noise``."""
    cols = ["stage", "gpu", "model", "dtype", "points", "geomean_measured_over_projected", "low", "high", "verdict"]
    have = proj[proj["measured_over_projected"].notna()]
    if have.empty:
        return pd.DataFrame(columns=cols)
    rows = []
    for key, grp in have.groupby(["stage", "gpu", "model", "dtype"], observed=True):
        gm, lo, hi = geomean_interval(
            np.log(grp["measured_over_projected"].to_numpy(float)), grp["error_log_se"].to_numpy(float)
        )
        verdict = "optimistic" if lo > 1 else "pessimistic" if hi < 1 else "within noise"
        rows.append([*key, len(grp), gm, lo, hi, verdict])
    return pd.DataFrame(rows, columns=cols)
