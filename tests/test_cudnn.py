"""The cuDNN backend: what can be checked against the real libcudnn on a CPU machine, and GPU tests.

The libcudnn.so.9 of the torch wheel loads without a GPU: its version, status names and descriptors work;
only calls that need a handle fail (cudnnCreate: CUDNN_STATUS_NOT_INITIALIZED).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.algorithms import (
    ALGORITHMS,
    backend_flags,
    check_runnable,
    cudnn,
    resolve_backend,
    resolve_math,
    swap,
)
from harness.algorithms.geometry import ConvGeometry
from harness.algorithms.memory_layout import LAYOUTS, in_layout, model_to_layout, to_layout
from harness.errors import ConfigError
from harness.models import build_model

needs_cudnn_lib = pytest.mark.skipif(not torch.backends.cudnn.is_available(), reason="no cuDNN in this torch")
CPU = torch.device("cpu")


def test_algorithm_numbers_are_cudnns():
    assert cudnn.FWD_ALGOS == {
        "implicit_gemm": 0,
        "implicit_precomp_gemm": 1,
        "gemm": 2,
        "direct": 3,
        "fft": 4,
        "fft_tiling": 5,
        "winograd": 6,
        "winograd_nonfused": 7,
    }
    assert list(ALGORITHMS[:8]) == sorted(cudnn.FWD_ALGOS, key=cudnn.FWD_ALGOS.get)


@pytest.mark.parametrize(
    ("status", "cls"),
    # the layer or the architecture: the layer cannot run this algorithm here (recorded per layer)
    [(code, cudnn.CudnnNotSupported) for code in (3000, 3001, 3002, 3003, 3004, 3007, 3010, 3011, 3012, 3014)]
    # the environment (driver, runtime, prerequisite, sub-library) and the CUDA-graph API: the point's error
    + [(code, cudnn.CudnnError) for code in (3005, 3006, 3008, 3009, 3013)]
    + [(1001, cudnn.CudnnNotInitialized), (2000, cudnn.CudnnError), (4000, cudnn.CudnnError), (5000, cudnn.CudnnError)],
)
def test_status_codes_become_the_right_exceptions(status: int, cls: type):
    e = cudnn.error_for("cudnnX", status, "CUDNN_STATUS_SOMETHING")
    assert type(e) is cls and e.status == status and "CUDNN_STATUS_SOMETHING" in str(e) and "cudnnX" in str(e)


@needs_cudnn_lib
def test_layer_statuses_are_named_not_supported_by_the_library():
    lib = cudnn.library()
    for code in cudnn.LAYER_STATUSES:
        assert lib.status_name(code).startswith("CUDNN_STATUS_NOT_SUPPORTED"), code
    assert lib.status_name(3005) == "CUDNN_STATUS_NOT_SUPPORTED_INCOMPATIBLE_CUDA_DRIVER"


@needs_cudnn_lib
def test_library_is_the_one_torch_loaded():
    lib = cudnn.library()
    assert lib.version() == torch.backends.cudnn.version()
    assert "libcudnn.so" in lib.path
    assert lib.status_name(3000) == "CUDNN_STATUS_NOT_SUPPORTED"
    assert lib.status_name(1001) == "CUDNN_STATUS_NOT_INITIALIZED"


@needs_cudnn_lib
def test_bad_descriptor_arguments_raise_with_cudnns_name():
    with pytest.raises(cudnn.CudnnError, match="cudnnSetTensor4dDescriptor failed: CUDNN_STATUS_BAD_PARAM"):
        cudnn.library().tensor_descriptor((1, 3, -1, 8), torch.float32)


@needs_cudnn_lib
def same_strides(shape: tuple[int, ...], a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    """Strides equal wherever the dimension has more than one element: a size-1 dimension's stride is never
    used, and torch and cuDNN pick different ones for it (one channel in NHWC: torch keeps NCHW's)."""
    return all(x == y for n, x, y in zip(shape, a, b, strict=True) if n > 1)


@settings(max_examples=40, deadline=None)
@given(
    groups=st.sampled_from([1, 2, 4]),
    cpg=st.integers(1, 8),
    opg=st.integers(1, 8),
    k=st.integers(1, 7),
    s=st.integers(1, 3),
    p=st.integers(0, 3),
    d=st.integers(1, 2),
    extra=st.integers(0, 40),
    dtype=st.sampled_from([torch.float32, torch.float16, torch.bfloat16]),
    math=st.sampled_from(["fma", "tensor_op"]),
    layout=st.sampled_from(LAYOUTS),
)
def test_descriptors_give_the_output_shape_pytorch_computes(groups, cpg, opg, k, s, p, d, extra, dtype, math, layout):
    g = ConvGeometry(groups * cpg, groups * opg, (k, k), (s, s), (p, p), (d, d), groups)
    size = max(1, g.effective_kernel()[0] - 2 * p) + extra
    lib = cudnn.library()
    x = lib.tensor_descriptor((2, g.in_channels, size, size), dtype, layout)
    w = lib.filter_descriptor((g.out_channels, cpg, k, k), dtype, layout)
    conv = lib.convolution_descriptor(g, math)
    expected = F.conv2d(
        torch.empty(2, g.in_channels, size, size, device="meta"),
        torch.empty(g.out_channels, cpg, k, k, device="meta"),
        stride=s,
        padding=p,
        dilation=d,
        groups=groups,
    ).shape
    assert lib.output_shape(conv, x, w) == tuple(expected)
    assert (expected[2], expected[3]) == g.output_hw(size, size)
    # what cuDNN holds, read back: FLOAT compute for every data type (as PyTorch), our math, cross-correlation
    assert lib.convolution_of(conv) == {
        "padding": (p, p),
        "stride": (s, s),
        "dilation": (d, d),
        "mode": cudnn.CROSS_CORRELATION,
        "compute_type": cudnn.DATA_TYPES[torch.float32],
        "groups": groups,
        "math_type": cudnn.MATH_TYPES[math],
    }
    # the strides cuDNN derives from the format are the ones torch gives a tensor of that memory format
    n, c = 2, g.in_channels
    strides = to_layout(torch.empty(n, c, size, size, device="meta"), layout).stride()
    held = lib.tensor_of(x)
    assert held[:5] == (cudnn.DATA_TYPES[dtype], n, c, size, size)
    assert same_strides((n, c, size, size), held[5:], strides)
    assert lib.filter_of(w) == (cudnn.DATA_TYPES[dtype], cudnn.TENSOR_FORMATS[layout], g.out_channels, cpg, k, k)
    y = lib.tensor_descriptor(lib.output_shape(conv, x, w), dtype, layout)
    y_strides = to_layout(torch.empty(expected, device="meta"), layout).stride()
    assert same_strides(tuple(expected), lib.tensor_of(y)[5:], y_strides)


@needs_cudnn_lib
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error")
def test_no_cuda_device_is_a_clear_error():
    with pytest.raises(cudnn.CudnnNotInitialized, match="cudnnCreate failed: CUDNN_STATUS_NOT_INITIALIZED"):
        cudnn.library().create_handle()
    with pytest.raises(cudnn.CudnnUnavailable, match="needs a CUDA device"):
        cudnn.handle_for(torch.device("cuda", 0))


def test_backend_resolution():
    assert resolve_backend("auto", CPU) == "reference"
    assert resolve_backend("auto", torch.device("cuda", 0)) == "cudnn"
    assert resolve_backend("reference", torch.device("cuda", 0)) == "reference"


@pytest.mark.parametrize("flag", [False, True])
def test_math_auto_is_a_fixed_rule_not_the_global_flag(monkeypatch: pytest.MonkeyPatch, flag: bool):
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", flag)  # what an earlier job may have left
    assert resolve_math("auto") == "tensor_op"
    assert resolve_math("fma") == "fma" and resolve_math("tensor_op") == "tensor_op"
    with pytest.raises(ConfigError, match="'tf64'.*auto, fma, tensor_op"):
        resolve_math("tf64")


@pytest.mark.parametrize(("math", "benchmark"), [("fma", True), ("tensor_op", False)])
def test_backend_flags_are_set_for_the_block_and_restored_even_on_error(math: str, benchmark: bool):
    before = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.benchmark)
    with pytest.raises(KeyError):
        with backend_flags(math, benchmark):
            assert torch.backends.cudnn.allow_tf32 is (math == "tensor_op")
            assert torch.backends.cuda.matmul.allow_tf32 is (math == "tensor_op")
            assert torch.backends.cudnn.benchmark is benchmark
            raise KeyError("a job that failed")
    assert (
        torch.backends.cudnn.allow_tf32,
        torch.backends.cuda.matmul.allow_tf32,
        torch.backends.cudnn.benchmark,
    ) == before
    with pytest.raises(ValueError, match="resolved math"):
        with backend_flags("auto", False):
            pass


