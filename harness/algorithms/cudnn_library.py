"""cuDNN's library through ctypes: finding the libcudnn.so.9 PyTorch loaded, the entry points' prototypes
(``PROTOTYPES``, checked against the wheel's headers by tests/test_cudnn_headers.py), statuses as errors,
descriptors and one handle per device. What runs a convolution on it is harness.algorithms.cudnn."""

from __future__ import annotations

import ctypes
import functools
import logging
from ctypes import POINTER, c_char_p, c_float, c_int, c_size_t, c_void_p
from dataclasses import dataclass
from pathlib import Path

import torch

from harness.algorithms.geometry import ConvGeometry
from harness.errors import MissingEnvironmentError

log = logging.getLogger(__name__)

TENSOR_NCHW = 0  # CUDNN_TENSOR_NCHW
TENSOR_NHWC = 1  # CUDNN_TENSOR_NHWC: channels interleaved (C stride 1), torch.channels_last
# cudnnTensorFormat_t per layout (harness.algorithms.memory_layout). The dimensions are always given as
# (n, c, h, w) (filters: (k, c, r, s)); the format says how they lie in memory: NHWC tensors have strides
# (h*w*c, 1, w*c, c) and NHWC filters are KRSC, which is exactly torch.channels_last for both.
TENSOR_FORMATS = {"nchw": TENSOR_NCHW, "nhwc": TENSOR_NHWC}
CROSS_CORRELATION = 1  # CUDNN_CROSS_CORRELATION: what F.conv2d computes
DATA_TYPES = {torch.float32: 0, torch.float16: 2, torch.bfloat16: 9}  # CUDNN_DATA_FLOAT/HALF/BFLOAT16
COMPUTE_TYPE = 0  # CUDNN_DATA_FLOAT: PyTorch's compute type for FLOAT, HALF and BFLOAT16 data
COMPUTE_TYPE_NAME = "float32"
MATH_TYPES = {"tensor_op": 1, "fma": 3}  # CUDNN_TENSOR_OP_MATH (allows TF32), CUDNN_FMA_MATH

# cudnnStatus_t (cudnn_graph.h) that mean "this layer cannot run this algorithm here": not supported,
# graph pattern, shape, data type, layout, arch mismatch, shared memory, padding, launch parameters,
# dynamic shape. 3005/3006 (driver, runtime), 3008 (prerequisite), 3009 (sub-library) describe the
# environment and 3013 the CUDA-graph API: those are errors of the point, not of the layer.
LAYER_STATUSES = frozenset({3000, 3001, 3002, 3003, 3004, 3007, 3010, 3011, 3012, 3014})
STATUS_NOT_INITIALIZED = 1001


DETERMINISTIC = 1  # CUDNN_DETERMINISTIC (cudnnDeterminism_t): a perf struct's ``determinism`` for reproducible

# The three perf structs of cudnn_cnn.h have one layout: the algorithm, the status of trying it, its time, its
# workspace, whether it is deterministic, its math type. One class each, so every prototype names its own.
_PERF_FIELDS = [
    ("algo", c_int),
    ("status", c_int),
    ("time", c_float),
    ("memory", c_size_t),
    ("determinism", c_int),
    ("mathType", c_int),
    ("reserved", c_int * 3),
]


class _AlgoPerf(ctypes.Structure):
    """cudnnConvolutionFwdAlgoPerf_t."""

    _fields_ = _PERF_FIELDS


class _BwdDataAlgoPerf(ctypes.Structure):
    """cudnnConvolutionBwdDataAlgoPerf_t."""

    _fields_ = _PERF_FIELDS


class _BwdFilterAlgoPerf(ctypes.Structure):
    """cudnnConvolutionBwdFilterAlgoPerf_t."""

    _fields_ = _PERF_FIELDS


