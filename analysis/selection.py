"""Old path of :mod:`analysis.tree.selection` (kept so pickled callables and old imports still work)."""

from __future__ import annotations

from analysis.tree.selection import (
    GRAMMAR,
    MAX_LISTED,
    SELECT_COLUMNS,
    TIME_COLUMN,
    Selection,
    parse,
    present,
    select,
    split_by,
)

__all__ = [
    "GRAMMAR",
    "MAX_LISTED",
    "SELECT_COLUMNS",
    "Selection",
    "TIME_COLUMN",
    "parse",
    "present",
    "select",
    "split_by",
]
