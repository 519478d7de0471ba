"""Features known before anything runs (geometry, FLOPs, traffic, the GPU's datasheet), the roofline
baseline's time, and the training frames (``Frame``) of layer latency and point energy; ``MEASURED`` lists
the columns measured on a point, never features.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis.tables import POINT
from analysis.tree.specs import SPEC_FIELDS, Spec
from harness.measure.roofline import peak_tflops  # pure arithmetic, no torch
from harness.results import hostbound
from harness.results.columns import dynamic_energy_per_inference_j
from harness.results.read import algo_that_ran
from harness.results.schema import CONV_PARAMETERS, LAYER_GEOMETRY

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
    *CONV_PARAMETERS,
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


@dataclass
class Frame:
    """Rows to learn from: identity columns, features (``numeric`` + ``categorical``), ``raw`` (the
    uncalibrated baseline) and the target ``y``."""

    name: str  # "latency" or "energy": file names and the CLI's summary
    kind: str  # "layer latency (ms)", "dynamic energy per inference (J)" or "total energy per inference (J)"
    data: pd.DataFrame
    numeric: list[str]
    categorical: list[str] = field(default_factory=lambda: list(CATEGORICAL))


def spec_columns(gpu: pd.Series, specs: dict[str, Spec | None]) -> pd.DataFrame:
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
    for c in LAYER_GEOMETRY:
        f[c] = layers[c].astype(float)
    f["batch"] = layers["batch_size"].astype(float)
    f["depthwise"] = ((layers["groups"] > 1) & (layers["groups"] == layers["in_channels"])).astype(float)
    f["dtype_bytes"] = layers["dtype"].map(DTYPE_BYTES).astype(float)
    f = f.join(spec_columns(layers["gpu"], specs))
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
    """Points with a measured energy; the baseline is energy proportional to FLOPs (per-GPU calibrated).

    The target is the analysis' energy, the dynamic energy per inference (above idle:
    harness.results.columns.dynamic_energy_per_inference_j), wherever any point has it; points without it
    (imported rows, which never measured idle power) are then left out, never mixed in. Only a tree where
    no point knows its idle power learns the total energy, and ``kind`` says which one was learned."""
    dynamic = dynamic_energy_per_inference_j(points)
    target = dynamic if dynamic.notna().any() else points["energy_per_inference_j"].astype(float)
    kind = "dynamic energy per inference (J)" if dynamic.notna().any() else "total energy per inference (J)"
    rows = points[(points["status"] == "ok") & target.notna() & points["flops"].notna()]
    f = rows[POINT].copy()
    f["algo_requested"] = rows["algo"]
    f["batch"] = rows["batch_size"].astype(float)
    f["log_flops"] = np.log10(rows["flops"].astype(float).clip(lower=1))
    f["log_params"] = np.log10(rows["params"].astype(float).clip(lower=1))
    f["size"] = rows["input_size"].astype(float)
    f["conv_layers"] = rows["conv_layers"].astype(float)
    f["dtype_bytes"] = rows["dtype"].map(DTYPE_BYTES).astype(float)
    f = f.join(spec_columns(rows["gpu"], specs))
    f["algo"] = rows["algo"].astype(str)
    f["raw"] = rows["flops"].astype(float) / 1e12
    f["y"] = target[rows.index].astype(float)
    return Frame("energy", kind, f.reset_index(drop=True), list(POINT_NUMERIC))
