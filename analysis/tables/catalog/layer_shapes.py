"""One row per layer shape: its fastest algorithm over every occurrence, the margin, how often it occurs."""

from __future__ import annotations

import pandas as pd

from analysis.tables.columns import (
    SHAPE,
    shape_label,
    timed,
)
from analysis.tables.registry import Table
from analysis.tree.keys import row_keys


def layer_shapes(layers: pd.DataFrame) -> pd.DataFrame:
    """One row per layer shape: the fastest algorithm (median p50 over every occurrence of the shape, in
    any model and input size), its margin over the runner-up, and how often the shape occurs."""
    ok = timed(layers, [*SHAPE, "algo", "model", "p50_ms"])
    if ok.empty:
        return pd.DataFrame(columns=[*SHAPE, "shape", "best_algo", "best_p50_ms", "runner_up", "margin"])
    ok = ok.assign(_shape=row_keys([ok], SHAPE)[0])  # 16 columns as one integer: millions of rows group fast
    per = (
        ok.groupby(["_shape", "algo"], observed=True, sort=False)
        .agg(p50_ms=("p50_ms", "median"), occurrences=("p50_ms", "size"), models=("model", "nunique"))
        .reset_index()
    )
    shapes = ok.drop_duplicates("_shape")[["_shape", *SHAPE]]
    per = per.merge(shapes, on="_shape").drop(columns="_shape").sort_values([*SHAPE, "p50_ms", "algo"])
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
