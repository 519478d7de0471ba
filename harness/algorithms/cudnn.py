"""cuDNN's legacy convolution API through ctypes, on the libcudnn.so.9 that PyTorch already loaded.

No build step and no second copy of cuDNN: the library is found among the objects this process has
mapped (PyTorch loads it on first use). Every status that is not SUCCESS becomes a CudnnError carrying the
library's own name for it (CUDNN_STATUS_NOT_SUPPORTED, ...); NOT_SUPPORTED and its sub-statuses are
CudnnNotSupported, which callers record per layer rather than crash on.

A ``CudnnConvPlan`` is built once per (layer, input shape, dtype): descriptors, the workspace (from
PyTorch's caching allocator) and one trial run. Its ``__call__`` then makes no descriptor or allocation
call besides the output tensor, and runs on PyTorch's current stream.
"""

from __future__ import annotations

import ctypes
import functools
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from harness.algorithms.geometry import ConvGeometry

log = logging.getLogger(__name__)

# CUDNN_CONVOLUTION_FWD_ALGO_* (cudnn_cnn.h), by our names.
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
_FWD_ALGO_COUNT = 8

_NCHW = 0  # CUDNN_TENSOR_NCHW
_CROSS_CORRELATION = 1  # CUDNN_CROSS_CORRELATION: what F.conv2d computes
DATA_TYPES = {torch.float32: 0, torch.float16: 2, torch.bfloat16: 9}  # CUDNN_DATA_FLOAT/HALF/BFLOAT16
MATH_TYPES = {"tensor_op": 1, "fma": 3}  # CUDNN_TENSOR_OP_MATH (allows TF32), CUDNN_FMA_MATH


class CudnnError(RuntimeError):
    """A cuDNN call failed; ``status`` is the code and ``name`` cuDNN's name for it."""

    def __init__(self, call: str, status: int, name: str) -> None:
        super().__init__(f"{call} failed: {name} ({status})")
        self.call, self.status, self.name = call, status, name


class CudnnNotSupported(CudnnError):
    """CUDNN_STATUS_NOT_SUPPORTED or one of its sub-statuses (3000-3999 in cuDNN 9)."""


class CudnnNotInitialized(CudnnError):
    """CUDNN_STATUS_NOT_INITIALIZED: typically no CUDA device or driver for cudnnCreate."""


class CudnnUnavailable(RuntimeError):
    """libcudnn could not be found or loaded."""


def error_for(call: str, status: int, name: str) -> CudnnError:
    """The exception for a status code, by cuDNN 9's status families (1xxx init, 2xxx bad param, ...)."""
    if 3000 <= status < 4000:
        return CudnnNotSupported(call, status, name)
    if status == 1001:
        return CudnnNotInitialized(call, status, name)
    return CudnnError(call, status, name)


