"""A row's median with its 95% interval, and whether rows are tied with the fastest of their group."""

from __future__ import annotations

import pandas as pd

from harness.results.uncertainty import log_se, row_interval, tied_with_fastest

__all__ = ["tied_with_fastest", "with_interval"]


def with_interval(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` plus ``log_se`` and the p50's 95% interval ``low_ms``/``high_ms`` (the stored distribution-free
    interval where the row has one, else normal on the log scale from ``log_se``)."""
    lo, hi = row_interval(rows)
    return rows.assign(log_se=log_se(rows), low_ms=lo, high_ms=hi)
