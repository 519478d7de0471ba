"""What really ran each layer (harness.measure.kernels): the pass on the CPU for real, the kernel-name
classifier and the tensor-core rule, the attribution of GPU kernels to layers, the columns in the results, and
the cuDNN API log's parser (harness.measure.cudnn_log)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
import torchvision
from torch import nn

from analysis.load import load
from analysis.tables import registry
from harness.algorithms.swap import swap
from harness.measure import cudnn_log, kernels
from harness.measure.kernels import Event, LayerKernels, classify_kernel, kernel_pass, layer_verdict, point_columns
from harness.results import read
from harness.run import runner
from tests.conftest import FAST
from tests.helpers import make_spec


def tiny_resnet() -> nn.Module:
    """resnet18's layout (stem, basic blocks, 1x1 strided downsamples), one block a stage: a few ms at 32x32."""
    resnet = torchvision.models.resnet
    return resnet.ResNet(resnet.BasicBlock, [1, 1, 1, 1]).eval()


# -- the pass, for real on the CPU -----------------------------------------------------------------------------
def test_the_pass_records_each_conv_calls_operators_on_the_cpu():
    model = tiny_resnet()
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    layers = kernel_pass(model, torch.randn(1, 3, 32, 32))
    assert [lk.name for lk in layers] == convs and [lk.index for lk in layers] == list(range(len(convs)))
    for lk in layers:
        assert lk.names[:3] == ("aten::conv2d", "aten::convolution", "aten::_convolution"), lk
        assert lk.family in {"onednn", "im2col_gemm", "nnpack"}, lk  # torch's CPU convolutions
        assert lk.tensor_cores is None  # a GPU's notion
        assert not any(n.startswith(kernels.LABEL) for n in lk.names)  # no layer's range inside another's
    # no batch norm or relu (which run between the convolutions) inside a conv's range
    assert not any("batch_norm" in n or "relu" in n for lk in layers for n in lk.names)


def test_the_pass_sees_a_swapped_layer_run_the_reference_gemm():
    model = tiny_resnet()
    swap(model, {"layer1.0.conv1": "gemm"}, backend="reference")
    layers = {lk.name: lk for lk in kernel_pass(model, torch.randn(1, 3, 32, 32))}
    ours = layers["layer1.0.conv1"]
    assert "aten::im2col" in ours.names and ours.family == "gemm", ours  # F.unfold + matmul, no aten::conv2d
    assert "aten::conv2d" not in ours.names
    assert layers["layer1.0.conv2"].names[0] == "aten::conv2d"


def test_a_module_called_twice_gives_two_calls():
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(torch.relu(self.conv(x)))

    layers = kernel_pass(Twice().eval(), torch.randn(1, 3, 8, 8))
    assert [(lk.index, lk.name) for lk in layers] == [(0, "conv"), (1, "conv")]
    assert all(lk.names and "aten::relu" not in lk.names for lk in layers)


def test_a_run_with_kernels_true_writes_the_columns(results: Path):
    runner.run(make_spec(results, *FAST, "kernels=true"))
    (p,) = read(results).to_dict("records")
    layers = read(results, "layers")
    assert len(layers) == p["conv_layers"] == 20  # resnet18
    assert all("aten::conv2d" in list(k) for k in layers["kernels"])
    assert set(layers["kernel_family"]) <= {"onednn", "im2col_gemm", "nnpack"}
    assert layers["tensor_cores"].isna().all() and layers["cudnn_engine"].isna().all()
    counts = dict(part.split(":") for part in p["kernel_families"].split("; "))
    assert sum(map(int, counts.values())) == 20
    assert pd.isna(p["tensor_core_layers"])  # null on the CPU


def test_without_kernels_the_columns_are_null(results: Path):
    runner.run(make_spec(results, *FAST))
    (p,) = read(results).to_dict("records")
    layers = read(results, "layers")
    assert pd.isna(p["kernel_families"]) and layers["kernels"].isna().all() and layers["kernel_family"].isna().all()