def _loaded_cudnn_path() -> str | None:
    """The path of the libcudnn.so.* this process has mapped, if any."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return None
    for line in maps.splitlines():
        path = line.split()[-1] if line.split() else ""
        if Path(path).name.startswith("libcudnn.so"):
            return path
    return None


class _AlgoPerf(ctypes.Structure):
    """cudnnConvolutionFwdAlgoPerf_t."""

    _fields_ = [
        ("algo", ctypes.c_int),
        ("status", ctypes.c_int),
        ("time", ctypes.c_float),
        ("memory", ctypes.c_size_t),
        ("determinism", ctypes.c_int),
        ("mathType", ctypes.c_int),
        ("reserved", ctypes.c_int * 3),
    ]


class Cudnn:
    """The loaded library with typed entry points; ``call`` raises on any status but SUCCESS."""

    def __init__(self, lib: ctypes.CDLL, path: str) -> None:
        self.lib = lib
        self.path = path
        lib.cudnnGetVersion.restype = ctypes.c_size_t
        lib.cudnnGetErrorString.restype = ctypes.c_char_p
        lib.cudnnGetErrorString.argtypes = [ctypes.c_int]

    def version(self) -> int:
        return int(self.lib.cudnnGetVersion())

    def status_name(self, status: int) -> str:
        return self.lib.cudnnGetErrorString(status).decode()

    def call(self, name: str, *args: object) -> None:
        status = getattr(self.lib, name)(*args)
        if status != 0:
            raise error_for(name, status, self.status_name(status))

    # descriptors --------------------------------------------------------------------------------------
    def tensor_descriptor(self, shape: tuple[int, ...], dtype: torch.dtype) -> "Descriptor":
        d = Descriptor(self, "Tensor")
        self.call("cudnnSetTensor4dDescriptor", d.ptr, _NCHW, DATA_TYPES[dtype], *map(int, shape))
        return d

    def filter_descriptor(self, shape: tuple[int, ...], dtype: torch.dtype) -> "Descriptor":
        d = Descriptor(self, "Filter")
        self.call("cudnnSetFilter4dDescriptor", d.ptr, DATA_TYPES[dtype], _NCHW, *map(int, shape))
        return d

    def convolution_descriptor(self, g: ConvGeometry, dtype: torch.dtype, math: str) -> "Descriptor":
        d = Descriptor(self, "Convolution")
        compute = DATA_TYPES[torch.float32] if dtype == torch.bfloat16 else DATA_TYPES[dtype]
        self.call(
            "cudnnSetConvolution2dDescriptor", d.ptr, *g.padding, *g.stride, *g.dilation, _CROSS_CORRELATION,
            compute,
        )
        self.call("cudnnSetConvolutionGroupCount", d.ptr, g.groups)
        self.call("cudnnSetConvolutionMathType", d.ptr, MATH_TYPES[math])
        return d

    def output_shape(self, conv: "Descriptor", x: "Descriptor", w: "Descriptor") -> tuple[int, int, int, int]:
        dims = [ctypes.c_int() for _ in range(4)]
        self.call("cudnnGetConvolution2dForwardOutputDim", conv.ptr, x.ptr, w.ptr, *map(ctypes.byref, dims))
        return tuple(d.value for d in dims)  # type: ignore[return-value]

    # handles ------------------------------------------------------------------------------------------
    def create_handle(self) -> ctypes.c_void_p:
        handle = ctypes.c_void_p()
        self.call("cudnnCreate", ctypes.byref(handle))
        return handle


class Descriptor:
    """A cuDNN descriptor, destroyed when garbage-collected."""

    def __init__(self, cudnn: Cudnn, kind: str) -> None:
        self.cudnn, self.kind = cudnn, kind
        self.ptr = ctypes.c_void_p()
        cudnn.call(f"cudnnCreate{kind}Descriptor", ctypes.byref(self.ptr))

    def __del__(self) -> None:
        if self.ptr:
            getattr(self.cudnn.lib, f"cudnnDestroy{self.kind}Descriptor")(self.ptr)


@functools.lru_cache(maxsize=1)
def library() -> Cudnn:
    """The cuDNN that PyTorch uses (loaded by PyTorch first, then opened here by its path)."""
    if not torch.backends.cudnn.is_available():
        raise CudnnUnavailable("this PyTorch build has no cuDNN")
    torch.backends.cudnn.version()  # makes PyTorch load its libcudnn
    path = _loaded_cudnn_path()
    if path is None:
        raise CudnnUnavailable("PyTorch reports cuDNN, but no libcudnn.so is mapped in this process")
    try:
        lib = ctypes.CDLL(path)
    except OSError as e:
        raise CudnnUnavailable(f"cannot load {path}: {e}") from e
    cudnn = Cudnn(lib, path)
    log.debug("cuDNN %d from %s", cudnn.version(), path)
    return cudnn


_handles: dict[int, ctypes.c_void_p] = {}


def handle_for(device: torch.device) -> ctypes.c_void_p:
    """One cuDNN handle per CUDA device, created on first use with that device current."""
    if not torch.cuda.is_available():
        raise CudnnUnavailable("cuDNN needs a CUDA device, and this machine has none")
    index = device.index if device.index is not None else torch.cuda.current_device()
    if index not in _handles:
        with torch.cuda.device(index):
            _handles[index] = library().create_handle()
    return _handles[index]


def heuristic_choice(
    cudnn: Cudnn, handle: ctypes.c_void_p, x: Descriptor, w: Descriptor, conv: Descriptor, y: Descriptor
) -> list[str]:
    """cudnnGetConvolutionForwardAlgorithm_v7's successful algorithms, best first."""
    perf = (_AlgoPerf * _FWD_ALGO_COUNT)()
    returned = ctypes.c_int()
    cudnn.call(
        "cudnnGetConvolutionForwardAlgorithm_v7", handle, x.ptr, w.ptr, conv.ptr, y.ptr, _FWD_ALGO_COUNT,
        ctypes.byref(returned), perf,
    )
    return [FWD_ALGO_NAMES[p.algo] for p in perf[: returned.value] if p.status == 0 and p.algo in FWD_ALGO_NAMES]


