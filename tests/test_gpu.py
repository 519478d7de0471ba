"""The GPU-only paths, run for real (skipped without CUDA): CUDA-event timing, the layer probe's CUDA
branch, peak memory, traces with CUDA activity, NVML, cuDNN through the runner (fallbacks, fp16/bf16,
workspace accounting, CUDA graphs), OOM rows and the doctor's GPU checks. The cuDNN calls themselves are
in test_cudnn.py."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from harness import doctor
from harness.algorithms import cudnn
from harness.measure.energy import (
    EnergySettings,
    NvmlGpu,
    NvmlMeter,
    counter_update_period,
    energy_linearity,
    idle_power_w,
    measure_energy,
    pci_bus_id,
)
from harness.measure.layers import HEAD_START_CYCLES, LayerProbe
from harness.measure.profiler import peak_memory, write_trace
from harness.measure.timing import SamplingPolicy, chunk_timer, time_adaptively
from harness.models import build_model
from harness.results import read
from harness.run import runner
from tests.conftest import FAST
from tests.helpers import make_spec

pytestmark = pytest.mark.gpu
GPU = [*FAST, "device=cuda", "stage.sizes=[64]", "stage.energy_window_s=0"]  # after FAST: the last override wins


@pytest.fixture
def cuda() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device())


def test_cuda_event_timing_and_host_time(cuda: torch.device):
    a = torch.randn(2048, 2048, device=cuda)
    t = time_adaptively(lambda: a @ a, cuda, SamplingPolicy(2, 0.0, 10, 20, 5.0, 1e-9))
    assert t.samples_ms.shape == t.host_ms.shape and (t.samples_ms > 0).all()
    assert float(t.host_ms.min()) < float(t.samples_ms.min())  # a 2048^2 matmul issues faster than it runs


def test_layer_probe_times_every_conv_on_the_gpu(cuda: torch.device):
    model = build_model("resnet18").to(cuda)
    with torch.inference_mode(), LayerProbe(model, cuda) as probe:
        for _ in range(3):
            probe.run(lambda: model(torch.randn(1, 3, 64, 64, device=cuda)))
    assert len(probe.records) == 20 and all(len(r.times_ms) == 3 and min(r.times_ms) > 0 for r in probe.records)


# Longer than the first spin at any SM clock above 100 MHz (2e6 cycles: 1 ms at 2 GHz, 6 ms at an idle
# 345 MHz), shorter than the longest (1.28e8 cycles: 64 ms at 2 GHz): the spin must grow, then covers.
HOST_DELAY_S = 0.02


class _SlowToIssue(torch.nn.Conv2d):
    """A small conv whose host side takes HOST_DELAY_S before it issues its kernel: the ctypes path at batch 1,
    magnified."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(HOST_DELAY_S)
        return super().forward(x)


@pytest.mark.parametrize("head_start", [True, False])
def test_layer_times_are_the_kernels_not_the_hosts_issuing(cuda: torch.device, head_start: bool):
    model = torch.nn.Sequential(_SlowToIssue(8, 8, 3, padding=1)).to(cuda)
    x = torch.randn(1, 8, 16, 16, device=cuda)
    with torch.inference_mode():
        model(x)  # warm (cuDNN's plan for this shape), outside the probe: inside, every call is a layer
    with torch.inference_mode(), LayerProbe(model, cuda, head_start=head_start) as probe:
        for _ in range(3):
            probe.run(lambda: model(x))
    times = probe.records[0].times_ms
    if head_start:  # the first spin is too short for the host's work: grown, then covered
        assert (
            max(times) < 0.5 and probe.host_bound_layers == set() and probe.head.cycles_for(0) > HEAD_START_CYCLES
        ), times
        assert not probe.records[0].host_bound
    else:  # events around the call: the GPU idled through the host's delay between them
        assert min(times) >= 0.9 * HOST_DELAY_S * 1e3, times


def test_peak_memory_and_a_trace_with_cuda_activity(cuda: torch.device, tmp_path: Path):
    model = build_model("resnet18").to(cuda)
    x = torch.randn(1, 3, 64, 64, device=cuda)
    with torch.inference_mode():
        memory = peak_memory(model, x)
        trace = write_trace(model, x, tmp_path / "trace.json", 2)
    assert (
        memory["peak_allocated_bytes"] > 11_689_512 * 4
        and memory["peak_reserved_bytes"] >= memory["peak_allocated_bytes"]
    )
    events = json.loads(trace.read_text())["traceEvents"]
    assert any(e.get("cat") == "kernel" for e in events)


