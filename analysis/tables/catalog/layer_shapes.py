"""One row per layer shape: its fastest algorithm over every occurrence, the margin, how often it occurs."""

from __future__ import annotations

import pandas as pd

from analysis.tables.columns import (
    SHAPE,
    shape_label,
    timed_rows,
)
from analysis.tables.registry import Table
from analysis.tree.keys import row_keys


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
    ok = pd.DataFrame(
        {
            "_shape": shape[rows],
            "_at": rows,
            "algo": layers["algo"].take(rows).array,
            "model": layers["model"].take(rows).array,
            "p50_ms": layers["p50_ms"].to_numpy()[rows],
        },
        copy=False,
    )
    del shape
    per = (
        ok.groupby(["_shape", "algo"], observed=True, sort=False)
        .agg(
            p50_ms=("p50_ms", "median"), occurrences=("p50_ms", "size"), models=("model", "nunique"), _at=("_at", "min")
        )
        .reset_index()
    )
    del ok
    first = per.groupby("_shape", sort=False)["_at"].min()  # each shape's first timed row
    shapes = layers[SHAPE].take(first.to_numpy()).assign(_shape=first.index.to_numpy())
    per = per.drop(columns="_at").merge(shapes, on="_shape").drop(columns="_shape")
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


TABLE = Table(
    name="layer_shapes",
    inputs=("layers",),
    compute=layer_shapes,
    position=120,
    about="the fastest algorithm per layer shape",
)
