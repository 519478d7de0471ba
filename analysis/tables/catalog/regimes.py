"""``regimes``: how the ranking of the algorithms moves with the regime a model is deployed in (batch size,
dtype, memory layout), per model, GPU and input size.

A regime is (batch_size, dtype, layout); the math type (strict FP32 or TF32) is a setting, so the analysis
computes this table once per math type (analysis.report.frames). Each row is one point: its ranking (the
algorithms that ran, fastest first, from the ``algorithms`` table's rank), its fastest, and how far the
ranking moved from the base regime of the same (stage, gpu, model, input_size): the smallest batch, float32,
nchw where measured (else the first measured in that order). ``kendall_tau`` compares the two rankings over
the algorithms ranked in both (1: same order, -1: reversed; ties count as neither concordant nor
discordant); ``fastest_changed`` says whether the fastest differs; ``rank[<algo>]`` is each algorithm's rank.
The ranking is by p50 alone: ``winners`` says which fastest is beyond noise.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from analysis.tables.columns import POINT
from analysis.tables.registry import Table

REGIME = ["batch_size", "dtype", "layout"]
PLACE = [c for c in POINT if c not in REGIME]  # where a ranking is compared across regimes
_DTYPE_ORDER = {"float32": 0, "float16": 1, "bfloat16": 2}
_LAYOUT_ORDER = {"nchw": 0, "nhwc": 1}


def kendall_tau(a: dict[str, float], b: dict[str, float]) -> float:
    """Kendall's tau-a between two rankings (algorithm -> rank) over the algorithms in both; NaN below two."""
    common = sorted(set(a) & set(b))
    pairs = list(itertools.combinations(common, 2))
    if not pairs:
        return np.nan
    score = sum(np.sign(a[x] - a[y]) * np.sign(b[x] - b[y]) for x, y in pairs)
    return float(score / len(pairs))


def _regime_order(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` sorted by place, then regime in the base-first order (batch, float32 first, nchw first)."""
    key = df.assign(
        _d=df["dtype"].astype(str).map(_DTYPE_ORDER).fillna(len(_DTYPE_ORDER)),
        _l=df["layout"].astype(str).map(_LAYOUT_ORDER).fillna(len(_LAYOUT_ORDER)),
    )
    return key.sort_values([*PLACE, "batch_size", "_d", "_l", "dtype", "layout"]).drop(columns=["_d", "_l"])


def regimes(algos: pd.DataFrame) -> pd.DataFrame:
    """One row per point: the regime, its ranking and fastest, and its movement from the base regime."""
    ranked = algos[algos["rank"].notna()]
    columns = [*POINT, "ranking", "fastest", "fastest_p50_ms", "algos_ranked", "base_regime", "kendall_tau"]
    if ranked.empty:
        return pd.DataFrame(columns=[*columns, "fastest_changed"])
    ranked = ranked.assign(**{c: ranked[c].astype(str) for c in ("algo", "dtype", "layout")})
    rows: list[dict] = []
    for _, place in _regime_order(ranked).groupby(PLACE, observed=True, sort=False):
        base: dict[str, float] | None = None
        base_name = base_fastest = None
        for regime, point in place.groupby(REGIME, observed=True, sort=False):
            point = point.sort_values(["rank", "algo"])
            order = dict(zip(point["algo"], point["rank"].astype(float)))
            if base is None:
                base, base_fastest = order, point["algo"].iloc[0]
                base_name = f"batch {regime[0]}, {regime[1]}, {regime[2]}"
            rows.append(
                {
                    **{c: point[c].iloc[0] for c in POINT},
                    "ranking": " > ".join(point["algo"]),
                    "fastest": point["algo"].iloc[0],
                    "fastest_p50_ms": float(point["p50_ms"].iloc[0]),
                    "algos_ranked": len(point),
                    "base_regime": base_name,
                    "kendall_tau": kendall_tau(order, base),
                    "fastest_changed": point["algo"].iloc[0] != base_fastest,
                    **{f"rank[{a}]": r for a, r in order.items()},
                }
            )
    out = pd.DataFrame(rows)
    ranks = sorted(c for c in out.columns if c.startswith("rank["))
    return out[[*columns, "fastest_changed", *ranks]].reset_index(drop=True)


TABLE = Table(
    name="regimes",
    inputs=("algorithms",),
    compute=regimes,
    position=95,
    about="how the ranking of the algorithms moves with batch, dtype and layout",
)