NEW_LAYER_COLUMNS = ("kernels", "kernel_family", "tensor_cores", "cudnn_engine")
NEW_POINT_COLUMNS = ("kernel_families", "tensor_core_layers")


def test_a_tree_written_before_the_columns_still_loads(results: Path):
    """Files without the new columns (as every earlier run wrote them) read with the columns null."""
    runner.run(make_spec(results, *FAST))
    for path in results.rglob("*.parquet"):
        table = pq.read_table(path)
        table = table.drop_columns([c for c in (*NEW_LAYER_COLUMNS, *NEW_POINT_COLUMNS) if c in table.schema.names])
        pq.write_table(table, path)
    assert not set(NEW_LAYER_COLUMNS) & set(pq.read_schema(next(results.rglob("layers-*.parquet"))).names)
    layers, points = read(results, "layers"), read(results)
    assert layers["kernel_family"].isna().all() and points["tensor_core_layers"].isna().all()
    res = load(results)
    assert registry.compute_all(res.points, res.layers)["kernel_families"].empty


# -- kernel names (the real names, as public profiles show them; see harness.measure.kernels) -----------------
@pytest.mark.parametrize(
    ("name", "family", "tensor_cores"),
    [
        *(
            (name, "xmma_implicit_gemm", tc)
            for name, tc in (
                ("sm80_xmma_fprop_implicit_gemm_indexed_f32f32_f32f32_f32_nchwkcrs_nchw_tilesize32x32x8", False),
                ("sm90_xmma_fprop_implicit_gemm_bf16bf16_bf16f32_f32_nhwckrsc_nhwc_tilesize128x128x64", True),
                ("sm80_xmma_fprop_implicit_gemm_nhwc", None),  # no operand types: unknown
            )
        ),
        (
            "sm80_xmma_fprop_implicit_gemm_tf32f32_tf32f32_f32_nhwckrsc_nchw_tilesize128x128x16_stage4_warpsize2x2x1_g1"
            "_tensor16x8x8",
            "xmma_implicit_gemm",
            True,
        ),
        ("void cudnn::detail::implicit_convolve_sgemm<float, float, int=128, int=6>(int)", "implicit_gemm", False),
        ("void precomputed_convolve_sgemm<float, 1024, 5, 5, 4, 3, 3, 1, false>(int)", "implicit_precomp_gemm", False),
        ("void cudnn::detail::explicit_convolve_sgemm<float, int, int=512>(int)", "gemm", False),
        ("volta_scudnn_128x64_relu_small_nn_v1", "cudnn_implicit_gemm", False),
        ("volta_fp16_s884cudnn_fp16_256x128_ldg8_relu_f2f_exp_small_nhwc2nchw_tn_v1", "cudnn_implicit_gemm", True),
        ("turing_fp16_s1688cudnn_fp16_128x128_ldg8_relu_f2f_exp_interior_nhwc_tn_v1", "cudnn_implicit_gemm", True),
        ("maxwell_scudnn_winograd_128x128_ldg1_ldg4_relu_tile418n_nt", "winograd", False),
        ("void cudnn::winograd::generateWinogradTilesKernel<0, float, float>(float)", "winograd_nonfused", False),
        ("void fft2d_c2r_16x16<float, bool=0>(float*, float2*)", "fft", False),
        ("void DSE::vector_fft<int=0, int=1, int=256>(float2*)", "fft", False),
        ("cutlass_80_tensorop_s1688gemm_128x128_32x3_nn_align4", "cutlass_gemm", True),
        ("cutlass_80_simt_sgemm_128x128_8x2_nn_align1", "cutlass_gemm", False),
        ("void cutlass::Kernel<cutlass_90_wgmma_f16_s64x128x16gemm_f16_f16_f32>(Params)", "cutlass_gemm", True),
        ("ampere_sgemm_128x64_nn", "gemm", False),
        ("ampere_h16816gemm_256x128_ldg8_stages_32x3_nn", "gemm", True),
        ("void some_new_kernel<float>(float*)", "unknown", None),
    ],
)
def test_kernel_names_are_classified_by_the_documented_rule(name: str, family: str, tensor_cores: bool | None):
    c = classify_kernel(name)
    assert (c.family, c.tensor_cores) == (family, tensor_cores)