@pytest.mark.parametrize(
    ("algo", "backend", "fallback", "message"),
    [
        ("implicit_gemm", "reference", "none", "exists only in cuDNN.*direct, gemm, fft, winograd, torch"),
        ("guess", "reference", "none", "exists only in cuDNN"),
        ("gemm", "cudnn", "none", "backend=cudnn needs a CUDA GPU"),
        ("gemm", "reference", "guess", "fallback=guess"),
    ],
)
def test_what_cannot_run_on_the_cpu_is_refused(algo, backend, fallback, message):
    with pytest.raises(ConfigError, match=message):
        check_runnable(algo, CPU, backend, fallback)


def test_direct_on_cudnn_is_refused_with_the_reference_offered():
    with pytest.raises(ConfigError, match="does not implement.*backend=reference"):
        check_runnable("direct", torch.device("cuda", 0), "cudnn", "none")


# ---- on a GPU ---------------------------------------------------------------------------------------------


def _conv_layers(model_name: str, size: int):
    """Each distinct conv layer of a model with its own input shape at ``size``."""
    model = build_model(model_name).cuda()
    seen, hooks = {}, []

    def record(module, args, name) -> None:  # returns None: a hook's return value would replace the output
        seen.setdefault(name, (module, tuple(args[0].shape)))

    for name, m in model.named_modules():
        if isinstance(m, torch.nn.Conv2d):
            hooks.append(m.register_forward_hook(lambda m, a, o, n=name: record(m, a, n)))
    with torch.inference_mode():
        model(torch.randn(1, 3, size, size, device="cuda"))
    for h in hooks:
        h.remove()
    return seen


