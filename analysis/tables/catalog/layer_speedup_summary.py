"""Per (gpu, dtype, algorithm): layers faster, tied, slower than the reference, or without an interval."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.stats.verdicts import VERDICTS
from analysis.tables.registry import Table


def layer_summary(ls: pd.DataFrame) -> pd.DataFrame:
    """Per (gpu, dtype, algorithm) over every layer row: how many layers are faster / tied / slower than the
    reference beyond noise (the verdicts of ``layer_speedups``: corrected over its whole table) or have no
    interval, and the geometric-mean speedup on the faster ones."""
    key = ["gpu", "dtype", "layout", "algo", "reference"]
    if ls.empty:
        return pd.DataFrame(columns=[*key, "layers", *VERDICTS, "faster_share", "geomean_gain_when_faster"])
    counts = ls.groupby([*key, "verdict"], observed=True).size().unstack("verdict", fill_value=0)
    counts.columns = [str(c) for c in counts.columns]  # categorical or string verdicts alike
    counts = counts.reindex(columns=list(VERDICTS), fill_value=0)
    counts.columns.name = None
    counts["layers"] = counts.sum(axis=1)
    counts["faster_share"] = counts["faster"] / counts["layers"]
    faster = ls[ls["verdict"] == "faster"]
    gain = np.exp(np.log(faster["speedup"]).groupby([faster[k] for k in key], observed=True).mean())
    counts["geomean_gain_when_faster"] = gain.reindex(counts.index)
    return counts.reset_index()[[*key, "layers", *VERDICTS, "faster_share", "geomean_gain_when_faster"]]


TABLE = Table(
    name="layer_speedup_summary",
    inputs=("layer_speedups",),
    compute=layer_summary,
    position=70,
    about="layer verdict counts per algorithm",
)
