"""Predicting a layer's latency (and a point's energy) for a shape, model, size or GPU never measured.

Honest by construction:
- Features are what is known before anything runs: the layer's geometry, its FLOPs and least traffic (both
  computed from shapes), its own input size, the batch, the dtype, the algorithm that runs it, and the GPU's
  datasheet numbers. Nothing measured on the point being predicted (no std, no percentiles, no share of
  the model, no workspace); ``MEASURED`` lists them and a test proves features do not change with them.
- Evaluated only on data the fit did not see: leave-one-model-out, train-on-smaller / test-on-larger input
  sizes (extrapolation), and leave-one-gpu-out where several GPUs were measured. Median and mean absolute
  percentage errors per split, for the gradient-boosted model and for a roofline-only baseline.
- The baseline is the roofline max(FLOPs / peak, bytes / bandwidth), scaled per GPU by the median ratio of
  measured to roofline time on the training rows (so it is not beaten merely for being uncalibrated).
  The boosted model learns the log ratio of measured to baseline time, so it extrapolates like the roofline
  where trees alone cannot (sizes beyond the training range).
- Whole model = the sum of its predicted layers + the non-conv remainder measured at the same model, GPU
  and size with the other algorithms (never the predicted point itself); the remainder's share of that
  prediction is reported beside its error (a prediction mostly made of measured remainder proves little).
- Per fold as well as pooled: the worst fold beside the mean of the folds; leave-one-gpu-out is marked weak
  where fewer than ``STRONG_GPU_TYPES`` GPU types were measured.
- What a user of the predictor needs: per held-out layer, the regret of running the algorithm predicted
  fastest instead of the one measured fastest (``regret``), beside the expected regret of a random pick.
"""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from analysis.specs import SPEC_FIELDS, Spec
from analysis.tables import POINT
from harness.measure.roofline import peak_tflops  # pure arithmetic, no torch
from harness.results import hostbound
from harness.results.read import algo_that_ran

log = logging.getLogger(__name__)

# Columns measured on a point: never features.
MEASURED = frozenset(
    {
        "n",
        "mean_ms",
        "p50_ms",
        "std_ms",
        "cv",
        "min_ms",
        "p95_ms",
        "p99_ms",
        "max_ms",
        "ci95_low_ms",
        "ci95_high_ms",
        "share_of_model",
        "workspace_bytes",
        "throughput_ips",
        "achieved_tflops",
        "energy_per_inference_j",
        "power_mean_w",
        "energy_window_s",
        "sm_clock_mhz",
        "temperature_c",
        "peak_allocated_bytes",
        "peak_reserved_bytes",
        "activation_bytes",
        "conv_coverage",
        "measured_at",
    }
)
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}
LAYER_NUMERIC = [
    "log_flops",
    "log_bytes",
    "log_intensity",
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
    "depthwise",
    "in_h",
    "in_w",
    "out_h",
    "out_w",
    "batch",
    "dtype_bytes",
    *SPEC_FIELDS,
    "log_baseline",
]
POINT_NUMERIC = ["log_flops", "log_params", "size", "batch", "dtype_bytes", "conv_layers", *SPEC_FIELDS, "log_baseline"]
CATEGORICAL = ["algo"]
MIN_TRAIN_ROWS = 20
# Beyond these, training rows are subsampled and test rows drawn as whole points (a model's every layer at a
# size), so that the errors on held-out rows cost seconds, not minutes, on half a million layer rows.
MAX_TRAIN_ROWS = 50_000
MAX_TEST_ROWS = 50_000
STRONG_GPU_TYPES = 4  # leave-one-gpu-out with fewer GPU types learns a datasheet law from too few examples
WITHIN = 0.05  # regret share reported: choices within 5% of the measured fastest
OCCURRENCE = [*POINT, "layer_index"]  # one layer at one point: the algorithms compete on it