# Largest |y - F.conv2d| over largest |F.conv2d| of one layer in strict FP32 (the measure of `tolerance` in
# conf/config.yaml). Winograd transforms lose digits as the tile grows: WINOGRAD_NONFUSED on alexnet's 5x5
# layer was 5e-3 on an H100 (cuDNN 9.19), while the whole model's output stays within 1e-3 of torch's.
LAYER_TOLERANCE = {"winograd_nonfused": 1e-2}
DEFAULT_LAYER_TOLERANCE = 1e-3


@pytest.mark.gpu
@pytest.mark.parametrize("model_name", ["vgg16", "resnet50", "alexnet"])
def test_each_cudnn_algorithm_is_correct_or_not_supported_as_documented(model_name: str):
    """Per layer at 224: every plan that builds matches F.conv2d (strict FP32) within its layer tolerance;
    what cuDNN documents holds: DIRECT is not implemented, FFT needs stride 1, fused WINOGRAD is 3x3 stride 1
    only and absent on Hopper."""
    ran: dict[str, list[ConvGeometry]] = {a: [] for a in cudnn.FWD_ALGOS}
    errors: list[tuple[float, str, str]] = []  # (relative error, algorithm, layer)
    with backend_flags("fma", False), torch.inference_mode():
        for name, (conv, shape) in _conv_layers(model_name, 224).items():
            g = ConvGeometry.of(conv)
            x = torch.randn(shape, device="cuda")
            expected = F.conv2d(x, conv.weight, conv.bias, g.stride, g.padding, g.dilation, g.groups)
            for algo in cudnn.FWD_ALGOS:
                try:
                    plan = cudnn.CudnnConvPlan.build(algo, conv.weight, conv.bias, g, x, "fma")
                except (cudnn.CudnnNotSupported, cudnn.WorkspaceOutOfMemory):
                    continue
                err = float((plan(x) - expected).abs().max() / expected.abs().max())
                errors.append((err, algo, f"{name} {g.describe()}"))
                ran[algo].append(g)
            cudnn.release_workspaces()
    too_far = [e for e in errors if e[0] > LAYER_TOLERANCE.get(e[1], DEFAULT_LAYER_TOLERANCE)]
    assert not too_far, "\n".join(f"{algo} on {layer}: {err:.2e}" for err, algo, layer in sorted(too_far, reverse=True))
    assert ran["direct"] == []
    assert all(g.stride == (1, 1) for g in ran["fft"])
    assert all(g.kernel == (3, 3) and g.stride == (1, 1) for g in ran["winograd"])
    if torch.cuda.get_device_capability()[0] == 9:
        assert ran["winograd"] == []
    assert ran["implicit_gemm"] and ran["implicit_precomp_gemm"] and ran["gemm"]


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_and_bfloat16_run_with_float_compute_and_guess_records_its_choice(dtype: torch.dtype):
    conv = torch.nn.Conv2d(32, 64, 3, padding=1, groups=4).cuda().to(dtype)
    g = ConvGeometry.of(conv)
    x = torch.randn(2, 32, 28, 28, device="cuda", dtype=dtype)
    with backend_flags("tensor_op", False), torch.inference_mode():
        plan = cudnn.CudnnConvPlan.build("guess", conv.weight, conv.bias, g, x, "tensor_op")
        assert plan.algo in cudnn.FWD_ALGOS and plan.compute_type == "float32"
        assert cudnn.library().convolution_of(plan._descs[2])["compute_type"] == cudnn.DATA_TYPES[torch.float32]
        torch.testing.assert_close(plan(x), conv(x), rtol=2e-2, atol=2e-2)


