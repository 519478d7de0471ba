"""What a job sets and leaves behind: math and cudnn.benchmark (restored after the job, in the config hash
and on the rows), plans and workspaces per point, memory after an OOM, CUDA graphs and launch-bound
points, and the check that the torch build has kernels for the GPU. All on the CPU; the GPU side of each is
in the gpu-marked tests."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from harness import doctor
from harness.errors import ConfigError, DeviceMismatchError
from harness.measure.device import build_runs_on, check_build_has_kernels
from harness.measure.point import PointMeasurer, launch_columns
from harness.measure.timing import SamplingPolicy, Timing, launch_bound, time_adaptively
from harness.results import read
from harness.run import runner
from tests.conftest import FAST
from tests.helpers import make_spec

CPU = ["device=cpu", *FAST]


# -- math and cudnn.benchmark ---------------------------------------------------------------------------


def test_math_auto_resolves_at_the_border_and_every_setting_is_in_the_config_hash(tmp_path: Path):
    auto, tensor_op, fma = (make_spec(tmp_path, *CPU, f"math={m}") for m in ("auto", "tensor_op", "fma"))
    assert auto.math == tensor_op.math == "tensor_op" and fma.math == "fma"
    assert auto.config_hash() == tensor_op.config_hash() != fma.config_hash()
    bench = make_spec(tmp_path, *CPU, "cudnn_benchmark=true")
    assert bench.cudnn_benchmark is True and bench.config_hash() != auto.config_hash()
    assert make_spec(tmp_path, *CPU, "graph=true").config_hash() != auto.config_hash()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("fallback=sometimes", "unknown fallback 'sometimes'; valid choices: none, guess, torch"),
        ("backend=cuda", "unknown backend 'cuda'; valid choices: auto, cudnn, reference"),
        ("math=tf64", "unknown math 'tf64'; valid choices: auto, fma, tensor_op"),
    ],
)
def test_each_value_is_checked_once_at_the_config_border(tmp_path: Path, override: str, message: str):
    with pytest.raises(ConfigError, match=message):
        make_spec(tmp_path, *CPU, override)


@pytest.mark.parametrize(
    ("key", "value", "choices"), [("cudnn_benchmark", "sometimes", "true, false"), ("graph", "1", "auto, true, false")]
)
def test_boolean_keys_refuse_other_values(tmp_path: Path, key: str, value: str, choices: str):
    with pytest.raises(ConfigError, match=f"{key}=.*valid choices: {choices}"):
        make_spec(tmp_path, *CPU, f"{key}={value}")


def _flags() -> tuple[bool, bool, bool]:
    return torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.benchmark


@pytest.fixture
def flags_restored():
    """torch's matmul flags object refuses monkeypatch's undo; save and restore the three flags by hand."""
    saved = _flags()
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.benchmark = saved


def test_a_job_leaves_the_process_global_flags_as_it_found_them(
    results: Path, monkeypatch: pytest.MonkeyPatch, flags_restored
):
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.benchmark = (
        True,
        False,
        False,
    )
    seen = []
    real = PointMeasurer.measure_point

    def measure_and_look(self, size, batch, trace=None):
        seen.append(_flags())
        return real(self, size, batch, trace)

    monkeypatch.setattr(PointMeasurer, "measure_point", measure_and_look)
    runner.run(make_spec(results, *CPU, "math=fma", "cudnn_benchmark=true"))
    assert seen == [(False, False, True)]  # during the job: what it asked for
    assert _flags() == (True, False, False)


def test_cpu_rows_leave_the_gpu_only_columns_null(results: Path):
    runner.run(make_spec(results, *CPU, "algo=gemm"))
    (p,) = read(results).to_dict("records")
    for column in ("workspace_bytes", "cudnn_benchmark", "cuda_graph", "launch_bound", "host_p50_ms", "math_type"):
        assert pd.isna(p[column]), column
    layers = read(results, "layers")
    assert layers["compute_type"].isna().all() and (layers["backend"] == "reference").all()


def test_graph_needs_a_gpu(results: Path):
    with pytest.raises(ConfigError, match="graph=true captures CUDA graphs, which need a GPU"):
        runner.run(make_spec(results, *CPU, "graph=true"))


# -- plans per point ------------------------------------------------------------------------------------


def test_each_point_starts_with_no_plan_of_another_shape(tmp_path: Path):
    spec = make_spec(tmp_path, *CPU, "algo=gemm", "stage.sizes=[32,48]")
    measurer = PointMeasurer(spec, runner.validate(spec))
    planned = []
    for size in (32, 48):
        assert measurer.measure_point(size, 1).status == "ok"
        assert all(len(m.plans) == 1 for m in measurer.swap.swapped.values())  # one shape per layer: this point's
        planned.append({key for m in measurer.swap.swapped.values() for key in m.plans})
    assert not planned[0] & planned[1]  # nothing planned for 32 is left at 48


# -- memory after an OOM --------------------------------------------------------------------------------


def test_memory_is_released_only_after_the_exception_that_held_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The failed forward's tensors live in the traceback's frames: emptying the cache inside the except
    block frees nothing. By the time release_memory runs, they must be gone."""
    refs = []

    class OOMMeasurer:
        device = torch.device("cpu")

        def settings(self):
            return {}

        def measure_point(self, size, batch, trace):
            activation = torch.empty(1024)
            refs.append(weakref.ref(activation))
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")

    alive_at_release = []
    monkeypatch.setattr(runner, "release_memory", lambda device: alive_at_release.append(refs[0]() is not None))
    result = runner._measure_one(OOMMeasurer(), 32, 1, {}, None)
    assert result.status == "oom" and result.layers == [] and result.profile is None
    assert alive_at_release == [False]


