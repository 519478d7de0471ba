"""cuDNN's legacy convolution API through ctypes, on the libcudnn.so.9 that PyTorch already loaded.

No build step and no second copy of cuDNN: the library is found among the objects this process has
mapped (PyTorch loads it on first use). Every entry point has an explicit prototype (``PROTOTYPES``,
checked against the headers of the cuDNN wheel by tests/test_cudnn_headers.py). Every status that is not
SUCCESS becomes a CudnnError carrying the library's own name for it. Only the statuses that describe the
layer or the architecture (``LAYER_STATUSES``) are CudnnNotSupported, which callers record per layer; the
others (driver, runtime, missing prerequisites, a failing cudnnCreate) are errors of the point, retried on
a rerun.

A ``CudnnConvPlan`` is built once per (layer, input shape, dtype): descriptors, the workspace size and one
trial run on the real input. All plans of a device share one workspace (``Workspaces``), grown to the
largest need and released when a point starts (``release_workspaces``), so no earlier shape's workspace
stays allocated. A plan's ``__call__`` makes no descriptor or allocation call besides the output tensor,
and runs on PyTorch's current stream (set on the device's handle whenever it changes).

Data and compute types follow PyTorch: FLOAT compute for FLOAT, HALF and BFLOAT16 data.
"""

from __future__ import annotations

import ctypes
import functools
import logging
from ctypes import POINTER, c_char_p, c_float, c_int, c_size_t, c_void_p
from dataclasses import dataclass
from pathlib import Path

import torch

from harness.algorithms.cudnn_enums import FWD_ALGO_COUNT, FWD_ALGO_NAMES, FWD_ALGOS  # noqa: F401
from harness.algorithms.geometry import ConvGeometry
from harness.errors import MissingEnvironmentError

log = logging.getLogger(__name__)

# The algorithm enums live in cudnn_enums.py; re-exported here for the old import path.

TENSOR_NCHW = 0  # CUDNN_TENSOR_NCHW
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


class _AlgoPerf(ctypes.Structure):
    """cudnnConvolutionFwdAlgoPerf_t."""

    _fields_ = [
        ("algo", c_int),
        ("status", c_int),
        ("time", c_float),
        ("memory", c_size_t),
        ("determinism", c_int),
        ("mathType", c_int),
        ("reserved", c_int * 3),
    ]


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
    def tensor_descriptor(self, shape: tuple[int, ...], dtype: torch.dtype) -> Descriptor:
        d = Descriptor(self, "Tensor")
        self.call("cudnnSetTensor4dDescriptor", d.ptr, TENSOR_NCHW, DATA_TYPES[dtype], *map(int, shape))
        return d

    def filter_descriptor(self, shape: tuple[int, ...], dtype: torch.dtype) -> Descriptor:
        d = Descriptor(self, "Filter")
        self.call("cudnnSetFilter4dDescriptor", d.ptr, DATA_TYPES[dtype], TENSOR_NCHW, *map(int, shape))
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


class Workspaces:
    """One workspace buffer per device, shared by every plan on it and grown to the largest need.

    ``release`` drops the buffers (done when a point starts), so a point's peak memory includes its own
    largest workspace and nothing of earlier points. ``allocate`` is injectable for tests.
    """

    def __init__(self, allocate=None) -> None:  # type: ignore[no-untyped-def]
        self._allocate = allocate or (lambda n, device: torch.empty(n, dtype=torch.uint8, device=device))
        self._buffers: dict[torch.device, torch.Tensor] = {}

    def reserve(self, device: torch.device, nbytes: int) -> None:
        """Make the device's buffer at least ``nbytes`` long (torch.cuda.OutOfMemoryError if it cannot)."""
        current = self._buffers.get(device)
        if nbytes == 0 or (current is not None and current.numel() >= nbytes):
            return
        self._buffers.pop(device, None)  # free the smaller one first: it cannot be reused
        del current
        self._buffers[device] = self._allocate(nbytes, device)

    def pointer(self, device: torch.device, nbytes: int) -> int:
        """The address of a buffer of at least ``nbytes`` (0 for none needed)."""
        if nbytes == 0:
            return 0
        buffer = self._buffers.get(device)
        if buffer is None or buffer.numel() < nbytes:
            self.reserve(device, nbytes)
            buffer = self._buffers[device]
        return buffer.data_ptr()

    def size(self, device: torch.device) -> int:
        buffer = self._buffers.get(device)
        return 0 if buffer is None else buffer.numel()

    def release(self) -> None:
        self._buffers.clear()


WORKSPACES = Workspaces()


