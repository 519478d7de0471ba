"""The headline per (stage, gpu, model, dtype, layout): the sole winner seen most often, ties, the best speedups."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.tables.catalog.competitors import REFERENCES
from analysis.tables.registry import Table


def headline(summary: pd.DataFrame, wins: pd.DataFrame) -> pd.DataFrame:
    """Per (stage, gpu, model, dtype, layout): the sole winner seen most often, how many points are ties, and per
    reference the algorithm with the largest geometric-mean speedup above 1 beyond noise (speedup_summary's
    ``beyond_noise``: corrected over its table; "none beyond noise" when none), with its interval; and how
    often guess is the fastest or tied with it."""
    key = ["stage", "gpu", "model", "dtype", "layout"]
    rows = []
    for k, grp in wins.groupby(key, observed=True, sort=True):
        row: dict = {**dict(zip(key, k)), "points": len(grp)}
        sole = grp.loc[grp["sole_winner"], "fastest"].astype(str).value_counts()
        row["most_often_sole_winner"] = sole.index[0] if len(sole) else None
        row["times_sole_winner"] = int(sole.iloc[0]) if len(sole) else 0
        row["tied_points"] = int((~grp["sole_winner"]).sum())
        for ref in REFERENCES:
            s = summary[
                (summary["reference"] == ref)
                & np.logical_and.reduce([summary[c].astype(str) == str(v) for c, v in zip(key, k)])
            ]
            above = s[s["beyond_noise"].astype(bool) & (s["geomean_speedup"] > 1)].sort_values(
                ["geomean_speedup", "algo"], ascending=[False, True]
            )
            top = above.iloc[0] if len(above) else None
            row[f"best_vs_{ref}"] = top["algo"] if top is not None else (None if s.empty else "none beyond noise")
            row[f"speedup_vs_{ref}"] = top["geomean_speedup"] if top is not None else np.nan
            row[f"speedup_vs_{ref}_low"] = top["low"] if top is not None else np.nan
            row[f"speedup_vs_{ref}_high"] = top["high"] if top is not None else np.nan
        known = grp["guess_is_fastest_or_tied"].dropna()
        row["guess_fastest_or_tied_share"] = float(known.astype(bool).mean()) if len(known) else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


TABLE = Table(
    name="summary",
    inputs=("speedup_summary", "winners"),
    compute=headline,
    position=10,
    about="the headline answer",
)
