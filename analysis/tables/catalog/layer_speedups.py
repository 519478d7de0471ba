"""``layer_speedups``: per layer row, the speedup over the reference's run of the same layer at the same point, with
its interval and verdict, Benjamini-Hochberg over the whole table (layer rows carry their median's interval, or
mean/std/n: standard errors from those); a host-bound row (harness.results.hostbound) is on neither side.

Each table's family is the table: its comparisons, their number and the correction are in
analysis.stats.verdicts.family_line.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.stats.verdicts import VERDICTS, corrected
from analysis.tables.columns import (
    POINT,
)
from analysis.tables.registry import Table
from analysis.tree.keys import layer_keys
from harness.results import hostbound
from harness.results.uncertainty import log_se, ratio_interval

# Rows per slice where a row-by-row computation would otherwise hold several temporary columns of every row
# (log_se: a dozen at 20,000,000 rows, 2 GB).
CHUNK = 1_000_000


def layer_speedups(layers: pd.DataFrame, reference: str = "guess") -> pd.DataFrame:
    """Per layer row whose algorithm and the reference both timed the layer at the GPU's pace (neither row
    host-bound): the speedup over the reference on that layer, its 95% interval, p-value, q-value and verdict
    (Benjamini-Hochberg over the whole table; a row without an interval: ``no_interval``).

    Tens of millions of layer rows: the rows are picked by position and each output column taken once from
    ``layers`` (no intermediate frame of every timed row, no 2-d block holding the dropped columns alive)."""
    key = [*POINT, "layer_index"]
    labels = [c for c in (*key, "algo", "layer_name") if c in layers.columns]
    p50_all = layers["p50_ms"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        rows = np.flatnonzero((p50_all > 0) & ~hostbound.mask(layers))  # NaN is not > 0
    se_inputs = [c for c in ("p50_ms", "ci95_low_ms", "ci95_high_ms", "std_ms", "n") if c in layers.columns]
    chunks = [rows[i : i + CHUNK] for i in range(0, len(rows), CHUNK)] or [rows]  # log_se is row by row
    se = np.concatenate([log_se(layers[se_inputs].take(c)).to_numpy(dtype=float) for c in chunks])
    p50 = p50_all[rows]
    is_ref = (layers["algo"] == reference).to_numpy()[rows]
    (layer,) = layer_keys([layers], POINT)  # the point's layer as one integer: millions of rows join on it
    layer = layer[rows]
    refs, others = np.flatnonzero(is_ref), np.flatnonzero(~is_ref)
    ref_of = pd.Index(layer[refs])
    if not ref_of.is_unique:  # a layer the reference timed twice: every pairing, as a merge gives
        timed = layers[[*labels, *[c for c in se_inputs if c not in labels]]].take(rows)
        ref = timed.iloc[refs][key].assign(ref_p50_ms=p50[refs], ref_log_se=se[refs])
        m = timed.iloc[others].assign(log_se=se[others]).merge(ref, on=key)
        mine, ref_p50, ref_se = m["log_se"].to_numpy(), m["ref_p50_ms"].to_numpy(), m["ref_log_se"].to_numpy()
        out = m.drop(
            columns=[c for c in ("ci95_low_ms", "ci95_high_ms", "std_ms", "n", "log_se", "ref_log_se") if c in m]
        )
    else:
        pos = ref_of.get_indexer(layer[others])
        keep = others[pos >= 0]
        pos = refs[pos[pos >= 0]]
        mine, ref_p50, ref_se = se[keep], p50[pos], se[pos]
        picked = rows[keep]
        out = pd.DataFrame(
            {
                **{c: layers[c].take(picked).reset_index(drop=True) for c in labels},
                "p50_ms": p50[keep],
                "ref_p50_ms": ref_p50,
            },
            copy=False,
        )
    s = ratio_interval(ref_p50, ref_se, out["p50_ms"].to_numpy(dtype=float), mine)
    del se, p50, layer, mine, ref_se  # freed before the correction's sort of two tests per row
    p, q, code = corrected(s.ratio, s.log_se)
    # a row per layer (millions): the two labels as categoricals, not a string each
    n = len(out)
    return out.assign(
        reference=pd.Categorical.from_codes(np.zeros(n, np.int8), [reference]),
        speedup=s.ratio,
        speedup_low=s.low,
        speedup_high=s.high,
        p_value=p,
        q_value=q,
        verdict=pd.Categorical.from_codes(code, list(VERDICTS)),
    )


TABLE = Table(
    name="layer_speedups",
    inputs=("layers",),
    compute=layer_speedups,
    position=60,
    about="per layer, the speedup over guess",
)
