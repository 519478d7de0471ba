"""What was measured: per stage x gpu x model x algorithm, points by status and the sizes covered."""

from __future__ import annotations

import pandas as pd

from analysis.tables.columns import (
    STATUSES,
    span,
)
from analysis.tables.registry import Table


def coverage(points: pd.DataFrame) -> pd.DataFrame:
    """What was measured: per stage x gpu x model x algorithm, points by status and the sizes covered."""
    key = ["stage", "gpu", "model", "algo"]
    counts = pd.crosstab([points[k].astype(str) for k in key], points["status"].astype(str))
    counts = counts.reindex(columns=sorted(set(counts.columns) | set(STATUSES), key=_status_order), fill_value=0)
    g = points.astype({k: str for k in key}).groupby(key, observed=True)
    counts["points"] = g.size()
    counts["sizes"] = g["input_size"].agg(lambda s: span(s))
    counts["batches"] = g["batch_size"].agg(lambda s: ",".join(map(str, sorted(set(s)))))
    counts.columns.name = None
    return counts.reset_index()


def _status_order(s: str) -> tuple[int, str]:
    return (STATUSES.index(s) if s in STATUSES else len(STATUSES), s)


TABLE = Table(
    name="coverage",
    inputs=("points",),
    compute=coverage,
    position=180,
    about="points measured, by status",
)
