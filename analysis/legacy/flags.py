"""The known flaws of the system the harness replaces (its README), by the names imported rows carry in
their ``legacy_flags`` column. No torch here: the report's checks read these too."""

from __future__ import annotations

FLAGS = {
    "timing_includes_host_copies": "model and input stayed on the host: every conv call copied input, weights "
    "and output over PCIe and allocated its buffers; the rest ran on the CPU",
    "energy_from_1s_averaged_power": "energy = mean of nvmlDeviceGetPowerUsage (a 1-second average on "
    "L40S/H100) x time, not an energy counter",
    "power_sampler_starved": "the power-sampling thread was starved by the workload (20-480 samples per 20 "
    "iterations)",
    "algo_is_heuristic_choice": '"implicit gemm" ran cuDNN\'s heuristic choice, the same as "guess"',
    "device_from_file_name": 'the device was added from file names after the runs ("h100" was an H100 NVL)',
    "n_from_readme": "n = 20 timed iterations from the old README; the files do not say",
    "layer_size_from_architecture": "the old layer files hold the MODEL's input size; in_h/in_w/out_h/out_w "
    "were traced from the torchvision architecture",
    "layer_has_no_median": "the old layer files hold no median: p50_ms is null (the analysis uses mean_ms in "
    "its place and says so)",
}
POINT_FLAGS = [
    "timing_includes_host_copies",
    "energy_from_1s_averaged_power",
    "power_sampler_starved",
    "device_from_file_name",
    "n_from_readme",
]
LAYER_FLAGS = [
    "timing_includes_host_copies",
    "device_from_file_name",
    "layer_size_from_architecture",
    "layer_has_no_median",
]
# The flags that can explain a latency difference between an imported row and one of ours (a comparison
# reports them beside its verdict): the energy flags do not bear on latency.
LATENCY_FLAGS = ["timing_includes_host_copies", "algo_is_heuristic_choice", "device_from_file_name", "n_from_readme"]