def release_workspaces() -> None:
    """Free every device's shared workspace (plans regrow it on their next call)."""
    WORKSPACES.release()


def check_operands(x: torch.Tensor, weight: torch.Tensor) -> None:
    """Refuse what the NCHW descriptors would misread: mixed dtypes (autocast) or channels_last tensors."""
    if x.dtype != weight.dtype:
        raise TypeError(
            f"cuDNN plan: input is {x.dtype} but the layer's weight is {weight.dtype}; the descriptors "
            f"describe one data type (run the model in one dtype, without autocast)"
        )
    for what, t in (("weight", weight), ("input", x)):
        if t.dim() == 4 and not t.is_contiguous() and t.is_contiguous(memory_format=torch.channels_last):
            raise ValueError(
                f"cuDNN plan: the {what} is channels_last, but the descriptors are NCHW; run the model in "
                f"torch.contiguous_format (do not call .to(memory_format=torch.channels_last))"
            )
    if not weight.is_contiguous():
        raise ValueError(f"cuDNN plan: the weight (strides {weight.stride()}) is not contiguous NCHW")


def heuristic_choice(
    cudnn: Cudnn, handle: Handle, x: Descriptor, w: Descriptor, conv: Descriptor, y: Descriptor
) -> list[str]:
    """cudnnGetConvolutionForwardAlgorithm_v7's successful algorithms, best first."""
    perf = (_AlgoPerf * FWD_ALGO_COUNT)()
    returned = c_int()
    cudnn.call(
        "cudnnGetConvolutionForwardAlgorithm_v7",
        handle.ptr,
        x.ptr,
        w.ptr,
        conv.ptr,
        y.ptr,
        FWD_ALGO_COUNT,
        ctypes.byref(returned),
        perf,
    )
    return [FWD_ALGO_NAMES[p.algo] for p in perf[: returned.value] if p.status == 0 and p.algo in FWD_ALGO_NAMES]


@dataclass(frozen=True)
class Found:
    """One algorithm as cuDNN's exhaustive search timed it on the layer's real input."""

    algo: str
    time_ms: float
    memory_bytes: int


def find_choice(
    cudnn: Cudnn,
    handle: Handle,
    descs: tuple[Descriptor, ...],
    x: torch.Tensor,
    weight: torch.Tensor,
    out_shape: tuple[int, ...],
) -> list[Found]:
    """cudnnFindConvolutionForwardAlgorithmEx, as PyTorch's cudnn.benchmark calls it: cuDNN runs every
    algorithm it can on the layer's real input and weight, with a workspace as large as the largest need
    that fits in memory (from the algorithms' own workspace sizes), and returns them fastest first; the
    successful ones are returned here."""
    xd, wd, cd, yd = descs
    device = weight.device
    needs = set()
    for code in FWD_ALGOS.values():
        size = c_size_t()
        try:
            cudnn.call(
                "cudnnGetConvolutionForwardWorkspaceSize",
                handle.ptr,
                xd.ptr,
                wd.ptr,
                cd.ptr,
                yd.ptr,
                code,
                ctypes.byref(size),
            )
        except CudnnNotSupported:
            continue
        needs.add(size.value)
    budget = 0
    for nbytes in sorted(needs, reverse=True):  # algorithms needing more than this are left out by cuDNN
        try:
            WORKSPACES.reserve(device, nbytes)
        except torch.cuda.OutOfMemoryError:
            continue
        budget = nbytes
        break
    y = torch.empty(out_shape, dtype=x.dtype, device=device)  # scratch: Find writes each algorithm's output here
    handle.use_stream(torch.cuda.current_stream(device).cuda_stream)
    perf = (_AlgoPerf * FWD_ALGO_COUNT)()
    returned = c_int()
    cudnn.call(
        "cudnnFindConvolutionForwardAlgorithmEx",
        handle.ptr,
        xd.ptr,
        x.data_ptr(),
        wd.ptr,
        weight.data_ptr(),
        cd.ptr,
        yd.ptr,
        y.data_ptr(),
        FWD_ALGO_COUNT,
        ctypes.byref(returned),
        perf,
        WORKSPACES.pointer(device, budget),
        budget,
    )
    return [
        Found(FWD_ALGO_NAMES[p.algo], float(p.time), int(p.memory))
        for p in perf[: returned.value]
        if p.status == 0 and p.algo in FWD_ALGO_NAMES
    ]


def describe_found(found: list[Found]) -> str:
    """What Find picked and its times, for the layer row's detail: ``find: winograd 0.051 ms, gemm 0.07 ms``."""
    return "find: " + (", ".join(f"{f.algo} {f.time_ms:.4g} ms" for f in found) or "no algorithm succeeded")