@pytest.mark.parametrize(
    "name",
    [
        "void cudnn::ops::nchwToNhwcKernel<float, float, float, false, true>(cudnn::ops::nchw2nhwc_params_t<float>)",
        "void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<float>>(int)",
        "void cudnn::detail::cubeTransposeDeviceGeneric_kernel<float, float, float, int=8>(int)",
        "void op_tensor_kernel<int=2, float, float, float>(cudnnTensorStruct)",
        "[CUDA memset]",
    ],
)
def test_layout_copy_and_bias_kernels_are_support(name: str):
    assert not classify_kernel(name).compute


def test_a_layers_verdict():
    xmma_tf32 = "sm80_xmma_fprop_implicit_gemm_tf32f32_tf32f32_f32_nhwckrsc_nchw"
    layout = "void cudnn::ops::nchwToNhwcKernel<float>"
    sgemm = "void cudnn::detail::implicit_convolve_sgemm<float>"
    assert layer_verdict([layout, xmma_tf32, layout], "cuda") == ("xmma_implicit_gemm", True)
    assert layer_verdict([sgemm, layout], "cuda") == ("implicit_gemm", False)
    assert layer_verdict([sgemm, xmma_tf32], "cuda") == ("implicit_gemm+xmma_implicit_gemm", True)  # any votes
    assert layer_verdict([sgemm, "mystery_kernel"], "cuda") == ("unknown", None)  # never a guess
    assert layer_verdict([layout], "cuda") == ("unknown", None)
    assert layer_verdict([], "cuda") == ("unknown", None)
    assert layer_verdict(["aten::conv2d", "aten::mkldnn_convolution", "aten::empty"], "cpu") == ("onednn", None)
    assert layer_verdict(["aten::_fft_r2c", "aten::matmul", "aten::bmm"], "cpu") == ("fft+gemm", None)


def test_point_columns_summarise_the_layers():
    def lk(i: int, family: str, tc: bool | None) -> LayerKernels:
        return LayerKernels(i, f"l{i}", ("k",), family, tc)

    layers = [lk(0, "winograd", False), lk(1, "xmma_implicit_gemm", True), lk(2, "xmma_implicit_gemm", True)]
    assert point_columns(layers) == {"kernel_families": "xmma_implicit_gemm:2; winograd:1", "tensor_core_layers": 2}
    assert point_columns([lk(0, "onednn", None)]) == {"kernel_families": "onednn:1", "tensor_core_layers": None}
    assert point_columns(None) == {} and point_columns([]) == {}


# -- attributing GPU kernels to layers (the profiler's events reduced to Event records) ---------------------
def test_gpu_kernels_go_to_the_layer_whose_range_launched_them():
    label0, label1 = f"{kernels.LABEL}[0] conv1", f"{kernels.LABEL}[1] conv2"
    events = [
        Event(label0, False, 0, 100, 1),
        Event("aten::cudnn_convolution", False, 10, 60, 1, ("sm90_xmma_fprop_implicit_gemm_tf32f32_tf32f32_f32",)),
        # our ctypes cuDNN call opens no operator: kineto links its kernels to the innermost open range, ours
        Event(label1, False, 100, 200, 1, ("void cudnn::detail::implicit_convolve_sgemm<float>", label1)),
        Event("aten::add_", False, 140, 150, 1, ("void at::native::vectorized_elementwise_kernel<4>",)),
        Event("aten::batch_norm", False, 210, 220, 1, ("void at::native::batch_norm_kernel<float>",)),  # after
        # the kernels themselves run later, on the device's timeline
        Event("sm90_xmma_fprop_implicit_gemm_tf32f32_tf32f32_f32", True, 500, 600, 7),
    ]
    seen = kernels.attribute(events, "cuda")
    assert seen == {
        0: ["sm90_xmma_fprop_implicit_gemm_tf32f32_tf32f32_f32"],
        1: ["void cudnn::detail::implicit_convolve_sgemm<float>", "void at::native::vectorized_elementwise_kernel<4>"],
    }


