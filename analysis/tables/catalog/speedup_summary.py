"""``speedup_summary``: per (stage, gpu, model, dtype, algorithm, reference): the geometric-mean speedup over the
points with an interval, with the 95% interval of their measurement noise
(harness.results.uncertainty.geomean_interval), how many points were faster / tied / slower / without an
interval, and ``beyond_noise``: Benjamini-Hochberg over the table's rows (from each interval, normal on the log
scale).

Each table's family is the table: its comparisons, their number and the correction are in
analysis.stats.verdicts.family_line.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.stats.verdicts import VERDICTS, corrected
from analysis.tables.registry import Table
from harness.results import multiplicity as mt
from harness.results.uncertainty import Z95, geomean_interval


def speedup_summary(sp: pd.DataFrame) -> pd.DataFrame:
    """Geometric-mean speedup per (stage, gpu, model, dtype, algo, reference) over the sizes and batches with
    an interval, with the 95% interval of their own noise, and the verdict counts; ``beyond_noise``: the
    interval's Benjamini-Hochberg q-value (over the table's rows, two one-sided tests each) is at most 5%."""
    key = ["stage", "gpu", "model", "dtype", "layout", "algo", "reference"]
    cols = [*key, "points", "geomean_speedup", "low", "high", "p_value", "q_value", "beyond_noise", *VERDICTS]
    if sp.empty:
        return pd.DataFrame(columns=cols)
    rows = []
    lr = np.log(sp["speedup"].to_numpy(dtype=float))
    se = sp["ratio_log_se"].to_numpy(dtype=float)
    verdict = sp["verdict"].to_numpy(dtype=object)
    for k, idx in sp.groupby(key, observed=True, sort=True).indices.items():
        known = idx[~np.isnan(se[idx])]
        g, lo, hi = geomean_interval(lr[known], se[known])
        counts = pd.Series(verdict[idx]).value_counts()
        rows.append(
            {
                **dict(zip(key, k)),
                "points": len(idx),
                "geomean_speedup": g,
                "low": lo,
                "high": hi,
                **{v: int(counts.get(v, 0)) for v in VERDICTS},
            }
        )
    out = pd.DataFrame(rows)
    center, se_log = mt.interval_log_normal(out["low"], out["high"], Z95)
    p, q, code = corrected(np.exp(center), se_log)
    out["p_value"], out["q_value"] = p, q
    out["beyond_noise"] = (code == 0) | (code == 2)
    return out[cols]


TABLE = Table(
    name="speedup_summary",
    inputs=("speedups",),
    compute=speedup_summary,
    position=40,
    about="geometric-mean speedups, beyond noise or not",
)