def test_nvml_is_this_gpu_and_the_counter_agrees_with_the_power_integral(cuda: torch.device):
    gpu = NvmlGpu.open(pci_bus_id(cuda))
    assert gpu is not None
    assert gpu.name().split()[-1] in torch.cuda.get_device_name(cuda) or torch.cuda.get_device_name(cuda) in gpu.name()
    assert idle_power_w(gpu, seconds=0.5) > 0
    a = torch.randn(4096, 4096, device=cuda)
    settings = EnergySettings(window_s=2.0, windows=3, steady_cap_s=5.0, cooldown_cap_s=5.0)
    reading = measure_energy(lambda: a @ a, chunk_timer(cuda), NvmlMeter(gpu), settings)
    assert reading.energy_window_s >= 2.0 and reading.energy_windows == 3 and reading.energy_inferences > 0
    assert reading.energy_method == ("nvml_counter" if gpu.has_counter else "nvml_power_integral")
    ratio = reading.energy_per_inference_j / reading.energy_integral_per_inference_j
    assert 0.5 < ratio < 2.0, ratio  # a sanity bound; the acceptance command checks the 10% goal
    assert 0 < reading.dynamic_energy_per_inference_j < reading.energy_per_inference_j
    assert reading.energy_ci95_low_j <= reading.energy_per_inference_j <= reading.energy_ci95_high_j
    assert reading.idle_power_w > 0 and reading.idle_power_after_w > 0 and reading.cooldown_s >= 0


def test_the_counters_update_period_and_linearity_on_this_gpu(cuda: torch.device):
    gpu = NvmlGpu.open(pci_bus_id(cuda))
    if gpu is None or not gpu.has_counter:
        pytest.skip("no NVML energy counter on this GPU")
    period = counter_update_period(gpu.energy_mj, duration_s=1.0)
    assert period.median_s is not None and 0.0005 < period.median_s < 1.0, period
    a = torch.randn(4096, 4096, device=cuda)
    timer = chunk_timer(cuda)
    per_call_s = float(np.median(timer(lambda: a @ a, 10))) / 1e3
    meter = NvmlMeter(gpu)
    idle = meter.idle_power_w(1.0)
    check = energy_linearity(lambda: a @ a, timer, meter, max(10, int(1.0 / per_call_s)), idle, repeats=3)
    assert check.low is not None and 1.5 < check.ratio < 2.5, check  # the verdict (2 inside) is the acceptance's


def test_energy_and_telemetry_columns_through_the_runner(results: Path):
    energy = [
        "stage.energy_window_s=0.5",
        "stage.steady_span_s=1",
        "stage.steady_cap_s=2",
        "stage.cooldown_cap_s=2",
    ]
    (point,) = runner.run(make_spec(results, *GPU, "algo=torch", *energy)).points
    assert point["status"] == "ok" and point["energy_windows"] == 3 and point["energy_window_s"] >= 0.5
    assert point["idle_power_w"] > 0 and point["idle_power_after_w"] > 0 and point["cooldown_s"] >= 0
    assert point["dynamic_energy_per_inference_j"] < point["energy_per_inference_j"]
    assert point["telemetry_samples"] > 0 and point["sm_clock_min_mhz"] <= point["sm_clock_p50_mhz"]
    assert point["temperature_max_c"] > 0 and isinstance(point["reasons_by_pass"], str)
    assert point["throttled"] in (True, False) and point["steady_state_reached"] in (True, False)


@pytest.mark.parametrize(("fallback", "backend"), [("guess", "cudnn"), ("torch", "torch")])
def test_fallbacks_through_the_runner(results: Path, fallback: str, backend: str):
    result = runner.run(make_spec(results, *GPU, "model=resnet18", "algo=winograd", f"fallback={fallback}", "math=fma"))
    (point,) = result.points
    assert point["status"] == "ok" and point["verified"] and point["algo_fallback_layers"] > 0
    assert point["math_type"] == "fma" and point["cudnn_benchmark"] is False and point["host_p50_ms"] > 0
    assert point["launch_bound"] in (True, False)
    layers = read(results, "layers")
    fell = layers[layers["status"] == "fallback"]
    assert (fell["backend"] == backend).all() and len(fell) == point["algo_fallback_layers"]
    on_cudnn = layers[layers["backend"] == "cudnn"]
    assert (on_cudnn["compute_type"] == "float32").all() and (on_cudnn["math_type"] == "fma").all()
    assert point["workspace_bytes"] >= int(layers["workspace_bytes"].fillna(0).max())  # the shared buffer
    assert cudnn.WORKSPACES.size(torch.device("cuda", torch.cuda.current_device())) == 0  # freed at the job's end


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_through_cudnn_is_verified(results: Path, dtype: str):
    (point,) = runner.run(make_spec(results, *GPU, "algo=guess", f"dtype={dtype}")).points
    assert point["status"] == "ok" and point["verified"] and point["math_type"] == "tensor_op"


