"""Evaluating the predictor only on data the fit did not see (leave-one-model-out, smaller-to-larger
sizes, leave-one-gpu-out): errors per split and fold, whole models, regret (analysis.predict.regret).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from analysis.predict.features import MIN_TRAIN_ROWS, Frame
from analysis.predict.model import MAX_TRAIN_ROWS, Booster
from analysis.predict.regret import choices, regret_summary
from analysis.tables import POINT
from harness.results import hostbound

# Beyond this, test rows are drawn as whole points (a model's every layer at a size), so that the errors on
# held-out rows cost seconds, not minutes, on half a million layer rows (training rows: model.MAX_TRAIN_ROWS).


MAX_TEST_ROWS = 50_000


STRONG_GPU_TYPES = 4  # leave-one-gpu-out with fewer GPU types learns a datasheet law from too few examples


# -- splits -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Fold:
    split: str  # "leave-one-model-out", "extrapolation", "leave-one-gpu-out"
    held_out: str  # the model or gpu left out, or "sizes > N"
    train: np.ndarray  # boolean masks over the frame's rows
    test: np.ndarray


def folds(data: pd.DataFrame) -> list[Fold]:
    """Every fold of every split the data allows (a split needs two models, two sizes or two GPUs)."""
    out: list[Fold] = []
    models = sorted(data["model"].unique())
    if len(models) >= 2:
        for m in models:
            test = (data["model"] == m).to_numpy()
            out.append(Fold("leave-one-model-out", m, ~test, test))
    sizes = sorted(data["input_size"].unique())
    if len(sizes) >= 2:
        cut = sizes[(len(sizes) - 1) // 2]  # train on the smaller half, test on the larger
        test = (data["input_size"] > cut).to_numpy()
        out.append(Fold("extrapolation", f"train sizes <= {cut}, test sizes > {cut}", ~test, test))
    gpus = sorted(data["gpu"].unique())
    if len(gpus) >= 2:
        for g in gpus:
            test = (data["gpu"] == g).to_numpy()
            out.append(Fold("leave-one-gpu-out", g, ~test, test))
    return out


def sample_points(rows: pd.DataFrame, max_rows: int, seed: int = 0) -> pd.DataFrame:
    """At most about ``max_rows`` rows, drawn as whole points (every layer of a model x algorithm at one size)
    so that whole-model errors stay computable; all rows when there are fewer."""
    if len(rows) <= max_rows:
        return rows
    key = [c for c in (*POINT, "algo_requested") if c in rows.columns]
    ids = rows.groupby(key, observed=True, sort=False).ngroup().to_numpy()
    sizes = np.bincount(ids)
    order = np.random.default_rng(seed).permutation(len(sizes))
    keep = order[np.cumsum(sizes[order]) <= max_rows]
    return rows[np.isin(ids, keep)]


def ape(pred: np.ndarray | pd.Series, true: np.ndarray | pd.Series) -> np.ndarray:
    """Absolute percentage error, in percent."""
    true = np.asarray(true, dtype=float)
    return np.abs(np.asarray(pred, dtype=float) - true) / true * 100.0


# -- evaluation ---------------------------------------------------------------------------------------------
@dataclass
class Evaluation:
    name: str
    kind: str
    metrics: pd.DataFrame  # per split x level ("layer"/"model"/"point") x predictor: n, median/mean APE, note
    folds: pd.DataFrame  # per fold: held out, rows, errors
    predictions: pd.DataFrame  # every test row of every fold: measured, predicted, baseline
    skipped: list[str] = field(default_factory=list)
    fold_summary: pd.DataFrame = field(default_factory=pd.DataFrame)  # per split: mean of folds, worst fold
    regret: pd.DataFrame = field(default_factory=pd.DataFrame)  # per split (all folds) and per fold
    choices: pd.DataFrame = field(default_factory=pd.DataFrame)  # per held-out layer: the choice and its regret

    def tables(self) -> dict[str, pd.DataFrame]:
        """The tables to write with the analysis' others (``predictor_<name>_<what>``), those with rows."""
        frames = {
            "metrics": self.metrics,
            "folds": self.folds,
            "fold_summary": self.fold_summary,
            "regret": self.regret,
        }
        return {f"predictor_{self.name}_{k}": v for k, v in frames.items() if len(v)}


