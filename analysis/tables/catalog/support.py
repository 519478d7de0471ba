"""Algorithm x layer shape x gpu: ok, fallback, unsupported or mixed."""

from __future__ import annotations

import pandas as pd

from analysis.tables.columns import (
    SUPPORT,
    shape_label,
)
from analysis.tables.registry import Table
from analysis.tree.keys import row_keys


def support(layers: pd.DataFrame) -> pd.DataFrame:
    """Algorithm x layer shape x gpu: "ok", "fallback" or "unsupported" (or "mixed" where occurrences of
    one shape disagree, e.g. between batch sizes)."""
    if layers.empty:
        return pd.DataFrame(columns=[*SUPPORT, "shape", "algo", "status", "rows"])
    rows = layers[[*SUPPORT, "algo", "status"]]
    rows = rows.assign(_shape=row_keys([rows], SUPPORT)[0])  # 15 columns as one integer
    g = rows.groupby(["_shape", "algo"], observed=True, sort=False)["status"]
    out = g.agg(status="first", kinds="nunique", rows="size").reset_index()
    out = out.merge(rows.drop_duplicates("_shape")[["_shape", *SUPPORT]], on="_shape").drop(columns="_shape")
    out = out[[*SUPPORT, "algo", "status", "kinds", "rows"]]
    out["status"] = out["status"].where(out.pop("kinds") == 1, "mixed")
    out.insert(len(SUPPORT), "shape", shape_label(out))
    return out.sort_values([*SUPPORT, "algo"]).reset_index(drop=True)


TABLE = Table(
    name="support",
    inputs=("layers",),
    compute=support,
    position=130,
    about="which algorithm runs which layer shape",
)
