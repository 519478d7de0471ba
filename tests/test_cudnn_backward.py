"""cuDNN's backward families (harness.algorithms.cudnn_backward).

On the CPU: a fake library stands in at the cuDNN border and, for the run calls, computes what cuDNN would from
the raw pointers and descriptors it is given (alpha * op(a, b) + beta * out, through torch.nn.grad). So what is
ours runs for real: the algorithm names per direction, which operand lands where, the layout of every tensor,
a fresh gradient per call, the shared workspace, which failures are the layer's and which the point's, the
heuristic's and Find's choices and what they report. The calls themselves are checked against the headers in
tests/test_cudnn_headers.py; the gpu-marked tests at the end run them on cuDNN against torch's gradients.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from harness.algorithms import backend_flags, cudnn, registry
from harness.algorithms.cudnn_backward import CudnnBackwardPlan, enum_for
from harness.algorithms.cudnn_enums import DIRECTIONS, NONDETERMINISTIC
from harness.algorithms.cudnn_library import CALLS, DATA_TYPES
from harness.algorithms.geometry import ConvGeometry
from harness.algorithms.memory_layout import in_layout, to_layout
from harness.models import build_model

BACKWARD = ("backward_data", "backward_filter")
DTYPES = {v: k for k, v in DATA_TYPES.items()}


# The fake library ----------------------------------------------------------------------------------------


class FakeDescriptor:
    def __init__(self, kind: str, shape=None, dtype=None, layout=None, g=None):  # type: ignore[no-untyped-def]
        self.kind, self.shape, self.dtype, self.layout, self.g = kind, shape, dtype, layout, g
        self.ptr = self  # what the calls receive: the descriptor itself, to be read back


def _at(desc: FakeDescriptor, address: int) -> torch.Tensor:
    """The tensor the descriptor describes at ``address`` (this process's memory: CPU tensors)."""
    n = math.prod(desc.shape)
    size = n * torch.empty((), dtype=desc.dtype).element_size()
    flat = torch.frombuffer((ctypes.c_char * size).from_address(address), dtype=desc.dtype)
    if desc.layout == "nhwc":
        a, b, h, w = desc.shape
        return flat.view(a, h, w, b).permute(0, 3, 1, 2)
    return flat.view(desc.shape)


class FakeCudnn:
    """Answers what CudnnBackwardPlan.build and its calls ask. ``workspace``: {(direction, code): bytes};
    ``fail``: {(direction, code): status} for the workspace query; ``heuristic``/``found``: per direction, the
    perf entries the _v7 call / Find return, as (code, status, time ms, determinism)."""

    def __init__(self) -> None:
        self.workspace: dict[tuple[str, int], int] = {}
        self.fail: dict[tuple[str, int], int] = {}
        self.heuristic: dict[str, list[tuple[int, int, float, int]]] = {}
        self.found: dict[str, list[tuple[int, int, float, int]]] = {}
        self.calls: list[tuple] = []
        self.by_name = {getattr(api, role): (api.direction, role) for api in CALLS.values() for role in
                        ("run", "workspace", "heuristic", "find")}  # fmt: skip

    def tensor_descriptor(self, shape, dtype, layout="nchw"):  # type: ignore[no-untyped-def]
        return FakeDescriptor("tensor", tuple(shape), dtype, layout)

    def filter_descriptor(self, shape, dtype, layout="nchw"):  # type: ignore[no-untyped-def]
        return FakeDescriptor("filter", tuple(shape), dtype, layout)

    def convolution_descriptor(self, g, math):  # type: ignore[no-untyped-def]
        return FakeDescriptor("conv", g=g)

    def output_shape(self, conv, x, w):  # type: ignore[no-untyped-def]
        n, _, h, wd = x.shape
        return (n, w.shape[0], *conv.g.output_hw(h, wd))

    def call(self, name: str, *args: object) -> None:
        self.calls.append((name, *args))
        if name not in self.by_name:
            return  # cudnnSetStream
        direction, role = self.by_name[name]
        if role == "workspace":
            key = (direction, args[5])
            if key in self.fail:
                raise cudnn.error_for(name, self.fail[key], f"STATUS_{self.fail[key]}")
            args[6]._obj.value = self.workspace.get(key, 0)  # the size_t* out-argument
        elif role in ("heuristic", "find"):
            entries = (self.heuristic if role == "heuristic" else self.found).get(direction, [])
            perf, returned = (args[7], args[6]) if role == "heuristic" else (args[10], args[9])
            for i, (code, status, ms, determinism) in enumerate(entries):
                perf[i].algo, perf[i].status, perf[i].time, perf[i].determinism = code, status, ms, determinism
            returned._obj.value = len(entries)
        else:
            self._run(direction, *args)

    @staticmethod
    def _run(direction, handle, alpha, ad, a, bd, b, cd, algo, ws, ws_size, beta, od, out):  # type: ignore[no-untyped-def]
        """What cuDNN computes: out = alpha * op(a, b) + beta * out, read from and written to the pointers."""
        g: ConvGeometry = cd.g
        ta, tb, to = _at(ad, a), _at(bd, b), _at(od, out)
        kw = {"stride": g.stride, "padding": g.padding, "dilation": g.dilation, "groups": g.groups}
        if direction == "backward_data":  # a: w, b: dy, out: dx
            result = torch.nn.grad.conv2d_input(od.shape, ta, tb, **kw)
        elif direction == "backward_filter":  # a: x, b: dy, out: dw
            result = torch.nn.grad.conv2d_weight(ta, od.shape, tb, **kw)
        else:
            result = F.conv2d(ta, tb, None, **kw)
        scale, keep = alpha._obj.value, beta._obj.value
        to.copy_(scale * result + keep * to if keep else scale * result)  # beta 0: cuDNN does not read ``out``


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch):
    """Install the fake library, a handle and a workspace allocator (anything over 10 kB does not fit)."""
    state = SimpleNamespace(lib=FakeCudnn(), allocated=[])

    def allocate(n, device):  # type: ignore[no-untyped-def]
        state.allocated.append(n)
        if n > 10_000:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (fake)")
        return torch.empty(n, dtype=torch.uint8)

    monkeypatch.setattr(cudnn, "library", lambda: state.lib)
    monkeypatch.setattr(cudnn, "handle_for", lambda device: cudnn.Handle(state.lib, ctypes.c_void_p(1)))
    monkeypatch.setattr(cudnn, "WORKSPACES", cudnn.Workspaces(allocate))
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: SimpleNamespace(cuda_stream=0))
    return state