_P, _I, _PI = c_void_p, c_int, POINTER(c_int)
# name -> (restype, argtypes), as declared in cudnn_graph.h / cudnn_ops.h / cudnn_cnn.h (cuDNN 9).
# Handles, descriptors, streams and data pointers are c_void_p; enums are c_int.
PROTOTYPES: dict[str, tuple[object, list[object]]] = {
    "cudnnGetVersion": (c_size_t, []),
    "cudnnGetErrorString": (c_char_p, [_I]),
    "cudnnCreate": (_I, [POINTER(c_void_p)]),
    "cudnnSetStream": (_I, [_P, _P]),
    "cudnnCreateTensorDescriptor": (_I, [POINTER(c_void_p)]),
    "cudnnDestroyTensorDescriptor": (_I, [_P]),
    "cudnnCreateFilterDescriptor": (_I, [POINTER(c_void_p)]),
    "cudnnDestroyFilterDescriptor": (_I, [_P]),
    "cudnnCreateConvolutionDescriptor": (_I, [POINTER(c_void_p)]),
    "cudnnDestroyConvolutionDescriptor": (_I, [_P]),
    "cudnnSetTensor4dDescriptor": (_I, [_P, _I, _I, _I, _I, _I, _I]),
    "cudnnGetTensor4dDescriptor": (_I, [_P, _PI, _PI, _PI, _PI, _PI, _PI, _PI, _PI, _PI]),
    "cudnnSetFilter4dDescriptor": (_I, [_P, _I, _I, _I, _I, _I, _I]),
    "cudnnGetFilter4dDescriptor": (_I, [_P, _PI, _PI, _PI, _PI, _PI, _PI]),
    "cudnnSetConvolution2dDescriptor": (_I, [_P, _I, _I, _I, _I, _I, _I, _I, _I]),
    "cudnnGetConvolution2dDescriptor": (_I, [_P, _PI, _PI, _PI, _PI, _PI, _PI, _PI, _PI]),
    "cudnnSetConvolutionGroupCount": (_I, [_P, _I]),
    "cudnnGetConvolutionGroupCount": (_I, [_P, _PI]),
    "cudnnSetConvolutionMathType": (_I, [_P, _I]),
    "cudnnGetConvolutionMathType": (_I, [_P, _PI]),
    "cudnnGetConvolution2dForwardOutputDim": (_I, [_P, _P, _P, _PI, _PI, _PI, _PI]),
    "cudnnGetConvolutionForwardAlgorithm_v7": (_I, [_P, _P, _P, _P, _P, _I, _PI, POINTER(_AlgoPerf)]),
    "cudnnFindConvolutionForwardAlgorithmEx": (
        _I,
        [_P, _P, _P, _P, _P, _P, _P, _P, _I, _PI, POINTER(_AlgoPerf), _P, c_size_t],
    ),
    "cudnnGetConvolutionForwardWorkspaceSize": (_I, [_P, _P, _P, _P, _P, _I, POINTER(c_size_t)]),
    "cudnnConvolutionForward": (_I, [_P, _P, _P, _P, _P, _P, _P, _I, _P, c_size_t, _P, _P, _P]),
    # the backward families: the same shapes of call as the forward's, with their own perf structs
    "cudnnGetConvolutionBackwardDataAlgorithm_v7": (_I, [_P, _P, _P, _P, _P, _I, _PI, POINTER(_BwdDataAlgoPerf)]),
    "cudnnFindConvolutionBackwardDataAlgorithmEx": (
        _I,
        [_P, _P, _P, _P, _P, _P, _P, _P, _I, _PI, POINTER(_BwdDataAlgoPerf), _P, c_size_t],
    ),
    "cudnnGetConvolutionBackwardDataWorkspaceSize": (_I, [_P, _P, _P, _P, _P, _I, POINTER(c_size_t)]),
    "cudnnConvolutionBackwardData": (_I, [_P, _P, _P, _P, _P, _P, _P, _I, _P, c_size_t, _P, _P, _P]),
    "cudnnGetConvolutionBackwardFilterAlgorithm_v7": (
        _I,
        [_P, _P, _P, _P, _P, _I, _PI, POINTER(_BwdFilterAlgoPerf)],
    ),
    "cudnnFindConvolutionBackwardFilterAlgorithmEx": (
        _I,
        [_P, _P, _P, _P, _P, _P, _P, _P, _I, _PI, POINTER(_BwdFilterAlgoPerf), _P, c_size_t],
    ),
    "cudnnGetConvolutionBackwardFilterWorkspaceSize": (_I, [_P, _P, _P, _P, _P, _I, POINTER(c_size_t)]),
    "cudnnConvolutionBackwardFilter": (_I, [_P, _P, _P, _P, _P, _P, _P, _I, _P, c_size_t, _P, _P, _P]),
}