def remainders(points: pd.DataFrame, layers: pd.DataFrame) -> pd.DataFrame:
    """The non-conv time available to predict (POINT, algo): the median over the OTHER algorithms at the
    same point of their p50 minus their layers' sum (floored at 0); an algorithm with a host-bound layer
    there gives none (its sum holds the host's time)."""
    ok = points.loc[(points["status"] == "ok") & points["p50_ms"].notna(), [*POINT, "algo", "p50_ms"]]
    g = layers.assign(_late=hostbound.mask(layers)).groupby([*POINT, "algo"], observed=True)
    conv = pd.DataFrame({"conv_ms": g["p50_ms"].sum(min_count=1), "_late": g["_late"].any()}).reset_index()
    conv = conv[~conv.pop("_late")]
    own = ok.merge(conv, on=[*POINT, "algo"])
    own["rem"] = (own["p50_ms"] - own["conv_ms"]).clip(lower=0.0)
    pairs = ok[[*POINT, "algo"]].merge(own[[*POINT, "algo", "rem"]].rename(columns={"algo": "other"}), on=POINT)
    pairs = pairs[pairs["algo"] != pairs["other"]]
    out = pairs.groupby([*POINT, "algo"], observed=True)["rem"].median().rename("remainder_ms").reset_index()
    return out.merge(ok, on=[*POINT, "algo"])


def summarise(pred: pd.DataFrame, split: str, level: str) -> list[dict[str, Any]]:
    rows = []
    for name, col in (("boosted", "predicted"), ("roofline", "baseline")):
        e = ape(pred[col], pred["measured"])
        row = {
            "split": split,
            "level": level,
            "predictor": name,
            "n": int(len(e)),
            "median_ape": float(np.median(e)) if len(e) else np.nan,
            "mean_ape": float(np.mean(e)) if len(e) else np.nan,
        }
        if "remainder_ms" in pred:  # whole models: how much of the prediction was measured, not predicted
            row["remainder_share"] = float(np.median(pred["remainder_ms"] / pred[col])) if len(e) else np.nan
        rows.append(row)
    return rows


def weak_note(split: str, gpu_types: int) -> str:
    """The caveat of a split's numbers: leave-one-gpu-out with too few GPU types to learn across."""
    if split == "leave-one-gpu-out" and gpu_types < STRONG_GPU_TYPES:
        return f"weak: {gpu_types} GPU types < {STRONG_GPU_TYPES}"
    return ""


def fold_summary(fold_rows: pd.DataFrame, gpu_types: int) -> pd.DataFrame:
    """Per split: how many folds, the mean over folds of each fold's median APE and the worst fold (its
    error and what it held out), for the boosted model and the roofline baseline."""
    out = []
    for split, grp in fold_rows.groupby("split", sort=False) if len(fold_rows) else []:
        worst = grp.loc[grp["boosted_median_ape"].idxmax()]
        out.append(
            {
                "split": split,
                "folds": len(grp),
                "boosted_mean_of_folds": float(grp["boosted_median_ape"].mean()),
                "boosted_worst_fold": float(worst["boosted_median_ape"]),
                "worst_held_out": worst["held_out"],
                "roofline_mean_of_folds": float(grp["roofline_median_ape"].mean()),
                "roofline_worst_fold": float(grp["roofline_median_ape"].max()),
                "note": weak_note(split, gpu_types),
            }
        )
    return pd.DataFrame(out)