@dataclass
class Frame:
    """Rows to learn from: identity columns, features (``numeric`` + ``categorical``), ``raw`` (the
    uncalibrated baseline) and the target ``y``."""

    name: str  # "latency" or "energy": file names and the CLI's summary
    kind: str  # "layer latency (ms)" or "energy per inference (J)"
    data: pd.DataFrame
    numeric: list[str]
    categorical: list[str] = field(default_factory=lambda: list(CATEGORICAL))


def _spec_columns(gpu: pd.Series, specs: dict[str, Spec | None]) -> pd.DataFrame:
    table = pd.DataFrame([{"gpu": g, **{k: (s or {}).get(k) for k in SPEC_FIELDS}} for g, s in specs.items()])
    if table.empty:
        table = pd.DataFrame(columns=["gpu", *SPEC_FIELDS])
    out = pd.DataFrame({"gpu": gpu.to_numpy()}).merge(table, on="gpu", how="left")
    return out[list(SPEC_FIELDS)].astype(float).set_axis(gpu.index)


def layer_features(layers: pd.DataFrame, specs: dict[str, Spec | None]) -> pd.DataFrame:
    """Features of layer rows from their geometry, FLOPs, bytes, batch, dtype, algorithm and GPU spec only."""
    f = pd.DataFrame(index=layers.index)
    flops = layers["flops"].astype(float)
    nbytes = layers["bytes"].astype(float)
    f["log_flops"] = np.log10(flops.clip(lower=1))
    f["log_bytes"] = np.log10(nbytes.clip(lower=1))
    f["log_intensity"] = f["log_flops"] - f["log_bytes"]
    for c in (
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
        "out_h",
        "out_w",
    ):
        f[c] = layers[c].astype(float)
    f["batch"] = layers["batch_size"].astype(float)
    f["depthwise"] = ((layers["groups"] > 1) & (layers["groups"] == layers["in_channels"])).astype(float)
    f["dtype_bytes"] = layers["dtype"].map(DTYPE_BYTES).astype(float)
    f = f.join(_spec_columns(layers["gpu"], specs))
    f["algo"] = algo_that_ran(layers)  # what ran the layer (a plan, not a measurement)
    f["raw"] = roofline_ms(flops, nbytes, layers, specs)
    return f


def roofline_ms(flops: pd.Series, nbytes: pd.Series, rows: pd.DataFrame, specs: dict[str, Spec | None]) -> pd.Series:
    """max(FLOPs / peak, bytes / bandwidth) in ms from the datasheet; where the spec is unknown (a CPU) a
    nominal 1 TFLOPS and no memory term (the per-GPU calibration absorbs the scale)."""
    math = rows["math_type"] if "math_type" in rows else pd.Series(None, index=rows.index)
    peaks, bws = {}, {}
    for gpu, spec in specs.items():
        bws[gpu] = (spec or {}).get("mem_bw_gbs")
    keys = pd.DataFrame({"gpu": rows["gpu"], "dtype": rows["dtype"], "math": math.astype(object)})
    uniq = keys.drop_duplicates()
    for g, d, m in uniq.itertuples(index=False):
        peaks[(g, d, m)] = peak_tflops(specs.get(g), d, m if isinstance(m, str) else None) or 1.0
    peak = pd.Series([peaks[k] for k in zip(keys["gpu"], keys["dtype"], keys["math"])], index=rows.index)
    bw = rows["gpu"].map(bws).astype(float)
    compute = flops / (peak * 1e12)
    memory = (nbytes / (bw * 1e9)).fillna(0.0)
    return np.maximum(compute, memory) * 1e3


