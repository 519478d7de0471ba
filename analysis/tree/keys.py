"""One int64 per row for a key of several columns: equal exactly where the rows' key columns are equal.

Grouping, sorting and joining millions of layer rows on one integer instead of seven or sixteen columns is
what keeps the tables fast (the load's categoricals share their categories across points and layers, so
codes agree between frames).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from analysis.threads import workers

# Rows per slice of mixed_radix: its scratch and keys stay in the caches while every column is added.
SCRATCH = 1 << 20


def mixed_radix(frames: Sequence[pd.DataFrame], columns: Sequence[str]) -> list[np.ndarray] | None:
    """The key of each row of each frame from the columns' categorical codes and integers in mixed radix
    (renumbered densely whenever the next column would not fit in 62 bits); None where an integer column has
    missing values or a column is neither categorical nor integer.

    The columns are taken as they are held (a categorical's codes, -1 where missing; integers of their own
    width), not copied, and added a slice of SCRATCH rows at a time, every column of a run that fits 62 bits to
    that slice's keys while they are in the caches (one column at a time over every row moved each key in and
    out of memory once per column: sixteen columns of 20,000,000 rows took 2.1 s, so 0.4 s); the slices of a
    long frame in the threads of analysis.threads.workers (numpy's loops release the GIL)."""
    held = []
    for col in columns:
        values = _column_values(frames, col)
        if values is None:
            return None
        low = min((int(v.min()) for v in values if len(v)), default=0)
        size = max((int(v.max()) for v in values if len(v)), default=0) - low + 1
        held.append((values, low, size))
    codes = [np.zeros(len(df), np.int64) for df in frames]
    radix, run = 1, []  # run: the columns (values, low, multiplier) to add together
    for values, low, size in held:
        if radix * size >= 2**62:  # renumber the keys so far 0..k-1 (k distinct), then go on
            _add(codes, run)
            run = []
            # one frame's keys are factorized as they are, not copied; its labels are the new keys (views)
            dense, uniques = pd.factorize(codes[0] if len(codes) == 1 else np.concatenate(codes))
            bounds = np.cumsum([0, *(len(c) for c in codes)])
            codes = [dense[a:b].astype(np.int64, copy=False) for a, b in zip(bounds[:-1], bounds[1:])]
            del dense
            radix = max(len(uniques), 1)
            if radix * size >= 2**62:
                return None
        run.append((values, low, radix))
        radix *= size
    _add(codes, run)
    return codes


def _add(codes: list[np.ndarray], run: list[tuple[list[np.ndarray], int, int]]) -> None:
    """(values - low) * multiplier of every column of ``run`` added to each frame's keys, slice by slice."""
    if not run:
        return
    spans = [(f, a, min(a + SCRATCH, len(acc))) for f, acc in enumerate(codes) for a in range(0, len(acc), SCRATCH)]

    def one(span: tuple[int, int, int]) -> None:
        f, a, b = span
        acc, tmp = codes[f][a:b], np.empty(b - a, np.int64)
        for values, low, multiplier in run:
            np.subtract(values[f][a:b], low, out=tmp, dtype=np.int64)
            np.multiply(tmp, multiplier, out=tmp)
            np.add(acc, tmp, out=acc)

    threads = min(workers(), len(spans))
    if threads <= 1:
        for span in spans:
            one(span)
        return
    with ThreadPoolExecutor(threads, thread_name_prefix="keys") as pool:
        list(pool.map(one, spans))


def _column_values(frames: Sequence[pd.DataFrame], col: str) -> list[np.ndarray] | None:
    """The column of each frame as integers of its own width, as held (not copied): ``_category_codes`` for
    categoricals, else the integers themselves; None where one has missing values or is neither."""
    values = _category_codes([df[col] for df in frames])
    if values is not None:
        return values
    values = []
    for df in frames:
        s = df[col]
        if not pd.api.types.is_integer_dtype(s.dtype):
            return None
        if isinstance(s.dtype, np.dtype):  # numpy's integers hold no missing value: no pass over every row
            values.append(s.to_numpy())
            continue
        if s.isna().any():
            return None
        values.append(s.to_numpy().astype(np.int64))  # a nullable integer column's objects
    return values


def _category_codes(series: list[pd.Series]) -> list[np.ndarray] | None:
    """Codes (category position; -1: missing) that mean the same value in every frame: the categoricals' own
    where they share their categories (the load makes them so), else recoded onto the union of their
    categories; None where a column is not categorical in every frame."""
    if not all(isinstance(s.dtype, pd.CategoricalDtype) for s in series):
        return None
    first = series[0].cat.categories
    if any(not s.cat.categories.equals(first) for s in series[1:]):
        union = pd.Index(sorted(set().union(*(set(s.cat.categories) for s in series)), key=str))
        series = [s.cat.set_categories(union) for s in series]
    return [s.cat.codes.to_numpy() for s in series]


def row_keys(frames: Sequence[pd.DataFrame], columns: Sequence[str]) -> list[np.ndarray]:
    """``mixed_radix`` where it fits, else the group number of each row's key over all frames (slower)."""
    fast = mixed_radix(frames, columns)
    if fast is not None:
        return fast
    both = pd.concat([df[list(columns)] for df in frames], ignore_index=True)
    groups = both.groupby(list(columns), dropna=False, observed=True, sort=False).ngroup().to_numpy().astype(np.int64)
    bounds = np.cumsum([0, *(len(df) for df in frames)])
    return [groups[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def layer_keys(frames: Sequence[pd.DataFrame], point: Sequence[str]) -> list[np.ndarray]:
    """One int64 per row for (the point's columns, layer_index): a layer of a point."""
    return row_keys(frames, [*point, "layer_index"])


def all_distinct(keys: np.ndarray) -> bool:
    """Whether no two keys are equal, by sorting: a hash table of tens of millions of keys misses the caches at
    almost every key (pandas' is_unique: 1.8 s for 20,000,000 layer rows' keys, where sorting took 0.3 s). The
    sort is numpy's stable one (timsort), which merges ascending runs: layer keys as a run writes them (a point's
    layers in order, point after point) come in a few hundred such runs, and sorted in 0.2 s where the default
    (introsort) took 1.5-1.8 s; on keys in no order the two took the same time."""
    ordered = np.sort(keys, kind="stable")
    return not bool((ordered[1:] == ordered[:-1]).any())


def by_runs(keys: np.ndarray, answer: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``answer(keys)`` for a row-by-row ``answer`` (a key's answer depends on the key alone: a hash lookup),
    asked once per run of equal consecutive keys and repeated over the run. A point's layer rows come together
    (as a run writes them), so their point's key is asked once, not once per layer: looking up 20,000,000 layer
    rows' points among 200,000 took 0.4-0.5 s a lookup, once per run 0.05 s. Keys in no runs are asked whole."""
    if len(keys) < 2:
        return answer(keys)
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    if len(starts) > len(keys) // 2:
        return answer(keys)
    return np.repeat(answer(keys[starts]), np.diff(np.r_[starts, len(keys)]))


def by_appearance(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each key's group number, groups numbered in order of first appearance (one hash pass over millions of
    keys of few groups), and the position of each group's first row."""
    group, _ = pd.factorize(keys)
    if not len(group):
        return group, np.empty(0, dtype=np.intp)
    running = np.maximum.accumulate(group)  # a new group is where the highest number so far rises
    return group, np.flatnonzero(np.r_[True, running[1:] > running[:-1]])
