"""Old path of :mod:`analysis.stats.repeats` (kept so pickled callables and old imports still work)."""

from __future__ import annotations

from analysis.stats.repeats import (
    BETWEEN_COLUMNS,
    SOURCES,
    Pooled,
    alone,
    methods_sentences,
    no_between,
    pool,
)

__all__ = ["BETWEEN_COLUMNS", "Pooled", "SOURCES", "alone", "methods_sentences", "no_between", "pool"]