def _layer(layout: str = "nchw", dtype: torch.dtype = torch.float32, groups: int = 1, stride: int = 2):
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(4, 6, 3, stride=stride, padding=1, groups=groups).to(dtype)
    x = torch.randn(2, 4, 9, 9, dtype=dtype)
    if layout == "nhwc":
        conv, x = conv.to(memory_format=torch.channels_last), to_layout(x, "nhwc")
    return conv, ConvGeometry.of(conv), x


def _torch_grads(conv: torch.nn.Conv2d, x: torch.Tensor, grad_out: torch.Tensor, dtype: torch.dtype | None = None):
    """(grad_input, grad_weight) of F.conv2d by autograd, in ``dtype`` (default: the operands'): the reference
    every plan is held to."""
    dtype = dtype or x.dtype
    x = x.detach().to(dtype).requires_grad_()
    w = conv.weight.detach().to(dtype).requires_grad_()
    grad_out = grad_out.to(dtype)
    g = ConvGeometry.of(conv)
    y = F.conv2d(x, w, None, g.stride, g.padding, g.dilation, g.groups)
    return torch.autograd.grad(y, (x, w), grad_out)


# Names per direction ---------------------------------------------------------------------------------------


def test_each_algorithm_runs_the_registrys_enum_in_each_direction():
    """What the shared contract fixes (S31: gemm -> ALGO_0, implicit_gemm -> ALGO_1, implicit_precomp_gemm ->
    backward_filter ALGO_3, the FFT and Winograd families by name), read through the registry."""
    expected = {
        "backward_data": {
            "gemm": "algo_0",
            "implicit_gemm": "algo_1",
            "fft": "fft",
            "fft_tiling": "fft_tiling",
            "winograd": "winograd",
            "winograd_nonfused": "winograd_nonfused",
        },
        "backward_filter": {
            "gemm": "algo_0",
            "implicit_gemm": "algo_1",
            "implicit_precomp_gemm": "algo_3",
            "fft": "fft",
            "fft_tiling": "fft_tiling",
            "winograd_nonfused": "winograd_nonfused",
        },
    }
    for direction, names in expected.items():
        for algo in registry.names():
            c = registry.get(algo).cudnn_for(direction)
            if algo in ("guess", "find"):
                continue
            if c is None:
                assert algo not in names
                with pytest.raises(cudnn.CudnnNotSupported, match=f"{algo} has no {direction} algorithm"):
                    enum_for(direction, algo)
            else:
                assert enum_for(direction, algo) == names[algo] == c.name
        assert set(names.values()) <= set(DIRECTIONS[direction][0])


