"""``projection_bias``: per (stage, gpu, model, dtype), the geometric mean of measured / projected over the points,
with the 95% interval of their own noise (harness.results.uncertainty.geomean_interval): was the projection
biased at the points measured, and which way?
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.stats.verdicts import bias_verdict
from analysis.tables.registry import Table
from harness.results.uncertainty import geomean_interval


def projection_bias(proj: pd.DataFrame) -> pd.DataFrame:
    """Per (stage, gpu, model, dtype): geometric mean of measured / projected over the points with its 95%
    95% interval over the points measured, and the verdict: ``optimistic`` (the mix runs slower than its layers' sum) or
    ``pessimistic`` when the interval excludes 1, else ``within noise``."""
    cols = [
        "stage",
        "gpu",
        "model",
        "dtype",
        "layout",
        "points",
        "geomean_measured_over_projected",
        "low",
        "high",
        "verdict",
    ]
    have = proj[proj["measured_over_projected"].notna()]
    if have.empty:
        return pd.DataFrame(columns=cols)
    rows = []
    for key, grp in have.groupby(["stage", "gpu", "model", "dtype", "layout"], observed=True):
        gm, lo, hi = geomean_interval(
            np.log(grp["measured_over_projected"].to_numpy(float)), grp["error_log_se"].to_numpy(float)
        )
        verdict = bias_verdict(lo, hi)
        rows.append([*key, len(grp), gm, lo, hi, verdict])
    return pd.DataFrame(rows, columns=cols)


TABLE = Table(
    name="plan_bias",
    inputs=("plan_projection",),
    compute=projection_bias,
    position=170,
    about="the projection's bias per model",
)
