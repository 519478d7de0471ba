"""The cuDNN plan's logic on the CPU: a fake library stands in for the calls that need a GPU.

What is checked here is ours, not cuDNN's: which input the trial run gets, how the shared workspace grows
and is released, which failures make a layer fall back and which end the point, the stream per handle,
and the operand checks. The real calls are checked against the headers (test_cudnn_headers.py) and run
for real in the gpu-marked tests (test_cudnn.py).
"""

from __future__ import annotations

import ctypes
from types import SimpleNamespace

import pytest
import torch

from harness.algorithms import cudnn, swap
from harness.algorithms.geometry import ConvGeometry


class FakeCudnn:
    """Answers the descriptor and workspace calls of CudnnConvPlan.build; ``fail`` maps algo -> status."""

    def __init__(
        self, workspace: dict[int, int], fail: dict[int, int] | None = None, heuristic: list[str] | None = None
    ):
        self.workspace, self.fail, self.heuristic = workspace, fail or {}, heuristic or []
        self.found: list[tuple[int, int, float]] = []  # what Find returns: (algo, status, time ms), fastest first
        self.calls: list[tuple] = []
        self.layouts: list[tuple[str, str]] = []  # (descriptor kind, layout) of each descriptor made

    def tensor_descriptor(self, shape, dtype, layout="nchw"):
        self.layouts.append(("tensor", layout))
        return FakeDescriptor()

    def filter_descriptor(self, shape, dtype, layout="nchw"):
        self.layouts.append(("filter", layout))
        return FakeDescriptor()

    def convolution_descriptor(self, g, math):
        return FakeDescriptor()

    def output_shape(self, conv, x, w):
        return (1, 4, 6, 6)

    def call(self, name, *args):
        self.calls.append((name, *args))
        if name == "cudnnGetConvolutionForwardWorkspaceSize":
            algo = args[5]
            if algo in self.fail:
                raise cudnn.error_for(name, self.fail[algo], f"STATUS_{self.fail[algo]}")
            args[6]._obj.value = self.workspace.get(algo, 0)  # the size_t* out-argument
        if name == "cudnnFindConvolutionForwardAlgorithmEx":
            perf = args[10]
            for i, (algo, status, ms) in enumerate(self.found):
                perf[i].algo, perf[i].status, perf[i].time = algo, status, ms
            args[9]._obj.value = len(self.found)


class FakeDescriptor:
    ptr = None


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch):
    """Install a fake library, handle and allocator; record what each trial run was called with."""
    state = {"lib": FakeCudnn({}), "trials": [], "allocated": []}

    def allocate(n, device):
        state["allocated"].append(n)
        if n > 10_000:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (fake)")
        return torch.empty(n, dtype=torch.uint8)

    monkeypatch.setattr(cudnn, "library", lambda: state["lib"])
    monkeypatch.setattr(cudnn, "handle_for", lambda device: cudnn.Handle(state["lib"], ctypes.c_void_p(1)))
    monkeypatch.setattr(cudnn, "WORKSPACES", cudnn.Workspaces(allocate))
    monkeypatch.setattr(cudnn, "heuristic_choice", lambda *a: list(state["lib"].heuristic))
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)
    monkeypatch.setattr(cudnn.CudnnConvPlan, "__call__", lambda plan, x: state["trials"].append((plan.algo, x)))
    return state


def _layer():
    conv = torch.nn.Conv2d(3, 4, 3)
    return conv, ConvGeometry.of(conv), torch.randn(1, 3, 8, 8)


def test_the_trial_run_uses_the_layers_real_input(fake):
    conv, g, x = _layer()
    fake["lib"].workspace = {2: 512}
    plan = cudnn.CudnnConvPlan.build("gemm", conv.weight, conv.bias, g, x, "fma")
    assert plan.algo == "gemm" and plan.workspace_bytes == 512 and plan.compute_type == "float32"
    assert len(fake["trials"]) == 1 and fake["trials"][0][1] is x  # the input itself, not a zeros tensor


def test_a_workspace_that_does_not_fit_is_the_layers_outcome_not_the_points_oom(fake):
    conv, g, x = _layer()
    fake["lib"].workspace = {4: 1_000_000}  # fft: more than the fake device holds
    with pytest.raises(cudnn.WorkspaceOutOfMemory, match="fft needs a workspace of 1000000 bytes"):
        cudnn.CudnnConvPlan.build("fft", conv.weight, conv.bias, g, x, "fma")
    assert fake["trials"] == []


def test_guess_takes_the_heuristics_next_choice_where_one_cannot_run(fake):
    conv, g, x = _layer()
    fake["lib"].heuristic = ["fft", "winograd", "implicit_gemm"]
    fake["lib"].workspace = {4: 1_000_000, 0: 0}
    fake["lib"].fail = {6: 3002}  # winograd: CUDNN_STATUS_NOT_SUPPORTED_SHAPE
    plan = cudnn.CudnnConvPlan.build("guess", conv.weight, conv.bias, g, x, "fma")
    assert plan.algo == "implicit_gemm" and plan.workspace_bytes == 0


