"""A synthetic results tree in the exact schema of the store, generated from a known law.

Used by the tests (known answers: which algorithm is best, by how much, where a layer is unsupported) and by
benchmarks/analysis_scale.py (a million layer rows). Nothing here is read by the analysis itself: it reads
the tree like any other.

The law: every model is a chain of conv layers; a layer's time for an algorithm on a GPU is
``layer_ms(geometry, algo, gpu)`` (NaN where the algorithm cannot run the layer); a point's latency is the
sum of its layers' times plus a non-conv remainder; energy is power x latency. Noise is multiplicative and
seeded, so a tree is reproducible.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from harness.results import layout
from harness.results.layout import Partition
from harness.results.schema import LAYERS, POINTS, SCHEMA_VERSION, to_table


def one_point(**changes: object) -> dict[str, object]:
    """The point-key values of one point built by hand (stage s, GPU g, model m, 32 px, batch 1, FP32, NCHW, warm
    L2, the forward pass: every column of harness.results.layout.POINT_KEY but the algorithm), with ``changes``."""
    key = dict(stage="s", gpu="g", model="m", input_size=32, batch_size=1, dtype="float32")
    key |= layout.EARLIER_POINT_VALUES
    assert set(key) == set(layout.POINT_KEY) - {"algo"}
    return key | changes


# (in_channels, out_channels, kernel, stride, pad, groups); in_channels of layer i+1 is out_channels of i.
Layer = tuple[int, int, int, int, int, int]

GPU_SPECS: dict[str, dict[str, float | None] | None] = {  # as conf/gpu/*.yaml, so features look real
    "h100": {"fp32_tflops": 60.0, "tf32_tflops": 417.5, "fp16_tflops": 835.0, "mem_bw_gbs": 3900.0, "tdp_w": 400},
    "l40s": {"fp32_tflops": 91.6, "tf32_tflops": 183.0, "fp16_tflops": 362.0, "mem_bw_gbs": 864.0, "tdp_w": 350},
    "v100": {"fp32_tflops": 15.7, "tf32_tflops": None, "fp16_tflops": 125.0, "mem_bw_gbs": 900.0, "tdp_w": 300},
}

Geometry = dict[str, np.ndarray]  # column name -> one value per layer row
LayerLaw = Callable[[Geometry, str, str], np.ndarray]


def random_model(rng: np.random.Generator, n_layers: int) -> list[Layer]:
    """A plausible CNN: channels grow as the spatial size shrinks, a mix of 1x1/3x3/5x5/7x7 and depthwise."""
    layers: list[Layer] = []
    c_in, c = 3, int(rng.choice([16, 32]))
    for i in range(n_layers):
        k = int(rng.choice([1, 3, 3, 3, 5, 7])) if i else 3
        stride = 2 if (i and rng.random() < 0.12) or i == 0 else 1
        if stride == 2 and c < 512:
            c = c * 2
        depthwise = bool(i and k == 3 and stride == 1 and rng.random() < 0.2)
        out = c_in if depthwise else int(c * rng.choice([1, 1, 2]) // 2 * 2 or c)
        layers.append((c_in, out, k, stride, k // 2, c_in if depthwise else 1))
        c_in = out
    return layers


def default_models(n_models: int = 4, n_layers: int = 12, seed: int = 0) -> dict[str, list[Layer]]:
    rng = np.random.default_rng(seed)
    return {f"net{i}": random_model(rng, n_layers) for i in range(n_models)}


def geometry(layers: list[Layer], sizes: list[int], batch: int) -> Geometry:
    """The layers table's geometry columns for every (size, layer) of a model (size-major order)."""
    rows: dict[str, list[int]] = {
        k: []
        for k in (
            "input_size",
            "layer_index",
            "in_channels",
            "out_channels",
            "kernel_h",
            "stride_h",
            "pad_h",
            "groups",
            "in_h",
            "out_h",
        )
    }
    for size in sizes:
        h = size
        for i, (cin, cout, k, s, p, g) in enumerate(layers):
            out_h = (h + 2 * p - k) // s + 1
            for key, v in zip(rows, (size, i, cin, cout, k, s, p, g, h, out_h)):
                rows[key].append(v)
            h = out_h
    geo = {k: np.asarray(v, dtype=np.int64) for k, v in rows.items()}
    geo["batch_size"] = np.full(len(geo["input_size"]), batch, dtype=np.int64)
    geo["flops"] = (
        2
        * batch
        * geo["out_channels"]
        * geo["out_h"] ** 2
        * (geo["in_channels"] // geo["groups"])
        * geo["kernel_h"] ** 2
    )
    geo["bytes"] = 4 * (
        batch * geo["in_channels"] * geo["in_h"] ** 2
        + geo["out_channels"] * (geo["in_channels"] // geo["groups"]) * geo["kernel_h"] ** 2
        + batch * geo["out_channels"] * geo["out_h"] ** 2
    )
    return geo


# Each algorithm's efficiency relative to the framework's own convolution, and where it cannot run.
_EFFICIENCY = {
    "torch": 1.0,
    "implicit_gemm": 0.8,
    "implicit_precomp_gemm": 1.1,
    "gemm": 0.6,
    "direct": 0.25,
    "fft": 0.7,
    "fft_tiling": 0.75,
    "winograd": 1.0,
    "winograd_nonfused": 0.9,
    "guess": 1.05,
}


def roofline_law(geo: Geometry, algo: str, gpu: str) -> np.ndarray:
    """A realistic law the datasheet roofline cannot know: algorithm x kernel efficiencies, a launch
    overhead, a depthwise penalty, and shape limits (winograd: 3x3 stride 1 only; fft: stride 1, not grouped)."""
    spec = GPU_SPECS.get(gpu) or {"fp32_tflops": 2.0, "mem_bw_gbs": 100.0}
    k, s, g = geo["kernel_h"], geo["stride_h"], geo["groups"]
    eff = np.full(len(k), 0.5 * _EFFICIENCY.get(algo, 0.5))
    if algo.startswith("winograd"):
        eff = np.where(k == 3, eff * 2.2, eff)
    if algo.startswith("fft"):
        eff = eff * np.where(k >= 5, 3.0, np.where(k == 1, 0.3, 1.0))
    eff = np.where(g > 1, eff * (0.5 if algo in ("torch", "direct") else 0.08), eff)
    compute_s = geo["flops"] / (spec["fp32_tflops"] * 1e12 * eff)
    memory_s = geo["bytes"] / (spec["mem_bw_gbs"] * 1e9 * 0.7)
    ms = np.maximum(compute_s, memory_s) * 1e3 + 0.004 * (1 + (geo["batch_size"] > 1))
    unsupported = np.zeros(len(k), dtype=bool)
    if algo.startswith("winograd"):
        unsupported = (k != 3) | (s != 1)
    elif algo.startswith("fft"):
        unsupported = (s != 1) | (g > 1)
    return np.where(unsupported, np.nan, ms)


@dataclass
class Synthetic:
    """What to generate. ``layer_ms`` is the law; ``fallback[algo]`` is "torch" or "none" (default "none":
    a point with an unsupported layer is "unsupported"); ``remainder_fraction`` x the torch layer sum is
    the non-conv time of a point (the same for every algorithm); ``power_w[gpu]`` gives energy (GPUs not in
    it, e.g. a CPU "local", measure none); ``repeats`` > 1 writes earlier runs of every point with
    ``stale_factor`` x the latency, which latest-wins resolution must discard."""

    models: dict[str, list[Layer]] = field(default_factory=default_models)
    gpus: tuple[str, ...] = ("h100", "v100")
    algos: tuple[str, ...] = ("torch", "gemm", "implicit_gemm", "winograd", "fft", "guess")
    sizes: tuple[int, ...] = (64, 96, 128, 160)
    batch_sizes: tuple[int, ...] = (1,)
    stage: str = "quick"
    dtype: str = "float32"
    layer_ms: LayerLaw = roofline_law
    fallback: dict[str, str] = field(default_factory=dict)
    remainder_fraction: float = 0.1
    power_w: dict[str, float] = field(default_factory=lambda: {"h100": 300.0, "v100": 250.0})
    noise: float = 0.0
    cv: float = 0.01
    repeats: int = 1
    stale_factor: float = 1.5
    seed: int = 0
    start: datetime = datetime(2026, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Written:
    points: int
    layers: int
    files: int


def _table(cols: dict[str, object], n: int, schema: pa.Schema) -> pa.Table:
    arrays = []
    for f in schema:
        v = cols.get(f.name)
        if v is None:
            arrays.append(pa.nulls(n, f.type))
        elif isinstance(v, (str, int, float, bool, datetime)):
            arrays.append(pa.array([v] * n, type=f.type))
        else:
            arrays.append(pa.array(v, type=f.type, from_pandas=True))
    return pa.Table.from_arrays(arrays, schema=schema)


def generate(root: str | Path, syn: Synthetic) -> Written:
    """Write the tree under ``root``: per partition a points and a layers file per run, and a run json."""
    root = Path(root)
    rng = np.random.default_rng(syn.seed)
    n_points = n_layers = n_files = 0
    for model, layers in syn.models.items():
        for gpu in syn.gpus:
            for batch in syn.batch_sizes:
                geo = geometry(layers, list(syn.sizes), batch)
                base = syn.layer_ms(geo, "torch", gpu)
                L, S = len(layers), len(syn.sizes)
                remainder = syn.remainder_fraction * base.reshape(S, L).sum(axis=1)
                for ai, algo in enumerate(syn.algos):
                    truth = syn.layer_ms(geo, algo, gpu)
                    for rep in range(syn.repeats):
                        stale = syn.stale_factor if rep < syn.repeats - 1 else 1.0
                        run_id = f"syn{rep}-{model}-{gpu}-{algo}-b{batch}"
                        when = syn.start + timedelta(days=rep, seconds=ai)
                        p, lay = _partition_tables(
                            syn, rng, model, gpu, algo, batch, geo, truth, base, remainder, stale, run_id, when
                        )
                        folder = Partition(syn.stage, gpu, model, algo).path(root)
                        folder.mkdir(parents=True, exist_ok=True)
                        pq.write_table(p, folder / layout.table_file("points", run_id))
                        pq.write_table(lay, folder / layout.table_file("layers", run_id))
                        spec = GPU_SPECS.get(gpu)
                        doc = {
                            "run_id": run_id,
                            "schema_version": SCHEMA_VERSION,
                            "outcome": "completed",
                            "config": {
                                "gpu": {"name": gpu, "spec": spec},
                                "algo": {"name": algo},
                                "model": {"name": model},
                                "stage": {"name": syn.stage},
                            },
                        }
                        (folder / layout.run_file(run_id)).write_text(json.dumps(doc, indent=2))
                        n_points += p.num_rows
                        n_layers += lay.num_rows
                        n_files += 3
    return Written(n_points, n_layers, n_files)


def _partition_tables(
    syn: Synthetic,
    rng: np.random.Generator,
    model: str,
    gpu: str,
    algo: str,
    batch: int,
    geo: Geometry,
    truth: np.ndarray,
    base: np.ndarray,
    remainder: np.ndarray,
    stale: float,
    run_id: str,
    when: datetime,
) -> tuple[pa.Table, pa.Table]:
    n = len(truth)
    S = len(syn.sizes)
    L = n // S
    policy = syn.fallback.get(algo, "none")
    unsupported = np.isnan(truth)
    if policy == "torch":
        ms = np.where(unsupported, base, truth)
        status = np.where(unsupported, "fallback", "ok")
        used = np.where(unsupported, "torch", algo)
    else:
        ms = truth
        status = np.where(unsupported, "unsupported", "ok")
        used = np.full(n, algo, dtype=object)
    point_unsupported = (status == "unsupported").reshape(S, L).any(axis=1)
    noise = np.exp(rng.normal(0.0, syn.noise, n)) if syn.noise else np.ones(n)
    layer_ms = np.where(np.repeat(point_unsupported, L), np.nan, ms * noise * stale)
    total = layer_ms.reshape(S, L).sum(axis=1)
    share = layer_ms / np.repeat(total, L)
    pnoise = np.exp(rng.normal(0.0, syn.noise, S)) if syn.noise else np.ones(S)
    p50 = np.where(point_unsupported, np.nan, (ms.reshape(S, L).sum(axis=1) + remainder) * pnoise * stale)
    ident = {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "stage": syn.stage,
        "model": model,
        "algo": algo,
        "gpu": gpu,
        "device_name": f"synthetic {gpu}",
        "batch_size": batch,
        "dtype": syn.dtype,
        "measured_at": when,
        "config_hash": f"hash-{syn.stage}",
    }
    layers = _table(
        ident
        | {
            "input_size": geo["input_size"],
            "layer_index": geo["layer_index"],
            "layer_name": [f"conv{i}" for i in geo["layer_index"]],
            "in_channels": geo["in_channels"],
            "out_channels": geo["out_channels"],
            "kernel_h": geo["kernel_h"],
            "kernel_w": geo["kernel_h"],
            "stride_h": geo["stride_h"],
            "stride_w": geo["stride_h"],
            "pad_h": geo["pad_h"],
            "pad_w": geo["pad_h"],
            "dilation_h": 1,
            "dilation_w": 1,
            "groups": geo["groups"],
            "in_h": geo["in_h"],
            "in_w": geo["in_h"],
            "out_h": geo["out_h"],
            "out_w": geo["out_h"],
            "algo_requested": algo,
            "algo_used": used,
            "backend": "synthetic",
            "status": status,
            "n": 10,
            "mean_ms": layer_ms,
            "p50_ms": layer_ms,
            "std_ms": layer_ms * syn.cv,
            "flops": geo["flops"],
            "bytes": geo["bytes"],
            "arithmetic_intensity": geo["flops"] / geo["bytes"],
            "share_of_model": share,
        },
        n,
        LAYERS,
    )
    sizes = np.asarray(syn.sizes, dtype=np.int64)
    power = syn.power_w.get(gpu)
    energy = p50 / 1e3 * power if power is not None else None
    pstatus = np.where(point_unsupported, "unsupported", "ok")
    flops = geo["flops"].reshape(S, L).sum(axis=1)
    points = _table(
        ident
        | {
            "device": "cuda" if gpu in GPU_SPECS else "cpu",
            "input_size": sizes,
            "status": pstatus,
            "error": np.where(point_unsupported, f"conv layers cannot run {algo}", None),
            "backend": "synthetic",
            "fallback_policy": policy,
            "verified": True,
            "n": 30,
            "target_met": True,
            "mean_ms": p50,
            "std_ms": p50 * syn.cv,
            "cv": np.where(point_unsupported, np.nan, syn.cv),
            "min_ms": p50 * 0.98,
            "p50_ms": p50,
            "p95_ms": p50 * 1.02,
            "p99_ms": p50 * 1.03,
            "max_ms": p50 * 1.05,
            "throughput_ips": batch / (p50 / 1e3),
            "flops": flops,
            "params": 1000,
            "achieved_tflops": flops / (p50 / 1e3) / 1e12,
            "energy_per_inference_j": energy,
            "energy_method": "nvml_counter" if power is not None else "none",
            "energy_window_s": 5.0 if power is not None else None,
            "power_mean_w": power,
            "throttle_reasons": "none" if power is not None else None,
            # a device that draws nothing idle: its total energy is its dynamic energy (the analysis' energy)
            "energy_windows": 3 if power is not None else None,
            "idle_power_w": 0.0 if power is not None else None,
            "idle_power_after_w": 0.0 if power is not None else None,
            "dynamic_energy_per_inference_j": energy,
            "algo_fallback_layers": (status == "fallback").reshape(S, L).sum(axis=1),
            "conv_layers": L,
        },
        S,
        POINTS,
    )
    return points, layers


def write_points(root: str | Path, rows: list[dict]) -> list[Path]:
    """Points rows as the store lays them out: one points file per partition and run (each row needs the
    partition keys and run_id; missing columns are nulls, schema_version is filled in). For tests that need
    exact values (p50, its CI, versions, flags) rather than a law."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((Partition(row["stage"], row["gpu"], row["model"], row["algo"]), row["run_id"]), []).append(
            {"schema_version": SCHEMA_VERSION} | row
        )
    written = []
    for (partition, run_id), group in groups.items():
        folder = partition.path(Path(root))
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(to_table(group, POINTS), folder / layout.table_file("points", run_id))
        written.append(folder / layout.table_file("points", run_id))
    return written


ROW_T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)


def point_row(size: int, p50: float | None, *, ci: float = 0.005, run: str = "r1", at: float = 0, **extra) -> dict:
    """A GPU points row for tests that need exact values (write_points): p50 with a median CI of +-ci
    (relative), measured ``at`` hours after ROW_T0; ``p50=None``: a point that did not measure."""
    if p50 is None:  # a point that did not measure
        return point_row(size, 1.0, run=run, at=at, **extra) | dict.fromkeys(
            ["p50_ms", "ci95_low_ms", "ci95_high_ms", "std_ms", "energy_per_inference_j", "n"]
        )
    return {
        "run_id": run,
        "stage": "quick",
        "gpu": "h100",
        "model": "resnet50",
        "algo": "gemm",
        "input_size": size,
        "batch_size": 1,
        "dtype": "float32",
        "status": "ok",
        "backend": "cudnn",
        "math_type": "fma",
        "fallback_policy": "none",
        "cudnn_benchmark": False,
        "cuda_graph": False,
        "n": 100,
        "p50_ms": p50,
        "ci95_low_ms": p50 * (1 - ci),
        "ci95_high_ms": p50 * (1 + ci),
        "std_ms": p50 * 0.01,
        "energy_per_inference_j": p50 * 0.3,
        "config_hash": "h1",
        "device_name": "NVIDIA H100 80GB HBM3",
        "cudnn_version": "91002",
        "git_commit": "abc",
        "measured_at": ROW_T0 + timedelta(hours=at),
    } | extra


# --- training steps (issue 31): frames in the rows' contract, from a known truth -----------------------------

TRAIN_CALLS = ("forward", "backward_data", "backward_filter")


@dataclass
class TrainingTruth:
    """A known training step per point: ``ms[(layer, direction, algo)]`` the true time of each conv call (layer 0
    has no backward_data call: its input needs no gradient), ``remainder_ms`` the rest of the step; the true
    oracle switches a call from guess wherever another algorithm is truly faster."""

    layers: int = 6
    algos: tuple[str, ...] = ("guess", "gemm", "implicit_gemm", "fft")
    gap: float = 0.6  # a clear winner's time relative to guess's
    cv: float = 0.05  # per-iteration noise (lognormal sigma)
    n: int = 10  # iterations per row (6 at least: below 6 no row has an interval)
    remainder_ms: float = 2.0
    seed: int = 0


def training_truth(t: TrainingTruth, rng: np.random.Generator) -> dict[tuple[int, str, str], float]:
    """Per call: guess takes a base time; the fastest other algorithm is clearly faster (``gap``), tied with
    guess (the same true time) or slower, one third each; the others are slower than both."""
    ms: dict[tuple[int, str, str], float] = {}
    for i in range(t.layers):
        for d in TRAIN_CALLS:
            if i == 0 and d == "backward_data":
                continue
            base = float(rng.uniform(0.2, 1.0)) * (2.0 if d != "forward" else 1.0)
            kind = int(rng.integers(3))
            best = base * (t.gap if kind == 0 else 1.0 if kind == 1 else 1.4)
            others = [a for a in t.algos if a != "guess"]
            lead = others[int(rng.integers(len(others)))]
            for a in t.algos:
                ms[(i, d, a)] = base if a == "guess" else best if a == lead else base * 1.8
    return ms


def true_oracle_speedup(t: TrainingTruth, ms: dict[tuple[int, str, str], float]) -> float:
    """guess's true step over the step with every call run by its truly fastest algorithm."""
    calls = {(i, d) for i, d, _ in ms}
    guess = sum(ms[(i, d, "guess")] for i, d in calls)
    best = sum(min(ms[(i, d, a)] for a in t.algos) for i, d in calls)
    return (t.remainder_ms + guess) / (t.remainder_ms + best)


def _summary(true_ms: np.ndarray, cv: float, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Rows' latency columns from ``n`` simulated iterations each (harness.stats: the median and its
    order-statistic 95% interval)."""
    from harness.stats import median_ci95

    samples = np.sort(true_ms[:, None] * np.exp(rng.normal(0.0, cv, (len(true_ms), n))), axis=1)
    ci = np.array([median_ci95(row) for row in samples]).reshape(len(true_ms), 2)
    return {
        "n": np.full(len(true_ms), n),
        "p50_ms": np.median(samples, axis=1),
        "mean_ms": samples.mean(axis=1),
        "std_ms": samples.std(axis=1, ddof=1),
        "ci95_low_ms": ci[:, 0],
        "ci95_high_ms": ci[:, 1],
    }


def training_frames(
    t: TrainingTruth,
    points: int = 1,
    plan: dict[tuple[int, str], str] | None = None,
    forward: bool = False,
    model: str = "net",
    names: list[str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, list[dict[tuple[int, str, str], float]]]:
    """Resolved points and layer rows of ``points`` train_step points (input sizes 32, 33, ...; each its own
    truth), every algorithm of ``t`` measured in every direction, in the columns of CONTRACT-31 (points:
    ``direction``, ``algo_forward``/``algo_backward_data``/``algo_backward_filter``, ``train_*``; layer rows:
    ``direction`` of the call, ``point_direction``). ``plan``: also a per_layer step running that choice per
    call ((layer, direction) -> algorithm; guess elsewhere); ``names``: the layers' module names (default "0",
    "1", ...), e.g. a real model's conv layers for a plan made through the command line. ``forward``: also
    forward points (and their forward layer rows) of the same algorithms, as a tree measuring both would hold.
    Returns the frames and each point's truth (``training_truth``; the k-th point has input size 32 + k)."""
    rng = np.random.default_rng(t.seed)
    prows: list[dict] = []
    lcols: dict[str, list] = {}
    truths = []
    for k in range(points):
        ms = training_truth(t, rng)
        truths.append(ms)
        calls = sorted({(i, d) for i, d, _ in ms})
        runs = [(a, {c: a for c in calls}) for a in t.algos]
        if plan is not None:
            runs.append(("per_layer", {c: plan.get(c, "guess") for c in calls}))
        for algo, choice in runs:
            step = t.remainder_ms + sum(ms[(i, d, choice[(i, d)])] for i, d in calls)
            for direction in ("train_step", "forward") if forward and algo != "per_layer" else ("train_step",):
                mine = calls if direction == "train_step" else [c for c in calls if c[1] == "forward"]
                total = (
                    step
                    if direction == "train_step"
                    else 0.3 * t.remainder_ms + sum(ms[(i, "forward", algo)] for i, _ in mine)
                )
                point = {
                    "stage": "quick",
                    "gpu": "h100",
                    "model": model,
                    "algo": algo,
                    "input_size": 32 + k,
                    "batch_size": 8,
                    "dtype": "float32",
                    "layout": "nchw",
                    "l2": "warm",
                    "direction": direction,
                    "repeat": 0,
                    "run_id": f"{algo}-{direction}-{k}",
                    "status": "ok",
                    "device": "cuda",
                    "backend": "cudnn",
                    "plan_hash": "p1" if algo == "per_layer" else None,
                }
                if direction == "train_step":
                    point |= {f"algo_{d}": algo for d in TRAIN_CALLS} | {
                        "train_loss": "cross_entropy",
                        "train_optimizer": "sgd",
                        "train_amp": False,
                        "train_deterministic": False,
                        "train_input_grad": False,
                    }
                prows.append(point | {c: v[0] for c, v in _summary(np.array([total]), t.cv, t.n, rng).items()})
                true = np.array([ms[(i, d, choice[(i, d)])] for i, d in mine])
                m = len(mine)
                for c, v in _summary(true, t.cv, t.n, rng).items():
                    lcols.setdefault(c, []).extend(v)
                same = {c: point[c] for c in ("stage", "gpu", "model", "algo", "input_size", "batch_size", "run_id")}
                per_row = {
                    **same,
                    **_LAYER_CONSTANTS,
                    "point_direction": direction,
                    "algo_requested": algo,
                }
                for c, v in per_row.items():
                    lcols.setdefault(c, []).extend([v] * m)
                lcols.setdefault("direction", []).extend(d for _, d in mine)
                lcols.setdefault("layer_index", []).extend(i for i, _ in mine)
                lcols.setdefault("layer_name", []).extend(names[i] if names else str(i) for i, _ in mine)
                lcols.setdefault("algo_used", []).extend(choice[c] for c in mine)
    pts = _with_schema(pd.DataFrame(prows), POINTS)
    lay = _with_schema(pd.DataFrame(lcols), LAYERS)
    lay["host_bound"] = lay["host_bound"].astype("boolean")
    return pts, lay, truths


# The layer rows' columns the synthetic steps share (a 3x3 conv, 8 channels, 16x16: what the plans' checks read)
_LAYER_CONSTANTS = {
    "dtype": "float32",
    "layout": "nchw",
    "l2": "warm",
    "repeat": 0,
    "status": "ok",
    "host_bound": False,
    "in_channels": 8,
    "out_channels": 8,
    "kernel_h": 3,
    "kernel_w": 3,
    "stride_h": 1,
    "stride_w": 1,
    "pad_h": 1,
    "pad_w": 1,
    "dilation_h": 1,
    "dilation_w": 1,
    "groups": 1,
    "in_h": 16,
    "in_w": 16,
}


def _with_schema(df: pd.DataFrame, schema: pa.Schema) -> pd.DataFrame:
    """``df`` with every column of the store's ``schema`` it lacks, null (as the load reads them)."""
    empty = schema.empty_table().to_pandas()
    missing = {
        c: pd.Series(
            np.nan if empty[c].dtype.kind in "fiu" else None,
            index=df.index,
            dtype=empty[c].dtype
            if empty[c].dtype.kind not in "iub"
            else "float64"
            if empty[c].dtype.kind in "iu"
            else object,
        )
        for c in empty.columns
        if c not in df
    }
    return pd.concat([df, pd.DataFrame(missing, index=df.index)], axis=1)


def write_rows(root: str | Path, points: pd.DataFrame, layers: pd.DataFrame) -> None:
    """Points and layer rows (e.g. ``training_frames``) as the store lays them out: per partition and run a
    points and a layers file, in the store's schema (a column the schema does not hold is not written)."""
    root = Path(root)
    for (stage, gpu, model, algo, run_id), p in points.groupby(["stage", "gpu", "model", "algo", "run_id"]):
        folder = Partition(stage, gpu, model, algo).path(root)
        folder.mkdir(parents=True, exist_ok=True)
        lay = layers[layers["run_id"] == run_id]
        for name, rows, schema in (("points", p, POINTS), ("layers", lay, LAYERS)):
            cols = {c: rows[c].astype(object).where(rows[c].notna(), None).tolist() for c in rows if c in schema.names}
            cols["schema_version"] = SCHEMA_VERSION
            cols["measured_at"] = datetime(2026, 12, 1, tzinfo=timezone.utc)
            pq.write_table(_table(cols, len(rows), schema), folder / layout.table_file(name, run_id))