def test_gpu_side_ranges_add_the_kernels_inside_them():
    label = f"{kernels.LABEL}[0] conv1"
    events = [
        Event(label, False, 0, 10, 1),
        Event(label, True, 500, 700, 7),  # the range on the device's timeline
        Event("winograd3x3Kernel", True, 510, 690, 7),
        Event("later_kernel", True, 710, 800, 7),
    ]
    assert kernels.attribute(events, "cuda") == {0: ["winograd3x3Kernel"]}


# -- cuDNN's API log (GPU only to produce; its parser runs here) --------------------------------------------------
# NOT a captured log: an excerpt written for this test from the documented record format (cuDNN docs,
# "Error Reporting and API Logging") and the records posted in NVIDIA/cudnn-frontend#39 and
# pytorch/pytorch#167242: a header line "I! CuDNN (v...) function NAME() called:", then "i!" lines of
# "name: type=...; val=...;" with nested descriptors indented. The replay's markers around each layer's run.
LOG_EXCERPT = """\
I! CuDNN (v92400 43) function cudnnCreate() called:
i!     handle: location=host; addr=0x7ffd5b1c2a40;
i! Time: 2026-12-05T09:00:00.000001 (0d+0h+0m+0s since start)
i! Process=4242; Thread=4242; GPU=NULL; Handle=NULL; StreamId=NULL.

I! CuDNN (v92400 43) function cudnnBackendFinalize() called:
i!     descriptor: type=CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR:
i!         engcfg: type=CUDNN_BACKEND_ENGINECFG_DESCRIPTOR:
i!             engine: type=CUDNN_BACKEND_ENGINE_DESCRIPTOR:
i!                 engine_id: type=int; val=9;
i! Time: 2026-12-05T09:00:00.000101 (0d+0h+0m+0s since start)
i! Process=4242; Thread=4242; GPU=0; Handle=0x5581a0; StreamId=0x0 (defaultStream).

I! CuDNN (v92400 43) function cudnnBackendExecute() called:
i!     handle: type=cudnnHandle_t; streamId=0x0 (defaultStream);
i!     executionPlan: type=CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR:
i!         engcfg: type=CUDNN_BACKEND_ENGINECFG_DESCRIPTOR:
i!             engine: type=CUDNN_BACKEND_ENGINE_DESCRIPTOR:
i!                 engine_id: type=int; val=9;
i! Time: 2026-12-05T09:00:00.000201 (0d+0h+0m+0s since start)
i! Process=4242; Thread=4242; GPU=0; Handle=0x5581a0; StreamId=0x0 (defaultStream).

I! CuDNN (v92400 43) function cudnnCreateTensorDescriptor() called:
i! Time: 2026-12-05T09:00:00.000301 (0d+0h+0m+0s since start)
i! Process=4242; Thread=4242; GPU=NULL; Handle=NULL; StreamId=NULL.

I! CuDNN (v92400 43) function cudnnBackendExecute() called:
i!     handle: type=cudnnHandle_t; streamId=0x0 (defaultStream);
i!     executionPlan: type=CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR:
i!         engcfg: type=CUDNN_BACKEND_ENGINECFG_DESCRIPTOR:
i!             engine: type=CUDNN_BACKEND_ENGINE_DESCRIPTOR:
i!                 engine_id: type=int; val=9;
i! Time: 2026-12-05T09:00:00.000401 (0d+0h+0m+0s since start)
i! Process=4242; Thread=4242; GPU=0; Handle=0x5581a0; StreamId=0x0 (defaultStream).

I! CuDNN (v92400 43) function cudnnCreateTensorDescriptor() called:
i! Time: 2026-12-05T09:00:00.000501 (0d+0h+0m+0s since start)
i! Process=4242; Thread=4242; GPU=NULL; Handle=NULL; StreamId=NULL.

I! CuDNN (v92400 43) function cudnnDestroyTensorDescriptor() called:
i! Time: 2026-12-05T09:00:00.000502 (0d+0h+0m+0s since start)
i! Process=4242; Thread=4242; GPU=NULL; Handle=NULL; StreamId=NULL.

I! CuDNN (v92400 43) function cudnnBackendSetAttribute() called:
i!     descriptor: type=CUDNN_BACKEND_ENGINE_DESCRIPTOR:
i!     attributeName: type=cudnnBackendAttributeName_t; val=CUDNN_ATTR_ENGINE_GLOBAL_INDEX (301);
i!     attributeType: type=cudnnBackendAttributeType_t; val=CUDNN_TYPE_INT64 (3);
i!     elementCount: type=int64_t; val=1;
i!     [0]: type=int64_t; val=17;
i! Time: 2026-12-05T09:00:00.000601 (0d+0h+0m+0s since start)
i! Process=4242; Thread=4242; GPU=NULL; Handle=NULL; StreamId=NULL.

I! CuDNN (v92400 43) function cudnnCreateTensorDescriptor() called:
i! Time: 2026-12-05T09:00:00.000701 (0d+0h+0m+0s since start)
i! Process=4242; Thread=4242; GPU=NULL; Handle=NULL; StreamId=NULL.

I! CuDNN (v92400 43) function cudnnBackendExecute() called:
i!     handle: type=cudnnHandle_t; streamId=0x0 (defaultStream);
i!     executionPlan: type=CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR:
i!         engcfg: type=CUDNN_BACKEND_ENGINECFG_DESCRIPTOR:
i!             engine: type=CUDNN_BACKEND_ENGINE_DESCRIPTOR:
i!                 engine_id: type=int; val=17;
i! Time: 2026-12-05T09:00:00.000801 (0d+0h+0m+0s since start)
i! Process=4242; Thread=4242; GPU=0; Handle=0x5581a0; StreamId=0x0 (defaultStream).

I! CuDNN (v92400 43) function cudnnCreateTensorDescriptor() called:
i! Time: 2026-12-05T09:00:00.000901 (0d+0h+0m+0s since start)
i! Process=4242; Thread=4242; GPU=NULL; Handle=NULL; StreamId=NULL.

I! CuDNN (v92400 43) function cudnnCreateTensorDescriptor() called:
i! Time: 2026-12-05T09:00:00.001001 (0d+0h+0m+0s since start)
i! Process=4242; Thread=4242; GPU=NULL; Handle=NULL; StreamId=NULL.

I! CuDNN (v92400 43) function cudnnCreateTensorDescriptor() called:
i! Time: 2026-12-05T09:00:00.001101 (0d+0h+0m+0s since start)
i! Process=4242; Thread=4242; GPU=NULL; Handle=NULL; StreamId=NULL.
"""