def test_cudnns_own_names_are_accepted_and_anything_else_is_refused_with_the_choices():
    assert enum_for("backward_filter", "algo_3") == "algo_3"
    assert enum_for("backward_data", "algo_0") == "algo_0"
    with pytest.raises(
        ValueError, match="'algo_3' for cuDNN's backward_data; valid: implicit_gemm, gemm, fft.*guess, find"
    ):
        enum_for("backward_data", "algo_3")
    with pytest.raises(ValueError, match="'nope'"):
        enum_for("backward_filter", "nope")


def test_backward_filter_winograd_is_unsupported_as_documented_and_never_called(fake):
    conv, g, x = _layer()
    with pytest.raises(cudnn.CudnnNotSupported) as raised:
        CudnnBackwardPlan.build("backward_filter", "winograd", conv.weight, g, x, "fma")
    assert "winograd has no backward_filter algorithm" in raised.value.name
    assert "CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD is documented as not implemented" in raised.value.name
    assert fake.lib.calls == []  # refused before any descriptor or call
    # and where a search proposes it (whatever status it reports), it is never tried
    fake.lib.heuristic["backward_filter"] = [(4, 0, 0.0, 1), (1, 0, 0.0, 1)]
    plan = CudnnBackwardPlan.build("backward_filter", "guess", conv.weight, g, x, "fma")
    assert plan.algo == "algo_1"
    assert not [c for c in fake.lib.calls if c[0] == "cudnnGetConvolutionBackwardFilterWorkspaceSize" and c[6] == 4]


def test_a_forward_direction_is_refused():
    conv, g, x = _layer()
    with pytest.raises(ValueError, match="unknown backward direction 'forward'; valid: backward_data, backward_filter"):
        CudnnBackwardPlan.build("forward", "gemm", conv.weight, g, x, "fma")


# Runs and gradients ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
@pytest.mark.parametrize("direction", BACKWARD)
def test_every_enum_computes_torchs_gradient_into_a_fresh_tensor_in_the_layout(fake, direction: str, layout: str):
    conv, g, x = _layer(layout, groups=2)
    grad_out = torch.randn(2, 6, 5, 5)
    want_dx, want_dw = _torch_grads(conv, x, grad_out)
    for name, code in DIRECTIONS[direction][0].items():
        if name == "winograd" and direction == "backward_filter":
            continue
        fake.lib.workspace[(direction, code)] = 64 * code
        plan = CudnnBackwardPlan.build(direction, name, conv.weight, g, x, "fma", layout)
        assert (plan.algo, plan.direction, plan.layout, plan.workspace_bytes) == (name, direction, layout, 64 * code)
        assert plan.nondeterministic == (name in NONDETERMINISTIC[direction])
        assert plan.reported_nondeterministic is None and plan.note is None and plan.compute_type == "float32"
        operands = (grad_out,) if direction == "backward_data" else (x, grad_out)
        first, second = plan(*operands), plan(*operands)
        want = want_dx if direction == "backward_data" else want_dw
        assert first.data_ptr() != second.data_ptr()  # a new tensor each call
        for got in (first, second):  # beta = 0: the second call did not add to anything
            assert in_layout(got, layout) and got.shape == want.shape
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert plan._weight is conv.weight  # the layer's own parameter, not a copy
    assert [(d.kind, d.layout) for d in plan._descs] == (
        [("filter", layout), ("tensor", layout), ("conv", None), ("tensor", layout)]
        if direction == "backward_data"
        else [("tensor", layout), ("tensor", layout), ("conv", None), ("filter", layout)]
    )