def test_release_memory_collects_cycles():
    class Node:
        pass

    a, b = Node(), Node()
    a.other, b.other = b, a
    a.tensor = torch.empty(16)
    ref = weakref.ref(a.tensor)
    del a, b
    gc.disable()
    try:
        runner.release_memory(torch.device("cpu"))
    finally:
        gc.enable()
    assert ref() is None


# -- host time and launch-bound points ------------------------------------------------------------------


def test_launch_bound_rule():
    device = np.array([1.0, 1.0, 1.1, 0.9])
    assert launch_bound(np.array([0.85, 1.0, 1.0, 1.0]), device)  # issuing costs 85% of the device time
    assert not launch_bound(np.array([0.1, 0.9, 1.0, 1.0]), device)  # GPU-bound: later calls waited on a full queue
    with pytest.raises(ValueError):
        launch_bound(np.array([]), device)


def test_the_timer_keeps_the_host_time_of_every_timed_call():
    t = time_adaptively(lambda: sum(range(1000)), torch.device("cpu"), SamplingPolicy(1, 0.0, 7, 7, 10.0, 1e-9))
    assert t.host_ms is not None and t.host_ms.shape == t.samples_ms.shape == (7,)
    assert (t.host_ms > 0).all()


def test_launch_columns():
    timing = Timing(np.array([2.0, 2.0, 2.0]), True, 1, np.array([0.2, 1.9, 2.0]))
    assert launch_columns(timing) == {"host_p50_ms": 1.9, "host_issue_ms": 0.2, "launch_bound": False}
    assert launch_columns(Timing(np.array([2.0]), True, 1, None))["launch_bound"] is None


# -- the torch build's GPU architectures ------------------------------------------------------------------

DEFAULT_WHEEL = ["sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"]


@pytest.mark.parametrize(
    ("capability", "arch_list", "runs"),
    [
        ((7, 0), DEFAULT_WHEEL, False),  # V100 on the default wheel
        ((9, 0), DEFAULT_WHEEL, True),  # H100
        ((8, 9), DEFAULT_WHEEL, True),  # L40S: sm_86 machine code runs on 8.9
        ((7, 0), ["sm_50", "sm_60", "sm_70", "sm_75", "sm_80"], True),  # a CUDA 12.6 wheel
        ((9, 0), ["sm_80", "sm_90a"], True),  # arch-specific code: exactly 9.0 ...
        ((10, 0), ["sm_90a"], False),  # ... and nothing else
        ((7, 0), ["sm_75", "compute_70"], True),  # PTX is compiled for any capability >= 7.0
        ((6, 1), ["compute_70"], False),
    ],
)
def test_build_runs_on(capability, arch_list, runs):
    assert build_runs_on(capability, arch_list) is runs


