"""Old path of :mod:`analysis.tree` (kept so pickled callables and old imports still work).

The loading is split by step under analysis/tree/: records (LoadReport, Results), filters (Filters), read
(Parquet files), convert (Arrow to frames), resolve (latest wins, repeats pooled), loader (load, read_points).
"""

from __future__ import annotations

from analysis.tree.convert import (
    CATEGORICAL,
    separate_models,
    with_host_bound,
)
from analysis.tree.convert import (
    _empty as _empty,
)
from analysis.tree.convert import (
    _to_pandas as _to_pandas,
)
from analysis.tree.filters import (
    SETTINGS,
    Filters,
    flag,
    keep_settings,
)
from analysis.tree.filters import (
    _kind as _kind,
)
from analysis.tree.loader import (
    _read as _read,
)
from analysis.tree.loader import (
    by_setting,
    load,
    one_setting,
    read_points,
)
from analysis.tree.read import (
    DICTIONARY,
    POOL,
    UNUSED,
    check_filters,
    resolve_roots,
)
from analysis.tree.read import (
    _dataset as _dataset,
)
from analysis.tree.read import (
    _expression as _expression,
)
from analysis.tree.read import (
    _memory_pool as _memory_pool,
)
from analysis.tree.read import (
    _partition_values as _partition_values,
)
from analysis.tree.read import (
    _read_files as _read_files,
)
from analysis.tree.read import (
    _read_table as _read_table,
)
from analysis.tree.records import (
    BadFile,
    LoadReport,
    Results,
    tree_names,
)
from analysis.tree.resolve import (
    RESOLVE_KEY,
    drop_copies,
    fill_repeat,
    layers_of,
    point_codes,
    pool_repeats,
    resolve_layers,
    resolve_points,
    use_mean_for_missing_median,
)
from analysis.tree.resolve import (
    _drop_layer_copies as _drop_layer_copies,
)
from analysis.tree.resolve import (
    _grouped_by_point as _grouped_by_point,
)
from analysis.tree.resolve import (
    _resolve_layers_by_merge as _resolve_layers_by_merge,
)

_names = tree_names

__all__ = [
    "BadFile",
    "CATEGORICAL",
    "DICTIONARY",
    "Filters",
    "LoadReport",
    "POOL",
    "RESOLVE_KEY",
    "Results",
    "SETTINGS",
    "UNUSED",
    "by_setting",
    "check_filters",
    "drop_copies",
    "fill_repeat",
    "flag",
    "keep_settings",
    "layers_of",
    "load",
    "one_setting",
    "point_codes",
    "pool_repeats",
    "read_points",
    "resolve_layers",
    "resolve_points",
    "resolve_roots",
    "separate_models",
    "tree_names",
    "use_mean_for_missing_median",
    "with_host_bound",
]