def test_a_gradient_in_any_strides_is_read_right_and_a_wrong_one_is_refused(fake):
    conv, g, x = _layer()
    data = CudnnBackwardPlan.build("backward_data", "gemm", conv.weight, g, x, "fma")
    filt = CudnnBackwardPlan.build("backward_filter", "gemm", conv.weight, g, x, "fma")
    expanded = torch.ones(()).expand(2, 6, 5, 5)  # what the backward of y.sum() hands on: stride 0
    want_dx, want_dw = _torch_grads(conv, x, expanded)
    torch.testing.assert_close(data(expanded), want_dx)
    torch.testing.assert_close(filt(x, expanded), want_dw)
    with pytest.raises(ValueError, match=r"grad_out of shape \(2, 6, 5, 5\), called with \(2, 6, 4, 4\)"):
        data(torch.randn(2, 6, 4, 4))
    with pytest.raises(ValueError, match=r"x of shape \(2, 4, 9, 9\)"):
        filt(torch.randn(1, 4, 9, 9), torch.randn(2, 6, 5, 5))
    with pytest.raises(TypeError, match="grad_out is torch.float16"):
        data(torch.randn(2, 6, 5, 5, dtype=torch.float16))
    with pytest.raises(TypeError, match=r"takes \(x, grad_out\), not 1"):
        filt(expanded)
    with pytest.raises(TypeError, match=r"takes \(grad_out\), not 2"):
        data(x, expanded)
    with pytest.raises(ValueError, match="input is channels_last"):
        filt(to_layout(x, "nhwc"), expanded)


# Errors, workspaces --------------------------------------------------------------------------------------


@pytest.mark.parametrize("direction", BACKWARD)
@pytest.mark.parametrize("status", [3000, 3002, 3007])
def test_a_layer_status_is_unsupported(fake, direction: str, status: int):
    conv, g, x = _layer()
    fake.lib.fail[(direction, 2)] = status  # fft
    with pytest.raises(cudnn.CudnnNotSupported) as raised:
        CudnnBackwardPlan.build(direction, "fft", conv.weight, g, x, "fma")
    assert raised.value.call == CALLS[direction].workspace and raised.value.status == status


@pytest.mark.parametrize("direction", BACKWARD)
@pytest.mark.parametrize("status", [3005, 3006, 3008, 3009, 3013, 4000])
def test_an_environment_status_is_the_points_error_not_an_unsupported_layer(fake, direction: str, status: int):
    conv, g, x = _layer()
    fake.lib.fail[(direction, 0)] = status
    with pytest.raises(cudnn.CudnnError) as raised:
        CudnnBackwardPlan.build(direction, "gemm", conv.weight, g, x, "fma")
    assert not isinstance(raised.value, cudnn.CudnnNotSupported)
    # and a search does not walk past it to the next candidate: the point's error ends the search
    fake.lib.heuristic[direction] = [(0, 0, 0.0, 0), (1, 0, 0.0, 1)]
    with pytest.raises(cudnn.CudnnError) as raised:
        CudnnBackwardPlan.build(direction, "guess", conv.weight, g, x, "fma")
    assert not isinstance(raised.value, cudnn.CudnnNotSupported)


