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

NM = "; null on rows older than the column (not measured)"
# harness.measure.kernels' rule (its docstring names the kernel naming it reads), worded for the contract
TENSOR_CORE_RULE = (
    "true where one of the layer's compute kernels names an MMA instruction (s884, h1688, s16816, i8816, "
    "hmma, imma, gmma, wgmma, tensorop) or is an xmma/CUTLASS kernel with tf32/f16/bf16/fp8/int8 operands; false "
    "where every compute kernel is known not to (simt, f32-only xmma/CUTLASS, *_sgemm, scudnn, FFT, Winograd); "
    "null where a compute kernel is unknown, and on the CPU"
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
    "layout": "the memory layout of the input, activations and weights: nchw (contiguous) or nhwc (channels_last); "
    "part of the point key; rows older than the column were nchw and read as such",
    "l2": "the L2 cache at each timed iteration: warm (left by the previous one) or cold (flushed outside the timed "
    "interval); part of the point key; rows older than the column were warm and read as such",
    "measured_at": "when the row was written (UTC); the latest row of a point wins (the analysis: of a point and "
    "setting)",
    "direction": "points: what one timed iteration is: forward (the model's forward), backward_data (every conv "
    "layer's input-gradient call, in the step's order, summed: the forward and the other layers' backward "
    "excluded), backward_filter (the same for the weight gradients) or train_step (zero_grad, forward, loss, "
    "backward and the optimizer's step); part of the point key. layers: the direction of THIS conv call "
    "(forward, backward_data, backward_filter). Rows older than the column were forward and read as such",
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
        "algo_forward": "the algorithm asked for in the forward direction (a plan: per_layer); null where the "
        "point's direction does not run a timed forward (backward_data, backward_filter) and on rows older than "
        "the column",
        "algo_backward_data": "the algorithm asked for in the backward_data direction (its cuDNN enum there: the "
        "registry's cudnn_for; a plan: per_layer); null where the direction does not time it",
        "algo_backward_filter": "the algorithm asked for in the backward_filter direction; null where the direction "
        "does not time it",
        "train_loss": "the training step's loss (cross_entropy, mse) on fixed random labels; null on forward points",
        "train_optimizer": "the training step's optimizer (sgd, adam); null on forward points",
        "train_amp": "the step ran under torch.autocast (float16) with a GradScaler; null on forward points",
        "train_deterministic": "torch.use_deterministic_algorithms was on; null on forward points",
        "train_input_grad": "layer 0 computed its input's gradient (a backward_data call); null on forward points",
        "train_model_mode": "the model's mode during the step (train.model_mode): train (batch norm on the batch's "
        "statistics, dropout on) or eval (running statistics, no dropout); null on forward points and on training "
        "rows older than the column, which ran in eval",
        "grad_max_rel_err": "the gradients against torch's own convolution's on the same weights, input and labels: "
        "max |g - g_torch| / max |g_torch| per parameter, the worst over parameters (backward_data: the conv "
        "inputs' gradients instead); null on forward points",
        "grad_ok": "grad_max_rel_err within the dtype's gradient tolerance (harness.measure.train_step."
        "GRAD_TOLERANCES); a point beyond it is status error and not timed",
        "cuda_graph": "the timing replayed a CUDA graph of the forward (graph=auto on a GPU, or true, the capture held "
        "and its replay gave the eager output); false with graph_error null: no graph was asked for",
        "graph_error": "GPU: why a graph was asked for and not used (capture failed: the exception, after which the "
        "device was reset and verified; or replay differs from eager beyond the dtype's tolerance); null where "
        "a graph was used or not asked for, and on rows older than the column",
        "cpu_threads": "the framework's CPU threads during the job (torch.set_num_threads: cpu_threads=N, or auto: "
        "torch's default, the CPUs the job may use); null on rows older than the column",
        "verified": "the output was within tolerance of the torch baseline's on the same input",
        "n": "timed iterations",
        "target_met": "the 95% CI of the median reached the stage's target before a bound stopped timing",
        "cache_flush_bytes": "l2=cold: bytes written by each flush of the last cache level (GPU: 2 x L2; CPU: the "
        "last-level cache's size), once before each timed iteration and each layer, outside the timed interval; "
        "null where warm",
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
        "flops": "FLOPs of the whole batch (2 x multiply-adds) of the point's direction: forward, everything the "
        "flop counter sees in one forward; backward_data / backward_filter, the conv calls of that direction; "
        "train_step, everything it sees in a forward and backward (no loss, no optimizer step); training points "
        "older than the count hold the forward's (docs/results.md, FLOPs and bytes of each direction)",
        "params": "parameter count",
        "achieved_tflops": "flops / p50",
        "peak_allocated_bytes": "GPU: peak memory allocated through PyTorch during one forward: model, input, "
        "activations and our cuDNN workspace buffer (workspace_bytes); not cuDNN's own allocations (see "
        "device_used_bytes) (null on the CPU)",
        "peak_reserved_bytes": "GPU: peak memory reserved by PyTorch's allocator in that forward (its cache emptied "
        "first, so nothing cached by earlier points or by Find's search)",
        "device_used_bytes": "GPU: the device's used memory after that forward (cudaMemGetInfo total - free): also "
        "what PyTorch cannot see (CUDA context, cuDNN's and cuBLAS's own allocations) and other processes; null on "
        "rows older than the column",
        "workspace_bytes": "GPU: the shared cuDNN workspace buffer held during the point (at least any layer's need; "
        "algo=find: the chosen algorithm's, not the larger buffer Find searched with)",
        "param_bytes": "bytes of the parameters",
        "activation_bytes": "peak_allocated_bytes - param_bytes",
        "arithmetic_intensity": "flops per byte moved (forward: weights, input and each conv output once; "
        "backward_data / backward_filter: the sum of the layer rows' bytes; null on train_step points)",
        "roofline_bound": "compute or memory, against the detected device's datasheet peaks (peaks_source; "
        "null where none is known). Rows older than peaks_source used the gpu config's numbers (conf/gpu/h100 "
        "had the H100 NVL's, whatever H100 ran)",
        "peak_tflops": "the datasheet peak that applies to the row (FP16/BF16 tensor for half types, TF32 tensor for "
        "float32 with tensor_op math, else FP32), dense; null where unknown",
        "peak_mem_bw_gbs": "the datasheet memory bandwidth, GB/s",
        "achieved_fraction_of_peak": "achieved_tflops / peak_tflops",
        "energy_per_inference_j": "total energy of one forward, joules, idle power included: the mean over the "
        "point's energy windows (one window on rows older than energy_windows); see energy_method and, for the "
        "energy above idle that the analysis reports, dynamic_energy_per_inference_j",
        "energy_method": "how the energy was measured: " + "; ".join(f"{k}: {v}" for k, v in ENERGY_METHODS.items()),
        "energy_window_s": "length of the shortest energy window (every window lasted at least this long; one "
        "window on older rows)",
        "energy_inferences": "forwards over all the energy windows",
        "energy_integral_per_inference_j": "the power integral over the same windows: a cross-check of the counter",
        "power_mean_w": "mean power over the windows: their energy / their time",
        "idle_power_w": "mean power with no work before the point's work, 1 s (GPU: NVML; CPU: RAPL zones): at the "
        "job's start for its first point, after the previous point's cooldown for the others (rows older than "
        "idle_power_after_w: once at the job's start)",
        "sm_clock_mhz": "median SM clock in the energy windows",
        "temperature_c": "highest GPU temperature in the energy windows",
        "throttle_reasons": "NVML clocks-event reasons seen in the energy windows (none: none)",
        "energy_windows": "energy windows of the point (stage.energy_windows), each at least stage.energy_window_s"
        + NM,
        "energy_p50_j": "median over the windows of the total energy per inference" + NM,
        "energy_ci95_low_j": "low end of the 95% interval of energy_per_inference_j: Student's t over the windows, "
        "mean +- t(0.975, n-1) s / sqrt(n) (holds at n = 3 windows); null with one window" + NM,
        "energy_ci95_high_j": "high end of that interval" + NM,
        "dynamic_energy_per_inference_j": "energy of one forward above idle (DEFINITIONS: dynamic energy per "
        "inference): the mean over the windows; the analysis' energy" + NM,
        "dynamic_energy_p50_j": "median over the windows of the dynamic energy per inference" + NM,
        "dynamic_energy_ci95_low_j": "low end of the 95% t interval of dynamic_energy_per_inference_j" + NM,
        "dynamic_energy_ci95_high_j": "high end of that interval" + NM,
        "idle_power_after_w": "mean power with no work after the point's cooldown, 1 s (the next point's idle_power_w)"
        + NM,
        "cooldown_s": "how long the device idled after the windows before idle_power_after_w was measured" + NM,
        "cooldown_reached": "the power came within stage.cooldown_margin of idle_power_w before "
        "stage.cooldown_cap_s (false: measured at the cap)" + NM,
        "steady_state_s": "how long the forward ran before the windows, to thermal steady state" + NM,
        "steady_state_reached": "power and temperature slopes fell under stage.steady_power_slope and "
        "stage.steady_temp_slope_c_s before stage.steady_cap_s (false: the cap; null: stage.steady_cap_s=0)" + NM,
        "sm_clock_min_mhz": "GPU: lowest SM clock sampled through the point's work passes (memory, timing, layers, "
        "steady state, energy): one sampler runs across the whole point" + NM,
        "sm_clock_p50_mhz": "GPU: median SM clock over the same passes" + NM,
        "temperature_max_c": "GPU: highest temperature over the same passes" + NM,
        "throttled": "GPU: a slowdown reason (SwPowerCap, HwSlowdown, Sw/HwThermalSlowdown, HwPowerBrakeSlowdown) "
        "in any work pass" + NM,
        "reasons_by_pass": "GPU: the clocks-event reasons of each pass, 'timing:SwPowerCap; energy:SwPowerCap' "
        "(GpuIdle left out; none: none)" + NM,
        "telemetry_samples": "GPU: samples the point's sampler took (power, clock, temperature, reasons)" + NM,
        "max_abs_err": "max |y - y_torch| against the baseline on the same input",
        "max_rel_err": "max_abs_err / max |y_torch|",
        "algo_fallback_layers": "conv layers that did not run the requested algorithm",
        "conv_layers": "conv layer calls per forward",
        "conv_coverage": "sum of the conv layers' mean times / p50 (the conv share of the model's time)",
        "kernel_families": "kernels=true: the layer calls per kernel family (family:count; ..., most first; the layers "
        "rows' kernel_family); null where the kernel pass did not run (and on rows older than the column)",
        "tensor_core_layers": "kernels=true: layer calls whose kernels ran on tensor cores (the layers rows' "
        "tensor_cores); null on the CPU, where the pass did not run, and on rows older than the column",
        "reference_status": "with references=PATH: within, faster or slower than the blessed reference beyond its "
        "tolerance with 95% confidence, or no_reference (none for the point); null when the "
        "point was not measured ok or the run had no references (README: References)",
        "plan_hash": "algo=per_layer: the hash of the plan that ran (its model, layers and algorithms; the plan "
        "file's plan_hash); null for a single algorithm",
        "repeat": REPEAT,
        "repeats": "how many separate processes the run's configuration measures each point in (repeats=K)",
        "point_wall_s": "wall seconds the point took, all its passes (what the dry run's cost model fits: "
        "docs/running.md, Dry run); null on rows older than the column",
        "phase_plan_s": "wall seconds of the point's planning forward, FLOP count and verification",
        "phase_warmup_s": "wall seconds of the memory pass, the CUDA graph's capture and the timer's warmup",
        "phase_timing_s": "wall seconds of the timed iterations (until the CI target or a bound)",
        "phase_layers_s": "wall seconds of the per-layer pass",
        "phase_energy_s": "wall seconds of the energy window(s), 0 where none ran",
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
    "point_direction": "the direction of the point this layer row belongs to (its points row's direction): a "
    "train_step point has forward, backward_data and backward_filter rows; rows older than the column: forward",
    "nondeterministic": "the algorithm that ran this call may give different bits on the same input: cuDNN "
    "documents its enum as non-deterministic, or the bitwise check (train.check_determinism) found a difference; "
    "null where unknown (off cuDNN without the check)",
    "determinism_checked": "this call was run twice on the same input and compared bitwise "
    "(train.check_determinism); null on forward points and rows older than the column",
    "host_bound": "GPU: the layer's time includes the host's issuing (no head start covered it: the host issued the "
    "layer slower than the longest spin), so it is the CPU's pace, not the GPU's; no table, plan or "
    "oracle of the analysis uses such a time. false where a head start covered it; null on the CPU, where no "
    "head start was used, and on rows older than the column (the analysis then reads detail)",
    "kernels": "kernels=true: what ran this layer call, each name once in the order first seen, in a profiled pass "
    "after the timed ones: the CUDA kernels on a GPU (torch.profiler/CUPTI; our ctypes cuDNN calls' too), the "
    "operators on the CPU; null where the pass did not run (and on rows older than the column)",
    "kernel_family": "the family of the layer's compute kernels (harness.measure.kernels: xmma_implicit_gemm, "
    "cudnn_implicit_gemm, implicit_gemm, implicit_precomp_gemm, gemm, fft, winograd, winograd_nonfused, "
    "cutlass_*, ...; on the CPU onednn, im2col_gemm, gemm, fft, ...; several joined with +); unknown where a "
    "name is not recognised, never a guess",
    "tensor_cores": "the layer's kernels ran on tensor cores: " + TENSOR_CORE_RULE,
    "cudnn_engine": "algo=torch on a GPU with kernels=true: the cuDNN engine (eng<global index>) the baseline ran, "
    "named by cuDNN's API log in a replay of the layer in a process of its own; null where the log names none",
    "n": "timed iterations of the layer pass",
    "mean_ms": "mean layer latency",
    "p50_ms": "median layer latency",
    "std_ms": "standard deviation",
    "ci95_low_ms": CI_LOW,
    "ci95_high_ms": CI_HIGH,
    "lag1_autocorr": LAG1,
    "flops": "the layer call's FLOPs in the row's direction (harness.measure.flops_directions; null on training "
    "rows older than the count)",
    "bytes": "bytes the layer call must move at least in the row's direction (input, weights, output or their "
    "gradients)",
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
    "warm L2": "l2=warm: each timed iteration (and layer) finds the caches as the previous one left them: the "
    "weights and activations that fit in the L2 (a GPU's) or the last-level cache (the CPU's) are already there",
    "cold L2": "l2=cold: before each timed iteration, and before each layer in the layer pass, a buffer of at least "
    "the last cache level's size is written through it (cache_flush_bytes: 2 x L2 on a GPU, queued before the start "
    "event; the last-level cache on the CPU, before the clock starts), so each starts from memory; the flush is "
    "outside the timed interval (CUDA-graph replays: one event pair per replay, the flush between replays); the "
    "energy window is never flushed",
    "interval": "the 95% confidence interval of a median, from order statistics (x(k), x(n+1-k)) with "
    "Hettmansperger-Sheather interpolation: distribution-free for independent iterations; none below 6 "
    "iterations (not enough samples)",
    "throughput": "throughput_ips = batch_size / the mean iteration time (the mean, not the median: the rate a "
    "stream of forwards sustains, slow iterations included)",
    "energy per inference": "energy_per_inference_j = the mean over the point's energy windows (energy_windows; "
    "each at least energy_window_s of back-to-back forwards, paced as the timing, after a warm-up to thermal "
    "steady state) of the window's energy (NVML's energy counter on a GPU, RAPL on the CPU; see energy_method) / "
    "its forwards; the whole device's energy, idle power included (total energy)",
    "dynamic energy per inference": "dynamic_energy_per_inference_j = the mean over the windows of (the window's "
    "energy - P_idle x its length) / its forwards, P_idle the mean of idle_power_w (before the point's work) and "
    "idle_power_after_w (after its cooldown); the energy above what the idle device would have used over the same "
    "time. The analysis reports this one. Rows older than the column: energy_per_inference_j - idle_power_w x "
    "energy_window_s / energy_inferences (one window, idle measured once at the job's start); null where no idle "
    "power was measured (not measured)",
    "energy interval": "energy_ci95_low_j .. energy_ci95_high_j (and dynamic_energy_ci95_*): the 95% Student t "
    "interval of the mean over the windows, mean +- t(0.975, n-1) s / sqrt(n), which holds at n = 3 windows "
    "(a distribution-free interval of a median needs 6)",
}


def dynamic_energy_per_inference_j(rows: Any) -> Any:
    """DEFINITIONS["dynamic energy per inference"] for a DataFrame of points rows (NaN where unknown, "not
    measured"): the stored column where the row has it, else (rows older than it) the one-window formula from
    idle_power_w; NaN everywhere for a frame without the columns either needs. The analysis' energy."""
    import pandas as pd  # the results package itself does not need pandas; its readers do

    def col(name: str) -> Any:
        return rows[name].astype(float) if name in rows else pd.Series(float("nan"), index=rows.index)

    per_inference_s = col("energy_window_s") / col("energy_inferences")
    formula = col("energy_per_inference_j") - col("idle_power_w") * per_inference_s
    if "dynamic_energy_per_inference_j" not in rows:
        return formula
    stored = rows["dynamic_energy_per_inference_j"].astype(float)
    older = rows["energy_windows"].isna() if "energy_windows" in rows else stored.isna()
    return stored.where(~older, formula)


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