@dataclass
class CudnnConvPlan:
    """cudnnConvolutionForward for one layer, one input shape and dtype, with one explicit algorithm."""

    algo: str
    math: str
    workspace_bytes: int
    out_shape: tuple[int, int, int, int]
    _cudnn: Cudnn
    _handle: ctypes.c_void_p
    _descs: tuple[Descriptor, Descriptor, Descriptor, Descriptor]  # x, w, conv, y
    _workspace: torch.Tensor | None
    _weight: torch.Tensor
    _bias: torch.Tensor | None
    _stream: int | None = None

    @classmethod
    def build(
        cls,
        algo: str,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        g: ConvGeometry,
        in_shape: tuple[int, ...],
        math: str,
    ) -> "CudnnConvPlan":
        """Descriptors, workspace and a trial run; raises CudnnNotSupported if cuDNN refuses the layer.

        ``algo`` is one of FWD_ALGOS or "guess" (cuDNN's heuristic; the plan's ``algo`` says what it chose).
        """
        cudnn, device, dtype = library(), weight.device, weight.dtype
        handle = handle_for(device)
        xd = cudnn.tensor_descriptor(in_shape, dtype)
        wd = cudnn.filter_descriptor(tuple(weight.shape), dtype)
        cd = cudnn.convolution_descriptor(g, dtype, math)
        out_shape = cudnn.output_shape(cd, xd, wd)
        yd = cudnn.tensor_descriptor(out_shape, dtype)
        candidates = heuristic_choice(cudnn, handle, xd, wd, cd, yd) if algo == "guess" else [algo]
        last: CudnnError | None = None
        for name in candidates:
            size = ctypes.c_size_t()
            try:
                cudnn.call(
                    "cudnnGetConvolutionForwardWorkspaceSize", handle, xd.ptr, wd.ptr, cd.ptr, yd.ptr,
                    FWD_ALGOS[name], ctypes.byref(size),
                )
                workspace = torch.empty(size.value, dtype=torch.uint8, device=device) if size.value else None
                plan = cls(name, math, size.value, out_shape, cudnn, handle, (xd, wd, cd, yd), workspace, weight, bias)
                plan(torch.zeros(in_shape, dtype=dtype, device=device))  # the trial run
                torch.cuda.synchronize(device)
                return plan
            except CudnnNotSupported as e:
                last = e
        if last is None:
            raise CudnnNotSupported("cudnnGetConvolutionForwardAlgorithm_v7", 3000, "CUDNN_STATUS_NOT_SUPPORTED (no algorithm)")
        raise last

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        y = torch.empty(self.out_shape, dtype=x.dtype, device=x.device)
        stream = torch.cuda.current_stream(x.device).cuda_stream
        if stream != self._stream:
            self._cudnn.call("cudnnSetStream", self._handle, ctypes.c_void_p(stream))
            self._stream = stream
        one, zero = ctypes.c_float(1.0), ctypes.c_float(0.0)
        xd, wd, cd, yd = self._descs
        ws = self._workspace
        self._cudnn.call(
            "cudnnConvolutionForward", self._handle, ctypes.byref(one), xd.ptr, ctypes.c_void_p(x.data_ptr()),
            wd.ptr, ctypes.c_void_p(self._weight.data_ptr()), cd.ptr, FWD_ALGOS[self.algo],
            ctypes.c_void_p(ws.data_ptr() if ws is not None else 0), ctypes.c_size_t(self.workspace_bytes),
            ctypes.byref(zero), yd.ptr, ctypes.c_void_p(y.data_ptr()),
        )
        if self._bias is not None:
            y += self._bias.view(1, -1, 1, 1)
        return y
