"""Algorithm x layer shape x gpu: ok, fallback, unsupported or mixed."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.tables import slices
from analysis.tables.columns import (
    SUPPORT,
    shape_label,
)
from analysis.tables.registry import Table
from analysis.tree.keys import row_keys

KEY = [*SUPPORT, "algo"]


def support(layers: pd.DataFrame) -> pd.DataFrame:
    """Algorithm x layer shape x gpu: "ok", "fallback" or "unsupported" (the status of its first row that has
    one), or "mixed" where occurrences of one shape disagree (e.g. between batch sizes).

    Counted one model at a time (analysis.tables.slices), then added up: a slice's rows group in the caches,
    and the counts of every slice are a row per shape, algorithm and status (thousands, not millions)."""
    if layers.empty:
        return pd.DataFrame(columns=[*SUPPORT, "shape", "algo", "status", "rows"])
    counts = pd.concat(slices.each(lambda a, b: _counts(layers.iloc[a:b], a), slices.ranges(layers)), ignore_index=True)
    known = counts[counts["status"].notna()]
    first = known.sort_values("first", kind="stable").drop_duplicates(KEY)[[*KEY, "status"]]
    kinds = known.groupby(KEY, observed=True, sort=False, dropna=False)["status"].nunique().rename("kinds")
    out = counts.groupby(KEY, observed=True, sort=False, dropna=False)["rows"].sum().reset_index()
    out = out.merge(first, on=KEY, how="left").merge(kinds.reset_index(), on=KEY, how="left")
    out = out[[*KEY, "status", "kinds", "rows"]]
    # as text: "mixed" is none of the loaded statuses' categories (setting it on the categorical raised)
    out["status"] = out["status"].astype(object).where(out.pop("kinds").fillna(0) == 1, "mixed")
    out.insert(len(SUPPORT), "shape", shape_label(out))
    return out.sort_values(KEY).reset_index(drop=True)


def _counts(layers: pd.DataFrame, start: int) -> pd.DataFrame:
    """Per shape, algorithm and status among these rows (the first at position ``start``): how many rows, and
    the position of the first."""
    rows = layers[[*SUPPORT, "algo", "status"]]
    shape = row_keys([rows], SUPPORT)[0]  # 15 columns as one integer
    at = np.arange(start, start + len(rows))
    g = rows[["algo", "status"]].assign(_shape=shape, _at=at)
    g = g.groupby(["_shape", "algo", "status"], observed=True, sort=False, dropna=False)["_at"]
    out = g.agg(rows="size", first="min").reset_index()
    shapes = rows[SUPPORT].assign(_shape=shape).drop_duplicates("_shape")
    return out.merge(shapes, on="_shape").drop(columns="_shape")


TABLE = Table(
    name="support",
    inputs=("layers",),
    compute=support,
    position=130,
    about="which algorithm runs which layer shape",
)