def layer_frame(layers: pd.DataFrame, specs: dict[str, Spec | None]) -> Frame:
    """Every timed layer row (status ok, or a fallback timed as what ran it) but the host-bound ones (their
    time is the host's: harness.results.hostbound)."""
    rows = layers[layers["p50_ms"].notna() & (layers["p50_ms"] > 0) & layers["flops"].notna() & ~hostbound.mask(layers)]
    feats = layer_features(rows, specs)
    status = ["status"] if "status" in rows else []  # ok or fallback: only ok rows compete in ``regret``
    ident = rows[[*POINT, "algo", "layer_index", "layer_name", *status]].rename(columns={"algo": "algo_requested"})
    data = ident.join(feats)
    data["y"] = rows["p50_ms"].astype(float)
    return Frame("latency", "layer latency (ms)", data.reset_index(drop=True), list(LAYER_NUMERIC))


def energy_frame(points: pd.DataFrame, specs: dict[str, Spec | None]) -> Frame:
    """Points with a measured energy; the baseline is energy proportional to FLOPs (per-GPU calibrated)."""
    rows = points[(points["status"] == "ok") & points["energy_per_inference_j"].notna() & points["flops"].notna()]
    f = rows[POINT].copy()
    f["algo_requested"] = rows["algo"]
    f["batch"] = rows["batch_size"].astype(float)
    f["log_flops"] = np.log10(rows["flops"].astype(float).clip(lower=1))
    f["log_params"] = np.log10(rows["params"].astype(float).clip(lower=1))
    f["size"] = rows["input_size"].astype(float)
    f["conv_layers"] = rows["conv_layers"].astype(float)
    f["dtype_bytes"] = rows["dtype"].map(DTYPE_BYTES).astype(float)
    f = f.join(_spec_columns(rows["gpu"], specs))
    f["algo"] = rows["algo"].astype(str)
    f["raw"] = rows["flops"].astype(float) / 1e12
    f["y"] = rows["energy_per_inference_j"].astype(float)
    return Frame("energy", "energy per inference (J)", f.reset_index(drop=True), list(POINT_NUMERIC))