@pytest.mark.parametrize("direction", BACKWARD)
def test_the_workspace_is_the_shared_one_and_is_freed_on_release(fake, direction: str):
    conv, g, x = _layer()
    fake.lib.workspace[(direction, 1)] = 512
    fake.lib.workspace[(direction, 2)] = 1_000_000  # fft: does not fit
    with pytest.raises(cudnn.WorkspaceOutOfMemory, match="fft needs a workspace of 1000000 bytes"):
        CudnnBackwardPlan.build(direction, "fft", conv.weight, g, x, "fma")
    plan = CudnnBackwardPlan.build(direction, "implicit_gemm", conv.weight, g, x, "fma")
    cpu = torch.device("cpu")
    assert plan.workspace_bytes == 512 and cudnn.WORKSPACES.size(cpu) == 512
    fake.lib.calls.clear()
    plan(torch.randn(2, 6, 5, 5)) if direction == "backward_data" else plan(x, torch.randn(2, 6, 5, 5))
    (run,) = [c for c in fake.lib.calls if c[0] == CALLS[direction].run]
    assert run[10] == 512 and run[9] == cudnn.WORKSPACES.pointer(cpu, 512) != 0  # the shared buffer, the plan's size
    cudnn.release_workspaces()
    assert cudnn.WORKSPACES.size(cpu) == 0


# guess and find --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("direction", BACKWARD)
def test_guess_runs_the_heuristics_first_choice_that_runs_and_records_the_enum_and_its_determinism(
    fake, direction: str
):
    conv, g, x = _layer()
    lib = fake.lib
    # fft failed inside the heuristic; algo_0 (non-deterministic, says cuDNN) needs too much; winograd_nonfused is
    # not supported for the layer; algo_1 runs
    lib.heuristic[direction] = [(2, 3000, 0.0, 1), (0, 0, 0.0, 0), (5, 0, 0.0, 1), (1, 0, 0.0, 1)]
    lib.workspace[(direction, 0)] = 1_000_000
    lib.fail[(direction, 5)] = 3002
    plan = CudnnBackwardPlan.build(direction, "guess", conv.weight, g, x, "fma")
    assert (plan.algo, plan.nondeterministic, plan.reported_nondeterministic) == ("algo_1", False, False)
    lib.workspace.clear()
    plan = CudnnBackwardPlan.build(direction, "guess", conv.weight, g, x, "fma")
    assert (plan.algo, plan.nondeterministic, plan.reported_nondeterministic) == ("algo_0", True, True)
    lib.heuristic[direction] = [(2, 3000, 0.0, 1)]
    with pytest.raises(cudnn.CudnnNotSupported, match="no algorithm") as raised:
        CudnnBackwardPlan.build(direction, "guess", conv.weight, g, x, "fma")
    assert raised.value.call == CALLS[direction].heuristic


@pytest.mark.parametrize("direction", BACKWARD)
def test_find_searches_on_real_operands_with_a_borrowed_workspace_and_runs_the_fastest_that_runs(fake, direction):
    conv, g, x = _layer()
    lib = fake.lib
    lib.workspace = {(direction, 2): 1_000_000, (direction, 0): 2048, (direction, 1): 64}  # fft's does not fit
    lib.fail = {(direction, 5): 3000}  # winograd_nonfused: no workspace size, not supported
    # FFT_TILING (code 3 in backward_data, 6 in backward_filter) fastest but failed inside Find; then algo_1 twice
    # (once per math type), then algo_0
    tiling = DIRECTIONS[direction][0]["fft_tiling"]
    lib.found[direction] = [(tiling, 3000, 0.01, 1), (1, 0, 0.02, 1), (1, 0, 0.025, 1), (0, 0, 0.0312345, 0)]
    plan = CudnnBackwardPlan.build(direction, "find", conv.weight, g, x, "fma")
    assert (plan.algo, plan.workspace_bytes, plan.reported_nondeterministic) == ("algo_1", 64, False)
    assert plan.note == (
        "find: algo_1 0.02 ms, algo_1 0.025 ms, algo_0 0.03123 ms; searched with a 2048 B workspace, given back"
    )
    assert fake.allocated[-2:] == [2048, 64] and cudnn.WORKSPACES.size(x.device) == 64
    (call,) = [c for c in lib.calls if c[0] == CALLS[direction].find]
    first = conv.weight if direction == "backward_data" else x
    assert call[2].kind == ("filter" if direction == "backward_data" else "tensor") and call[3] == first.data_ptr()
    assert call[8] not in (conv.weight.data_ptr(), x.data_ptr())  # Find writes a scratch tensor, not the layer's
    assert call[-1] == 2048 and call[9] == DIRECTIONS[direction][1]
    lib.found[direction] = []
    with pytest.raises(cudnn.CudnnNotSupported, match="no algorithm") as raised:
        CudnnBackwardPlan.build(direction, "find", conv.weight, g, x, "fma")
    assert raised.value.call == CALLS[direction].find


