"""Each pair of GPU types compared on the points both measured ok."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.tables.columns import (
    POINT,
)
from analysis.tables.registry import Table
from harness.results.uncertainty import geomean_interval


def gpu_pairs(algos: pd.DataFrame) -> pd.DataFrame:
    """Each pair of GPU types compared on the points both measured ok (same stage, model, algorithm, input
    size, batch, dtype): how many, how often the first is slower, and the geometric mean (with its 95%
    interval over the points matched, harness.results.uncertainty.geomean_interval), min and max of its p50
    over the second's (> 1: the first is slower); the same ratio for energy where both have it (the dynamic
    energy, above idle: analysis.tables.catalog.algorithms' energy_j).
    One row per stage x pair x model, and one per stage x pair over every model (model "(all)")."""
    cols = [
        "stage",
        "gpu_a",
        "gpu_b",
        "model",
        "matched",
        "a_slower",
        "a_slower_share",
        "geomean_p50_ratio",
        "p50_ratio_low",
        "p50_ratio_high",
        "min_p50_ratio",
        "max_p50_ratio",
        "energy_matched",
        "geomean_energy_ratio",
    ]
    key = [c for c in POINT if c != "gpu"] + ["algo"]
    algos = algos if "log_se" in algos else algos.assign(log_se=np.nan)
    ok = algos.loc[algos["p50_ms"].notna(), [*key, "gpu", "p50_ms", "energy_j", "log_se"]].copy()
    ok["gpu"] = ok["gpu"].astype(str)
    gpus = sorted(ok["gpu"].unique())
    frames = []
    for i, a in enumerate(gpus):
        for b in gpus[i + 1 :]:
            m = ok[ok["gpu"] == a].merge(ok[ok["gpu"] == b], on=key, suffixes=("_a", "_b"))
            if m.empty:
                continue
            m = m.assign(
                gpu_a=a,
                gpu_b=b,
                log_ratio=np.log(m["p50_ms_a"] / m["p50_ms_b"]),
                ratio_se=np.hypot(m["log_se_a"], m["log_se_b"]),
                log_energy=np.log(m["energy_j_a"] / m["energy_j_b"]),
            )
            frames += [m, m.assign(model="(all)")]
    if not frames:
        return pd.DataFrame(columns=cols)
    m = pd.concat(frames, ignore_index=True)
    m["model"] = m["model"].astype(str)
    g = m.groupby(["stage", "gpu_a", "gpu_b", "model"], observed=True)
    out = g.agg(
        matched=("log_ratio", "size"),
        a_slower=("log_ratio", lambda s: int((s > 0).sum())),
        mean_log=("log_ratio", "mean"),
        min_log=("log_ratio", "min"),
        max_log=("log_ratio", "max"),
        energy_matched=("log_energy", "count"),
        mean_log_energy=("log_energy", "mean"),
    ).reset_index()
    out["a_slower_share"] = out["a_slower"] / out["matched"]
    out["geomean_p50_ratio"] = np.exp(out["mean_log"])
    out["min_p50_ratio"], out["max_p50_ratio"] = np.exp(out["min_log"]), np.exp(out["max_log"])
    out["geomean_energy_ratio"] = np.exp(out["mean_log_energy"])
    intervals = [geomean_interval(grp["log_ratio"].to_numpy(), grp["ratio_se"].to_numpy())[1:] for _, grp in g]
    out["p50_ratio_low"], out["p50_ratio_high"] = zip(*intervals) if intervals else ((), ())
    out["model"] = pd.Categorical(out["model"], sorted(out["model"].unique(), key=lambda s: (s == "(all)", s)))
    return out.sort_values(["stage", "gpu_a", "gpu_b", "model"])[cols].reset_index(drop=True)


TABLE = Table(
    name="gpus",
    inputs=("algorithms",),
    compute=gpu_pairs,
    position=110,
    about="pairs of GPU types on the points both measured",
)
