"""``projection``: per per_layer point, the sum-of-layers projection of exactly the mix that ran (each layer's
``algo_used`` looked up in that algorithm's own run of the same layer at the same point, else in the find run's
layer that ran it with that algorithm; the non-conv remainder from the baseline's run: guess where measured, else
torch) against the measured p50: ``measured / projected`` with its interval (> 1: the projection was optimistic),
the projected and the measured gain over the baseline, and the report's oracle projection
(analysis.tables.catalog.oracle) beside it. A layer time looked up is the GPU's where one is (a host-bound row,
harness.results.hostbound, only where no other timing of that algorithm there exists); a projection that needs a
host-bound time (the mix's or the baseline's) is NaN and counted in ``host_bound_layers``, one that finds no
timing in ``unrun_layers``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.tables.catalog.plan_comparison import ok_points
from analysis.tables.columns import (
    POINT,
    SINGLE,
)
from analysis.tables.registry import Table
from harness.results import hostbound
from harness.results.uncertainty import log_se, ratio_interval

BASELINES = ("guess", "torch")


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


def projection(points: pd.DataFrame, layers: pd.DataFrame, oracle: pd.DataFrame | None = None) -> pd.DataFrame:
    """See the module docstring; one row per per_layer point."""
    ok = ok_points(points)
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


TABLE = Table(
    name="plan_projection",
    inputs=("points", "layers", "oracle"),
    compute=projection,
    position=160,
    about="per-layer plans' projection against their measurement",
)