def free_cores() -> int:
    """The cores this process may use that other work leaves free: the CPUs it may run on minus the
    1-minute load average (rounded), at least 1. OpenMP threads beyond that spin against the other work
    (on a 2-core login node with one core busy, two threads made the fit many times slower than one)."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        busy = os.getloadavg()[0]
    except OSError:
        busy = 0.0
    return max(1, min(usable, round(usable - busy)))


# -- the models ---------------------------------------------------------------------------------------------
@dataclass
class Baseline:
    """raw x a per-GPU scale: the median of y / raw on the training rows (the global median for a GPU the
    training rows lack)."""

    scales: dict[str, float] = field(default_factory=dict)
    overall: float = 1.0

    def fit(self, data: pd.DataFrame) -> Baseline:
        ratio = data["y"] / data["raw"]
        self.overall = float(ratio.median())
        self.scales = {str(g): float(v) for g, v in ratio.groupby(data["gpu"], observed=True).median().items()}
        return self

    def predict(self, data: pd.DataFrame) -> np.ndarray:
        scale = data["gpu"].map(self.scales).astype(float).fillna(self.overall)
        return (data["raw"] * scale).to_numpy(dtype=float)


@dataclass
class Booster:
    """Gradient-boosted trees on log(y / baseline), on top of the calibrated baseline."""

    numeric: list[str]
    categorical: list[str]
    max_train_rows: int = MAX_TRAIN_ROWS
    threads: int | None = None  # OpenMP threads for the trees (None: free_cores() when fitting)
    seed: int = 0
    baseline: Baseline = field(default_factory=Baseline)
    categories: dict[str, list[str]] = field(default_factory=dict)
    used: list[str] = field(default_factory=list)  # numeric features with a value in the training rows
    model: Any = None

    def _matrix(self, data: pd.DataFrame) -> pd.DataFrame:
        x = data[self.used].astype(float).copy()
        for c in self.categorical:
            x[c] = pd.Categorical(data[c], categories=self.categories[c]).codes.astype(float)
            x.loc[x[c] < 0, c] = np.nan
        return x

    def fit(self, data: pd.DataFrame) -> Booster:
        from sklearn.ensemble import HistGradientBoostingRegressor

        if len(data) > self.max_train_rows:
            data = data.sample(self.max_train_rows, random_state=self.seed)
        self.baseline = Baseline().fit(data)
        data = data.assign(log_baseline=np.log10(self.baseline.predict(data)))
        self.categories = {c: sorted(data[c].astype(str).unique()) for c in self.categorical}
        self.used = [c for c in self.numeric if data[c].notna().any()]  # all-NaN columns break the binner
        x = self._matrix(data)
        target = np.log(data["y"].to_numpy() / self.baseline.predict(data))
        mask = [c in self.categorical for c in x.columns]
        self.model = HistGradientBoostingRegressor(
            max_iter=300,
            learning_rate=0.1,
            max_leaf_nodes=31,
            min_samples_leaf=10,
            categorical_features=mask,
            early_stopping=False,
            random_state=self.seed,
        )
        with threadpool_limits(self.threads or free_cores()):
            self.model.fit(x, target)
        return self

    def predict(self, data: pd.DataFrame) -> np.ndarray:
        base = self.baseline.predict(data)
        x = self._matrix(data.assign(log_baseline=np.log10(base)))
        with threadpool_limits(self.threads or free_cores()):
            return base * np.exp(self.model.predict(x))


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


def _summarise(pred: pd.DataFrame, split: str, level: str) -> list[dict[str, Any]]:
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
        metric_rows += _summarise(grp, split, level)
        if level == "layer" and points is not None and layers is not None:
            whole = whole_model(grp, points, layers)
            if len(whole):
                metric_rows += _summarise(whole, split, "model")
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


# -- the saved model ----------------------------------------------------------------------------------------
def fit_and_save(
    frame: Frame, evaluation: Evaluation, out: Path, max_train_rows: int = MAX_TRAIN_ROWS, threads: int | None = None
) -> list[Path]:
    """Fit on every row and save the model (pickle), its metrics (JSON, CSV) and the data it saw (Parquet)."""
    import json

    import sklearn

    out.mkdir(parents=True, exist_ok=True)
    written = []
    if len(frame.data) < MIN_TRAIN_ROWS:
        return written
    name = frame.name
    model = Booster(frame.numeric, frame.categorical, max_train_rows=max_train_rows, threads=threads).fit(frame.data)
    path = out / f"{name}.pkl"
    with open(path, "wb") as f:
        pickle.dump(
            {
                "model": model,
                "kind": frame.kind,
                "sklearn_version": sklearn.__version__,
                "features": frame.numeric + frame.categorical,
            },
            f,
        )
    written.append(path)
    frame.data.to_parquet(out / f"{name}-training.parquet", index=False)
    written.append(out / f"{name}-training.parquet")
    meta = {
        "kind": frame.kind,
        "rows": len(frame.data),
        "features": frame.numeric + frame.categorical,
        "target": "y",
        "baseline": asdict(model.baseline),
        "sklearn_version": sklearn.__version__,
        "metrics": evaluation.metrics.to_dict(orient="records"),
        "folds": evaluation.folds.to_dict(orient="records"),
        "fold_summary": evaluation.fold_summary.to_dict(orient="records"),
        "regret": evaluation.regret.to_dict(orient="records"),
        "skipped": evaluation.skipped,
    }
    (out / f"{name}-metrics.json").write_text(json.dumps(meta, indent=2, default=float) + "\n")
    written.append(out / f"{name}-metrics.json")
    if len(evaluation.predictions):
        evaluation.predictions.to_parquet(out / f"{name}-test-predictions.parquet", index=False)
        written.append(out / f"{name}-test-predictions.parquet")
    return written


def load_model(path: str | Path) -> Booster:
    """A saved model; ``model.predict(frame.data)`` on rows built by ``layer_frame``/``energy_frame``."""
    with open(path, "rb") as f:
        return pickle.load(f)["model"]