def _pretend_v100(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=None: (7, 0))
    monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: list(DEFAULT_WHEEL))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=None: "Tesla V100-SXM2-32GB")


def test_a_v100_with_the_default_wheel_is_refused_with_the_fix(monkeypatch: pytest.MonkeyPatch):
    _pretend_v100(monkeypatch)
    with pytest.raises(DeviceMismatchError, match=r"sm_75.*Tesla V100.*sm_70.*every kernel would fail.*whl/cu126"):
        check_build_has_kernels(0)
    check = doctor.arch_check(0)
    assert check.status == doctor.PROBLEM and check.needed and "cu126" in check.fix and "sm_70" in check.found


def test_the_job_checks_the_arch_before_measuring(results: Path, monkeypatch: pytest.MonkeyPatch):
    _pretend_v100(monkeypatch)
    spec = make_spec(results, *CPU)
    monkeypatch.setattr(runner, "resolve_device", lambda *a: runner.DeviceInfo(torch.device("cuda", 0), "Tesla V100"))
    with pytest.raises(DeviceMismatchError, match="sm_70"):
        runner.validate(spec)


def test_a_timing_explains_itself():
    t = Timing(np.array([10.0, 11.0, 12.0, 10.5, 11.5, 11.0]), True, 3, np.array([0.5, 0.4, 0.6, 0.5, 0.5, 0.5]))
    lam = 5 * 0.1 / (1 + 4 * 0.1)  # n = 6: [x(1), x(6)] moved in towards [x(2), x(5)] (stats.median_ci95)
    lo, hi = 10.0 + lam * 0.5, 12.0 - lam * 0.5
    assert t.n == 6 and t.median_ms == 11.0 and t.ci95_ms == pytest.approx((lo, hi))
    assert str(t) == (
        f"median 11.000 ms, 95% CI [{lo:.3f}, {hi:.3f}] ms (+-{(hi - lo) / 2 / 11:.1%}), 6 iterations "
        "after 3 warmup, target met; host 0.500 ms per call"
    )
    few = Timing(np.array([10.0, 11.0, 12.0]), False, 3)
    assert "no 95% CI below 6 iterations" in str(few)


def test_a_point_result_is_its_one_row(tmp_path: Path):
    spec = make_spec(tmp_path, *CPU, "algo=gemm")
    result = PointMeasurer(spec, runner.validate(spec)).measure_point(32, 1)
    row = result.row({"run_id": "R", "dtype": "float32"})
    assert row["run_id"] == "R" and row["status"] == "ok" and row["input_size"] == 32 and row["verified"]
    assert row["p50_ms"] == result.profile.stats["p50_ms"] and row["n"] == result.profile.timing.n
    assert row["conv_layers"] == 20 and row["backend"] == "reference" and row.get("launch_bound") is None
    layers = result.layer_rows({"run_id": "R"})
    assert len(layers) == 20 and {r["input_size"] for r in layers} == {32} and layers[0]["layer_name"] == "conv1"
    assert str(result).startswith("input 32, batch 1: ok\n  median ")
    from harness.results.schema import LAYERS, POINTS, to_table

    to_table([row], POINTS), to_table(layers, LAYERS)  # every key is a column of the schema


def test_a_job_frees_the_shared_cudnn_workspace_when_it_ends(results: Path):
    from harness.algorithms import cudnn

    cpu = torch.device("cpu")
    cudnn.WORKSPACES.reserve(cpu, 4096)  # what an earlier job in this process left
    runner.run(make_spec(results, *CPU))
    assert cudnn.WORKSPACES.size(cpu) == 0
