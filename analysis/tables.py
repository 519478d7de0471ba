"""The answer tables: pure functions from the resolved points/layers DataFrames to DataFrames.

Conventions: a latency is a point's (or a layer's) p50 in ms; only "ok" points compete for best; a speedup
is the reference's latency over the algorithm's (> 1: faster than the reference); a margin is the
runner-up's latency over the winner's, minus one. Nothing here reads or writes files.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.keys import layer_keys, row_keys
from harness.results import hostbound
from harness.results import multiplicity as mt
from harness.results.columns import dynamic_energy_per_inference_j
from harness.results.uncertainty import geomean_interval, log_se, ratio_interval

# One point of the comparison: every algorithm measured here competes.
POINT = ["stage", "gpu", "model", "input_size", "batch_size", "dtype"]
GEOMETRY = [
    "in_channels",
    "out_channels",
    "kernel_h",
    "kernel_w",
    "stride_h",
    "stride_w",
    "pad_h",
    "pad_w",
    "dilation_h",
    "dilation_w",
    "groups",
    "in_h",
    "in_w",
]
# A layer shape as an algorithm sees it (batch and dtype change the work and what runs).
SHAPE = ["gpu", "dtype", "batch_size", *GEOMETRY]
# Support does not depend on the batch: one verdict per algorithm x shape x gpu (x dtype).
SUPPORT = ["gpu", "dtype", *GEOMETRY]
BASELINES = ("torch", "guess")
STATUSES = ("ok", "oom", "unsupported", "error")


def shape_label(df: pd.DataFrame, size: bool = True) -> pd.Series:
    """A short readable name of a layer shape, e.g. ``64->128 3x3 s2 p1 @56x56`` (g, d only when not 1;
    without the ``@HxW`` input size when ``size`` is False)."""
    s = (
        df["in_channels"].astype(str)
        + "->"
        + df["out_channels"].astype(str)
        + " "
        + df["kernel_h"].astype(str)
        + "x"
        + df["kernel_w"].astype(str)
        + " s"
        + df["stride_h"].astype(str)
        + " p"
        + df["pad_h"].astype(str)
    )
    s = s + np.where(df["groups"] != 1, " g" + df["groups"].astype(str), "")
    s = s + np.where(df["dilation_h"] != 1, " d" + df["dilation_h"].astype(str), "")
    return s + " @" + df["in_h"].astype(str) + "x" + df["in_w"].astype(str) if size else s


def algorithms(points: pd.DataFrame) -> pd.DataFrame:
    """One row per point x algorithm: p50, energy (total, and dynamic: harness.results.columns.DEFINITIONS),
    energy-delay product, speedups over torch and guess,
    and the algorithm's rank at that point (1 = fastest; only ok points are ranked)."""
    df = points[[*POINT, "algo", "status", "p50_ms", "energy_per_inference_j"]].rename(
        columns={"energy_per_inference_j": "energy_j"}
    )
    ok = df["status"] == "ok"
    have_idle = {"idle_power_w", "energy_window_s", "energy_inferences"} <= set(points.columns)
    dynamic = dynamic_energy_per_inference_j(points) if have_idle else pd.Series(np.nan, index=points.index)
    df = df.assign(
        p50_ms=df["p50_ms"].astype(float).where(ok),
        energy_j=df["energy_j"].astype(float).where(ok),
        dynamic_energy_j=dynamic.astype(float).where(ok),
        log_se=log_se(points),
    )
    df["edp_js"] = df["energy_j"] * df["p50_ms"] / 1e3
    for ref in BASELINES:
        refs = df.loc[(df["algo"] == ref) & df["p50_ms"].notna(), [*POINT, "p50_ms"]]
        df = df.merge(refs.rename(columns={"p50_ms": f"{ref}_p50_ms"}), on=POINT, how="left")
        df[f"speedup_vs_{ref}"] = df[f"{ref}_p50_ms"] / df["p50_ms"]
    df["rank"] = df.groupby(POINT, observed=True)["p50_ms"].rank(method="min")
    return df.sort_values([*POINT, "algo"]).reset_index(drop=True)