def test_the_log_parser_reads_records_and_their_nested_fields():
    calls = cudnn_log.parse(LOG_EXCERPT)
    assert [c.function for c in calls[:3]] == ["cudnnCreate", "cudnnBackendFinalize", "cudnnBackendExecute"]
    assert calls[2].engine() == "eng9" and calls[0].engine() is None
    assert calls[7].engine() == "eng17"  # CUDNN_ATTR_ENGINE_GLOBAL_INDEX set by attribute
    assert calls[7].fields[0] == (5, "descriptor", "type=CUDNN_BACKEND_ENGINE_DESCRIPTOR:")  # indent kept
    assert calls[2].fields[2][:2] == (9, "engcfg")


def test_each_layer_gets_the_engine_executed_between_its_markers():
    # three layers: eng9; eng17; the third ran nothing through cuDNN (no execute between its markers)
    assert cudnn_log.engines_by_layer(LOG_EXCERPT, 3) == ["eng9", "eng17", None]


def test_markers_that_do_not_match_the_layers_give_no_engine(caplog: pytest.LogCaptureFixture):
    assert cudnn_log.engines_by_layer(LOG_EXCERPT, 2) == [None, None]
    assert "6 marker calls for 2 layers" in caplog.text
    assert cudnn_log.engines_by_layer("", 1) == [None]


