"""What really ran: layer calls per kernel family, per algorithm and configuration (runs with kernels=true)."""

from __future__ import annotations

import pandas as pd

from analysis.tables.columns import timed
from analysis.tables.registry import Table

GROUP = ["gpu", "dtype", "math_type", "algo", "kernel_family"]
COLUMNS = [*GROUP, "layers", "models", "share", "tensor_cores", "tensor_core_layers", "median_p50_ms"]


def _flag(values: pd.Series) -> str:
    """The group's tensor-core verdict: yes, no, mixed, or unknown (no layer's flag is known)."""
    known = values.dropna().astype(bool)
    if known.empty:
        return "unknown"
    if known.all():
        return "yes" if len(known) == len(values) else "mixed"
    return "no" if not known.any() and len(known) == len(values) else "mixed"


def kernel_families(layers: pd.DataFrame) -> pd.DataFrame:
    """Per gpu x dtype x math x algorithm: the kernel families its layer calls ran (the layers rows'
    ``kernel_family``), how many calls and models, the family's share of the algorithm's calls, whether they ran
    on tensor cores (yes / no / mixed / unknown, and how many did), and the median of their timed p50s. Rows
    without a kernel family (kernels=false, or written before the column) are left out."""
    if "kernel_family" not in layers.columns:
        return pd.DataFrame(columns=COLUMNS)
    rows = layers.loc[layers["kernel_family"].notna(), [*GROUP, "model", "tensor_cores"]]
    if rows.empty:
        return pd.DataFrame(columns=COLUMNS)
    rows = rows.astype({c: "object" for c in GROUP})  # categoricals: group only what is present
    g = rows.groupby(GROUP, sort=True, dropna=False)
    out = g.agg(layers=("model", "size"), models=("model", "nunique")).reset_index()
    out["tensor_cores"] = g["tensor_cores"].agg(_flag).to_numpy()
    out["tensor_core_layers"] = g["tensor_cores"].agg(lambda s: int(s.dropna().astype(bool).sum())).to_numpy()
    per_algo = out.groupby(GROUP[:-1], dropna=False)["layers"].transform("sum")
    out["share"] = out["layers"] / per_algo
    t = timed(layers, [*GROUP, "p50_ms"])
    t = t[t["kernel_family"].notna()].astype({c: "object" for c in GROUP})
    med = t.groupby(GROUP, dropna=False)["p50_ms"].median().rename("median_p50_ms").reset_index()
    out = out.merge(med, on=GROUP, how="left")
    order = [*GROUP[:-1], "layers", "kernel_family"]
    return out[COLUMNS].sort_values(order, ascending=[True] * 4 + [False, True]).reset_index(drop=True)


TABLE = Table(
    name="kernel_families",
    inputs=("layers",),
    compute=kernel_families,
    position=135,
    about="what really ran: layer calls per kernel family and their tensor-core use",
)
