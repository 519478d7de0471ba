"""The per-layer oracle per point: every layer by its own fastest algorithm beyond noise, projected end to end."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.stats.fastest import fastest_per_key
from analysis.stats.tests import switch_test
from analysis.tables import slices
from analysis.tables.columns import (
    POINT,
    singles,
)
from analysis.tables.registry import Table
from analysis.tree.keys import by_runs, layer_keys, row_keys
from harness.results import hostbound
from harness.results import multiplicity as mt
from harness.results.uncertainty import log_se, ratio_interval


def oracle(points: pd.DataFrame, layers: pd.DataFrame) -> pd.DataFrame:
    """``one_model``'s table computed one model at a time (analysis.tables.slices: each point's layers are its
    model's), sorted by point."""
    parts = slices.each(one_model, slices.with_points(points, layers))
    if len(parts) == 1:
        return parts[0]
    return slices.concat(parts).sort_values(POINT).reset_index(drop=True)


def one_model(points: pd.DataFrame, layers: pd.DataFrame) -> pd.DataFrame:
    """The per-layer oracle per point: every layer run by its own fastest algorithm (among those timed at
    that layer), against the best single algorithm, switching a layer only beyond noise, corrected for the
    number of layers (analysis.stats.tests.switch_test): Benjamini-Hochberg at a false discovery rate of 5%
    over each point's layers with a test (``switch_tests``; ``switch_no_interval``: layers whose rows have no
    interval, not tested). A tie keeps the best algorithm's layer, so the projection is not the minimum of noisy draws.
    ``projected_ms`` = the best algorithm's non-conv remainder (its p50 minus its layers' sum, floored at 0)
    + the oracle's layer sum;
    ``projected_speedup`` = best p50 / projected_ms with a 95% interval (the two medians and the layer sums'
    standard errors, independent); ``conv_speedup`` compares the layer sums alone.

    A host-bound layer row (its time is the host's: harness.results.hostbound) is never a candidate. Where
    the best algorithm's own row of a layer is host-bound, that layer keeps the best algorithm (no evidence
    to switch) and the point's projection, which needs that time, is NaN: ``host_bound_layers`` counts them,
    as ``unrun_layers`` counts the layers no algorithm ran itself (also NaN)."""
    read = [c for c in (*POINT, "algo", "p50_ms", "ci95_low_ms", "ci95_high_ms", "std_ms", "n") if c in points]
    ok = points.loc[(points["status"] == "ok") & points["p50_ms"].notna(), read]  # not all 150 columns
    ok = ok.assign(log_se=log_se(ok))
    top = ok.sort_values([*POINT, "p50_ms", "algo"]).drop_duplicates(POINT)[[*POINT, "algo", "p50_ms", "log_se"]]
    top = top.rename(columns={"algo": "best_algo", "p50_ms": "best_p50_ms", "log_se": "best_log_se"})
    cols = [*POINT, "algo", "layer_index", "p50_ms"] + [c for c in ("std_ms", "n", "host_bound") if c in layers.columns]
    timed = layers["p50_ms"].notna().to_numpy()
    # every row timed (as a campaign's are): the columns without a copy of millions of rows (copy on write)
    lay = layers[[*cols, "status"]] if timed.all() else layers.loc[timed, [*cols, "status"]]
    raw_se = log_se(lay)  # NaN: no interval, never a switch, and no interval for a projection that sums it
    # On millions of layer rows, in numpy: the point (and the point's layer) as one integer, algorithms as
    # codes in name order (ties go to the first name, as a sort by name would)
    point_key, layer_point = row_keys([top, lay], POINT)
    (layer_key,) = layer_keys([lay], POINT)
    algo_cat = pd.Categorical(lay["algo"])
    algo, names = algo_cat.codes, np.asarray(algo_cat.categories, dtype=object)  # int8: a byte a row
    best_code = pd.Categorical(top["best_algo"], categories=algo_cat.categories).codes.astype(np.int64)
    p50 = lay["p50_ms"].to_numpy(dtype=float)
    se = raw_se.to_numpy(dtype=float)
    # the best single algorithm's own layers, each with its point's row in top
    pos = by_runs(layer_point, pd.Index(point_key).get_indexer)  # a point's layers together: asked once a point
    placed = np.flatnonzero(pos >= 0)  # layers of a point that has an ok row (none where no point is ok)
    best = placed[algo[placed] == best_code[pos[placed]]]
    ok_rows, hb = (lay["status"] == "ok").to_numpy(), hostbound.mask(lay)
    unrun = ~pd.Index(layer_key[best]).isin(layer_key[ok_rows])  # no algorithm ran the layer itself
    host_bound = hb[best]  # the best algorithm's own time of the layer is the host's
    # per layer of a point, the fastest row that ran it itself at the GPU's pace (ties: the first algorithm by name)
    ran = np.flatnonzero(ok_rows & ~hb)
    ran = ran[fastest_per_key(layer_key[ran], p50[ran], algo[ran])[1]]
    j = pd.Index(layer_key[ran]).get_indexer(layer_key[best])
    cand = ran[np.maximum(j, 0)]
    faster = (j >= 0) & ~host_bound & (algo[cand] != algo[best])
    switch_p, challenged = switch_test(ok_rows & ~hb, p50, se, algo, layer_key, best)
    switch_p = np.where(host_bound, np.nan, switch_p)  # the best's own time is the host's: nothing to test
    switched = faster & mt.rejected(mt.benjamini_hochberg(switch_p, groups=pos[best]))
    oracle_ms = np.where(switched, p50[cand], p50[best])
    on = np.where(switched, cand, best)  # the row each layer is projected with
    oracle_var = (p50[on] * se[on]) ** 2
    chosen = algo[on].astype(np.int64)
    at, n = pos[best], len(top)

    def total(values: np.ndarray) -> np.ndarray:
        return np.bincount(at, weights=np.nan_to_num(values.astype(float)), minlength=n).astype(float)

    sums = pd.DataFrame(
        {
            "layers": np.bincount(at, minlength=n),
            "best_conv_ms": total(p50[best]),
            "oracle_conv_ms": total(np.where(unrun | host_bound, 0.0, oracle_ms)),
            "oracle_var": total(oracle_var),
            "unrun_layers": np.bincount(at, weights=unrun, minlength=n).astype(np.int64),
            "host_bound_layers": np.bincount(at, weights=host_bound, minlength=n).astype(np.int64),
            "layers_switched": np.bincount(at, weights=switched, minlength=n).astype(np.int64),
            "layers_kept_tied": np.bincount(at, weights=faster & ~switched, minlength=n).astype(np.int64),
            "switch_tests": np.bincount(at, weights=~np.isnan(switch_p), minlength=n).astype(np.int64),
            "switch_no_interval": np.bincount(
                at, weights=np.isnan(switch_p) & challenged & ~host_bound, minlength=n
            ).astype(np.int64),
            "unknown_var": np.bincount(at, weights=np.isnan(oracle_var), minlength=n).astype(np.int64),
        },
        index=top.index,
    )
    kept = sums["layers"].to_numpy() > 0  # a point whose best algorithm has layer rows (an inner join)
    out = pd.concat([top, sums], axis=1)[kept].reset_index(drop=True)
    out.loc[(out["unrun_layers"] > 0) | (out["host_bound_layers"] > 0), "oracle_conv_ms"] = np.nan
    out.loc[out["host_bound_layers"] > 0, "best_conv_ms"] = np.nan  # a sum holding the host's time
    out["remainder_ms"] = (out["best_p50_ms"] - out["best_conv_ms"]).clip(lower=0.0)
    out["projected_ms"] = out["remainder_ms"] + out["oracle_conv_ms"]
    proj_se = (np.sqrt(out.pop("oracle_var")) / out["projected_ms"]).where(out.pop("unknown_var") == 0)
    r = ratio_interval(out["best_p50_ms"], out.pop("best_log_se"), out["projected_ms"], proj_se)
    out["projected_speedup"], out["projected_low"], out["projected_high"] = r.ratio, r.low, r.high
    out["conv_speedup"] = out["best_conv_ms"] / out["oracle_conv_ms"]
    known = ~unrun & ~host_bound
    out["oracle_mix"] = mix_labels(at[known], chosen[known], names, n)[kept]
    return out.sort_values(POINT).reset_index(drop=True)