def evaluate(
    frame: Frame,
    points: pd.DataFrame | None = None,
    layers: pd.DataFrame | None = None,
    max_train_rows: int = MAX_TRAIN_ROWS,
    threads: int | None = None,
    make: Callable[..., Booster] = Booster,
    progress: Callable[[str], None] = lambda what: None,
) -> Evaluation:
    """Fit on each fold's training rows, predict its test rows; errors pooled per split. For layer latency
    with ``points`` and ``layers`` given, also whole-model errors (sum of layers + measured remainder)."""
    data = frame.data
    metric_rows: list[dict[str, Any]] = []
    fold_rows: list[dict[str, Any]] = []
    preds: list[pd.DataFrame] = []
    skipped: list[str] = []
    all_folds = folds(data)
    for split in ("leave-one-model-out", "extrapolation", "leave-one-gpu-out"):
        if not any(f.split == split for f in all_folds):
            what = {
                "leave-one-model-out": "two models",
                "extrapolation": "two input sizes",
                "leave-one-gpu-out": "two GPU types",
            }[split]
            skipped.append(f"{frame.kind}: {split} needs {what}")
    for i, fold in enumerate(all_folds, 1):
        progress(f"fold {i} of {len(all_folds)}, {fold.split} {fold.held_out}")
        train, test = data[fold.train], sample_points(data[fold.test], MAX_TEST_ROWS)
        if len(train) < MIN_TRAIN_ROWS or test.empty:
            skipped.append(f"{frame.kind}: {fold.split} {fold.held_out}: {len(train)} training rows")
            continue
        model = make(frame.numeric, frame.categorical, max_train_rows=max_train_rows, threads=threads).fit(train)
        p = test.drop(columns=[c for c in frame.numeric if c in test]).copy()
        p["measured"] = test["y"]
        p["predicted"] = model.predict(test)
        p["baseline"] = model.baseline.predict(test)
        p["split"], p["held_out"] = fold.split, fold.held_out
        preds.append(p)
        e, b = ape(p["predicted"], p["measured"]), ape(p["baseline"], p["measured"])
        fold_rows.append(
            {
                "split": fold.split,
                "held_out": fold.held_out,
                "train_rows": len(train),
                "test_rows": len(test),
                "boosted_median_ape": float(np.median(e)),
                "boosted_mean_ape": float(np.mean(e)),
                "roofline_median_ape": float(np.median(b)),
                "roofline_mean_ape": float(np.mean(b)),
            }
        )
    predictions = pd.concat(preds, ignore_index=True) if preds else pd.DataFrame()
    for split, grp in predictions.groupby("split", sort=False) if len(predictions) else []:
        level = "layer" if "layer_index" in grp else "point"
        metric_rows += summarise(grp, split, level)
        if level == "layer" and points is not None and layers is not None:
            whole = whole_model(grp, points, layers)
            if len(whole):
                metric_rows += summarise(whole, split, "model")
    gpu_types = int(data["gpu"].nunique())
    metrics = pd.DataFrame(metric_rows)
    if len(metrics):
        metrics["note"] = [weak_note(s, gpu_types) for s in metrics["split"]]
    per_fold = pd.DataFrame(fold_rows)
    chosen = choices(predictions)
    return Evaluation(
        frame.name,
        frame.kind,
        metrics,
        per_fold,
        predictions,
        skipped,
        fold_summary(per_fold, gpu_types),
        regret_summary(chosen),
        chosen,
    )


def whole_model(pred: pd.DataFrame, points: pd.DataFrame, layers: pd.DataFrame) -> pd.DataFrame:
    """Per point x algorithm whose every layer was predicted (none with a host-bound layer, which is never
    predicted): sum of predicted layers + remainder, against the measured p50 (the same for the baseline)."""
    key = [*POINT, "algo_requested"]
    counts = layers.groupby([*POINT, "algo"], observed=True).size().rename("layers").reset_index()
    counts = counts.rename(columns={"algo": "algo_requested"})
    g = pred.groupby(key, observed=True)
    sums = pd.DataFrame({"n": g.size(), "predicted": g["predicted"].sum(), "baseline": g["baseline"].sum()})
    sums = sums.reset_index().merge(counts, on=key)
    sums = sums[sums["n"] == sums["layers"]]
    rem = remainders(points, layers).rename(columns={"algo": "algo_requested"})
    out = sums.merge(rem, on=key)
    out["measured"] = out["p50_ms"]
    out["predicted"] += out["remainder_ms"]
    out["baseline"] += out["remainder_ms"]
    return out