@pytest.mark.gpu
def test_a_plan_follows_the_current_stream_even_when_another_plan_moved_the_handle():
    conv = torch.nn.Conv2d(8, 8, 3, padding=1).cuda()
    g = ConvGeometry.of(conv)
    x = torch.randn(1, 8, 16, 16, device="cuda")
    with backend_flags("fma", False), torch.inference_mode():
        a = cudnn.CudnnConvPlan.build("implicit_gemm", conv.weight, conv.bias, g, x, "fma")
        b = cudnn.CudnnConvPlan.build("gemm", conv.weight, conv.bias, g, x, "fma")
        side = torch.cuda.Stream()
        with torch.cuda.stream(side):
            b(x)
        assert a._handle is b._handle and a._handle.stream == side.cuda_stream
        y = a(x)  # on the default stream again: the shared handle must be moved back
        assert a._handle.stream == torch.cuda.current_stream().cuda_stream
        torch.testing.assert_close(y, conv(x), rtol=1e-3, atol=1e-3)


@pytest.mark.gpu
def test_one_workspace_per_device_and_plans_of_one_shape_after_release():
    model = build_model("resnet18").cuda()
    dev = torch.device("cuda", torch.cuda.current_device())
    cudnn.release_workspaces()  # the buffer is process-wide: start from what earlier tests left
    with backend_flags("fma", False), torch.inference_mode(), swap(model, "guess", backend="cudnn", math="fma") as s:
        model(torch.randn(1, 3, 64, 64, device="cuda"))
        needs = [p.workspace_bytes for m in s.swapped.values() for p in m.plans.values()]
        assert cudnn.WORKSPACES.size(dev) >= max(needs)  # a candidate guess tried and dropped may have grown it
        s.release()
        assert cudnn.WORKSPACES.size(dev) == 0 and all(not m.plans for m in s.swapped.values())
        model(torch.randn(1, 3, 96, 96, device="cuda"))
        assert all(len(m.plans) == 1 for m in s.swapped.values())


@pytest.mark.gpu
def test_a_channels_last_model_is_refused_not_misread():
    model = build_model("resnet18").cuda().to(memory_format=torch.channels_last)
    with torch.inference_mode(), swap(model, "gemm", backend="cudnn", math="fma"):
        with pytest.raises(ValueError, match="channels_last"):
            model(torch.randn(1, 3, 64, 64, device="cuda"))


