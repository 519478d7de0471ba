"""``layer_speedups``: per layer row, the speedup over the reference's run of the same layer at the same point, with
its interval and verdict, Benjamini-Hochberg over the whole table (layer rows carry their median's interval, or
mean/std/n: standard errors from those); a host-bound row (harness.results.hostbound) is on neither side.

Each table's family is the table: its comparisons, their number and the correction are in
analysis.stats.verdicts.family_line.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import memory
from analysis.stats.verdicts import VERDICTS, corrected
from analysis.tables import slices
from analysis.tables.columns import (
    POINT,
)
from analysis.tables.registry import Table
from analysis.threads import workers
from analysis.tree.keys import layer_keys
from harness.results import hostbound
from harness.results.uncertainty import Ratio, log_se, ratio_interval

# Rows per slice where a row-by-row computation would otherwise hold several temporary columns of every row
# (log_se: a dozen at 20,000,000 rows, 2 GB).
CHUNK = 1_000_000


def layer_speedups(layers: pd.DataFrame, reference: str = "guess") -> pd.DataFrame:
    """Per layer row whose algorithm and the reference both timed the layer at the GPU's pace (neither row
    host-bound): the speedup over the reference on that layer, its 95% interval, p-value, q-value and verdict
    (Benjamini-Hochberg over the whole table; a row without an interval: ``no_interval``).

    Tens of millions of layer rows: the pairs are found one model at a time (analysis.tables.slices), as
    positions, and each output column is taken once from ``layers`` (no intermediate frame of every timed row,
    no 2-d block holding the dropped columns alive); the correction is over every pair at once."""
    labels = [c for c in (*POINT, "layer_index", "algo", "layer_name") if c in layers.columns]
    found = slices.each(lambda a, b: _pairs(layers, a, b, reference), slices.ranges(layers))
    picked = None
    if any(f is None for f in found):  # a layer the reference timed twice: every pairing, as a merge gives
        merged, interval = _merged(layers, reference, labels)
        columns = {c: merged[c] for c in merged.columns}
        ratio, low, high, se = interval.ratio, interval.low, interval.high, interval.log_se
        del merged, interval
    else:
        fields = [list(parts) for parts in zip(*found)]
        del found
        # joined in the tables' threads: one after another they took 4 s on one core at 20,000,000 layer rows
        picked, p50, ref_p50, ratio, low, high, se = slices.each(_joined, [(f,) for f in fields])
        columns = {"p50_ms": p50, "ref_p50_ms": ref_p50}
        del p50, ref_p50
    p, q, code = corrected(ratio, se, workers=workers())  # 14,000,000 p-values: their slices in the threads
    del se  # the standard errors are no column: freed before the labels are taken (0.11 GB at 14,000,000 pairs)
    if picked is not None:  # the labels taken after the correction: not held beside its arrays (0.27 GB)
        taken = slices.each(lambda c: layers[c].take(picked).reset_index(drop=True), [(c,) for c in labels])
        columns = {**dict(zip(labels, taken)), **columns}
        del taken
        del picked
    # a row per layer (millions): the two labels as categoricals, not a string each; the frame made once from
    # its columns (under pandas 2, DataFrame.assign copied every label column of every row)
    n = len(ratio)
    return pd.DataFrame(
        {
            **columns,
            "reference": pd.Categorical.from_codes(np.zeros(n, np.int8), [reference]),
            "speedup": ratio,
            "speedup_low": low,
            "speedup_high": high,
            "p_value": p,
            "q_value": q,
            "verdict": pd.Categorical.from_codes(code, list(VERDICTS)),
        },
        copy=False,
    )


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    """The slices' arrays as one, each slice's freed once copied (not every slice's five arrays held twice)."""
    whole = np.concatenate(parts)
    parts.clear()
    memory.give_back()
    return whole


SE_INPUTS = ("p50_ms", "ci95_low_ms", "ci95_high_ms", "std_ms", "n")


def _timed(layers: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rows timed at the GPU's pace (positions), their p50 and the standard error of its log."""
    p50_all = layers["p50_ms"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        rows = np.flatnonzero((p50_all > 0) & ~hostbound.mask(layers))  # NaN is not > 0
    # log_se is row by row: over views of CHUNK rows (its temporaries a slice's), then taken at the timed rows
    # (a campaign times nearly every row: no copy of their columns first)
    se = np.concatenate(
        [log_se(layers.iloc[i : i + CHUNK]).to_numpy(dtype=float) for i in range(0, len(layers), CHUNK)] or [[]]
    )
    return rows, p50_all[rows], se[rows]


def _pairs(layers: pd.DataFrame, start: int, stop: int, reference: str) -> tuple[np.ndarray, ...] | None:
    """The pairs among rows [start, stop) (one model's): the other algorithm's row (position in ``layers``), its
    p50, the reference's p50, then the speedup's ratio, interval and standard error (Ratio's fields: row by
    row, so a slice's are the whole's, and the temporaries are a slice's, not every row's); None where the
    reference timed a layer twice."""
    part = layers.iloc[start:stop]
    rows, p50, se = _timed(part)
    is_ref = (part["algo"] == reference).to_numpy()[rows]
    (layer,) = layer_keys([part], POINT)  # the point's layer as one integer: millions of rows join on it
    layer = layer[rows]
    refs, others = np.flatnonzero(is_ref), np.flatnonzero(~is_ref)
    ref_of = pd.Index(layer[refs])
    if not ref_of.is_unique:
        return None
    pos = ref_of.get_indexer(layer[others])
    keep = others[pos >= 0]
    pos = refs[pos[pos >= 0]]
    s = ratio_interval(p50[pos], se[pos], p50[keep], se[keep])
    return start + rows[keep], p50[keep], p50[pos], s.ratio, s.low, s.high, s.log_se


def _merged(layers: pd.DataFrame, reference: str, labels: list[str]) -> tuple[pd.DataFrame, Ratio]:
    """Every pairing of a layer's rows with the reference's, by a merge (where the reference timed a layer
    twice), with the speedups' intervals."""
    key = [*POINT, "layer_index"]
    rows, p50, se = _timed(layers)
    is_ref = (layers["algo"] == reference).to_numpy()[rows]
    refs, others = np.flatnonzero(is_ref), np.flatnonzero(~is_ref)
    se_inputs = [c for c in SE_INPUTS if c in layers.columns]
    timed = layers[[*labels, *[c for c in se_inputs if c not in labels]]].take(rows)
    ref = timed.iloc[refs][key].assign(ref_p50_ms=p50[refs], ref_log_se=se[refs])
    m = timed.iloc[others].assign(log_se=se[others]).merge(ref, on=key)
    s = ratio_interval(
        m["ref_p50_ms"].to_numpy(),
        m["ref_log_se"].to_numpy(),
        m["p50_ms"].to_numpy(dtype=float),
        m["log_se"].to_numpy(),
    )
    out = m.drop(columns=[c for c in ("ci95_low_ms", "ci95_high_ms", "std_ms", "n", "log_se", "ref_log_se") if c in m])
    return out, s


TABLE = Table(
    name="layer_speedups",
    inputs=("layers",),
    compute=layer_speedups,
    position=60,
    about="per layer, the speedup over guess",
    per_layer_row=True,
)
