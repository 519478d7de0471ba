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
    """One row per point: the regime, its ranking and fastest, and its movement from the base regime.

    Vectorised over the points (a campaign has hundreds of thousands): the rows sorted once by place, regime
    (base first), rank and algorithm; each point's ranking is its run of rows, each place's base its first
    point, and Kendall's tau is summed pair by pair of algorithms over every point at once (exact: the sums
    are of -1, 0 and 1). ``regimes_by_point`` is the same table point by point, kept to check this one."""
    ranked = algos[algos["rank"].notna()]
    columns = [*POINT, "ranking", "fastest", "fastest_p50_ms", "algos_ranked", "base_regime", "kendall_tau"]
    if ranked.empty:
        return pd.DataFrame(columns=[*columns, "fastest_changed"])
    ranked = ranked.assign(**{c: ranked[c].astype(str) for c in ("algo", "dtype", "layout")})
    ordered = _regime_order(ranked)
    place = ordered.groupby(PLACE, observed=True, sort=False).ngroup().to_numpy()
    point = ordered.groupby([*PLACE, *REGIME], observed=True, sort=False).ngroup().to_numpy()
    keep = place >= 0  # a place or regime with a missing value is no group (as groupby drops it)
    keep &= point >= 0
    ordered, place, point = ordered[keep], place[keep], point[keep]
    if not len(ordered):  # every ranked row misses a place or regime value
        return pd.DataFrame(columns=[*columns, "fastest_changed"])
    # points in order of first appearance, places likewise; within a point, rows by rank then algorithm
    rank = ordered["rank"].to_numpy(dtype=float)
    algo = ordered["algo"].to_numpy(dtype=object)
    names, algo_code = np.unique(algo, return_inverse=True)  # sorted: the same order as sorting the strings
    rows = np.lexsort((algo_code, rank, point))
    ordered, place, point, rank, algo_code = (
        ordered.iloc[rows],
        place[rows],
        point[rows],
        rank[rows],
        algo_code[rows],
    )
    starts = np.flatnonzero(np.r_[True, point[1:] != point[:-1]])
    counts = np.diff(np.r_[starts, len(point)])
    first = ordered.iloc[starts]
    n_points = len(starts)
    matrix = np.full((n_points, len(names)), np.nan)
    matrix[np.repeat(np.arange(n_points), counts), algo_code] = rank
    point_place = place[starts]
    base_row = np.flatnonzero(np.r_[True, point_place[1:] != point_place[:-1]])  # places are contiguous
    base_of = base_row[np.cumsum(np.r_[True, point_place[1:] != point_place[:-1]]) - 1]
    base = matrix[base_of]
    score, pairs = np.zeros(n_points), np.zeros(n_points)
    for x, y in itertools.combinations(range(len(names)), 2):
        both = ~(np.isnan(matrix[:, x]) | np.isnan(matrix[:, y]) | np.isnan(base[:, x]) | np.isnan(base[:, y]))
        pairs += both
        score += np.where(both, np.sign(matrix[:, x] - matrix[:, y]) * np.sign(base[:, x] - base[:, y]), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        tau = np.where(pairs > 0, score / np.where(pairs > 0, pairs, 1), np.nan)
    label = np.asarray(
        [f"batch {b}, {d}, {lay}" for b, d, lay in zip(first["batch_size"], first["dtype"], first["layout"])],
        dtype=object,
    )
    fastest = names[algo_code[starts]]
    joined = np.asarray([" > ".join(names[algo_code[a : a + n]]) for a, n in zip(starts, counts)], dtype=object)
    out = pd.DataFrame({c: _as_values(first[c]) for c in POINT})
    out["ranking"] = joined
    out["fastest"] = fastest
    out["fastest_p50_ms"] = first["p50_ms"].to_numpy(dtype=float)
    out["algos_ranked"] = counts
    out["base_regime"] = label[base_of]
    out["kendall_tau"] = tau
    out["fastest_changed"] = fastest != fastest[base_of]
    for j, a in enumerate(names):
        out[f"rank[{a}]"] = matrix[:, j]
    ranks = sorted(c for c in out.columns if c.startswith("rank["))
    return out[[*columns, "fastest_changed", *ranks]].reset_index(drop=True)


def _as_values(column: pd.Series) -> np.ndarray:
    """A column's values as the point-by-point table held them (a categorical's as its categories' values)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return column.astype(column.cat.categories.dtype).to_numpy()
    return column.to_numpy()


def regimes_by_point(algos: pd.DataFrame) -> pd.DataFrame:
    """``regimes`` point by point, in Python: the straightforward reading of the table, which tests compare
    the vectorised one with."""
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
