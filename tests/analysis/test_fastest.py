"""analysis.stats.fastest.fastest_per_key (grouped minima) picks the very rows a sort by (key, value, tiebreak)
picks, ties included: the oracle and its switch test used the sort."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.stats.fastest import fastest_per_key


def by_sorting(keys: np.ndarray, values: np.ndarray, tiebreak: np.ndarray):
    """The straightforward reading: sort (stable) and take each key's first row."""
    order = np.lexsort((tiebreak, values, keys))
    first = order[np.r_[True, keys[order][1:] != keys[order][:-1]]]
    uniques, counts = np.unique(keys, return_counts=True)
    return uniques, first, counts


@pytest.mark.parametrize("seed", range(5))
def test_the_same_rows_as_a_sort_ties_included(seed: int):
    rng = np.random.default_rng(seed)
    n = 5000
    keys = rng.integers(0, 400, n) * 7919  # sparse keys, as packed layer keys are
    values = rng.integers(0, 5, n).astype(float) / 4  # many ties of value
    tiebreak = rng.integers(0, 3, n)  # and of tiebreak: then the first row wins
    got, want = fastest_per_key(keys, values, tiebreak), by_sorting(keys, values, tiebreak)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def test_a_missing_value_is_passed_over_as_a_sort_puts_it_last():
    """A row without a value (NaN) is never a key's fastest where another row has one (a sort puts NaN last);
    it still counts among the key's rows."""
    rng = np.random.default_rng(9)
    keys = np.repeat(np.arange(300) * 13, 4)
    values = rng.integers(0, 5, len(keys)).astype(float)
    values[rng.random(len(keys)) < 0.3] = np.nan
    values[::4] = rng.random(300)  # every key has a value
    tiebreak = rng.integers(0, 3, len(keys))
    got, want = fastest_per_key(keys, values, tiebreak), by_sorting(keys, values, tiebreak)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def test_no_rows():
    keys, rows, counts = fastest_per_key(np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64))
    assert len(keys) == len(rows) == len(counts) == 0