def test_find_times_every_algorithm_within_the_largest_workspace_that_fits_and_runs_the_fastest(fake, monkeypatch):
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: SimpleNamespace(cuda_stream=0))
    conv, g, x = _layer()
    lib = fake["lib"]
    lib.workspace = {4: 1_000_000, 2: 512, 1: 64}  # fft's does not fit in the fake device
    lib.fail = {6: 3000}  # winograd: not supported here, no workspace size
    lib.found = [(7, 3000, 0.01), (1, 0, 0.02), (2, 0, 0.0312345)]  # winograd_nonfused failed inside Find
    plan = cudnn.CudnnConvPlan.build("find", conv.weight, conv.bias, g, x, "fma")
    assert plan.algo == "implicit_precomp_gemm" and plan.workspace_bytes == 64
    assert plan.note == (
        "find: implicit_precomp_gemm 0.02 ms, gemm 0.03123 ms; searched with a 512 B workspace, given back"
    )
    # Find's workspace was borrowed: the point holds the chosen algorithm's need, not the search's
    assert fake["allocated"][-2:] == [512, 64] and cudnn.WORKSPACES.size(x.device) == 64
    (call,) = [c for c in lib.calls if c[0] == "cudnnFindConvolutionForwardAlgorithmEx"]
    assert call[3] == x.data_ptr() and call[5] == conv.weight.data_ptr() and call[-1] == 512
    assert fake["trials"] == [("implicit_precomp_gemm", x)]
    # the layer row says what Find picked (algo_used) and keeps its times (detail)
    model = torch.nn.Sequential(conv)
    with swap(model, "find", backend="cudnn") as s:
        layer_plan = s.swapped["0"].plan(x)
    assert (layer_plan.algo_requested, layer_plan.algo_used, layer_plan.status) == (
        "find",
        "implicit_precomp_gemm",
        "ok",
    )
    assert layer_plan.detail.startswith("find: implicit_precomp_gemm 0.02 ms")
    lib.found = []
    with pytest.raises(cudnn.CudnnNotSupported, match="no algorithm"):
        cudnn.CudnnConvPlan.build("find", conv.weight, conv.bias, g, x, "fma")


@pytest.mark.parametrize("status", [3005, 3006, 3008, 3009, 3013, 4000])
def test_an_environment_status_is_an_error_of_the_point_not_an_unsupported_layer(fake, status: int):
    conv, g, x = _layer()
    fake["lib"].fail = {2: status}
    model = torch.nn.Sequential(conv)
    with swap(model, "gemm", backend="cudnn", fallback="torch"):
        with pytest.raises(cudnn.CudnnError) as raised:
            model(x)
    assert not isinstance(raised.value, cudnn.CudnnNotSupported)


def test_swap_falls_back_on_an_unsupported_layer_and_on_a_workspace_that_does_not_fit(fake):
    conv1, conv2 = torch.nn.Conv2d(3, 4, 3), torch.nn.Conv2d(4, 4, 3)
    model = torch.nn.Sequential(conv1, conv2)
    x = torch.randn(1, 3, 10, 10)
    fake["lib"].workspace = {4: 1_000_000}
    fake["lib"].fail = {}
    with torch.inference_mode(), swap(model, "fft", backend="cudnn", fallback="torch") as s:
        y = model(x)
        plans = [next(iter(m.plans.values())) for m in s.swapped.values()]
    assert [(p.status, p.algo_used, p.backend) for p in plans] == [("fallback", "torch", "torch")] * 2
    assert "workspace of 1000000 bytes: out of memory" in plans[0].detail
    torch.testing.assert_close(y, conv2(conv1(x)))


def test_release_forgets_every_shapes_plan_and_frees_the_workspace(fake):
    fake["lib"].workspace = {2: 256}
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3))
    s = swap(model, "gemm", backend="cudnn")
    fake["trials"].clear()
    layer = s.swapped["0"]
    layer.plan(torch.randn(1, 3, 8, 8))
    layer.plan(torch.randn(1, 3, 9, 9))
    assert len(layer.plans) == 2 and cudnn.WORKSPACES.size(torch.device("cpu")) == 256
    s.release()
    assert layer.plans == {} and cudnn.WORKSPACES.size(torch.device("cpu")) == 0
    layer.plan(torch.randn(1, 3, 8, 8))  # planned again on the next call
    assert len(layer.plans) == 1 and len(fake["trials"]) == 3


