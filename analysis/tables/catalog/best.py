"""One row per point: the fastest algorithm, its margin, the least energy and energy-delay product."""

from __future__ import annotations

import pandas as pd

from analysis.tables.columns import (
    BASELINES,
    POINT,
)
from analysis.tables.registry import Table


def best(algos: pd.DataFrame) -> pd.DataFrame:
    """One row per point: the fastest algorithm, its margin over the runner-up, speedups over torch and
    guess, the algorithms with the least energy and the least energy-delay product, and every algorithm's
    p50 as a column ``p50_ms[<algo>]``."""
    ranked = algos[algos["p50_ms"].notna()].sort_values([*POINT, "p50_ms", "algo"])
    g = ranked.groupby(POINT, observed=True)
    first = g.nth(0).set_index(POINT)
    second = g.nth(1).set_index(POINT)
    out = pd.DataFrame(index=first.index)
    out["best_algo"] = first["algo"]
    out["best_p50_ms"] = first["p50_ms"]
    out["runner_up"] = second["algo"]
    out["margin"] = second["p50_ms"] / first["p50_ms"] - 1
    for ref in BASELINES:
        out[f"{ref}_p50_ms"] = first[f"{ref}_p50_ms"]
        out[f"speedup_vs_{ref}"] = first[f"speedup_vs_{ref}"]
    for col, name in (("energy_j", "energy"), ("edp_js", "edp")):
        have = algos[algos[col].notna()].sort_values([*POINT, col, "algo"]).groupby(POINT, observed=True).nth(0)
        have = have.set_index(POINT)
        out[f"best_{name}_algo"] = have["algo"]
        out[f"best_{col}"] = have[col]
    out["algos_ok"] = g.size()
    wide = algos.pivot_table(index=POINT, columns="algo", values="p50_ms", observed=True)
    wide.columns = [f"p50_ms[{a}]" for a in wide.columns]
    everything = algos[POINT].drop_duplicates().set_index(POINT)
    return everything.join(out).join(wide).reset_index().sort_values(POINT).reset_index(drop=True)


TABLE = Table(
    name="best",
    inputs=("algorithms",),
    compute=best,
    position=90,
    about="the fastest algorithm per point",
)
