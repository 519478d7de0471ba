"""cuDNN's convolution algorithm enums, per direction, by the names this harness uses.

Values from cudnn_ops.h of the nvidia-cudnn wheel (cudnnConvolutionFwdAlgo_t, cudnnConvolutionBwdDataAlgo_t,
cudnnConvolutionBwdFilterAlgo_t); tests/test_cudnn_headers.py checks every table against the header.
The backward names keep cuDNN's own spelling (``algo_0``, ``algo_1``...) where cuDNN has no descriptive one.
"""

from __future__ import annotations

# CUDNN_CONVOLUTION_FWD_ALGO_*
FWD_ALGOS = {
    "implicit_gemm": 0,
    "implicit_precomp_gemm": 1,
    "gemm": 2,
    "direct": 3,
    "fft": 4,
    "fft_tiling": 5,
    "winograd": 6,
    "winograd_nonfused": 7,
}
FWD_ALGO_NAMES = {v: k for k, v in FWD_ALGOS.items()}
FWD_ALGO_COUNT = 8  # CUDNN_CONVOLUTION_FWD_ALGO_COUNT

# CUDNN_CONVOLUTION_BWD_DATA_ALGO_*
BWD_DATA_ALGOS = {
    "algo_0": 0,
    "algo_1": 1,
    "fft": 2,
    "fft_tiling": 3,
    "winograd": 4,
    "winograd_nonfused": 5,
}
BWD_DATA_ALGO_COUNT = 6  # CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT

# CUDNN_CONVOLUTION_BWD_FILTER_ALGO_*
BWD_FILTER_ALGOS = {
    "algo_0": 0,
    "algo_1": 1,
    "fft": 2,
    "algo_3": 3,
    "winograd": 4,
    "winograd_nonfused": 5,
    "fft_tiling": 6,
}
BWD_FILTER_ALGO_COUNT = 7  # CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT

# direction -> (enum table, count, header prefix)
DIRECTIONS = {
    "forward": (FWD_ALGOS, FWD_ALGO_COUNT, "CUDNN_CONVOLUTION_FWD_ALGO_"),
    "backward_data": (BWD_DATA_ALGOS, BWD_DATA_ALGO_COUNT, "CUDNN_CONVOLUTION_BWD_DATA_ALGO_"),
    "backward_filter": (BWD_FILTER_ALGOS, BWD_FILTER_ALGO_COUNT, "CUDNN_CONVOLUTION_BWD_FILTER_ALGO_"),
}

# What cudnn_ops.h says of the enums in its comments (tests/test_cudnn_headers.py reads them there):
# "Sum of matrix products with atomic adds. Non-deterministic." (BWD_DATA_ALGO_0, BWD_FILTER_ALGO_0) and
# "Like ALGO_0 with precomputed indices. Non-deterministic." (BWD_FILTER_ALGO_3); every other algorithm of the
# three enums is documented as deterministic or says nothing. Two runs of these may differ in the last bits.
NONDETERMINISTIC = {
    "forward": frozenset(),
    "backward_data": frozenset({"algo_0"}),
    "backward_filter": frozenset({"algo_0", "algo_3"}),
}
# "Winograd transform (not implemented)" (BWD_FILTER_ALGO_WINOGRAD): never called, always unsupported; PyTorch's
# own search leaves it out too (aten/src/ATen/native/cudnn/Conv_v7.cpp).
NOT_IMPLEMENTED = {
    "forward": frozenset(),
    "backward_data": frozenset(),
    "backward_filter": frozenset({"winograd"}),
}
