"""One row per point x algorithm: p50, energy (dynamic: above idle), energy-delay product, speedups over torch
and guess, rank."""

from __future__ import annotations

import pandas as pd

from analysis.tables.columns import (
    BASELINES,
    POINT,
)
from analysis.tables.registry import Table
from harness.results.columns import dynamic_energy_per_inference_j
from harness.results.uncertainty import log_se


def algorithms(points: pd.DataFrame) -> pd.DataFrame:
    """One row per point x algorithm: p50, energy, energy-delay product, speedups over torch and guess, and the
    algorithm's rank at that point (1 = fastest; only ok points are ranked).

    ``energy_j`` (and the EDP, and every energy comparison built on this table) is the DYNAMIC energy per
    inference, the energy above idle (harness.results.columns.DEFINITIONS): the share of the energy the
    algorithm's work decides. ``total_energy_j`` is the whole device's, idle included. A row with no idle
    measurement has no dynamic energy (NaN: not measured) and drops out of the energy comparisons."""
    df = points[[*POINT, "algo", "status", "p50_ms", "energy_per_inference_j"]].rename(
        columns={"energy_per_inference_j": "total_energy_j"}
    )
    ok = df["status"] == "ok"
    dynamic = dynamic_energy_per_inference_j(points)
    df = df.assign(
        p50_ms=df["p50_ms"].astype(float).where(ok),
        energy_j=dynamic.astype(float).where(ok),
        total_energy_j=df["total_energy_j"].astype(float).where(ok),
        log_se=log_se(points),
    )
    df["edp_js"] = df["energy_j"] * df["p50_ms"] / 1e3
    for ref in BASELINES:
        refs = df.loc[(df["algo"] == ref) & df["p50_ms"].notna(), [*POINT, "p50_ms"]]
        df = df.merge(refs.rename(columns={"p50_ms": f"{ref}_p50_ms"}), on=POINT, how="left")
        df[f"speedup_vs_{ref}"] = df[f"{ref}_p50_ms"] / df["p50_ms"]
    df["rank"] = df.groupby(POINT, observed=True)["p50_ms"].rank(method="min")
    return df.sort_values([*POINT, "algo"]).reset_index(drop=True)


TABLE = Table(
    name="algorithms",
    inputs=("points",),
    compute=algorithms,
    position=80,
    about="every algorithm at every point, ranked",
)
