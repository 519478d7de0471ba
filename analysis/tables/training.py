"""The training step's analysis: which algorithm to run per conv layer in each direction, and what that gains
over cuDNN's heuristic for a whole step (pure: DataFrames in, DataFrames out).

A ``train_step`` point times one whole step (zero_grad, forward, loss, backward, optimizer step); its layer rows
time each conv call in its own direction (forward, backward_data, backward_filter: up to three per conv layer;
harness.results.columns). The per-layer choice here is the plans' rule (analysis.plans.make), one family per
point over every (layer, direction) call: per call, the fastest other algorithm that ran it itself against the
baseline's own run of it (one-sided on the log ratio of the two medians, the p-value times the number of others
it was picked from: harness.results.multiplicity.fastest_of), Benjamini-Hochberg at 5% over the point's calls;
a call switches where rejected, else the baseline is kept (a tie), so the projection is not the minimum of
noisy draws. The baseline is ``guess`` (cuDNN's heuristic in every direction) where its train_step point
measured, else ``torch`` (the framework's own: the CPU).

The projected step: the baseline's measured step time ``P`` less the gain of the switched calls,
``projected = P - D`` with ``D = sum over switched calls of (baseline's p50 - chosen's p50)``. A kept call
cancels (its time is in ``P`` already), so the projection needs no time of it, and the non-conv part of the
step (loss, optimizer, normalisation, copies) is the baseline's as measured. Its interval: ``P`` (the whole-step
pass) and the layer rows (the separate layer pass) are independent medians, each with the standard error of
its row (harness.results.uncertainty.log_se: the stored order-statistic interval of the median, right at any n
from 6, else sqrt(pi/2) std / sqrt(n) widened by t(n-1)); ``Var(D)`` is the sum of both rows' squared
absolute standard errors over the switched calls, and the speedup ``S = P / (P - D)`` has, by the delta method,
``se(log S)^2 = (D se_P / (P - D))^2 + Var(D) / (P - D)^2`` (``se_P``: the relative standard error of P).
A per-call overhead of the layer pass (a synchronisation, a hook) is in both sides of a gain and cancels; where
the gains exceed the step itself (``D >= P``) the calls' times are not the step's and there is no projection
(null); ``calls_over_step``, the baseline's calls timed alone over its step, shows how far they add up to it.
Below 6 iterations a row has no interval: its call is not tested (kept) and a projection that needs it has none.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.stats.intervals import tied_with_fastest, with_interval
from analysis.tables.columns import MIXED, POINT
from analysis.tree import directions
from harness.algorithms.plan import DIRECTIONS as CALLS
from harness.results import hostbound
from harness.results import multiplicity as mt
from harness.results.uncertainty import interval, log_se

# A point of the comparison without its direction (the rows here are all of one: train_step, or the call's)
STEP = [c for c in POINT if c != "direction"]
CALL = [*STEP, "direction", "layer_index"]  # one conv call of a step: a layer in one direction
BASELINES = ("guess", "torch")  # the first measured ok at a point is the baseline


def step_points(points: pd.DataFrame) -> pd.DataFrame:
    """The train_step points."""
    return points[(directions.point_direction(points) == directions.TRAIN_STEP).to_numpy()]


def step_layers(layers: pd.DataFrame) -> pd.DataFrame:
    """The layer rows of train_step points, their call's direction in ``direction`` (forward where missing)."""
    rows = layers[(directions.layer_point_direction(layers) == directions.TRAIN_STEP).to_numpy()]
    return rows.assign(direction=directions.call_direction(rows).to_numpy())


def baselines(points: pd.DataFrame, order: tuple[str, ...] = BASELINES) -> pd.DataFrame:
    """Per train_step point (STEP): the baseline (the first of ``order`` whose step measured ok: guess, else
    torch), its p50 and the standard error of its log."""
    ok = step_points(points)
    ok = ok[(ok["status"] == "ok") & ok["p50_ms"].notna() & ok["algo"].astype(str).isin(order)]
    ok = ok.assign(algo=ok["algo"].astype(str), rank=ok["algo"].astype(str).map(order.index), log_se=log_se(ok))
    first = ok.sort_values([*STEP, "rank"]).drop_duplicates(STEP)
    return first[[*STEP, "algo", "p50_ms", "log_se"]].rename(
        columns={"algo": "baseline", "p50_ms": "baseline_p50_ms", "log_se": "baseline_log_se"}
    )


