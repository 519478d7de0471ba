"""Energy-delay product per point x algorithm where energy was measured, ranked per point."""

from __future__ import annotations

import pandas as pd

from analysis.tables.columns import (
    POINT,
)
from analysis.tables.registry import Table


def edp(algos: pd.DataFrame) -> pd.DataFrame:
    """Energy-delay product (J x s) per point x algorithm where energy was measured, ranked per point."""
    df = algos.loc[algos["edp_js"].notna(), [*POINT, "algo", "p50_ms", "energy_j", "edp_js"]].copy()
    df["edp_rank"] = df.groupby(POINT, observed=True)["edp_js"].rank(method="min")
    return df.sort_values([*POINT, "edp_rank"]).reset_index(drop=True)


TABLE = Table(
    name="edp",
    inputs=("algorithms",),
    compute=edp,
    position=100,
    about="energy-delay product, ranked",
)