@dataclass
class CudnnConvPlan:
    """cudnnConvolutionForward for one layer, one input shape and dtype, with one explicit algorithm."""

    algo: str
    math: str
    workspace_bytes: int
    out_shape: tuple[int, int, int, int]
    _cudnn: Cudnn
    _handle: Handle
    _descs: tuple[Descriptor, Descriptor, Descriptor, Descriptor]  # x, w, conv, y
    _weight: torch.Tensor
    _bias: torch.Tensor | None
    compute_type: str = COMPUTE_TYPE_NAME
    note: str | None = None  # algo=find: what Find timed (describe_found)

    @classmethod
    def build(
        cls, algo: str, weight: torch.Tensor, bias: torch.Tensor | None, g: ConvGeometry, x: torch.Tensor, math: str
    ) -> CudnnConvPlan:
        """Descriptors, workspace and a trial run on ``x`` (the layer's real input).

        ``algo`` is one of FWD_ALGOS, "guess" (cuDNN's heuristic) or "find" (cuDNN's exhaustive search,
        ``find_choice``); for those two the plan's ``algo`` says what was chosen, trying the next choices
        where one cannot run, and for find its ``note`` keeps Find's times. Raises CudnnNotSupported where
        cuDNN refuses the layer and WorkspaceOutOfMemory where the workspace does not fit; other CudnnErrors are
        the point's.
        """
        check_operands(x, weight)
        cudnn, device, dtype = library(), weight.device, weight.dtype
        handle = handle_for(device)
        xd = cudnn.tensor_descriptor(tuple(x.shape), dtype)
        wd = cudnn.filter_descriptor(tuple(weight.shape), dtype)
        cd = cudnn.convolution_descriptor(g, math)
        out_shape = cudnn.output_shape(cd, xd, wd)
        yd = cudnn.tensor_descriptor(out_shape, dtype)
        note = None
        if algo == "find":
            found = find_choice(cudnn, handle, (xd, wd, cd, yd), x.contiguous(), weight, out_shape)
            # an algorithm may come back once per math type: each runs here with the job's own math type
            candidates, note = list(dict.fromkeys(f.algo for f in found)), describe_found(found)
        elif algo == "guess":
            candidates = heuristic_choice(cudnn, handle, xd, wd, cd, yd)
        else:
            candidates = [algo]
        last: Exception | None = None
        for name in candidates:
            size = c_size_t()
            try:
                cudnn.call(
                    "cudnnGetConvolutionForwardWorkspaceSize",
                    handle.ptr,
                    xd.ptr,
                    wd.ptr,
                    cd.ptr,
                    yd.ptr,
                    FWD_ALGOS[name],
                    ctypes.byref(size),
                )
                try:
                    WORKSPACES.reserve(device, size.value)
                except torch.cuda.OutOfMemoryError:
                    raise WorkspaceOutOfMemory(name, size.value) from None
                plan = cls(name, math, size.value, out_shape, cudnn, handle, (xd, wd, cd, yd), weight, bias, note=note)
                plan(x)  # the trial run
                torch.cuda.synchronize(device)
                return plan
            except (CudnnNotSupported, WorkspaceOutOfMemory) as e:
                last = e
        if last is None:
            call = (
                "cudnnFindConvolutionForwardAlgorithmEx" if algo == "find" else "cudnnGetConvolutionForwardAlgorithm_v7"
            )
            raise CudnnNotSupported(call, 3000, "CUDNN_STATUS_NOT_SUPPORTED (no algorithm)")
        raise last

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        check_operands(x, self._weight)
        x = x.contiguous()
        y = torch.empty(self.out_shape, dtype=x.dtype, device=x.device)
        self._handle.use_stream(torch.cuda.current_stream(x.device).cuda_stream)
        one, zero = c_float(1.0), c_float(0.0)  # FLOAT compute type: alpha and beta are floats
        xd, wd, cd, yd = self._descs
        self._cudnn.call(
            "cudnnConvolutionForward",
            self._handle.ptr,
            ctypes.byref(one),
            xd.ptr,
            x.data_ptr(),
            wd.ptr,
            self._weight.data_ptr(),
            cd.ptr,
            FWD_ALGOS[self.algo],
            WORKSPACES.pointer(x.device, self.workspace_bytes),
            self.workspace_bytes,
            ctypes.byref(zero),
            yd.ptr,
            y.data_ptr(),
        )
        if self._bias is not None:
            y += self._bias.view(1, -1, 1, 1)
        return y