def mix_labels(point: np.ndarray, chosen: np.ndarray, names: np.ndarray, n: int) -> np.ndarray:
    """Per point 0..n-1, how many of its layers each algorithm runs, as ``name:k`` joined by ", " (most layers
    first, then by name); NaN for a point with none. ``point`` and ``chosen`` (codes into ``names``; -1, a layer
    row without its algorithm, is counted for none): one per layer. Counted on the codes (no string per layer)
    and joined in one pass over the points' parts: a grouped join of strings per layer held the interpreter's
    lock for most of the oracle's last second."""
    labels = np.full(n, np.nan, dtype=object)
    named = chosen >= 0  # a layer row without its algorithm (code -1) is counted for none
    point, chosen = point[named], chosen[named]
    if not len(point):
        return labels
    width = len(names)
    counts = np.bincount(point * width + chosen, minlength=n * width).reshape(n, width)
    at, algo = np.nonzero(counts)
    k = counts[at, algo]
    by_name = np.argsort(np.argsort(names.astype(str), kind="stable"))  # each name's place in name order
    order = np.lexsort((by_name[algo], -k, at))
    at, algo, k = at[order], algo[order], k[order]
    parts = [f"{names[a]}:{c}" for a, c in zip(algo.tolist(), k.tolist())]
    bounds = np.r_[np.flatnonzero(np.r_[True, at[1:] != at[:-1]]), len(at)].tolist()
    labels[at[bounds[:-1]]] = [", ".join(parts[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
    return labels


TABLE = Table(
    name="oracle",
    inputs=("points", "layers"),
    compute=lambda points, layers: oracle(singles(points), singles(layers)),
    position=140,
    about="the per-layer oracle's projection per point (single algorithms only)",
)
