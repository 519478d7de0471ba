"""A results tree, loaded: reading its Parquet files, filtering, latest-wins resolution and pooled repeats
(``load``), every points row unresolved (``read_points``), the settings rows were measured with (``settings``),
the row keys (``keys``), selections of runs (``selection``) and GPU datasheets (``specs``).

Modules, one step each: records (LoadReport, Results), filters (Filters and their flags), read (Parquet files),
convert (Arrow tables to frames), resolve (copies, latest wins, repeats), loader (the entry points).
"""

from __future__ import annotations

from analysis.tree.filters import SETTINGS, Filters, flag
from analysis.tree.loader import by_setting, load, one_setting, read_points
from analysis.tree.read import resolve_roots
from analysis.tree.records import BadFile, LoadReport, Results

__all__ = [
    "SETTINGS",
    "BadFile",
    "Filters",
    "LoadReport",
    "Results",
    "by_setting",
    "flag",
    "load",
    "one_setting",
    "read_points",
    "resolve_roots",
]
