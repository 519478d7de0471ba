"""Points that did not measure ok, grouped by what went wrong."""

from __future__ import annotations

import pandas as pd

from analysis.tables.columns import (
    span,
)
from analysis.tables.registry import Table


def failures(points: pd.DataFrame) -> pd.DataFrame:
    """Points that did not measure ok, grouped by what went wrong (same status and message)."""
    bad = points[points["status"] != "ok"].copy()
    bad["error"] = bad["error"].fillna("").astype(str).str.slice(0, 200)
    key = ["stage", "gpu", "model", "algo", "status", "error"]
    out = (
        bad.groupby(key, observed=True, dropna=False)
        .agg(points=("input_size", "size"), sizes=("input_size", span))
        .reset_index()
    )
    return out.sort_values(["status", *key[:4]]).reset_index(drop=True)


TABLE = Table(
    name="failures",
    inputs=("points",),
    compute=failures,
    position=190,
    about="points that failed, by status and message",
)