def timed_calls(layers: pd.DataFrame) -> pd.DataFrame:
    """The layer rows that compete for a call: a single algorithm (not a plan's or Find's mix) whose own code
    ran it (status ok), timed at the GPU's pace (not host-bound), with ``log_se`` and its absolute ``se_ms``."""
    keep = (
        (layers["status"].astype(str) == "ok")
        & layers["p50_ms"].notna()
        & ~hostbound.mask(layers)
        & ~layers["algo"].astype(str).isin(MIXED)
    )
    rows = layers[keep.to_numpy()]
    rows = rows.assign(algo=rows["algo"].astype(str), log_se=log_se(rows))
    return rows.assign(se_ms=rows["p50_ms"] * rows["log_se"])


def choices(points: pd.DataFrame, layers: pd.DataFrame, order: tuple[str, ...] = BASELINES) -> pd.DataFrame:
    """Per call of each train_step point with a baseline (CALL): the baseline's and the fastest other
    algorithm's run of it, the switch test (``p_value``; ``q_value``: Benjamini-Hochberg over the point's
    calls), ``switch``, and the ``chosen`` algorithm with its p50 and absolute standard error. A call the
    baseline did not time (or timed host-bound) keeps the baseline untested (``baseline_timed`` False)."""
    base = baselines(points, order)
    calls = timed_calls(step_layers(layers)).merge(base[[*STEP, "baseline"]], on=STEP)
    mine = calls["algo"] == calls["baseline"]
    b = calls.loc[mine, [*CALL, "layer_name", "baseline", "p50_ms", "se_ms"]].rename(
        columns={"p50_ms": "baseline_call_ms", "se_ms": "baseline_se_ms"}
    )
    others = calls[~mine].sort_values([*CALL, "p50_ms", "algo"])
    count = others.groupby(CALL, observed=True).size().rename("candidates").reset_index()
    fastest = (
        others.drop_duplicates(CALL)[[*CALL, "layer_name", "algo", "p50_ms", "se_ms"]]
        .rename(columns={"algo": "challenger", "p50_ms": "challenger_ms", "se_ms": "challenger_se_ms"})
        .merge(count, on=CALL)
    )
    out = b.drop(columns="baseline").merge(fastest, on=CALL, how="outer", suffixes=("", "_other"))
    out["layer_name"] = out["layer_name"].astype(object).fillna(out.pop("layer_name_other").astype(object))
    out["baseline_timed"] = out["baseline_call_ms"].notna()
    out = out.merge(base[[*STEP, "baseline"]], on=STEP)
    challenged = out["baseline_timed"] & out["challenger"].notna()
    b_ms, c_ms = out["baseline_call_ms"].to_numpy(float), out["challenger_ms"].to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        lr = np.log(c_ms / b_ms)
        se = np.hypot(out["challenger_se_ms"].to_numpy(float) / c_ms, out["baseline_se_ms"].to_numpy(float) / b_ms)
    p = mt.fastest_of(mt.p_faster(lr, se), out["candidates"].fillna(0).to_numpy())
    p = np.where(challenged.to_numpy(), p, np.nan)
    point = out.groupby(STEP, observed=True, sort=False).ngroup().to_numpy()
    out["p_value"] = p
    out["q_value"] = mt.benjamini_hochberg(p, groups=point)
    out["switch"] = mt.rejected(out["q_value"].to_numpy())
    sw = out["switch"].to_numpy()
    out["chosen"] = np.where(sw, out["challenger"].astype(object), out["baseline"].astype(object))
    out["chosen_ms"] = np.where(sw, c_ms, b_ms)
    out["faster_untested"] = ~sw & challenged.to_numpy() & np.isnan(p)  # no interval on a side: kept
    out["kept_tied"] = ~sw & challenged.to_numpy() & (c_ms < b_ms) & ~np.isnan(p)
    return out.sort_values(CALL).reset_index(drop=True)


ORACLE_COLUMNS = [
    *STEP,
    "baseline",
    "baseline_p50_ms",
    "projected_ms",
    "projected_low_ms",
    "projected_high_ms",
    "speedup",
    "speedup_low",
    "speedup_high",
    "beyond_noise",
    "calls",
    *(f"switched_{d}" for d in CALLS),
    "kept_tied",
    "switch_tests",
    "switch_no_interval",
    "calls_without_baseline",
    "gain_ms",
    "calls_over_step",
    "oracle_mix",
]