def test_planning_leaves_the_jobs_random_stream_alone(fake):
    conv, g, x = _layer()
    torch.manual_seed(3)
    before = torch.random.get_rng_state()
    CudnnBackwardPlan.build("backward_filter", "gemm", conv.weight, g, x, "fma")
    assert torch.equal(torch.random.get_rng_state(), before)


# ---- on a GPU ---------------------------------------------------------------------------------------------

# Largest |grad - torch's| over largest |torch's| of one layer: FP32 data with FMA math (no TF32), and FP16 data
# with FLOAT compute and tensor-op math (what the harness runs). The Winograd and FFT transforms lose digits
# (the forward's WINOGRAD_NONFUSED reached 5e-3 on an H100); a backward-filter sum runs over N*H*W products.
TOLERANCE = {torch.float32: 1e-3, torch.float16: 2e-2}
TRANSFORM_TOLERANCE = {torch.float32: 1e-2, torch.float16: 5e-2}
TRANSFORMS = ("fft", "fft_tiling", "winograd", "winograd_nonfused")


def _distinct_conv_layers(model_name: str, size: int, dtype: torch.dtype):
    """Each distinct (geometry, input shape) conv layer of a model at ``size``, batch 2."""
    model = build_model(model_name).cuda().to(dtype)
    seen: dict[tuple, tuple[torch.nn.Conv2d, tuple[int, ...]]] = {}

    def record(m: torch.nn.Conv2d, args: tuple, out: torch.Tensor) -> None:  # None: the output stays
        shape = tuple(args[0].shape)
        seen.setdefault((ConvGeometry.of(m), shape), (m, shape))

    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            m.register_forward_hook(record)
    with torch.no_grad():
        model(torch.randn(2, 3, size, size, device="cuda", dtype=dtype))
    return list(seen.values())


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("direction", BACKWARD)
def test_each_algorithm_gives_torchs_gradient_or_is_unsupported_on_resnet_layers(direction: str, dtype):
    """resnet18's distinct layers at 112: every harness algorithm with an enum in this direction, and guess and
    find, either builds and matches torch's gradient within the dtype's tolerance, or is refused as the layer's
    outcome (CudnnNotSupported / WorkspaceOutOfMemory), never a fault. Deterministic enums (per cuDNN's
    documentation) give the same bits twice."""
    math_type = "fma" if dtype == torch.float32 else "tensor_op"
    algos = [a for a in registry.names() if registry.get(a).cudnn_for(direction)] + ["guess", "find"]
    ran: dict[str, int] = dict.fromkeys(algos, 0)
    too_far: list[str] = []
    with backend_flags(math_type, False):
        for conv, shape in _distinct_conv_layers("resnet18", 112, dtype):
            g = ConvGeometry.of(conv)
            x = torch.randn(shape, device="cuda", dtype=dtype)
            grad_out = torch.randn(2, g.out_channels, *g.output_hw(*shape[2:]), device="cuda", dtype=dtype)
            want_dx, want_dw = _torch_grads(conv, x, grad_out, torch.float64)
            want = (want_dx if direction == "backward_data" else want_dw).float()
            operands = (grad_out,) if direction == "backward_data" else (x, grad_out)
            for algo in algos:
                try:
                    plan = CudnnBackwardPlan.build(direction, algo, conv.weight, g, x, math_type)
                except (cudnn.CudnnNotSupported, cudnn.WorkspaceOutOfMemory):
                    continue
                got = plan(*operands)
                err = float((got.float() - want).abs().max() / want.abs().max())
                limit = (TRANSFORM_TOLERANCE if plan.algo in TRANSFORMS else TOLERANCE)[dtype]
                if err > limit:
                    too_far.append(f"{algo} ({plan.algo}) on {g.describe()} {shape}: {err:.2e}")
                if not plan.nondeterministic and not plan.reported_nondeterministic:
                    assert torch.equal(plan(*operands), got), f"{plan.algo} is documented deterministic"
                ran[algo] += 1
            cudnn.release_workspaces()
    assert not too_far, "\n".join(too_far)
    assert ran["gemm"] and ran["implicit_gemm"] and ran["guess"] and ran["find"], ran


