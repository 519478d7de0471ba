"""Per (gpu, dtype, algorithm): layers faster, tied, slower than the reference, or without an interval."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.stats.verdicts import VERDICTS
from analysis.tables.registry import Table
from analysis.tree.keys import by_appearance, row_keys

KEY = ["gpu", "dtype", "layout", "algo", "reference"]


def layer_summary(ls: pd.DataFrame) -> pd.DataFrame:
    """Per (gpu, dtype, algorithm) over every layer row: how many layers are faster / tied / slower than the
    reference beyond noise (the verdicts of ``layer_speedups``: corrected over its whole table) or have no
    interval, and the geometric-mean speedup on the faster ones.

    ``layer_speedups`` has a row per layer row (14,000,000 at a campaign's scale): the rows are counted by one
    integer key per row (analysis.tree.keys), not grouped on six columns nor copied (4.1 s and 0.9 GB above the
    table there: about 1.2 s and 0.35 GB); the groups in the order a groupby on the columns gives."""
    columns = [*KEY, "layers", *VERDICTS, "faster_share", "geomean_gain_when_faster"]
    if ls.empty:
        return pd.DataFrame(columns=columns)
    verdict = pd.Categorical(ls["verdict"], categories=list(VERDICTS)).codes  # categorical or strings alike
    counted = ls["verdict"].notna().to_numpy() & ls[KEY].notna().all(axis=1).to_numpy()  # as groupby drops NaN
    rows = None if counted.all() else np.flatnonzero(counted)
    (key,) = row_keys([ls], KEY)
    if rows is not None:
        key, verdict = key[rows], verdict[rows]
    group, first = by_appearance(key)
    del key
    if not len(group):  # no row with its key and a verdict
        return pd.DataFrame(columns=columns)
    n = len(first)
    known = verdict >= 0
    counts = np.bincount(group[known] * len(VERDICTS) + verdict[known], minlength=n * len(VERDICTS))
    # text keys as a groupby gives them (pandas' string dtype where it infers one), categoricals as they are
    out = ls[KEY].take(first if rows is None else rows[first]).reset_index(drop=True).infer_objects()
    for i, v in enumerate(VERDICTS):
        out[v] = counts[i :: len(VERDICTS)]
    out["layers"] = out[list(VERDICTS)].sum(axis=1)
    out["faster_share"] = out["faster"] / out["layers"]
    faster = np.flatnonzero(verdict == VERDICTS.index("faster"))
    speedup = ls["speedup"].to_numpy(dtype=float)
    log_gain = pd.Series(np.log(speedup[faster if rows is None else rows[faster]]))
    out["geomean_gain_when_faster"] = np.exp(log_gain.groupby(group[faster]).mean()).reindex(range(n)).to_numpy()
    return out.sort_values(KEY, kind="stable").reset_index(drop=True)[columns]


TABLE = Table(
    name="layer_speedup_summary",
    inputs=("layer_speedups",),
    compute=layer_summary,
    position=70,
    about="layer verdict counts per algorithm",
)
