"""Tests the tables make beyond a pairwise verdict: the oracle's switch test (is the fastest other algorithm
of a layer faster than the best single one, corrected for having been picked as the fastest of several)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.stats.fastest import fastest_per_key
from harness.results import multiplicity as mt


def switch_test(
    ok: np.ndarray, p50: np.ndarray, se: np.ndarray, algo: np.ndarray, layer_key: np.ndarray, best: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The oracle's switch test, per row of ``best`` (the best single algorithm's row of each layer): the
    p-value of "the fastest other algorithm that ran the layer itself (rows where ``ok``) is faster than the
    best single one", one-sided on the log ratio of the two medians, times the number of others it was
    picked from (harness.results.multiplicity.fastest_of); and whether any other ran the layer. NaN where
    none did or a row has no interval (``se`` NaN)."""
    keys, first = np.unique(layer_key[best], return_index=True)  # each layer, and its best row (the first)
    rows = np.flatnonzero(ok)
    at = pd.Index(keys).get_indexer(layer_key[rows])
    rows, at = rows[at >= 0], at[at >= 0]
    others = rows[algo[rows] != algo[best[first[at]]]]
    other_keys, fastest, count = fastest_per_key(layer_key[others], p50[others], algo[others])  # ties: first name
    j = pd.Index(other_keys).get_indexer(layer_key[best])
    challenged = j >= 0
    chal = np.where(challenged, others[fastest[j]] if len(others) else best, best)
    p = mt.p_faster(np.log(p50[chal] / p50[best]), np.hypot(se[chal], se[best]))
    p = mt.fastest_of(p, np.where(challenged, count[j] if len(others) else 0, 0))
    return p, challenged
