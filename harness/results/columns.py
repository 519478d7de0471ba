"""What each column of the results tables means: the source of docs/results-schema.md.

One entry per column of harness.results.schema's POINTS and LAYERS (tests/test_results_schema_doc.py checks
that none is missing or stale, and that the document is this module's output).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from harness.cli import ArgumentParser, command
from harness.results.schema import LAYERS, POINTS, SCHEMA_VERSION

ENERGY_METHODS = {
    "nvml_counter": "NVML's energy counter (nvmlDeviceGetTotalEnergyConsumption, mJ) over the window, per inference",
    "nvml_power_integral": "trapezoid integral of sampled power over the window (no counter on this GPU)",
    "legacy_power_average": "imported rows: the old system's 1-second-averaged power x time (see legacy_flags)",
    "rapl_package_dram": "CPU: RAPL energy counters (powercap energy_uj) of every package and DRAM zone over the "
    "window, per inference; whole sockets, so other processes on them count too",
    "rapl_package": "CPU: as rapl_package_dram, where the CPU has no DRAM zone (AMD, desktops): packages only",
    "none": "not measured (NVML not usable on the GPU, RAPL not readable on the CPU: python -m harness.doctor says why)",
}

CI_LOW = (
    "low end of the median's distribution-free 95% confidence interval (order statistics, Hettmansperger-"
    "Sheather interpolation); null below 6 iterations, where no honest 95% interval of a median exists "
    "(rows older than the layers column: see README, Statistics)"
)
CI_HIGH = "high end of that interval"
LAG1 = (
    "correlation of each timed iteration with the next: the interval assumes independent iterations; "
    "null below 3 iterations or on rows older than the column"
)

REPEAT = (
    "which of the separate processes measuring the point (repeats=K) wrote the row: 0 .. K-1; null on "
    "rows older than the column (one process: repeat 0). Repeats are one point, pooled by the analysis"
)

_IDENTITY = {
    "schema_version": "version of this schema the row was written with",
    "run_id": "the run (one job) that measured the row: <UTC time>-<random>",
    "stage": "sanity, quick, full (or legacy for imported rows); also a partition folder",
    "model": "the model's name: torchvision's, or a model file's stem, or a factory function's name; also a partition folder",
    "model_source": "where the model came from: torchvision, state_dict, module (pickled), export (torch.export), "
    "torchscript, onnx or factory; null on rows older than the column",
    "model_hash": "sha256 of the model file (a factory: of the source file defining it); null for torchvision models",
    "algo": "the requested algorithm (implicit_gemm ... winograd_nonfused, guess, find, direct, torch; per_layer: a "
    "plan, see plan_hash); a partition folder",
    "gpu": "the configured GPU type (l40s, h100, h200, v100, local; conf/gpu); a partition folder. The device really used: device_name",
    "device_name": "the device's name as NVML or the OS reports it (e.g. NVIDIA H100 80GB HBM3)",
    "input_size": "the model's input height and width in pixels",
    "batch_size": "inputs per forward",
    "dtype": "float32, float16 or bfloat16",
    "measured_at": "when the row was written (UTC); the latest row of a point wins (the analysis: of a point and "
    "setting)",
}
_PROVENANCE = {
    "torch_version": "PyTorch version",
    "cuda_version": "CUDA version of the torch build (null on the CPU)",
    "cudnn_version": "cuDNN version (null on the CPU)",
    "driver_version": "NVIDIA driver (null on the CPU)",
    "hostname": "the machine",
    "slurm_job_id": "SLURM job id (array: <job>_<task>); null outside SLURM",
    "git_commit": "the harness's commit (40 hex digits), as stamped where the sweep was submitted (a job without "
    "git uses the stamp); rows older than git_dirty end in -dirty where their tree was modified (by git status, "
    "which also counted touched but unchanged files)",
    "git_dirty": "the harness's tree differed in content from git_commit (a tracked file's content, or an untracked "
    "file under harness/ or conf/); null on older rows and where git was unknown",
    "git_diff_hash": "sha256 (16 hex digits) of that difference: rows with the same commit and diff hash ran the "
    "same code; null where clean",
    "config_hash": "hash of what decides how a point is measured (harness.config.keys: the "
    "keys whose role is setting or hashed)",
    "provenance": "imported rows: where the row came from (repository, file, line)",
    "legacy_flags": "imported rows: the known flaws of the system that measured it, by name",
}

_DEVICE = {
    "gpu_board_part_number": "the board's part number (NVML)",
    "gpu_uuid": "the GPU's UUID (NVML): the physical board",
    "gpu_memory_bytes": "the device's total memory (NVML)",
    "gpu_sm_count": "streaming multiprocessors (CUDA's multi_processor_count)",
    "gpu_power_limit_w": "the power limit the driver enforced at the job's start (NVML)",
    "gpu_power_limit_default_w": "the board's default power limit: below it, the board was capped",
    "gpu_ecc": "ECC on (current mode)",
    "gpu_persistence": "persistence mode on",
    "gpu_mig": "MIG mode on (current mode)",
    "gpu_compute_mode": "default, exclusive_process or prohibited",
    "gpu_app_sm_clock_mhz": "application SM clock (nvidia-smi -ac sets it)",
    "gpu_app_mem_clock_mhz": "application memory clock",
    "gpu_max_sm_clock_mhz": "the board's maximum SM clock",
    "gpu_max_mem_clock_mhz": "the board's maximum memory clock",
    "gpu_clocks_locked": "application clocks set away from their defaults (nvidia-smi -ac). NVML cannot read a "
    "locked range (nvidia-smi -lgc): that shows as ApplicationsClocksSetting in throttle_reasons",
    "gpu_other_processes": "processes on the GPU other than the job's at its start: 'pid (MiB), ...' or none "
    "(in a container with its own PID namespace the job itself may be listed: NVML gives host PIDs)",
    "gpu_sku": "the datasheet entry the device matched (conf/skus.yaml, by NVML name and memory): h100_sxm, "
    "h100_nvl, h100_pcie, h200_sxm, h200_nvl, l40s, v100_sxm2, ...; null where it matched none",
    "peaks_source": "where the roofline's peaks came from: datasheet (the detected SKU), config (gpu.spec.*, an "
    "explicit override), datasheet+config (some fields overridden), unknown (no known peaks: the roofline columns "
    "are null, nothing is guessed)",
}

POINT_COLUMNS = (
    _IDENTITY
    | _PROVENANCE
    | _DEVICE
    | {
        "device": "cuda or cpu",
        "status": "ok, oom, unsupported or error",
        "error": "why, where status is not ok",
        "backend": "cudnn, reference or torch (what runs the swapped layers)",
        "math_type": "fma (strict FP32) or tensor_op (TF32 for float32); null on the CPU",
        "fallback_policy": "none, torch or guess: what a layer the algorithm cannot run runs instead",
        "cudnn_benchmark": "torch.backends.cudnn.benchmark during the job (GPU); null on the CPU",
        "cuda_graph": "the timing replayed a CUDA graph of the forward (graph=auto on a GPU, or true, and the capture held)",
        "cpu_threads": "the framework's CPU threads during the job (torch.set_num_threads: cpu_threads=N, or auto: "
        "torch's default, the CPUs the job may use); null on rows older than the column",
        "verified": "the output was within tolerance of the torch baseline's on the same input",
        "n": "timed iterations",
        "target_met": "the 95% CI of the median reached the stage's target before a bound stopped timing",
        "mean_ms": "mean whole-model latency",
        "std_ms": "standard deviation",
        "cv": "std / mean",
        "min_ms": "fastest iteration",
        "p50_ms": "median latency",
        "p95_ms": "95th percentile",
        "p99_ms": "99th percentile",
        "max_ms": "slowest iteration",
        "ci95_low_ms": CI_LOW,
        "ci95_high_ms": CI_HIGH,
        "lag1_autocorr": LAG1,
        "throughput_ips": "inputs per second: batch_size / mean latency",
        "host_p50_ms": "GPU: median host wall time of one timed call (issuing the forward)",
        "host_issue_ms": "GPU: shortest host time of one call: the unblocked cost of issuing a forward",
        "launch_bound": "GPU: host_issue_ms >= 0.8 x p50_ms: the host, not the GPU, may set the pace (README)",
        "flops": "forward FLOPs of the whole batch (2 x multiply-adds)",
        "params": "parameter count",
        "achieved_tflops": "flops / p50",
        "peak_allocated_bytes": "GPU: peak memory allocated by one forward (null on the CPU)",
        "peak_reserved_bytes": "GPU: peak memory reserved by PyTorch's allocator",
        "workspace_bytes": "GPU: the shared cuDNN workspace buffer held during the point (at least any layer's need)",
        "param_bytes": "bytes of the parameters",
        "activation_bytes": "peak_allocated_bytes - param_bytes",
        "arithmetic_intensity": "flops per byte moved (weights, input and each conv output once)",
        "roofline_bound": "compute or memory, against the detected device's datasheet peaks (peaks_source; "
        "null where none is known). Rows older than peaks_source used the gpu config's numbers (conf/gpu/h100 "
        "had the H100 NVL's, whatever H100 ran)",
        "peak_tflops": "the datasheet peak that applies to the row (FP16/BF16 tensor for half types, TF32 tensor for "
        "float32 with tensor_op math, else FP32), dense; null where unknown",
        "peak_mem_bw_gbs": "the datasheet memory bandwidth, GB/s",
        "achieved_fraction_of_peak": "achieved_tflops / peak_tflops",
        "energy_per_inference_j": "energy of one forward, joules (see energy_method)",
        "energy_method": "how the energy was measured: " + "; ".join(f"{k}: {v}" for k, v in ENERGY_METHODS.items()),
        "energy_window_s": "length of the energy window",
        "energy_inferences": "forwards in the window",
        "energy_integral_per_inference_j": "the power integral over the same window: a cross-check of the counter",
        "power_mean_w": "mean sampled power in the window (RAPL: the window's energy / its length)",
        "idle_power_w": "mean power before the job's work (GPU: NVML; CPU: RAPL zones, 1 s)",
        "sm_clock_mhz": "median SM clock in the window",
        "temperature_c": "highest GPU temperature in the window",
        "throttle_reasons": "NVML clocks-event reasons seen in the window (none: none)",
        "max_abs_err": "max |y - y_torch| against the baseline on the same input",
        "max_rel_err": "max_abs_err / max |y_torch|",
        "algo_fallback_layers": "conv layers that did not run the requested algorithm",
        "conv_layers": "conv layer calls per forward",
        "conv_coverage": "sum of the conv layers' mean times / p50 (the conv share of the model's time)",
        "reference_status": "with references=PATH: within, faster or slower than the blessed reference beyond its "
        "tolerance with 95% confidence, or no_reference (none for the point); null when the "
        "point was not measured ok or the run had no references (README: References)",
        "plan_hash": "algo=per_layer: the hash of the plan that ran (its model, layers and algorithms; the plan "
        "file's plan_hash); null for a single algorithm",
        "repeat": REPEAT,
        "repeats": "how many separate processes the run's configuration measures each point in (repeats=K)",
        "power_std_w": "imported rows: the old system's power standard deviation",
        "power_min_w": "imported rows: lowest power sample",
        "power_max_w": "imported rows: highest power sample",
        "power_samples": "imported rows: power samples taken",
        "energy_total_j": "imported rows: energy of all iterations",
    }
)

LAYER_COLUMNS = {k: v for k, v in _IDENTITY.items()} | {
    "provenance": _PROVENANCE["provenance"],
    "legacy_flags": _PROVENANCE["legacy_flags"],
    "layer_index": "order of execution within the forward",
    "layer_name": "module path (features.0); a module called twice gives two layers",
    "in_channels": "input channels",
    "out_channels": "output channels",
    "kernel_h": "kernel height",
    "kernel_w": "kernel width",
    "stride_h": "vertical stride",
    "stride_w": "horizontal stride",
    "pad_h": "vertical zero padding",
    "pad_w": "horizontal zero padding",
    "dilation_h": "vertical dilation",
    "dilation_w": "horizontal dilation",
    "groups": "groups",
    "in_h": "THIS layer's own input height",
    "in_w": "its own input width",
    "out_h": "its output height",
    "out_w": "its output width",
    "algo_requested": "the algorithm asked for",
    "algo_used": "what really ran (torch: the framework's convolution)",
    "backend": "cudnn, reference or torch",
    "status": "ok, fallback (another algorithm ran: see detail) or unsupported (nothing ran it)",
    "workspace_bytes": "cuDNN workspace this layer needs (null off cuDNN)",
    "math_type": "fma or tensor_op (GPU)",
    "compute_type": "cuDNN's compute type (float32 for every data type)",
    "detail": "why a layer fell back or is unsupported (cuDNN's status name, or the reference's condition); "
    "algo=find: what cuDNN's Find timed, fastest first (find: <algo> <ms> ms, ...)",
    "host_bound": "GPU: the layer's time includes the host's issuing (no head start covered it: the host issued the "
    "layer slower than the longest spin), so it is the CPU's pace, not the GPU's; no table, plan or "
    "oracle of the analysis uses such a time. false where a head start covered it; null on the CPU, where no "
    "head start was used, and on rows older than the column (the analysis then reads detail)",
    "n": "timed iterations of the layer pass",
    "mean_ms": "mean layer latency",
    "p50_ms": "median layer latency",
    "std_ms": "standard deviation",
    "ci95_low_ms": CI_LOW,
    "ci95_high_ms": CI_HIGH,
    "lag1_autocorr": LAG1,
    "flops": "the layer's FLOPs",
    "bytes": "bytes the layer must move at least (input, weights, output)",
    "arithmetic_intensity": "flops / bytes",
    "roofline_bound": "compute or memory",
    "share_of_model": "mean_ms / the sum of the layers' means",
    "legacy_percentage": "imported rows: the old layer files' share of the model mean, in percent",
    "repeat": REPEAT,
}


# What each published number is: the one definition the results contract, the README and the report's
# Methods paragraph (analysis.methods) quote.
DEFINITIONS = {
    "latency": "the median (p50_ms) of the timed iterations of one point, each iteration one forward of the "
    "whole batch: CUDA events around each iteration on a GPU (a CUDA-graph replay where cuda_graph is "
    "true, else the eager forward), perf_counter on the CPU; n iterations after warmup, adaptively until "
    "the median's 95% interval is within the stage's target or a bound is reached",
    "layer latency": "the median of a conv layer's own time over stage.layer_iters forwards in a separate pass "
    "with hooks (GPU: behind a head start, so that the events time the kernels, not the host; "
    "host_bound marks a layer no head start covered)",
    "interval": "the 95% confidence interval of a median, from order statistics (x(k), x(n+1-k)) with "
    "Hettmansperger-Sheather interpolation: distribution-free for independent iterations; none below 6 "
    "iterations (not enough samples)",
    "throughput": "throughput_ips = batch_size / the mean iteration time (the mean, not the median: the rate a "
    "stream of forwards sustains, slow iterations included)",
    "energy per inference": "energy_per_inference_j = the energy of a window of back-to-back forwards (NVML's "
    "energy counter on a GPU, RAPL on the CPU; see energy_method) / the forwards in it "
    "(energy_inferences); the whole device's energy, idle power included (total energy)",
    "dynamic energy per inference": "energy_per_inference_j - idle_power_w x energy_window_s / energy_inferences: "
    "the energy above what the idle device would have used over the same time "
    "(computed by the analysis where idle_power_w was measured)",
}


def dynamic_energy_per_inference_j(rows: Any) -> Any:
    """DEFINITIONS["dynamic energy per inference"] for a DataFrame of points rows (NaN where unknown)."""
    per_inference_s = rows["energy_window_s"].astype(float) / rows["energy_inferences"].astype(float)
    return rows["energy_per_inference_j"].astype(float) - rows["idle_power_w"].astype(float) * per_inference_s


def markdown() -> str:
    """docs/results-schema.md: the layout, every column with its type and meaning, and the energy methods."""
    lines = [
        "# The results schema",
        "",
        "Generated from the code (`python -m harness.results.columns > docs/results-schema.md`); a test fails",
        f"when the two differ. Schema version {SCHEMA_VERSION}. Layout: see harness/results/layout.py;",
        "`results/stage=<stage>/gpu=<gpu>/model=<model>/algo=<algo>/` holding `points-<run>.parquet`,",
        "`layers-<run>.parquet`, `run-<run>.json` and, where asked for, `trace-<run>.<point>.json`.",
        "Rename or drop a column only with a schema version bump and a note in README.md.",
        "",
    ]
    for title, schema, meanings in (("points", POINTS, POINT_COLUMNS), ("layers", LAYERS, LAYER_COLUMNS)):
        lines += [f"## {title}", "", "| column | type | meaning |", "|---|---|---|"]
        lines += [f"| {f.name} | {f.type} | {meanings[f.name]} |" for f in schema]
        lines.append("")
    lines += ["## What the numbers are", "", "| quantity | definition |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in DEFINITIONS.items()]
    lines += ["", "## energy_method", "", "| value | meaning |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in ENERGY_METHODS.items()]
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    """No options: the document goes to stdout (an unknown argument is refused, not ignored)."""
    return ArgumentParser(
        prog="python -m harness.results.columns",
        description="print docs/results-schema.md (redirect it: > docs/results-schema.md)",
    )


@command
def main(argv: list[str] | None = None) -> int:
    build_parser().parse_args(argv)
    print(markdown(), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