def best(algos: pd.DataFrame) -> pd.DataFrame:
    """One row per point: the fastest algorithm, its margin over the runner-up, speedups over torch and
    guess, the algorithms with the least energy and the least energy-delay product, and every algorithm's
    p50 as a column ``p50_ms[<algo>]``."""
    ranked = algos[algos["p50_ms"].notna()].sort_values([*POINT, "p50_ms", "algo"])
    g = ranked.groupby(POINT, observed=True)
    first = g.nth(0).set_index(POINT)
    second = g.nth(1).set_index(POINT)
    out = pd.DataFrame(index=first.index)
    out["best_algo"] = first["algo"]
    out["best_p50_ms"] = first["p50_ms"]
    out["runner_up"] = second["algo"]
    out["margin"] = second["p50_ms"] / first["p50_ms"] - 1
    for ref in BASELINES:
        out[f"{ref}_p50_ms"] = first[f"{ref}_p50_ms"]
        out[f"speedup_vs_{ref}"] = first[f"speedup_vs_{ref}"]
    for col, name in (("energy_j", "energy"), ("edp_js", "edp")):
        have = algos[algos[col].notna()].sort_values([*POINT, col, "algo"]).groupby(POINT, observed=True).nth(0)
        have = have.set_index(POINT)
        out[f"best_{name}_algo"] = have["algo"]
        out[f"best_{col}"] = have[col]
    out["algos_ok"] = g.size()
    wide = algos.pivot_table(index=POINT, columns="algo", values="p50_ms", observed=True)
    wide.columns = [f"p50_ms[{a}]" for a in wide.columns]
    everything = algos[POINT].drop_duplicates().set_index(POINT)
    return everything.join(out).join(wide).reset_index().sort_values(POINT).reset_index(drop=True)


def edp(algos: pd.DataFrame) -> pd.DataFrame:
    """Energy-delay product (J x s) per point x algorithm where energy was measured, ranked per point."""
    df = algos.loc[algos["edp_js"].notna(), [*POINT, "algo", "p50_ms", "energy_j", "edp_js"]].copy()
    df["edp_rank"] = df.groupby(POINT, observed=True)["edp_js"].rank(method="min")
    return df.sort_values([*POINT, "edp_rank"]).reset_index(drop=True)