def test_plans_and_workspaces_do_not_carry_over_between_sizes(results: Path):
    # points run per batch size, small to large: (64, 1), (224, 1), then (64, 2) after a larger one
    result = runner.run(make_spec(results, *GPU, "algo=guess", "stage.sizes=[64,224]", "batch_size=[1,2]"))
    assert [(p["input_size"], p["batch_size"]) for p in result.points] == [(64, 1), (224, 1), (64, 2), (224, 2)]
    assert all(p["status"] == "ok" for p in result.points)
    after_large = result.points[2]
    alone = runner.run(make_spec(results / "alone", *GPU, "algo=guess", "stage.sizes=[64]", "batch_size=[2]")).points[0]
    # measured after 224, the point's peak holds none of 224's plans or workspace
    assert after_large["peak_allocated_bytes"] <= alone["peak_allocated_bytes"] * 1.05
    assert after_large["workspace_bytes"] == alone["workspace_bytes"]


@pytest.mark.parametrize("algo", ["torch", "gemm"])
def test_cuda_graphs_through_the_runner(results: Path, algo: str):
    (point,) = runner.run(make_spec(results, *GPU, f"algo={algo}", "graph=true")).points
    assert point["status"] == "ok" and point["cuda_graph"] in (True, False)
    if algo == "torch":
        assert point["cuda_graph"] is True


def test_out_of_memory_is_a_row_and_the_sweep_goes_on(results: Path):
    result = runner.run(make_spec(results, *GPU, "model=vgg16", "stage.sizes=[224]", "batch_size=[1,16384]"))
    by_batch = {p["batch_size"]: p for p in result.points}
    assert by_batch[1]["status"] == "ok" and by_batch[16384]["status"] == "oom"
    assert result.outcome == "completed"


def test_the_cudnn_benchmark_baseline_runs(results: Path):
    (point,) = runner.run(make_spec(results, *GPU, "algo=torch", "cudnn_benchmark=true")).points
    assert point["status"] == "ok" and point["cudnn_benchmark"] is True
    assert torch.backends.cudnn.benchmark is False  # restored after the job


def test_the_doctors_gpu_checks_pass_here():
    index = torch.cuda.current_device()
    assert doctor.arch_check(index).status == doctor.OK
    (check,) = doctor.cudnn_checks(needed=True)
    assert check.status == doctor.OK and str(cudnn.library().version()) in check.found
    (nvml,) = doctor.nvml_checks()
    assert nvml.status in (doctor.OK, doctor.WARNING)


def test_idle_power_is_measured_without_work(cuda: torch.device):
    gpu = NvmlGpu.open(pci_bus_id(cuda))
    t0 = time.perf_counter()
    watts = idle_power_w(gpu, seconds=0.3)
    assert watts > 0 and time.perf_counter() - t0 >= 0.3


def test_find_and_a_plan_made_from_it_run_end_to_end(results: Path, tmp_path: Path):
    """algo=find records what cuDNN's exhaustive search picked per layer and its times; a plan made from that
    run (analysis.plan make --from find) runs as algo=per_layer with the same algorithm on every layer."""
    from harness.algorithms import plan as plans
    from harness.results import dataset

    (point,) = runner.run(make_spec(results, *GPU, "algo=find", "model=resnet18")).points
    assert point["status"] == "ok" and point["verified"]
    layers = dataset(results, "layers").to_table().to_pandas()
    found = layers[layers["algo"] == "find"].sort_values("layer_index")
    assert (found["algo_requested"] == "find").all() and found["algo_used"].isin(list(cudnn.FWD_ALGOS)).all()
    assert found["detail"].str.startswith("find: ").all()
    from analysis.plan import main as plan_main

    out = tmp_path / "find.json"
    assert (
        plan_main(["make", str(results), "--model", "resnet18", "--size", "64", "--from", "find", "--out", str(out)])
        == 0
    )
    plan = plans.read(out)
    assert [x.algo for x in plan.layers] == list(found["algo_used"]) and {x.source for x in plan.layers} == {"find"}
    (mixed,) = runner.run(make_spec(results, *GPU, "algo=per_layer", f"plan={out}", "model=resnet18")).points
    assert mixed["status"] == "ok" and mixed["verified"] and mixed["plan_hash"] == plan.digest()
    ran = dataset(results, "layers").to_table().to_pandas()
    ran = ran[ran["algo"] == "per_layer"].sort_values("layer_index")
    assert list(ran["algo_used"]) == list(found["algo_used"])