@pytest.mark.gpu
def test_unsupported_is_classified_and_workspaces_are_freed_on_the_gpu():
    conv = torch.nn.Conv2d(64, 128, 3, stride=2, padding=1).cuda()
    g = ConvGeometry.of(conv)
    x = torch.randn(2, 64, 56, 56, device="cuda")
    dev = torch.device("cuda", torch.cuda.current_device())
    cudnn.release_workspaces()
    with backend_flags("fma", False):
        for direction, algo in [("backward_filter", "winograd"), ("backward_data", "implicit_precomp_gemm")]:
            with pytest.raises(cudnn.CudnnNotSupported, match=f"{algo} has no {direction}"):
                CudnnBackwardPlan.build(direction, algo, conv.weight, g, x, "fma")
        # FFT needs stride 1 (cuDNN's support table): a stride-2 layer is the layer's outcome, not a fault
        for direction in BACKWARD:
            with contextlib.suppress(cudnn.CudnnNotSupported, cudnn.WorkspaceOutOfMemory):
                CudnnBackwardPlan.build(direction, "fft", conv.weight, g, x, "fma")
        plans = [CudnnBackwardPlan.build(d, "guess", conv.weight, g, x, "fma") for d in BACKWARD]
        assert cudnn.WORKSPACES.size(dev) >= max(p.workspace_bytes for p in plans)
        find = CudnnBackwardPlan.build("backward_filter", "find", conv.weight, g, x, "fma")
        assert find.note.startswith("find: ") and find.reported_nondeterministic is not None
        assert cudnn.WORKSPACES.size(dev) >= find.workspace_bytes
        cudnn.release_workspaces()
        assert cudnn.WORKSPACES.size(dev) == 0
        grad_out = torch.randn(2, 128, 28, 28, device="cuda")
        for plan in plans:  # a plan regrows the shared workspace on its next call
            out = plan(grad_out) if plan.direction == "backward_data" else plan(x, grad_out)
            assert out.shape == (x.shape if plan.direction == "backward_data" else conv.weight.shape)
            assert cudnn.WORKSPACES.size(dev) >= plan.workspace_bytes
            assert plan.algo in DIRECTIONS[plan.direction][0]
        cudnn.release_workspaces()


@pytest.mark.gpu
def test_an_nhwc_plan_reads_and_writes_channels_last_on_the_gpu():
    conv = torch.nn.Conv2d(32, 64, 3, padding=1).cuda().half().to(memory_format=torch.channels_last)
    g = ConvGeometry.of(conv)
    x = to_layout(torch.randn(2, 32, 28, 28, device="cuda", dtype=torch.float16), "nhwc")
    grad_out = to_layout(torch.randn(2, 64, 28, 28, device="cuda", dtype=torch.float16), "nhwc")
    want_dx, want_dw = _torch_grads(conv, x, grad_out, torch.float32)
    with backend_flags("tensor_op", False):
        data = CudnnBackwardPlan.build("backward_data", "guess", conv.weight, g, x, "tensor_op", "nhwc")
        filt = CudnnBackwardPlan.build("backward_filter", "guess", conv.weight, g, x, "tensor_op", "nhwc")
        dx, dw = data(grad_out), filt(x, grad_out)
    assert in_layout(dx, "nhwc") and in_layout(dw, "nhwc")
    for got, want in ((dx, want_dx), (dw, want_dw)):
        assert float((got.float() - want).abs().max() / want.abs().max()) < TOLERANCE[torch.float16]


