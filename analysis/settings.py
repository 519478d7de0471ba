"""Old path of :mod:`analysis.tree.settings` (kept so pickled callables and old imports still work)."""

from __future__ import annotations

from analysis.tree.settings import (
    ANY,
    COLUMNS,
    GPU_ONLY,
    OPTIONS,
    UNKNOWN,
    Setting,
    groups,
    identity,
    recorded,
    values,
)

__all__ = ["ANY", "COLUMNS", "GPU_ONLY", "OPTIONS", "Setting", "UNKNOWN", "groups", "identity", "recorded", "values"]
