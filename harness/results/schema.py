"""The Parquet schemas of results/ (see RESULTS-SCHEMA.md): the contract with users and outside tools.

Every column has a fixed type so that files of different runs read as one dataset, and a column that
nothing measured is a typed null, never a made-up value. Add columns freely; renaming or dropping one
needs SCHEMA_VERSION + 1 and a note in README.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pyarrow as pa

SCHEMA_VERSION = 1

STATUSES = ("ok", "oom", "unsupported", "error")

_IDENTITY = [
    ("run_id", pa.string()),
    ("stage", pa.string()),
    ("model", pa.string()),
    ("model_source", pa.string()),
    ("model_hash", pa.string()),
    ("algo", pa.string()),
    ("gpu", pa.string()),
]

_PROVENANCE = [
    ("torch_version", pa.string()),
    ("cuda_version", pa.string()),
    ("cudnn_version", pa.string()),
    ("driver_version", pa.string()),
    ("hostname", pa.string()),
    ("slurm_job_id", pa.string()),
    ("git_commit", pa.string()),
    ("git_dirty", pa.bool_()),
    ("git_diff_hash", pa.string()),
    ("config_hash", pa.string()),
    ("measured_at", pa.timestamp("us", tz="UTC")),
]

# The device a job measured on, as NVML described it at the job's start (harness.measure.inventory), the SKU
# it matched and the peaks' source (harness.config.skus). Null on the CPU, where NVML refused, on older rows.
_DEVICE = [
    ("gpu_board_part_number", pa.string()),
    ("gpu_uuid", pa.string()),
    ("gpu_memory_bytes", pa.int64()),
    ("gpu_sm_count", pa.int64()),
    ("gpu_power_limit_w", pa.float64()),
    ("gpu_power_limit_default_w", pa.float64()),
    ("gpu_ecc", pa.bool_()),
    ("gpu_persistence", pa.bool_()),
    ("gpu_mig", pa.bool_()),
    ("gpu_compute_mode", pa.string()),
    ("gpu_app_sm_clock_mhz", pa.int64()),
    ("gpu_app_mem_clock_mhz", pa.int64()),
    ("gpu_max_sm_clock_mhz", pa.int64()),
    ("gpu_max_mem_clock_mhz", pa.int64()),
    ("gpu_clocks_locked", pa.bool_()),
    ("gpu_other_processes", pa.string()),
    ("gpu_sku", pa.string()),
    ("peaks_source", pa.string()),
]

# Rows the harness did not measure itself (analysis.legacy imports): where each came from, and the known
# flaws of the system that measured it, by name. Null / empty on the harness's own rows.
_IMPORTED = [
    ("provenance", pa.string()),
    ("legacy_flags", pa.list_(pa.string())),
]

_F = pa.float64()
_I = pa.int64()

POINTS = pa.schema(
    [("schema_version", pa.int32())]
    + _IDENTITY
    + [
        ("device", pa.string()),
        ("device_name", pa.string()),
        ("input_size", _I),
        ("batch_size", _I),
        ("dtype", pa.string()),
        ("layout", pa.string()),
        ("l2", pa.string()),
        ("direction", pa.string()),
        ("status", pa.string()),
        ("error", pa.string()),
        ("backend", pa.string()),
        ("math_type", pa.string()),
        ("fallback_policy", pa.string()),
        ("cudnn_benchmark", pa.bool_()),
        ("algo_forward", pa.string()),
        ("algo_backward_data", pa.string()),
        ("algo_backward_filter", pa.string()),
        ("train_loss", pa.string()),
        ("train_optimizer", pa.string()),
        ("train_amp", pa.bool_()),
        ("train_deterministic", pa.bool_()),
        ("train_input_grad", pa.bool_()),
        ("train_model_mode", pa.string()),
        ("grad_max_rel_err", pa.float64()),
        ("grad_ok", pa.bool_()),
        ("cuda_graph", pa.bool_()),
        ("graph_error", pa.string()),
        ("cpu_threads", _I),
        ("verified", pa.bool_()),
        ("n", _I),
        ("target_met", pa.bool_()),
        ("cache_flush_bytes", _I),
        ("mean_ms", _F),
        ("std_ms", _F),
        ("cv", _F),
        ("min_ms", _F),
        ("p50_ms", _F),
        ("p95_ms", _F),
        ("p99_ms", _F),
        ("max_ms", _F),
        ("ci95_low_ms", _F),
        ("ci95_high_ms", _F),
        ("lag1_autocorr", _F),
        ("throughput_ips", _F),
        ("host_p50_ms", _F),
        ("host_issue_ms", _F),
        ("launch_bound", pa.bool_()),
        ("flops", _I),
        ("params", _I),
        ("achieved_tflops", _F),
        ("peak_allocated_bytes", _I),
        ("peak_reserved_bytes", _I),
        ("device_used_bytes", _I),
        ("workspace_bytes", _I),
        ("param_bytes", _I),
        ("activation_bytes", _I),
        ("arithmetic_intensity", _F),
        ("roofline_bound", pa.string()),
        ("peak_tflops", _F),
        ("peak_mem_bw_gbs", _F),
        ("achieved_fraction_of_peak", _F),
        ("energy_per_inference_j", _F),
        ("energy_method", pa.string()),
        ("energy_window_s", _F),
        ("energy_inferences", _I),
        ("energy_integral_per_inference_j", _F),
        ("power_mean_w", _F),
        ("idle_power_w", _F),
        ("sm_clock_mhz", _F),
        ("temperature_c", _F),
        ("throttle_reasons", pa.string()),
        ("energy_windows", _I),
        ("energy_p50_j", _F),
        ("energy_ci95_low_j", _F),
        ("energy_ci95_high_j", _F),
        ("dynamic_energy_per_inference_j", _F),
        ("dynamic_energy_p50_j", _F),
        ("dynamic_energy_ci95_low_j", _F),
        ("dynamic_energy_ci95_high_j", _F),
        ("idle_power_after_w", _F),
        ("cooldown_s", _F),
        ("cooldown_reached", pa.bool_()),
        ("steady_state_s", _F),
        ("steady_state_reached", pa.bool_()),
        ("sm_clock_min_mhz", _F),
        ("sm_clock_p50_mhz", _F),
        ("temperature_max_c", _F),
        ("throttled", pa.bool_()),
        ("reasons_by_pass", pa.string()),
        ("telemetry_samples", _I),
        ("max_abs_err", _F),
        ("max_rel_err", _F),
        ("algo_fallback_layers", _I),
        ("conv_layers", _I),
        ("conv_coverage", _F),
        ("kernel_families", pa.string()),
        ("tensor_core_layers", _I),
        ("reference_status", pa.string()),
        ("plan_hash", pa.string()),
        ("repeat", _I),
        ("repeats", _I),
        # wall seconds of the point and of its phases: what harness.campaign.cost fits
        ("point_wall_s", _F),
        ("phase_plan_s", _F),
        ("phase_warmup_s", _F),
        ("phase_timing_s", _F),
        ("phase_layers_s", _F),
        ("phase_energy_s", _F),
    ]
    + _PROVENANCE
    + _DEVICE
    + _IMPORTED
    + [
        # the old system's power columns (imported rows only; see analysis/legacy/importer.py)
        ("power_std_w", _F),
        ("power_min_w", _F),
        ("power_max_w", _F),
        ("power_samples", _I),
        ("energy_total_j", _F),
    ]
)

# A layer's convolution parameters, and its whole geometry (those and its input and output sizes): the
# layers table's columns, in its order; the analysis groups, sorts and predicts by them.
CONV_PARAMETERS = (
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
)
LAYER_GEOMETRY = (*CONV_PARAMETERS, "in_h", "in_w", "out_h", "out_w")

LAYERS = pa.schema(
    [("schema_version", pa.int32())]
    + _IDENTITY
    + [
        ("device_name", pa.string()),
        ("input_size", _I),
        ("batch_size", _I),
        ("dtype", pa.string()),
        ("layout", pa.string()),
        ("l2", pa.string()),
        ("direction", pa.string()),
        ("point_direction", pa.string()),
        ("layer_index", _I),
        ("layer_name", pa.string()),
    ]
    + [(name, _I) for name in LAYER_GEOMETRY]
    + [
        ("algo_requested", pa.string()),
        ("algo_used", pa.string()),
        ("backend", pa.string()),
        ("status", pa.string()),
        ("workspace_bytes", _I),
        ("math_type", pa.string()),
        ("compute_type", pa.string()),
        ("detail", pa.string()),
        ("host_bound", pa.bool_()),
        ("nondeterministic", pa.bool_()),
        ("determinism_checked", pa.bool_()),
        ("kernels", pa.list_(pa.string())),
        ("kernel_family", pa.string()),
        ("tensor_cores", pa.bool_()),
        ("cudnn_engine", pa.string()),
        ("n", _I),
        ("mean_ms", _F),
        ("p50_ms", _F),
        ("std_ms", _F),
        ("ci95_low_ms", _F),
        ("ci95_high_ms", _F),
        ("lag1_autocorr", _F),
        ("flops", _I),
        ("bytes", _I),
        ("arithmetic_intensity", _F),
        ("roofline_bound", pa.string()),
        ("share_of_model", _F),
        ("repeat", _I),
        ("measured_at", pa.timestamp("us", tz="UTC")),
    ]
    + _IMPORTED
    + [("legacy_percentage", _F)]  # the old layer files' share of the model mean, in percent
)


def to_table(rows: Iterable[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """Rows (dicts) as a table of ``schema``: missing keys become nulls, unknown keys are an error."""
    rows = list(rows)
    names = set(schema.names)
    for row in rows:
        extra = set(row) - names
        if extra:
            raise KeyError(f"columns not in the schema: {sorted(extra)}")
    columns = {name: [row.get(name) for row in rows] for name in schema.names}
    return pa.Table.from_pydict(columns, schema=schema)