# Relative error of one layer against F.conv2d in FP16/BF16 data with FLOAT compute (what the harness runs).
HALF_LAYER_TOLERANCE = {torch.float16: 1e-2, torch.bfloat16: 5e-2}


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("model_name", ["resnet50", "vgg16"])
def test_nhwc_plans_are_correct_channels_last_or_not_supported(model_name: str, dtype: torch.dtype):
    """Per layer at 224 in NHWC: every plan cuDNN builds matches F.conv2d of the same channels_last operands
    (strict FP32 at the FP32 layer tolerance, FP16/BF16 at theirs) and writes a channels_last output; what
    cuDNN refuses is a NOT_SUPPORTED status (the layer's outcome), never a crash or a misread; implicit
    precomputed GEMM, which cuDNN's NHWC tensor-core kernels are, runs every layer."""
    math = "fma" if dtype == torch.float32 else "tensor_op"
    ran: dict[str, int] = {a: 0 for a in cudnn.FWD_ALGOS}
    too_far: list[str] = []
    with backend_flags(math, False), torch.inference_mode():
        for name, (conv, shape) in _conv_layers(model_name, 224).items():
            conv = model_to_layout(conv.to(dtype), "nhwc")
            g = ConvGeometry.of(conv)
            x = to_layout(torch.randn(shape, device="cuda", dtype=dtype), "nhwc")
            expected = F.conv2d(x, conv.weight, conv.bias, g.stride, g.padding, g.dilation, g.groups).float()
            for algo in cudnn.FWD_ALGOS:
                try:
                    plan = cudnn.CudnnConvPlan.build(algo, conv.weight, conv.bias, g, x, math, "nhwc")
                except (cudnn.CudnnNotSupported, cudnn.WorkspaceOutOfMemory):
                    continue
                y = plan(x)
                assert in_layout(y, "nhwc") and plan.layout == "nhwc", f"{algo} on {name}: strides {y.stride()}"
                err = float((y.float() - expected).abs().max() / expected.abs().max())
                limit = (
                    LAYER_TOLERANCE.get(algo, DEFAULT_LAYER_TOLERANCE)
                    if dtype == torch.float32
                    else HALF_LAYER_TOLERANCE[dtype]
                )
                if err > limit:
                    too_far.append(f"{algo} on {name}: {err:.2e}")
                ran[algo] += 1
            cudnn.release_workspaces()
    assert not too_far, "\n".join(too_far)
    assert ran["direct"] == 0
    assert ran["implicit_precomp_gemm"] == len(_conv_layers(model_name, 224))


@pytest.mark.gpu
def test_an_nhwc_swap_runs_a_channels_last_model_and_its_rows_say_nhwc():
    model = model_to_layout(build_model("resnet18").cuda(), "nhwc")
    x = to_layout(torch.randn(2, 3, 64, 64, device="cuda"), "nhwc")
    with torch.inference_mode():
        expected = model(x)
        with swap(model, "guess", backend="cudnn", fallback="torch", math="fma", layout="nhwc") as s:
            got = model(x)
            plans = [p for m in s.swapped.values() for p in m.plans.values()]
    assert plans and all(p.status in ("ok", "fallback") for p in plans)
    torch.testing.assert_close(got, expected, rtol=1e-3, atol=1e-3 * float(expected.abs().max()))


@pytest.mark.gpu
def test_fallback_guess_on_gpu_records_the_chosen_algorithm():
    model = build_model("resnet18").cuda()
    with torch.inference_mode(), swap(model, "winograd", backend="cudnn", fallback="guess", math="fma") as s:
        model(torch.randn(1, 3, 64, 64, device="cuda"))
        conv1 = next(iter(s.swapped["conv1"].plans.values()))  # 7x7 stride 2: not winograd
    assert conv1.status in ("fallback", "ok") and conv1.algo_used in cudnn.FWD_ALGOS and conv1.backend == "cudnn"