@dataclass(frozen=True)
class DirectionCalls:
    """The legacy API of one direction of a convolution. Its calls all take the descriptors in one order: the
    two operands read (``operands[0]``, ``operands[1]``), the convolution, then the operand written
    (``operands[2]``); the run call takes each data pointer after its descriptor. ``operands`` are the header's
    names of the run call's operands (``xDesc``/``x``, ...): x and dx are the layer's input and its gradient,
    y and dy its output and its gradient, w and dw the filter and its gradient (filter descriptors)."""

    direction: str  # cudnn_enums.DIRECTIONS
    operands: tuple[str, str, str]
    run: str
    workspace: str
    heuristic: str  # the _v7 heuristic (guess)
    find: str  # the exhaustive search on real data (find)
    perf: type[ctypes.Structure]

    def is_filter(self, operand: str) -> bool:
        return operand in ("w", "dw")


CALLS = {
    "forward": DirectionCalls(
        "forward",
        ("x", "w", "y"),
        "cudnnConvolutionForward",
        "cudnnGetConvolutionForwardWorkspaceSize",
        "cudnnGetConvolutionForwardAlgorithm_v7",
        "cudnnFindConvolutionForwardAlgorithmEx",
        _AlgoPerf,
    ),
    "backward_data": DirectionCalls(
        "backward_data",
        ("w", "dy", "dx"),
        "cudnnConvolutionBackwardData",
        "cudnnGetConvolutionBackwardDataWorkspaceSize",
        "cudnnGetConvolutionBackwardDataAlgorithm_v7",
        "cudnnFindConvolutionBackwardDataAlgorithmEx",
        _BwdDataAlgoPerf,
    ),
    "backward_filter": DirectionCalls(
        "backward_filter",
        ("x", "dy", "dw"),
        "cudnnConvolutionBackwardFilter",
        "cudnnGetConvolutionBackwardFilterWorkspaceSize",
        "cudnnGetConvolutionBackwardFilterAlgorithm_v7",
        "cudnnFindConvolutionBackwardFilterAlgorithmEx",
        _BwdFilterAlgoPerf,
    ),
}


class CudnnError(RuntimeError):
    """A cuDNN call failed; ``status`` is the code and ``name`` cuDNN's name for it."""

    def __init__(self, call: str, status: int, name: str) -> None:
        super().__init__(f"{call} failed: {name} ({status})")
        self.call, self.status, self.name = call, status, name


class CudnnNotSupported(CudnnError):
    """The layer cannot run this algorithm on this GPU (one of LAYER_STATUSES): an outcome, not a crash."""


class CudnnNotInitialized(CudnnError):
    """CUDNN_STATUS_NOT_INITIALIZED: typically no CUDA device or driver for cudnnCreate."""


class CudnnUnavailable(MissingEnvironmentError):
    """libcudnn could not be found or loaded."""


class WorkspaceOutOfMemory(RuntimeError):
    """The workspace an algorithm needs for a layer does not fit in the device's free memory."""

    def __init__(self, algo: str, nbytes: int) -> None:
        super().__init__(f"{algo} needs a workspace of {nbytes} bytes, which does not fit in GPU memory")
        self.algo, self.nbytes = algo, nbytes
        self.name = f"workspace of {nbytes} bytes: out of memory"


def error_for(call: str, status: int, name: str) -> CudnnError:
    """The exception for a status code (see LAYER_STATUSES for what counts as the layer's)."""
    if status in LAYER_STATUSES:
        return CudnnNotSupported(call, status, name)
    if status == STATUS_NOT_INITIALIZED:
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