def oracle(points: pd.DataFrame, layers: pd.DataFrame) -> pd.DataFrame:
    """Per train_step point with a baseline: the step with the best per-layer choice in every direction
    (``choices``) projected from the baseline's measured step (module docstring), and its speedup over the
    baseline with a 95% interval; ``beyond_noise``: the interval's low end above 1."""
    base = baselines(points)
    if base.empty:
        return pd.DataFrame(columns=ORACLE_COLUMNS)
    ch = choices(points, layers)
    sw = ch[ch["switch"]]
    gain = (sw["baseline_call_ms"] - sw["challenger_ms"]).groupby([sw[c] for c in STEP], observed=True).sum()
    var = (sw["baseline_se_ms"] ** 2 + sw["challenger_se_ms"] ** 2).groupby([sw[c] for c in STEP], observed=True).sum()
    g = ch.groupby(STEP, observed=True)
    switched = pd.crosstab([sw[c] for c in STEP], sw["direction"]).reindex(columns=list(CALLS), fill_value=0)
    counts = pd.DataFrame(
        {
            "calls": g["baseline_timed"].sum(),
            "kept_tied": g["kept_tied"].sum(),
            "switch_tests": g["p_value"].count(),
            "switch_no_interval": g["faster_untested"].sum(),
            "calls_without_baseline": g["baseline_timed"].agg(lambda s: int((~s).sum())),
            "oracle_mix": _mix(ch),
        }
    )
    counts = counts.join(switched.rename(columns=lambda d: f"switched_{d}"), how="left")
    out = base.set_index(STEP).join(counts, how="left")
    out["gain_ms"] = gain.reindex(out.index).fillna(0.0)
    var_d = var.reindex(out.index).fillna(0.0)
    P, D = out["baseline_p50_ms"].astype(float), out["gain_ms"].astype(float)
    se_p = out["baseline_log_se"].astype(float)
    calls_ms = ch["baseline_call_ms"].groupby([ch[c] for c in STEP], observed=True).sum(min_count=1)
    out["calls_over_step"] = calls_ms.reindex(out.index) / P  # the baseline's calls timed alone, over its step
    # A gain larger than the step cannot be the step's: the layer pass's calls did not add up to it (contention,
    # a host-bound pass). No projection then, rather than a negative time.
    proj = (P - D).where(P - D > 0)
    out["projected_ms"] = proj
    proj_se = np.sqrt((P * se_p) ** 2 + var_d) / proj
    out["projected_low_ms"], out["projected_high_ms"] = interval(np.log(proj), proj_se)
    out["speedup"] = P / proj
    s_se = np.sqrt((D * se_p / proj) ** 2 + var_d / proj**2)
    out["speedup_low"], out["speedup_high"] = interval(np.log(out["speedup"]), s_se)
    out["beyond_noise"] = out["speedup_low"] > 1
    out = out.reset_index()
    for c in ("calls", *(f"switched_{d}" for d in CALLS), "kept_tied", "switch_tests", "switch_no_interval"):
        out[c] = out[c].fillna(0).astype(np.int64)
    out["calls_without_baseline"] = out["calls_without_baseline"].fillna(0).astype(np.int64)
    return out[ORACLE_COLUMNS].sort_values(STEP).reset_index(drop=True)


def _mix(calls: pd.DataFrame) -> pd.Series:
    """What the oracle runs per point (STEP), per direction: ``forward gemm:3 guess:17; backward_data ...``."""
    n = calls.groupby([*STEP, "direction", "chosen"], observed=True).size().rename("k").reset_index()
    n["order"] = n["direction"].map(CALLS.index)
    n = n.sort_values([*STEP, "order", "k", "chosen"], ascending=[*([True] * len(STEP)), True, False, True])
    n["part"] = n["chosen"].astype(str) + ":" + n["k"].astype(str)
    per = n.groupby([*STEP, "order", "direction"], observed=True, sort=True)["part"].agg(" ".join).reset_index()
    per["part"] = per["direction"].astype(str) + " " + per["part"]
    return per.groupby(STEP, observed=True)["part"].agg("; ".join)


