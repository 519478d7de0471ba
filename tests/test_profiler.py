"""The profiler: energy arithmetic against a fake NVML, adaptive stopping on a synthetic clock, layer
shapes, OOM handling, traces, and the whole profile on the CPU."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from harness.measure import energy
from harness.measure.energy import NvmlGpu, PowerSample, trapezoid_j
from harness.measure.profiler import ProfileSettings, profile
from harness.measure.roofline import verdict
from harness.measure.timing import SamplingPolicy, time_adaptively
from harness.models import build_model
from harness.results import read
from harness.run import runner
from tests.conftest import FAST
from tests.fake_nvml import FakeNvml
from tests.helpers import make_spec

CPU = torch.device("cpu")


# -- adaptive stopping on a synthetic clock ------------------------------------------------------------------


def synthetic_timer(median_ms: float, cv: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    calls = []

    def timer(fn, k):
        calls.append(k)
        return list(median_ms * (1 + cv * rng.standard_normal(k)))

    return timer, calls


def test_quiet_data_stops_at_the_minimum():
    timer, _ = synthetic_timer(10.0, cv=0.001)
    t = time_adaptively(lambda: None, CPU, SamplingPolicy(0, 0.0, 20, 1000, 60.0, 0.01), timer)
    assert t.target_met and len(t.samples_ms) == 20


def test_noisy_data_runs_to_the_bound():
    timer, _ = synthetic_timer(10.0, cv=0.5)
    t = time_adaptively(lambda: None, CPU, SamplingPolicy(0, 0.0, 20, 300, 60.0, 0.01), timer)
    assert not t.target_met and len(t.samples_ms) == 300


def test_moderate_noise_stops_in_between_when_the_ci_is_tight_enough():
    timer, _ = synthetic_timer(10.0, cv=0.05)
    t = time_adaptively(lambda: None, CPU, SamplingPolicy(0, 0.0, 10, 5000, 60.0, 0.01), timer)
    s = np.sort(t.samples_ms)
    assert t.target_met and 10 < len(s) < 5000
    from harness.stats import ci_relative_halfwidth

    assert ci_relative_halfwidth(s) <= 0.01 < ci_relative_halfwidth(s[: len(s) - 10])


# -- energy --------------------------------------------------------------------------------------------------


def test_nvml_device_is_found_by_pci_bus_id(monkeypatch: pytest.MonkeyPatch):
    props = SimpleNamespace(pci_domain_id=0, pci_bus_id=0x3B, pci_device_id=0)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda d: props)
    assert energy.pci_bus_id(torch.device("cuda", 1)) == "00000000:3B:00.0"
    gpu = NvmlGpu.open("00000000:3B:00.0", FakeNvml())
    assert gpu is not None and gpu.has_counter and gpu.has_instant_power and gpu.name() == "NVIDIA Fake 80GB"


def test_no_such_nvml_device_is_one_log_line_not_a_crash(caplog: pytest.LogCaptureFixture):
    with caplog.at_level(logging.WARNING):
        assert NvmlGpu.open("00000000:AF:00.0", FakeNvml()) is None
    assert "energy not measured" in caplog.text and "NOT_FOUND" in caplog.text


def test_no_nvml_on_this_machine_gives_none():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert NvmlGpu.open("00000000:3B:00.0") is None


# The energy procedure itself (counter, integral, idle, steady state, windows, cooldown): tests/test_energy.py


def test_trapezoid_clips_to_the_window():
    samples = [PowerSample(t, w, None, None, 0) for t, w in [(0.0, 100.0), (1.0, 200.0), (2.0, 200.0), (3.0, 0.0)]]
    assert trapezoid_j(samples, 0.0, 3.0) == pytest.approx(150 + 200 + 100)
    assert trapezoid_j(samples, 0.5, 1.5) == pytest.approx(0.5 * (150 + 200) / 2 + 0.5 * 200)
    assert trapezoid_j(samples, 2.0, 2.0) == 0.0


def test_idle_power():
    assert energy.idle_power_w(NvmlGpu(FakeNvml(watts=61.5), "handle"), seconds=0.05, interval_s=0.01) == pytest.approx(
        61.5
    )


# -- the profile --------------------------------------------------------------------------------------------


def test_whole_profile_on_the_cpu_from_plain_python(tmp_path: Path):
    model = build_model("alexnet")
    x = torch.randn(1, 3, 224, 224)
    settings = ProfileSettings(SamplingPolicy(1, 0.0, 3, 5, 5.0, 0.5), layer_iters=2, trace_path=tmp_path / "t.json")
    result = profile(model, x, settings)
    assert 3 <= result.stats["n"] <= 5 and result.stats["p50_ms"] > 0
    assert result.memory == {} and result.energy is None  # no such counters on the CPU
    shapes = [(r.name, r.in_shape[2], r.out_shape[2]) for r in result.layers]
    assert shapes[1] == ("features.3", 27, 27)  # alexnet's second conv sees 27x27 at 224
    assert [s[1] for s in shapes] == [224, 27, 13, 13, 13]
    trace = json.loads((tmp_path / "t.json").read_text())
    assert any("conv" in str(e.get("name", "")) for e in trace["traceEvents"])


def test_resnet50_layer_shapes():
    result = profile(
        build_model("resnet50"),
        torch.randn(1, 3, 224, 224),
        ProfileSettings(SamplingPolicy(0, 0.0, 1, 1, 5.0, 1.0), layer_iters=1),
    )
    by_name = {r.name: (r.in_shape[2:], r.out_shape[2:]) for r in result.layers}
    assert len(result.layers) == 53
    assert by_name["conv1"] == ((224, 224), (112, 112))
    assert by_name["layer2.0.conv2"] == ((56, 56), (28, 28))
    assert by_name["layer4.2.conv3"] == ((7, 7), (7, 7))


def test_roofline_verdict():
    spec = {"fp32_tflops": 60.0, "tf32_tflops": 400.0, "fp16_tflops": 800.0, "mem_bw_gbs": 4000.0}
    # ridge points: FP32 60e12 / 4e12 = 15 FLOP/B, TF32 100, FP16 200
    assert verdict(1000, 100, spec, "float32", "fma") == (10.0, "memory")
    assert verdict(1000, 10, spec, "float32", "fma") == (100.0, "compute")
    assert verdict(1000, 10, spec, "float32", "tensor_op") == (100.0, "compute")  # at the ridge
    assert verdict(1000, 20, spec, "float32", "tensor_op") == (50.0, "memory")
    assert verdict(1000, 10, spec, "float16", "tensor_op") == (100.0, "memory")
    assert verdict(1000, 10, {**spec, "tf32_tflops": None}, "float32", "tensor_op") == (100.0, "compute")  # V100
    assert verdict(1000, 10, None, "float32", None) == (100.0, None)
    assert verdict(None, 10, spec, "float32", "fma") == (None, None)


class _OOMNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] >= 40:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return self.conv(x)


def test_out_of_memory_from_the_model_is_an_oom_row_and_the_sweep_goes_on(
    results: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(runner.models, "check_input_sizes", lambda *a: None)
    monkeypatch.setattr("harness.measure.point.models.build_model", lambda name, kwargs=None: _OOMNet())
    monkeypatch.setattr(
        "harness.measure.point.count_work", lambda *a: SimpleNamespace(flops=1, params=1, module_flops={})
    )
    result = runner.run(make_spec(results, *FAST, "stage.sizes=[32,40,48]", "batch_size=[1,2]"))
    rows = {(p["batch_size"], p["input_size"]): p for p in result.points}
    assert rows[(1, 32)]["status"] == "ok" and rows[(2, 32)]["status"] == "ok"
    assert rows[(1, 40)]["status"] == "oom" and "Tried to allocate" in rows[(1, 40)]["error"]
    assert rows[(1, 48)]["status"] == "oom" and rows[(1, 48)]["error"].startswith("skipped")
    assert rows[(2, 48)]["status"] == "oom" and result.outcome == "completed"
    assert len(read(results)) == 6


def test_trace_is_written_next_to_the_results(results: Path):
    result = runner.run(make_spec(results, *FAST, "trace=true"))
    (trace,) = [f for f in result.files if f.name.startswith("trace-")]
    assert trace.parent == result.directory and json.loads(trace.read_text())["traceEvents"]
    assert len(read(results)) == 1  # readers are not confused by the trace file


def test_cpu_run_fills_what_it_can_and_leaves_gpu_columns_null(results: Path):
    runner.run(make_spec(results, *FAST))
    (p,) = read(results).to_dict("records")
    assert p["energy_method"] == "none" and np.isnan(p["energy_per_inference_j"])
    assert p["param_bytes"] == 11_689_512 * 4 and p["arithmetic_intensity"] > 0
    assert pd.isna(p["roofline_bound"])  # gpu=local has no datasheet numbers
    layers = read(results, "layers")
    assert (layers["bytes"] > 0).all() and (layers["arithmetic_intensity"] > 0).all()


def test_throttle_reasons_by_their_current_nvml_names():
    import pynvml

    assert energy.describe_reasons(0) == "none"
    assert energy.describe_reasons(0x2) == "ApplicationsClocksSetting"  # not the deprecated UserDefinedClocks
    assert energy.describe_reasons(0x4 | 0x40) == "HwThermalSlowdown,SwPowerCap"
    assert energy.describe_reasons(0x10000) == "0x10000"  # a bit NVML adds later is shown, not dropped
    prefix = "nvmlClocksEventReason"
    for name in dir(pynvml):  # every bit the installed NVML bindings define has its current name here
        value = getattr(pynvml, name)
        if name.startswith(prefix) and name[len(prefix) :] not in ("All", "None", "UserDefinedClocks"):
            assert energy.CLOCKS_EVENT_REASONS[value] == name[len(prefix) :]


def test_cuda_graphs_are_refused_on_the_cpu():
    model = nn.Conv2d(3, 4, 3)
    with pytest.raises(ValueError, match="CUDA graphs"):
        profile(model, torch.randn(1, 3, 8, 8), ProfileSettings(graph=True))