def test_one_workspace_per_device_grows_to_the_largest_need_and_is_released():
    sizes: list[int] = []

    def allocate(n, device):
        sizes.append(n)
        return torch.empty(n, dtype=torch.uint8)

    ws, cpu = cudnn.Workspaces(allocate), torch.device("cpu")
    assert ws.pointer(cpu, 0) == 0 and sizes == []  # no workspace needed, none allocated
    ws.reserve(cpu, 100)
    first = ws.pointer(cpu, 100)
    ws.reserve(cpu, 50)  # smaller: the same buffer serves
    assert ws.pointer(cpu, 50) == first and sizes == [100]
    assert ws.pointer(cpu, 300) != 0 and sizes == [100, 300] and ws.size(cpu) == 300  # grown on demand
    ws.shrink(cpu, 500)  # already smaller: kept
    assert ws.size(cpu) == 300 and sizes == [100, 300]
    ws.shrink(cpu, 40)  # what Find borrowed given back: a buffer of the size before
    assert ws.size(cpu) == 40 and sizes == [100, 300, 40]
    ws.shrink(cpu, 0)
    assert ws.size(cpu) == 0 and ws.pointer(cpu, 0) == 0
    ws.reserve(cpu, 10)
    ws.release()
    assert ws.size(cpu) == 0


def test_the_stream_is_tracked_per_handle_so_plans_sharing_it_never_run_on_a_stale_one():
    lib = FakeCudnn({})
    handle = cudnn.Handle(lib, ctypes.c_void_p(1))
    for stream in (7, 7, 9, 7):  # plan A on stream 7, plan B on 9, plan A on 7 again
        handle.use_stream(stream)
    assert [c[2].value for c in lib.calls if c[0] == "cudnnSetStream"] == [7, 9, 7]


def test_operands_of_another_dtype_or_memory_format_are_refused():
    w = torch.randn(4, 3, 3, 3)
    cudnn.check_operands(torch.randn(1, 3, 8, 8), w)
    cudnn.check_operands(torch.randn(1, 3, 8, 8)[:, :, ::2], w)  # not contiguous but NCHW: copied, allowed
    with pytest.raises(TypeError, match="input is torch.float16 but the layer's weight is torch.float32.*autocast"):
        cudnn.check_operands(torch.randn(1, 3, 8, 8, dtype=torch.float16), w)
    with pytest.raises(ValueError, match="weight is channels_last"):
        cudnn.check_operands(torch.randn(1, 3, 8, 8), w.to(memory_format=torch.channels_last))
    with pytest.raises(ValueError, match="input is channels_last"):
        cudnn.check_operands(torch.randn(1, 3, 8, 8).to(memory_format=torch.channels_last), w)


def test_an_nhwc_plan_describes_every_operand_in_nhwc_and_needs_channels_last_operands(fake):
    conv, g, x = _layer()
    conv = conv.to(memory_format=torch.channels_last)
    xl = x.contiguous(memory_format=torch.channels_last)
    plan = cudnn.CudnnConvPlan.build("gemm", conv.weight, conv.bias, g, xl, "fma", "nhwc")
    assert plan.layout == "nhwc" and fake["trials"][0][1] is xl
    assert fake["lib"].layouts == [("tensor", "nhwc"), ("filter", "nhwc"), ("tensor", "nhwc")]
    with pytest.raises(ValueError, match="input is contiguous NCHW, but the descriptors are NHWC"):
        cudnn.CudnnConvPlan.build("gemm", conv.weight, conv.bias, g, x, "fma", "nhwc")
    nchw_weight = torch.randn(4, 3, 3, 3)
    with pytest.raises(ValueError, match="weight is contiguous NCHW, but the descriptors are NHWC"):
        cudnn.check_operands(xl, nchw_weight, "nhwc")
    cudnn.check_operands(xl[:, :, ::2], conv.weight, "nhwc")  # in neither layout: the plan copies it
    one_pixel = torch.randn(2, 3, 1, 1)  # dense in both layouts: either descriptor reads it right
    cudnn.check_operands(one_pixel, torch.randn(4, 3, 1, 1), "nhwc")
    cudnn.check_operands(one_pixel, torch.randn(4, 3, 1, 1), "nchw")


def test_an_nhwc_swap_plans_in_nhwc_and_records_a_refusal_as_unsupported(fake):
    fake["lib"].fail = {2: 3004}  # gemm: CUDNN_STATUS_NOT_SUPPORTED_LAYOUT
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3)).to(memory_format=torch.channels_last)
    x = torch.randn(1, 3, 8, 8).contiguous(memory_format=torch.channels_last)
    with swap(model, "gemm", backend="cudnn", fallback="none", layout="nhwc") as s:
        plan = s.swapped["0"].plan(x)
    assert (plan.status, plan.backend) == ("unsupported", "cudnn") and "STATUS_3004" in plan.detail
    assert fake["lib"].layouts and {layout for _, layout in fake["lib"].layouts} == {"nhwc"}
    with swap(model, "gemm", backend="cudnn", fallback="torch", layout="nhwc") as s:
        plan = s.swapped["0"].plan(x)
        y = model(x)
    assert (plan.status, plan.algo_used) == ("fallback", "torch")
    assert y.is_contiguous(memory_format=torch.channels_last)