def test_the_replay_describes_each_layer_call():
    model = tiny_resnet()
    from harness.measure.profiler import layer_pass

    records = layer_pass(model, torch.randn(2, 3, 32, 32), 1)
    replay = cudnn_log.replay_of(records, "float32", "tensor_op", False, 0)
    assert len(replay.calls) == len(records)
    first, down = replay.calls[0], next(c for c, r in zip(replay.calls, records) if r.name == "layer2.0.downsample.0")
    assert first.in_shape == (2, 3, 32, 32) and first.weight_shape == (64, 3, 7, 7)
    assert (first.stride, first.padding, first.bias) == ((2, 2), (3, 3), False)
    assert down.weight_shape[2:] == (1, 1) and down.stride == (2, 2) and down.padding == (0, 0)


@pytest.mark.gpu
def test_the_torch_baselines_engines_come_from_cudnns_log():
    """GPU: the replay in its own process logs an execute per layer; every cuDNN layer gets an engine."""
    model = tiny_resnet().cuda()
    from harness.measure.profiler import layer_pass

    with torch.inference_mode():
        records = layer_pass(model, torch.randn(1, 3, 64, 64, device="cuda"), 1)
    engines = cudnn_log.torch_engines(cudnn_log.replay_of(records, "float32", "tensor_op", False, 0))
    assert len(engines) == len(records) and all(e is not None and e.startswith("eng") for e in engines), engines


GPU = [*FAST, "device=cuda", "stage.sizes=[64]", "stage.energy_window_s=0", "kernels=true"]


@pytest.mark.gpu
@pytest.mark.parametrize("algo", ["torch", "guess", "implicit_precomp_gemm"])
def test_on_the_gpu_every_layer_names_the_kernels_that_ran_it(results: Path, algo: str):
    """GPU: CUPTI's kernels reach every layer (our ctypes cuDNN calls' too), each family is known, and the torch
    baseline's layers name their cuDNN engine. A family or flag the classifier does not know fails here: add the
    name's pattern (harness.measure.kernels) from what this prints."""
    runner.run(make_spec(results, *GPU, f"algo={algo}", "fallback=torch"))
    (p,) = read(results).to_dict("records")
    layers = read(results, "layers")
    assert p["status"] == "ok" and len(layers) == p["conv_layers"] == 20
    unknown = layers.loc[layers["kernel_family"] == "unknown", ["layer_name", "kernels"]]
    assert all(len(k) for k in layers["kernels"]), layers[["layer_name", "kernels"]]
    assert unknown.empty, unknown.to_string()
    assert layers["tensor_cores"].notna().all(), layers[["layer_name", "kernels", "tensor_cores"]].to_string()
    assert isinstance(p["kernel_families"], str) and p["tensor_core_layers"] >= 0
    if algo == "torch":
        assert layers["cudnn_engine"].str.startswith("eng").all(), layers[["layer_name", "cudnn_engine"]]


def test_the_replay_round_trips_through_its_file(tmp_path: Path):
    call = cudnn_log.ConvCall((1, 3, 8, 8), (4, 3, 3, 3), (1, 1), (1, 1), (1, 1), 1, True)
    replay = cudnn_log.Replay((call, call), "float16", "fma", True, 0)
    path = tmp_path / "replay.json"
    path.write_text(json.dumps(dataclasses.asdict(replay)))
    assert cudnn_log._load(path) == replay


@pytest.mark.skipif(torch.cuda.is_available(), reason="the replay fails only without a GPU")
def test_without_a_gpu_the_replay_process_fails_and_no_engine_is_claimed(caplog: pytest.LogCaptureFixture):
    call = cudnn_log.ConvCall((1, 3, 8, 8), (4, 3, 3, 3), (1, 1), (1, 1), (1, 1), 1, False)
    engines = cudnn_log.torch_engines(cudnn_log.Replay((call, call), "float32", "fma", False, 0), timeout_s=600)
    assert engines == [None, None]
    assert "the replay failed" in caplog.text
