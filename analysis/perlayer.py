"""Old path of the per-layer plans' tables, now analysis/tables/catalog/ (plan_comparison, plan_projection,
plan_bias) and analysis/tables/columns.py (MIXED, SINGLE, singles); kept so pickled callables and old imports
still work."""

from __future__ import annotations

from analysis.tables.catalog.plan_bias import projection_bias
from analysis.tables.catalog.plan_comparison import COMPARISON_COLUMNS, ok_points, plan_vs_others, torch_settings
from analysis.tables.catalog.plan_projection import BASELINES, PROJECTION_COLUMNS, projection
from analysis.tables.columns import MIXED, SINGLE, singles

_ok = ok_points

__all__ = [
    "BASELINES",
    "COMPARISON_COLUMNS",
    "MIXED",
    "PROJECTION_COLUMNS",
    "SINGLE",
    "plan_vs_others",
    "projection",
    "projection_bias",
    "singles",
    "torch_settings",
]
