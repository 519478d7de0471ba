"""The layer rows one model at a time: the ``(stage, gpu, model)`` slices of the layers, with their points.

Every comparison the oracle and ``layer_speedups`` make is between rows of one point, and the point key holds
stage, gpu and model: computed slice by slice, such a table is the table computed whole. At a campaign's scale
it is faster and smaller: a slice's joins and groupings stay in the processor's caches (20,000,000 layer rows in
40 slices: the oracle took 6.5 s instead of 10.7 s) and its intermediates are a slice's, not every row's.

The load gives each model's rows together (the files are read in folder order, stage/gpu/model/algo, and
resolution keeps that order), so a slice is a range of rows, a view, never a copy. Where a frame's rows are not
grouped so (a frame built otherwise), it is one slice: the table is computed whole, as before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np
import pandas as pd

from analysis.threads import workers
from analysis.tree.keys import row_keys

T = TypeVar("T")

SLICE = ("stage", "gpu", "model")


def ranges(layers: pd.DataFrame) -> list[tuple[int, int]]:
    """[start, stop) of each (stage, gpu, model)'s rows, in row order, where each one's rows are together;
    else one range of every row."""
    whole = [(0, len(layers))]
    if len(layers) == 0 or any(c not in layers.columns for c in SLICE):
        return whole
    (key,) = row_keys([layers], SLICE)
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    if len(starts) == 1 or len(np.unique(key[starts])) != len(starts):  # one model, or a model's rows apart
        return whole
    stops = np.r_[starts[1:], len(layers)]
    return [(int(a), int(b)) for a, b in zip(starts, stops)]


def with_points(points: pd.DataFrame, layers: pd.DataFrame) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
    """Each slice's points and layer rows (``ranges``); points of a model without layer rows are in none. One
    slice: the frames themselves."""
    spans = ranges(layers)
    if len(spans) == 1:
        yield points, layers
        return
    point_key, layer_key = row_keys([points, layers], SLICE)
    rows_of = pd.Series(np.arange(len(points))).groupby(point_key).indices
    none = np.zeros(0, dtype=np.int64)
    for a, b in spans:
        yield points.iloc[rows_of.get(layer_key[a], none)], layers.iloc[a:b]


def concat(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """The slices' tables as one (empty ones left out, so that no column's type changes; all empty: the first)."""
    full = [p for p in parts if len(p)]
    if len(full) <= 1:
        return (full or parts)[0]
    return pd.concat(full, ignore_index=True)


def each(compute: Callable[..., T], slices: Iterable[tuple]) -> list[T]:
    """``compute(*slice)`` for each slice, in order, in the tables' threads (analysis.threads.workers(): numpy and
    pandas release the GIL in their loops; the oracle over 20,000,000 layer rows in 40 slices took 3.8 s
    in two threads, 6.4 s in one)."""
    slices = list(slices)
    threads = min(workers(), len(slices))
    if threads <= 1:
        return [compute(*s) for s in slices]
    with ThreadPoolExecutor(threads, thread_name_prefix="slice") as pool:
        return list(pool.map(lambda s: compute(*s), slices))
