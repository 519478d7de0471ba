"""A points row against its reference entry: pure, no files.

The ratio is the row's p50 over the reference's, with the 95% interval of a ratio of two independent
medians (``harness.results.uncertainty``: the delta method on log p50, each side's standard error from its
median's confidence interval, or from std and n). With a relative tolerance ``tol``:

- ``slower``: the whole interval lies above 1 + tol (slower beyond the tolerance, with confidence);
- ``faster``: the whole interval lies below 1 / (1 + tol);
- ``within``: anything else: the difference is inside the tolerance or inside the noise;
- ``no_reference``: the references have no entry for the point.

A side whose uncertainty is unknown contributes none (only the tolerance protects it). A row that did not
measure (status other than ok) gets no status (None): there is no latency to check.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from harness.references.format import Entry
from harness.results.uncertainty import classify_ratio, log_se, ratio_interval

_STATS = ("p50_ms", "ci95_low_ms", "ci95_high_ms", "std_ms", "n")


@dataclass(frozen=True)
class Check:
    """The verdict on one row, and the numbers behind it (ratio = row p50 / reference p50)."""

    status: str
    ratio: float | None = None
    low: float | None = None
    high: float | None = None
    tolerance: float | None = None

    def describe(self) -> str:
        if self.ratio is None:
            return self.status
        return (
            f"{self.status}: x{self.ratio:.3f} of the reference (95% CI {self.low:.3f}-{self.high:.3f}, "
            f"tolerance {self.tolerance:.1%})"
        )


def _se(stats: Mapping[str, Any]) -> float:
    frame = pd.DataFrame([{k: (np.nan if stats.get(k) is None else float(stats[k])) for k in _STATS}])
    return float(np.nan_to_num(log_se(frame).iloc[0], nan=0.0))


def check(row: Mapping[str, Any], entry: Entry | None, tolerance: float | None = None) -> Check | None:
    """The verdict on ``row`` against ``entry``; ``tolerance`` (e.g. the stage's) replaces the entry's own."""
    p50 = row.get("p50_ms")
    if row.get("status") != "ok" or p50 is None or not np.isfinite(p50) or p50 <= 0:
        return None
    if entry is None:
        return Check("no_reference")
    tol = entry.tolerance if tolerance is None else tolerance
    ref = {k: getattr(entry, k) for k in _STATS}
    r = ratio_interval([p50], [_se(row)], [entry.p50_ms], [_se(ref)])  # reference / value = row / entry
    ratio, low, high = float(r.ratio[0]), float(r.low[0]), float(r.high[0])
    verdict = str(classify_ratio(low, high, tol).item())
    status = "within" if verdict == "same" else verdict
    return Check(status, ratio, low, high, tol)


def reference_status(row: Mapping[str, Any], entry: Entry | None, tolerance: float | None = None) -> str | None:
    """Only the status of ``check`` (the ``reference_status`` column)."""
    c = check(row, entry, tolerance)
    return None if c is None else c.status