class Cudnn:
    """The loaded library with typed entry points; ``call`` raises on any status but SUCCESS."""

    def __init__(self, lib: ctypes.CDLL, path: str) -> None:
        self.lib = lib
        self.path = path
        for name, (restype, argtypes) in PROTOTYPES.items():
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = restype, argtypes

    def version(self) -> int:
        return int(self.lib.cudnnGetVersion())

    def status_name(self, status: int) -> str:
        return self.lib.cudnnGetErrorString(status).decode()

    def call(self, name: str, *args: object) -> None:
        status = getattr(self.lib, name)(*args)
        if status != 0:
            raise error_for(name, status, self.status_name(status))

    def _ints(self, name: str, desc: Descriptor, count: int) -> tuple[int, ...]:
        out = [c_int() for _ in range(count)]
        self.call(name, desc.ptr, *map(ctypes.byref, out))
        return tuple(v.value for v in out)

    # descriptors --------------------------------------------------------------------------------------
    def tensor_descriptor(self, shape: tuple[int, ...], dtype: torch.dtype, layout: str = "nchw") -> Descriptor:
        """A packed 4-d tensor of logical ``shape`` (n, c, h, w) laid out as ``layout`` (TENSOR_FORMATS)."""
        d = Descriptor(self, "Tensor")
        self.call("cudnnSetTensor4dDescriptor", d.ptr, TENSOR_FORMATS[layout], DATA_TYPES[dtype], *map(int, shape))
        return d

    def filter_descriptor(self, shape: tuple[int, ...], dtype: torch.dtype, layout: str = "nchw") -> Descriptor:
        """A 4-d filter of logical ``shape`` (k, c, r, s) laid out as ``layout`` (nhwc: KRSC)."""
        d = Descriptor(self, "Filter")
        self.call("cudnnSetFilter4dDescriptor", d.ptr, DATA_TYPES[dtype], TENSOR_FORMATS[layout], *map(int, shape))
        return d

    def convolution_descriptor(self, g: ConvGeometry, math: str) -> Descriptor:
        d = Descriptor(self, "Convolution")
        self.call(
            "cudnnSetConvolution2dDescriptor",
            d.ptr,
            *g.padding,
            *g.stride,
            *g.dilation,
            CROSS_CORRELATION,
            COMPUTE_TYPE,
        )
        self.call("cudnnSetConvolutionGroupCount", d.ptr, g.groups)
        self.call("cudnnSetConvolutionMathType", d.ptr, MATH_TYPES[math])
        return d

    def tensor_of(self, d: Descriptor) -> tuple[int, ...]:
        """(data type, n, c, h, w, n stride, c stride, h stride, w stride) of a 4-d tensor descriptor."""
        return self._ints("cudnnGetTensor4dDescriptor", d, 9)

    def filter_of(self, d: Descriptor) -> tuple[int, ...]:
        """(data type, format, k, c, h, w) of a 4-d filter descriptor."""
        return self._ints("cudnnGetFilter4dDescriptor", d, 6)

    def convolution_of(self, d: Descriptor) -> dict[str, object]:
        """What a convolution descriptor holds, read back from cuDNN."""
        ph, pw, sh, sw, dh, dw, mode, compute = self._ints("cudnnGetConvolution2dDescriptor", d, 8)
        (groups,) = self._ints("cudnnGetConvolutionGroupCount", d, 1)
        (math,) = self._ints("cudnnGetConvolutionMathType", d, 1)
        return {
            "padding": (ph, pw),
            "stride": (sh, sw),
            "dilation": (dh, dw),
            "mode": mode,
            "compute_type": compute,
            "groups": groups,
            "math_type": math,
        }

    def output_shape(self, conv: Descriptor, x: Descriptor, w: Descriptor) -> tuple[int, int, int, int]:
        dims = [c_int() for _ in range(4)]
        self.call("cudnnGetConvolution2dForwardOutputDim", conv.ptr, x.ptr, w.ptr, *map(ctypes.byref, dims))
        return tuple(d.value for d in dims)  # type: ignore[return-value]

    # handles ------------------------------------------------------------------------------------------
    def create_handle(self) -> c_void_p:
        handle = c_void_p()
        self.call("cudnnCreate", ctypes.byref(handle))
        return handle


class Descriptor:
    """A cuDNN descriptor, destroyed when garbage-collected."""

    def __init__(self, cudnn: Cudnn, kind: str) -> None:
        self.cudnn, self.kind = cudnn, kind
        self.ptr = c_void_p()
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


class Handle:
    """One device's cuDNN handle and the stream last set on it (a handle has one stream at a time, so the
    stream is tracked here, per handle, not per plan)."""

    def __init__(self, cudnn: Cudnn, ptr: c_void_p) -> None:
        self.cudnn, self.ptr = cudnn, ptr
        self.stream: int | None = None

    def use_stream(self, stream: int) -> None:
        """Make the handle run on ``stream`` (a cudaStream_t as an int), calling cuDNN only on a change."""
        if stream != self.stream:
            self.cudnn.call("cudnnSetStream", self.ptr, c_void_p(stream))
            self.stream = stream


_handles: dict[int, Handle] = {}


def _device_index(device: torch.device) -> int:
    return device.index if device.index is not None else torch.cuda.current_device()


def handle_for(device: torch.device) -> Handle:
    """One cuDNN handle per CUDA device, created on first use with that device current."""
    if not torch.cuda.is_available():
        raise CudnnUnavailable("cuDNN needs a CUDA device, and this machine has none")
    index = _device_index(device)
    if index not in _handles:
        with torch.cuda.device(index):
            cudnn = library()
            _handles[index] = Handle(cudnn, cudnn.create_handle())
    return _handles[index]