LAYER_KEY = [*STEP, directions.POINT_COLUMN, "direction", "layer_index"]
LAYER_COLUMNS = [
    *LAYER_KEY,
    "layer_name",
    "best_algo",
    "best_p50_ms",
    "best_low_ms",
    "best_high_ms",
    "winner",
    "tied_with_best",
    "n_tied",
    "runner_up_beyond_noise",
    "margin_beyond_noise",
    "baseline",
    "baseline_p50_ms",
    "best_over_baseline",
    "algos",
]


def best_per_layer(layers: pd.DataFrame) -> pd.DataFrame:
    """Per layer of each point measured in another direction than forward, per direction of its calls: the
    fastest single algorithm (its p50 and 95% interval), every algorithm tied with it (95% intervals overlap:
    analysis.stats.intervals.tied_with_fastest; an algorithm without an interval is tied), ``winner`` (the best
    where no other is tied with it, else ``tied``), the fastest beyond noise after it and by how much, and the
    baseline's (guess, else torch) p50 and ``best_over_baseline`` = baseline / best (> 1: the best is faster)."""
    rows = timed_calls(
        layers.assign(
            direction=directions.call_direction(layers).to_numpy(),
            point_direction=directions.layer_point_direction(layers).to_numpy(),
        )
    )
    if rows.empty:
        return pd.DataFrame(columns=LAYER_COLUMNS)
    rows = with_interval(rows.drop(columns="log_se"))
    groups = [rows[k] for k in LAYER_KEY]
    rows = rows.assign(tied=tied_with_fastest(rows["p50_ms"], rows["low_ms"], rows["high_ms"], groups))
    rows = rows.sort_values([*LAYER_KEY, "p50_ms", "algo"])
    g = rows.groupby(LAYER_KEY, observed=True, sort=False)
    first = g.nth(0).set_index(LAYER_KEY)
    tied = rows[rows["tied"]].groupby(LAYER_KEY, observed=True, sort=False)["algo"]
    outside = rows[~rows["tied"]].groupby(LAYER_KEY, observed=True, sort=False).nth(0).set_index(LAYER_KEY)
    out = pd.DataFrame(index=first.index)
    out["layer_name"] = first["layer_name"].astype(str)
    out["best_algo"] = first["algo"]
    out["best_p50_ms"] = first["p50_ms"]
    out["best_low_ms"], out["best_high_ms"] = first["low_ms"], first["high_ms"]
    out["tied_with_best"] = tied.agg(lambda a: ", ".join(sorted(a)))
    out["n_tied"] = tied.size()
    out["winner"] = np.where(out["n_tied"] == 1, out["best_algo"], "tied")
    out["runner_up_beyond_noise"] = outside["algo"]
    out["margin_beyond_noise"] = outside["p50_ms"] / first["p50_ms"] - 1
    for ref in reversed(BASELINES):  # guess wins over torch where both timed the call
        r = rows[rows["algo"] == ref].drop_duplicates(LAYER_KEY).set_index(LAYER_KEY)["p50_ms"].reindex(out.index)
        has = r.notna()
        out.loc[has, "baseline"] = ref
        out.loc[has, "baseline_p50_ms"] = r[has]
    for c in ("baseline", "baseline_p50_ms"):
        if c not in out:
            out[c] = np.nan
    out["best_over_baseline"] = out["baseline_p50_ms"] / out["best_p50_ms"]
    out["algos"] = g.size()
    return out.reset_index()[LAYER_COLUMNS].sort_values(LAYER_KEY).reset_index(drop=True)


def flattened(points: pd.DataFrame, layers: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The train_step points and their layer rows as the forward's plan tables read a point's layers: one row
    per call with its own ``layer_index`` (the layer's x 3 + its direction's position, so a call is a "layer"
    of the step) and, where the point key holds ``direction``, the point's direction in it."""
    pts, lay = step_points(points), layers[(directions.layer_point_direction(layers) == directions.TRAIN_STEP)]
    lay = lay.assign(layer_index=directions.within_point(lay))
    if "direction" in POINT:
        lay = lay.assign(direction=directions.layer_point_direction(lay).to_numpy())
    return pts, lay


__all__ = ["baselines", "best_per_layer", "choices", "flattened", "oracle", "step_layers", "step_points"]