def timed(layers: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``columns`` of the layer rows where the requested algorithm itself ran and was timed at the GPU's pace
    (not host-bound: harness.results.hostbound)."""
    return layers.loc[(layers["status"] == "ok") & layers["p50_ms"].notna() & ~hostbound.mask(layers), columns]


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


def _switch_p(
    ok: np.ndarray, p50: np.ndarray, se: np.ndarray, algo: np.ndarray, layer_key: np.ndarray, best: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The oracle's switch test, per row of ``best`` (the best single algorithm's row of each layer): the
    p-value of "the fastest other algorithm that ran the layer itself (rows where ``ok``) is faster than the
    best single one", one-sided on the log ratio of the two medians, times the number of others it was
    picked from (harness.results.multiplicity.fastest_of); and whether any other ran the layer. NaN where
    none did or a row has no interval (``se`` NaN)."""
    keys, first = np.unique(layer_key[best], return_index=True)  # each layer, and its best row (the first)
    rows = np.flatnonzero(ok)
    at = pd.Index(keys).get_indexer(layer_key[rows])
    rows, at = rows[at >= 0], at[at >= 0]
    others = rows[algo[rows] != algo[best[first[at]]]]
    others = others[np.lexsort((algo[others], p50[others], layer_key[others]))]  # fastest first per layer
    other_keys, fastest, count = np.unique(layer_key[others], return_index=True, return_counts=True)
    j = pd.Index(other_keys).get_indexer(layer_key[best])
    challenged = j >= 0
    chal = np.where(challenged, others[fastest[j]] if len(others) else best, best)
    p = mt.p_faster(np.log(p50[chal] / p50[best]), np.hypot(se[chal], se[best]))
    p = mt.fastest_of(p, np.where(challenged, count[j] if len(others) else 0, 0))
    return p, challenged


def oracle(points: pd.DataFrame, layers: pd.DataFrame) -> pd.DataFrame:
    """The per-layer oracle per point: every layer run by its own fastest algorithm (among those timed at
    that layer), against the best single algorithm, switching a layer only beyond noise, corrected for the
    number of layers (``_switch_p``): Benjamini-Hochberg at a false discovery rate of 5% over each point's
    layers with a test (``switch_tests``; ``switch_no_interval``: layers whose rows have no interval, not
    tested). A tie keeps the best algorithm's layer, so the projection is not the minimum of noisy draws.
    ``projected_ms`` = the best algorithm's non-conv remainder (its p50 minus its layers' sum, floored at 0)
    + the oracle's layer sum;
    ``projected_speedup`` = best p50 / projected_ms with a 95% interval (the two medians and the layer sums'
    standard errors, independent); ``conv_speedup`` compares the layer sums alone.

    A host-bound layer row (its time is the host's: harness.results.hostbound) is never a candidate. Where
    the best algorithm's own row of a layer is host-bound, that layer keeps the best algorithm (no evidence
    to switch) and the point's projection, which needs that time, is NaN: ``host_bound_layers`` counts them,
    as ``unrun_layers`` counts the layers no algorithm ran itself (also NaN)."""
    ok = points[(points["status"] == "ok") & points["p50_ms"].notna()]
    ok = ok.assign(log_se=log_se(ok))
    top = ok.sort_values([*POINT, "p50_ms", "algo"]).drop_duplicates(POINT)[[*POINT, "algo", "p50_ms", "log_se"]]
    top = top.rename(columns={"algo": "best_algo", "p50_ms": "best_p50_ms", "log_se": "best_log_se"})
    cols = [*POINT, "algo", "layer_index", "p50_ms"] + [c for c in ("std_ms", "n", "host_bound") if c in layers.columns]
    lay = layers.loc[layers["p50_ms"].notna(), [*cols, "status"]]
    raw_se = log_se(lay)  # NaN: no interval, never a switch, and no interval for a projection that sums it
    # On millions of layer rows, in numpy: the point (and the point's layer) as one integer, algorithms as
    # codes in name order (ties go to the first name, as a sort by name would)
    point_key, layer_point = row_keys([top, lay], POINT)
    (layer_key,) = layer_keys([lay], POINT)
    algo_cat = pd.Categorical(lay["algo"])
    algo, names = algo_cat.codes.astype(np.int64), np.asarray(algo_cat.categories, dtype=object)
    best_code = pd.Categorical(top["best_algo"], categories=algo_cat.categories).codes.astype(np.int64)
    p50 = lay["p50_ms"].to_numpy(dtype=float)
    abs_se = p50 * raw_se.to_numpy(dtype=float)
    # the best single algorithm's own layers, each with its point's row in top
    pos = pd.Index(point_key).get_indexer(layer_point)
    placed = np.flatnonzero(pos >= 0)  # layers of a point that has an ok row (none where no point is ok)
    best = placed[algo[placed] == best_code[pos[placed]]]
    ok_rows, hb = (lay["status"] == "ok").to_numpy(), hostbound.mask(lay)
    unrun = ~pd.Index(layer_key[best]).isin(layer_key[ok_rows])  # no algorithm ran the layer itself
    host_bound = hb[best]  # the best algorithm's own time of the layer is the host's
    # per layer of a point, the fastest row that ran it itself at the GPU's pace (ties: the first algorithm by name)
    ran = np.flatnonzero(ok_rows & ~hb)
    ran = ran[np.lexsort((algo[ran], p50[ran], layer_key[ran]))]
    ran = ran[np.r_[True, layer_key[ran][1:] != layer_key[ran][:-1]]] if len(ran) else ran
    j = pd.Index(layer_key[ran]).get_indexer(layer_key[best])
    cand = ran[np.maximum(j, 0)]
    faster = (j >= 0) & ~host_bound & (algo[cand] != algo[best])
    switch_p, challenged = _switch_p(ok_rows & ~hb, p50, raw_se.to_numpy(dtype=float), algo, layer_key, best)
    switch_p = np.where(host_bound, np.nan, switch_p)  # the best's own time is the host's: nothing to test
    switched = faster & mt.rejected(mt.benjamini_hochberg(switch_p, groups=pos[best]))
    oracle_ms = np.where(switched, p50[cand], p50[best])
    oracle_var = np.where(switched, abs_se[cand], abs_se[best]) ** 2
    chosen = np.where(switched, algo[cand], algo[best])
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
    mix = pd.DataFrame({"_point": point_key[at[known]], "chosen": names[chosen[known]]})
    mix = mix.groupby(["_point", "chosen"]).size().reset_index(name="k")
    mix = mix.sort_values(["_point", "k", "chosen"], ascending=[True, False, True])
    mix["part"] = mix["chosen"].astype(str) + ":" + mix["k"].astype(str)
    labels = mix.groupby("_point")["part"].agg(", ".join).rename("oracle_mix")
    out["oracle_mix"] = labels.reindex(point_key[kept]).to_numpy()
    return out.sort_values(POINT).reset_index(drop=True)


def coverage(points: pd.DataFrame) -> pd.DataFrame:
    """What was measured: per stage x gpu x model x algorithm, points by status and the sizes covered."""
    key = ["stage", "gpu", "model", "algo"]
    counts = pd.crosstab([points[k].astype(str) for k in key], points["status"].astype(str))
    counts = counts.reindex(columns=sorted(set(counts.columns) | set(STATUSES), key=_status_order), fill_value=0)
    g = points.astype({k: str for k in key}).groupby(key, observed=True)
    counts["points"] = g.size()
    counts["sizes"] = g["input_size"].agg(lambda s: _span(s))
    counts["batches"] = g["batch_size"].agg(lambda s: ",".join(map(str, sorted(set(s)))))
    counts.columns.name = None
    return counts.reset_index()


def failures(points: pd.DataFrame) -> pd.DataFrame:
    """Points that did not measure ok, grouped by what went wrong (same status and message)."""
    bad = points[points["status"] != "ok"].copy()
    bad["error"] = bad["error"].fillna("").astype(str).str.slice(0, 200)
    key = ["stage", "gpu", "model", "algo", "status", "error"]
    out = (
        bad.groupby(key, observed=True, dropna=False)
        .agg(points=("input_size", "size"), sizes=("input_size", _span))
        .reset_index()
    )
    return out.sort_values(["status", *key[:4]]).reset_index(drop=True)


def _span(s: pd.Series) -> str:
    values = sorted(set(int(v) for v in s))
    if len(values) <= 4:
        return ",".join(map(str, values))
    return f"{values[0]}..{values[-1]} ({len(values)})"


def _status_order(s: str) -> tuple[int, str]:
    return (STATUSES.index(s) if s in STATUSES else len(STATUSES), s)


def gpu_pairs(algos: pd.DataFrame) -> pd.DataFrame:
    """Each pair of GPU types compared on the points both measured ok (same stage, model, algorithm, input
    size, batch, dtype): how many, how often the first is slower, and the geometric mean (with its 95%
    interval over the points matched, harness.results.uncertainty.geomean_interval), min and max of its p50
    over the second's (> 1: the first is slower); the same ratio for energy where both have it.
    One row per stage x pair x model, and one per stage x pair over every model (model "(all)")."""
    cols = [
        "stage",
        "gpu_a",
        "gpu_b",
        "model",
        "matched",
        "a_slower",
        "a_slower_share",
        "geomean_p50_ratio",
        "p50_ratio_low",
        "p50_ratio_high",
        "min_p50_ratio",
        "max_p50_ratio",
        "energy_matched",
        "geomean_energy_ratio",
    ]
    key = [c for c in POINT if c != "gpu"] + ["algo"]
    algos = algos if "log_se" in algos else algos.assign(log_se=np.nan)
    ok = algos.loc[algos["p50_ms"].notna(), [*key, "gpu", "p50_ms", "energy_j", "log_se"]].copy()
    ok["gpu"] = ok["gpu"].astype(str)
    gpus = sorted(ok["gpu"].unique())
    frames = []
    for i, a in enumerate(gpus):
        for b in gpus[i + 1 :]:
            m = ok[ok["gpu"] == a].merge(ok[ok["gpu"] == b], on=key, suffixes=("_a", "_b"))
            if m.empty:
                continue
            m = m.assign(
                gpu_a=a,
                gpu_b=b,
                log_ratio=np.log(m["p50_ms_a"] / m["p50_ms_b"]),
                ratio_se=np.hypot(m["log_se_a"], m["log_se_b"]),
                log_energy=np.log(m["energy_j_a"] / m["energy_j_b"]),
            )
            frames += [m, m.assign(model="(all)")]
    if not frames:
        return pd.DataFrame(columns=cols)
    m = pd.concat(frames, ignore_index=True)
    m["model"] = m["model"].astype(str)
    g = m.groupby(["stage", "gpu_a", "gpu_b", "model"], observed=True)
    out = g.agg(
        matched=("log_ratio", "size"),
        a_slower=("log_ratio", lambda s: int((s > 0).sum())),
        mean_log=("log_ratio", "mean"),
        min_log=("log_ratio", "min"),
        max_log=("log_ratio", "max"),
        energy_matched=("log_energy", "count"),
        mean_log_energy=("log_energy", "mean"),
    ).reset_index()
    out["a_slower_share"] = out["a_slower"] / out["matched"]
    out["geomean_p50_ratio"] = np.exp(out["mean_log"])
    out["min_p50_ratio"], out["max_p50_ratio"] = np.exp(out["min_log"]), np.exp(out["max_log"])
    out["geomean_energy_ratio"] = np.exp(out["mean_log_energy"])
    intervals = [geomean_interval(grp["log_ratio"].to_numpy(), grp["ratio_se"].to_numpy())[1:] for _, grp in g]
    out["p50_ratio_low"], out["p50_ratio_high"] = zip(*intervals) if intervals else ((), ())
    out["model"] = pd.Categorical(out["model"], sorted(out["model"].unique(), key=lambda s: (s == "(all)", s)))
    return out.sort_values(["stage", "gpu_a", "gpu_b", "model"])[cols].reset_index(drop=True)