# A few shapes the models have: a 3x3 stride-1 layer, a 1x1 projection, a 3x3 stride-2 layer, the 7x7 stride-2
# stem, a dilated and a grouped layer (batch 2, small spatial sizes: a float64 CPU reference stays quick).
REFERENCE_SHAPES = (
    (torch.nn.Conv2d(32, 64, 3, padding=1), (2, 32, 14, 14)),
    (torch.nn.Conv2d(64, 32, 1), (2, 64, 14, 14)),
    (torch.nn.Conv2d(32, 32, 3, stride=2, padding=1), (2, 32, 15, 15)),
    (torch.nn.Conv2d(3, 16, 7, stride=2, padding=3), (2, 3, 32, 32)),
    (torch.nn.Conv2d(16, 16, 3, padding=2, dilation=2), (2, 16, 12, 12)),
    (torch.nn.Conv2d(32, 32, 3, padding=1, groups=4), (2, 32, 10, 10)),
)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("direction", BACKWARD)
def test_every_cudnn_enum_gives_the_cpu_references_gradient_or_is_unsupported(direction: str, dtype):
    """Every enum of the direction by cuDNN's own name (algo_0, fft...), and guess and find, on a few shapes:
    the gradient within the dtype's tolerance of the CPU reference's (harness.algorithms.reference_backward,
    the direct formulation, in float64: verified against autograd in CI), or refused as the layer's outcome
    (never a fault); the enum documented as not implemented is always refused."""
    from harness.algorithms import reference_backward
    from harness.algorithms.cudnn_enums import NOT_IMPLEMENTED

    torch.manual_seed(0)
    math_type = "fma" if dtype == torch.float32 else "tensor_op"
    enums = [*DIRECTIONS[direction][0], "guess", "find"]
    ran: dict[str, int] = dict.fromkeys(enums, 0)
    too_far: list[str] = []
    with backend_flags(math_type, False):
        for conv, shape in REFERENCE_SHAPES:
            g = ConvGeometry.of(conv)
            x64 = torch.randn(shape, dtype=torch.float64)
            w64 = conv.weight.detach().double()
            dy64 = torch.randn(shape[0], g.out_channels, *g.output_hw(*shape[2:]), dtype=torch.float64)
            if direction == "backward_data":
                want = reference_backward.direct_backward_data(dy64, w64, g, shape[2:])
            else:
                want = reference_backward.direct_backward_filter(x64, dy64, g)
            weight = conv.weight.detach().cuda().to(dtype)
            x, dy = x64.cuda().to(dtype), dy64.cuda().to(dtype)
            for name in enums:
                try:
                    plan = CudnnBackwardPlan.build(direction, name, weight, g, x, math_type)
                except (cudnn.CudnnNotSupported, cudnn.WorkspaceOutOfMemory):
                    continue
                assert name not in NOT_IMPLEMENTED[direction], f"{name} is documented as not implemented"
                got = (plan(dy) if direction == "backward_data" else plan(x, dy)).double().cpu()
                err = float((got - want).abs().max() / want.abs().max())
                limit = (TRANSFORM_TOLERANCE if plan.algo in TRANSFORMS else TOLERANCE)[dtype]
                if err > limit:
                    too_far.append(f"{name} ({plan.algo}) on {g.describe()} {shape}: {err:.2e} > {limit:g}")
                ran[name] += 1
            cudnn.release_workspaces()
    assert not too_far, "\n".join(too_far)
    assert ran["algo_0"] and ran["algo_1"] and ran["guess"] and ran["find"], ran
    assert all(ran[n] == 0 for n in NOT_IMPLEMENTED[direction]), ran
