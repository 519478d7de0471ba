"""harness.acceptance.kernels: whether guess and torch ran the same kernels per layer (layers rows as the
store writes them, read back through Parquet)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from harness.acceptance.kernels import check_same_kernels, compute_kernels, kernel_pairs
from harness.acceptance.rows import INFO, as_rows
from harness.results.schema import LAYERS, to_table

XMMA = "sm90_xmma_fprop_implicit_gemm_tf32f32_tf32f32_f32_nhwckrsc_nchw_tilesize128x128x16"
XMMA_NHWC = "sm90_xmma_fprop_implicit_gemm_tf32f32_tf32f32_f32_nhwckrsc_nhwc_tilesize64x64x32"
WINOGRAD = "void cudnn::winograd::winograd3x3Kernel<float, float>(cudnn::winograd::KernelParams)"
TO_NHWC = "void cudnn::ops::nchwToNhwcKernel<float, float, float, false, true>(float)"
BIAS = "void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<float>>(int)"


def row(algo: str, layer: int, kernels: list[str] | None, family: str | None = None, **extra) -> dict:
    return {
        "model": "resnet50",
        "gpu": "h100",
        "algo": algo,
        "input_size": 224,
        "batch_size": 1,
        "dtype": "float32",
        "math_type": "tensor_op",
        "layer_index": layer,
        "layer_name": f"conv{layer}",
        "status": "ok",
        "kernels": kernels,
        "kernel_family": family,
    } | extra


def read_back(rows: list[dict], tmp_path: Path) -> list[dict]:
    """The rows as the acceptance reads them: written with the layers schema, read back into pandas."""
    pq.write_table(to_table(rows, LAYERS), tmp_path / "layers.parquet")
    return as_rows(pq.read_table(tmp_path / "layers.parquet").to_pandas())


def test_compute_kernels_leave_out_layouts_and_the_bias():
    assert compute_kernels(row("torch", 0, [TO_NHWC, XMMA, BIAS])) == frozenset({XMMA})
    assert compute_kernels(row("torch", 0, None)) is None and compute_kernels(row("torch", 0, [])) is None


def test_layers_are_paired_and_compared_by_their_compute_kernels(tmp_path: Path):
    rows = [
        # layer 0: the same xmma kernel (ours without the layout transform, torch's with it and a bias add)
        row("guess", 0, [XMMA], "xmma_implicit_gemm"),
        row("torch", 0, [TO_NHWC, XMMA, BIAS], "xmma_implicit_gemm"),
        # layer 1: different kernels
        row("guess", 1, [WINOGRAD], "winograd"),
        row("torch", 1, [XMMA_NHWC], "xmma_implicit_gemm"),
        # layer 2: torch has no kernels recorded (kernels=false): not compared
        row("guess", 2, [XMMA]),
        row("torch", 2, None),
        # another configuration: not paired with the tensor_op rows
        row("guess", 0, [WINOGRAD], math_type="fma"),
        row("torch", 0, [XMMA], math_type="tensor_op", input_size=256),
    ]
    pairs = kernel_pairs(read_back(rows, tmp_path))
    assert [(p.key[-1], p.same) for p in pairs] == [(0, True), (1, False)]
    check = check_same_kernels(read_back(rows, tmp_path))
    assert check.verdict == INFO
    assert check.figure == "1 of 2 layer calls (50%) ran the same compute kernels"
    (detail,) = check.details
    assert detail["same kernels"] == "1 of 2"
    assert detail["differing layers"] == "conv1 (guess winograd, torch xmma_implicit_gemm)"


def test_without_kernels_the_check_says_so():
    check = check_same_kernels([row("guess", 0, None), row("torch", 0, None)])
    assert check.figure.startswith("no layer with kernels recorded") and check.details == ()
