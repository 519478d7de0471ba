"""What a user of the predictor needs: per held-out layer, the regret of running the algorithm predicted
fastest instead of the one measured fastest, beside the expected regret of a random pick.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.tables import POINT

WITHIN = 0.05  # regret share reported: choices within 5% of the measured fastest


OCCURRENCE = [*POINT, "layer_index"]  # one layer at one point: the algorithms compete on it


def choices(pred: pd.DataFrame) -> pd.DataFrame:
    """Per held-out layer occurrence (a layer at a point, in one fold) with at least two algorithms timed ok
    among the test rows: the algorithm predicted fastest, the one measured fastest, and

    - ``regret``: measured time of the predicted-fastest / measured fastest - 1 (0: the right choice);
    - ``random_regret``: the same expected for an algorithm drawn at random among those measured;
    - ``random_within``: the share of those algorithms within ``WITHIN`` of the fastest.

    Ties in the prediction go to the first row. Vectorised (groupby); no Python loop per layer."""
    cols = [
        "split",
        "held_out",
        *OCCURRENCE,
        "algos",
        "chosen",
        "fastest",
        "chosen_ms",
        "fastest_ms",
        "regret",
        "random_regret",
        "random_within",
    ]
    if pred.empty or "layer_index" not in pred:
        return pd.DataFrame(columns=cols)
    rows = pred[pred["status"] == "ok"] if "status" in pred else pred
    rows = rows[[c for c in ("split", "held_out", *OCCURRENCE, "algo_requested", "measured", "predicted")]]
    key = ["split", "held_out", *OCCURRENCE]
    rows = rows.reset_index(drop=True)
    ids = rows.groupby(key, observed=True, sort=False, dropna=False).ngroup().to_numpy()
    count = np.bincount(ids)
    keep = count[ids] >= 2
    rows, ids = rows[keep].reset_index(drop=True), ids[keep]
    if rows.empty:
        return pd.DataFrame(columns=cols)
    measured, predicted = rows["measured"].to_numpy(float), rows["predicted"].to_numpy(float)
    g = pd.Series(ids)
    best = pd.Series(measured).groupby(ids).transform("min").to_numpy()
    chosen = pd.Series(predicted).groupby(ids).idxmin().to_numpy()  # row positions (index is 0..n-1)
    fastest = pd.Series(measured).groupby(ids).idxmin().to_numpy()
    ratio = pd.Series(measured / best)
    out = rows.loc[chosen, key].reset_index(drop=True)
    out["algos"] = g.value_counts(sort=False).sort_index().to_numpy()
    out["chosen"] = rows["algo_requested"].to_numpy()[chosen]
    out["fastest"] = rows["algo_requested"].to_numpy()[fastest]
    out["chosen_ms"] = measured[chosen]
    out["fastest_ms"] = measured[fastest]
    out["regret"] = out["chosen_ms"] / out["fastest_ms"] - 1.0
    out["random_regret"] = ratio.groupby(ids).mean().to_numpy() - 1.0
    out["random_within"] = (ratio <= 1.0 + WITHIN).groupby(ids).mean().to_numpy()
    return out[cols]


def regret_summary(chosen: pd.DataFrame) -> pd.DataFrame:
    """Per split (``held_out`` "all folds") and per fold: layers, the median and mean regret in % and the
    share of layers whose choice is within ``WITHIN`` of the fastest; beside them the same for a random pick."""
    if chosen.empty:
        return pd.DataFrame()
    pct = chosen.assign(
        regret=chosen["regret"] * 100, random_regret=chosen["random_regret"] * 100, within=chosen["regret"] <= WITHIN
    )

    def stats(g: pd.core.groupby.DataFrameGroupBy) -> pd.DataFrame:
        return g.agg(
            layers=("regret", "size"),
            median_regret_pct=("regret", "median"),
            mean_regret_pct=("regret", "mean"),
            within_5pct=("within", "mean"),
            random_median_regret_pct=("random_regret", "median"),
            random_mean_regret_pct=("random_regret", "mean"),
            random_within_5pct=("random_within", "mean"),
        )

    pooled = stats(pct.groupby("split", sort=False)).reset_index().assign(held_out="all folds")
    per_fold = stats(pct.groupby(["split", "held_out"], sort=False)).reset_index()
    out = pd.concat([pooled, per_fold], ignore_index=True)
    order = {s: i for i, s in enumerate(dict.fromkeys(chosen["split"]))}
    out = out.assign(_s=out["split"].map(order), _f=out["held_out"] != "all folds")
    out = out.sort_values(["_s", "_f"], kind="stable").drop(columns=["_s", "_f"]).reset_index(drop=True)
    return out[["split", "held_out", *[c for c in out.columns if c not in ("split", "held_out")]]]
