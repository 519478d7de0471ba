"""The built-in algorithm records, registered when harness.algorithms is imported.

The order is ALGORITHMS' order: cuDNN's CUDNN_CONVOLUTION_FWD_ALGO_* order, then the heuristic, cuDNN's
search and the baseline. Each description is the comment of its conf/algo/<name>.yaml (registry.config_text).
The backward names are cuDNN's enums of the same method where the header's descriptions say so (ALGO_0: sums
of matrix products, ALGO_1: implicit GEMM, ALGO_3: ALGO_0 with precomputed indices); nothing measures them yet,
the training-step work will, and should confirm them.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any

from harness.algorithms.registry import Algorithm, CudnnAlgo, register


class _Lazy:
    """``harness.algorithms.<module>.<name>``, imported on first call: the records (and every list of names
    derived from them) load without the references' torch, which only running a reference needs."""

    def __init__(self, module: str, name: str) -> None:
        self._where = (f"harness.algorithms.{module}", name)

    @functools.cached_property
    def target(self) -> Callable[..., Any]:
        """The function itself (its module imported now if not before)."""
        module, name = self._where
        return getattr(importlib.import_module(module), name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.target(*args, **kwargs)

    def __repr__(self) -> str:
        return ".".join(self._where)


def _ref(name: str) -> _Lazy:
    """A forward reference's factory or support rule (harness.algorithms.reference)."""
    return _Lazy("reference", name)


def _bwd(name: str) -> _Lazy:
    """A backward reference's factory (harness.algorithms.reference_backward)."""
    return _Lazy("reference_backward", name)


def _fwd(name: str, *, bwd_data: str | None = None, bwd_filter: str | None = None) -> tuple[CudnnAlgo, ...]:
    """The cuDNN enums of one method: forward ``name``, and the backward ones where cuDNN has them."""
    nchw = ("NCHW",)  # backward: not measured yet, so NCHW, the layout the training-step work starts from
    # forward: measured in both (layout=nchw|nhwc); whether cuDNN runs a layer in NHWC is its answer per layer
    out = [CudnnAlgo("forward", name, ("NCHW", "NHWC"))]
    if bwd_data:
        out.append(CudnnAlgo("backward_data", bwd_data, nchw))
    if bwd_filter:
        out.append(CudnnAlgo("backward_filter", bwd_filter, nchw))
    return tuple(out)


BUILTIN = (
    Algorithm(
        "implicit_gemm",
        "cudnn",
        "cuDNN CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM",
        _fwd("implicit_gemm", bwd_data="algo_1", bwd_filter="algo_1"),
        ai3="implicit gemm",
        in_sweep=True,
    ),
    Algorithm(
        "implicit_precomp_gemm",
        "cudnn",
        "cuDNN CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM",
        _fwd("implicit_precomp_gemm", bwd_filter="algo_3"),
        ai3="implicit precomp gemm",
        in_sweep=True,
    ),
    Algorithm(
        "gemm",
        "cudnn",
        "cuDNN CUDNN_CONVOLUTION_FWD_ALGO_GEMM (GPU); im2col + matmul reference (CPU)",
        _fwd("gemm", bwd_data="algo_0", bwd_filter="algo_0"),
        reference=_ref("gemm_runner"),
        reference_backward_data=_bwd("gemm_backward_data_runner"),
        reference_backward_filter=_bwd("gemm_backward_filter_runner"),
        reference_layouts=("nchw", "nhwc"),
        ai3="gemm",
        in_sweep=True,
    ),
    Algorithm(
        "direct",
        "cudnn",
        "cuDNN CUDNN_CONVOLUTION_FWD_ALGO_DIRECT (not implemented by cuDNN); shifted-slice reference (CPU)",
        _fwd("direct"),
        reference=_ref("direct_runner"),
        reference_backward_data=_bwd("direct_backward_data_runner"),
        reference_backward_filter=_bwd("direct_backward_filter_runner"),
        reference_layouts=("nchw", "nhwc"),
        ai3="direct",
        in_sweep=True,
    ),
    Algorithm(
        "fft",
        "cudnn",
        "cuDNN CUDNN_CONVOLUTION_FWD_ALGO_FFT (GPU); rfft2 reference (CPU)",
        _fwd("fft", bwd_data="fft", bwd_filter="fft"),
        reference=_ref("fft_runner"),
        reference_backward_data=_bwd("fft_backward_data_runner"),
        reference_backward_filter=_bwd("fft_backward_filter_runner"),
        reference_layouts=("nchw", "nhwc"),
        in_sweep=True,
    ),
    Algorithm(
        "fft_tiling",
        "cudnn",
        "cuDNN CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING",
        _fwd("fft_tiling", bwd_data="fft_tiling", bwd_filter="fft_tiling"),
        in_sweep=True,
    ),
    Algorithm(
        "winograd",
        "cudnn",
        "cuDNN CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD (GPU); Winograd F(2x2,3x3) reference (CPU)",
        _fwd("winograd", bwd_data="winograd"),  # BWD_FILTER_ALGO_WINOGRAD: "not implemented"
        reference=_ref("winograd_runner"),
        reference_backward_data=_bwd("winograd_backward_data_runner"),
        reference_backward_filter=_bwd("winograd_backward_filter_runner"),
        reference_layouts=("nchw", "nhwc"),
        supports=_ref("winograd_supports"),
        ai3="winograd",
        in_sweep=True,
    ),
    Algorithm(
        "winograd_nonfused",
        "cudnn",
        "cuDNN CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED",
        _fwd("winograd_nonfused", bwd_data="winograd_nonfused", bwd_filter="winograd_nonfused"),
        in_sweep=True,
    ),
    Algorithm(
        "guess",
        "heuristic",
        "cuDNN's heuristic: cudnnGetConvolutionForwardAlgorithm_v7, first successful result (recorded)",
        ai3="guess",
        in_sweep=True,
    ),
    Algorithm(
        "find",
        "search",
        "cuDNN's exhaustive search per layer (cudnnFindConvolutionForwardAlgorithmEx, what PyTorch's cudnn.benchmark\n"
        "uses): each layer runs what Find timed fastest; its row's detail keeps Find's times (GPU only)",
    ),
    Algorithm("torch", "baseline", "The framework's own convolution, nothing swapped: the baseline"),
)


def register_builtin() -> None:
    """Register every built-in record (once: a name already registered is kept)."""
    from harness.algorithms import registry

    for algo in BUILTIN:
        if algo.name not in registry.names():
            register(algo)
