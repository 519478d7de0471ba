"""One row per layer shape: its fastest algorithm over every occurrence, the margin, how often it occurs."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from analysis.tables.columns import (
    SHAPE,
    shape_label,
    timed_rows,
)
from analysis.tables.registry import Table
from analysis.tree.keys import by_appearance, row_keys


def layer_shapes(layers: pd.DataFrame) -> pd.DataFrame:
    """One row per layer shape: the fastest algorithm (median p50 over every occurrence of the shape, in
    any model and input size), its margin over the runner-up, and how often the shape occurs.

    Over tens of millions of layer rows: the timed rows are positions, grouped on the shape as one integer with
    the three columns the medians need; the shapes' own columns are taken once per shape (not a copy of every
    timed row's twenty columns)."""
    rows = timed_rows(layers)
    if not len(rows):
        return pd.DataFrame(columns=[*SHAPE, "shape", "best_algo", "best_p50_ms", "runner_up", "margin"])
    (shape,) = row_keys([layers], SHAPE)  # 16 columns as one integer: millions of rows group fast
    shape = shape[rows]  # the timed rows' (every row's freed now, not held through the grouping: 0.16 GB)
    shape, first = by_appearance(shape)  # numbered by first timed occurrence
    algo, n_algos, algo_of = _codes(layers["algo"], rows)
    model, n_models, _ = _codes(layers["model"], rows)
    key = shape  # (shape, algorithm) as one integer, made in place; -1 where the algorithm is missing
    key *= n_algos
    key += algo
    key[algo < 0] = -1
    del shape
    by = pd.Series(layers["p50_ms"].to_numpy()[rows]).groupby(key, sort=False)
    per = pd.DataFrame({"p50_ms": by.median(), "occurrences": by.size()})
    del by  # its grouping (an index of every timed row) freed before the pairs are made
    per = per[per.index >= 0]  # a row without its algorithm is in no group (as a groupby on it drops it)
    both = (algo >= 0) & (model >= 0)
    pairs = key[both]  # each (shape, algorithm, model) once, made in place (millions of rows: no temporaries)
    pairs *= max(n_models, 1)
    pairs += model[both]
    pairs = pd.unique(pairs)
    per["models"] = pd.Series(pairs // max(n_models, 1)).value_counts().reindex(per.index, fill_value=0)
    del key, algo, model, both, pairs
    per = per.reset_index(names="_key")
    per["_shape"], per["algo"] = per["_key"] // n_algos, algo_of(per["_key"].to_numpy() % n_algos)
    shapes = layers[SHAPE].take(rows[first]).assign(_shape=np.arange(len(first)))
    per = per.drop(columns="_key").merge(shapes, on="_shape").drop(columns="_shape")
    return ranked(per[["algo", "p50_ms", "occurrences", "models", *SHAPE]])


def ranked(per: pd.DataFrame) -> pd.DataFrame:
    """From a row per (shape, algorithm) with its median p50, occurrences and models: a row per shape with the
    fastest algorithm, the runner-up, the margin and how many algorithms timed it."""
    per = per.sort_values([*SHAPE, "p50_ms", "algo"])
    g = per.groupby(SHAPE, observed=True, sort=False)
    first = g.nth(0).set_index(SHAPE)
    second = g.nth(1).set_index(SHAPE)
    out = first.rename(columns={"algo": "best_algo", "p50_ms": "best_p50_ms"})
    out["runner_up"] = second["algo"]
    out["runner_up_p50_ms"] = second["p50_ms"]
    out["margin"] = out["runner_up_p50_ms"] / out["best_p50_ms"] - 1
    out["algos_timed"] = g.size()
    out = out.reset_index()
    out.insert(len(SHAPE), "shape", shape_label(out))
    return out.sort_values(SHAPE).reset_index(drop=True)


def _codes(values: pd.Series, rows: np.ndarray) -> tuple[np.ndarray, int, Callable[[np.ndarray], object]]:
    """The column's values at ``rows`` as small integer codes (-1: missing), how many there can be, and the
    values of codes: a categorical's own codes (a byte a row, not a copy of millions of int64), else its
    factorized text."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return (
            values.cat.codes.to_numpy()[rows],
            len(values.cat.categories),
            lambda c: pd.Categorical.from_codes(c, dtype=values.dtype),
        )
    codes, uniques = pd.factorize(values.to_numpy()[rows])
    return codes, len(uniques), uniques.take


TABLE = Table(
    name="layer_shapes",
    inputs=("layers",),
    compute=layer_shapes,
    position=120,
    about="the fastest algorithm per layer shape",
)
