"""What really ran each conv layer: a short pass of its own, off the timed path.

The model runs a couple of times under torch.profiler with a ``record_function`` range around each conv
layer call (``LABEL``). On a GPU each layer keeps the CUDA kernels launched inside its range (CUPTI sees the
kernels of our ctypes cuDNN calls too, though torch.profiler sees no aten operator for them); on the CPU it
keeps the operators that ran inside it, so that the same code path runs in CI for real.

From the names, a kernel family and a tensor-core flag per layer (``classify_kernel``, ``layer_verdict``).
Names are matched against the public naming of cuDNN's and CUTLASS's kernels as they appear in profiles
posted in public issue threads, e.g.:

- ``cudnn::detail::implicit_convolve_sgemm<...>``, ``volta_scudnn_128x64_relu_small_nn_v1``
  (pytorch/pytorch#13412); ``maxwell_scudnn_winograd_128x128_ldg1_ldg4_relu_tile418n_nt``,
  ``cubeTransposeDeviceGeneric_kernel``, ``op_tensor_kernel`` (kblomdahl/dream-go#25);
- ``cudnn::detail::explicit_convolve_sgemm<...>``, ``DSE::regular_fft_pad``, ``DSE::vector_fft``
  (NVIDIA/apex#666); ``fft2d_c2r_16x16`` (pytorch/pytorch#51382);
- ``sm80_xmma_fprop_implicit_gemm_tf32f32_tf32f32_f32_...``: cuDNN's xmma kernels name their operand types;
  float32 convolutions run as TF32 ``xmma`` kernels where TF32 is allowed (gradium-ai/xn#56);
- the MMA instruction shapes of CUTLASS and cuDNN's tensor-op kernels: ``884`` (Volta HMMA), ``1688``,
  ``16816``, ``8816`` (s = fp32 accumulate, h = fp16, i = int8), as in CUTLASS's generator
  (``GenerateSM70_TensorOp_884``, apache/tvm#9899) and cuDNN's ``volta_fp16_s884cudnn_...``; Hopper's
  ``gmma``/``wgmma`` (warpgroup MMA).

The tensor-core rule (harness.results.columns' ``TENSOR_CORE_RULE`` words it for the results contract):
a kernel ran on tensor cores when its name has no ``simt`` and either names an MMA instruction (an
instruction shape such as ``s884``/``h1688``/``s16816``/``i8816``, or ``hmma``/``imma``/``gmma``/``wgmma``/
``tensorop``) or is an ``xmma``/CUTLASS kernel whose operand types include a tensor-core type (``tf32``,
``f16``, ``bf16``, ``e4m3``/``e5m2``, ``i8``). It did not when it says ``simt``, is an ``xmma``/CUTLASS kernel
whose operands are all ``f32``, or belongs to a family cuDNN implements with plain FMA (``*_sgemm``,
``scudnn``/``hcudnn``, FFT, the fused and unfused Winograd kernels). Anything else is unknown. A layer used
tensor cores when one of its compute kernels did; it did not when every compute kernel is known not to;
otherwise null (unknown, never a guess). Layout, copy, elementwise and reduction kernels are not compute
kernels and do not vote. On the CPU the flag is null: tensor cores are a GPU's.
"""

from __future__ import annotations

import logging
import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from harness.measure.layers import is_conv

log = logging.getLogger(__name__)

LABEL = "harness.conv"  # a layer's range: f"{LABEL}[{call}] {name}"
UNKNOWN = "unknown"
SUPPORT = "support"  # the family of kernels that are not the convolution's own work (layouts, copies, bias)


@dataclass(frozen=True)
class KernelClass:
    """What a kernel's (or a CPU operator's) name says: its family, and whether it ran on tensor cores."""

    family: str  # a compute family, SUPPORT, or UNKNOWN
    tensor_cores: bool | None  # None: the name does not say (and always for SUPPORT and CPU operators)

    @property
    def compute(self) -> bool:
        return self.family != SUPPORT


# GPU kernel families, first match wins (case-insensitive search in the demangled name). Support kernels first,
# so that e.g. a layout transform inside a Winograd plan is not counted as Winograd.
_GPU_FAMILIES: tuple[tuple[str, str], ...] = (
    (
        r"nchwtonhwc|nhwctonchw|transpose|cubetranspose|convertTensor|memset|memcpy|flip_filter|im2col|"
        r"elementwise|op_tensor_kernel|fill_kernel|reduce_kernel|splitkreduce|computeoffsets|computeboffsets",
        SUPPORT,
    ),
    (r"winogradforward(data|filter|output)|generatewinogradtiles|winograd_nonfused", "winograd_nonfused"),
    (r"winograd", "winograd"),
    (r"fft|dse::", "fft"),
    (r"precomputed_convolve|implicit_precomp", "implicit_precomp_gemm"),
    (r"implicit_convolve", "implicit_gemm"),
    (r"explicit_convolve", "gemm"),
    (r"xmma.*(fprop|implicit_gemm|conv)", "xmma_implicit_gemm"),
    (r"xmma", "xmma_gemm"),
    (r"cutlass.*(fprop|conv)", "cutlass_implicit_gemm"),
    (r"cutlass", "cutlass_gemm"),
    (r"(^|_)(s|h|fp16_s|fp16_h|bf16_s)?\d*cudnn_", "cudnn_implicit_gemm"),  # volta_scudnn_..., turing_fp16_s1688cudnn_
    (r"depthwise|dwconv", "depthwise"),
    (r"direct", "direct"),
    (r"gemm", "gemm"),
)

_MMA = re.compile(
    r"simt|(?:^|[_:\s])(?:[shi]|bf16_s)?(?:884|1688|16816|16832|8816|8832|16864)(?:[a-z]|_|$)"
    r"|hmma|imma|wgmma|gmma|tensorop|tensor_op|tensor\d+x\d+x\d+"
)
_TC_TYPES = re.compile(r"tf32|f16|fp16|bf16|e4m3|e5m2|i8|s8|int8")
_FMA_FAMILIES = frozenset({"implicit_gemm", "implicit_precomp_gemm", "fft", "winograd", "winograd_nonfused"})

# CPU operators (torch.profiler's names) that do a convolution's work, first match wins; the other aten
# operators inside a layer's range (empty, view, resize_, as_strided_, the dispatch layers conv2d ->
# convolution -> _convolution) are support.
_CPU_FAMILIES: tuple[tuple[str, str], ...] = (
    (r"mkldnn_convolution|onednn", "onednn"),
    (r"slow_conv2d|thnn_conv2d|slow_conv_dilated", "im2col_gemm"),
    (r"nnpack_spatial", "nnpack"),
    (r"depthwise", "depthwise"),
    (r"fft", "fft"),
    (r"einsum", "einsum"),
    (r"(^|::)(mm|bmm|addmm|baddbmm|matmul)$", "gemm"),
    (r"unfold|im2col", SUPPORT),
    (r"^aten::", SUPPORT),
)


def classify_kernel(name: str) -> KernelClass:
    """The family and tensor-core use of one CUDA kernel, from its name (the rule above)."""
    low = name.lower()
    family = next((f for pattern, f in _GPU_FAMILIES if re.search(pattern, low)), UNKNOWN)
    if family == SUPPORT:
        return KernelClass(SUPPORT, None)
    mma = _MMA.search(low)
    if mma is not None and mma.group(0) == "simt":
        return KernelClass(family, False)
    if mma is not None:
        return KernelClass(family, True)
    if family.startswith(("xmma", "cutlass")):
        types = _xmma_types(low)
        if types is None:
            return KernelClass(family, None)
        return KernelClass(family, bool(_TC_TYPES.search(types)))
    if family in _FMA_FAMILIES or re.search(r"(^|_)[sh]cudnn|sgemm", low):
        return KernelClass(family, False)
    return KernelClass(family, None)


def _xmma_types(low: str) -> str | None:
    """The operand-type part of an xmma/CUTLASS name (``tf32f32_tf32f32_f32``), or None where it names none."""
    m = re.search(r"((?:_(?:tf32|f16|fp16|bf16|f32|fp32|e4m3|e5m2|i8|s8|int8|i32|s32)+){2,})", low)
    return m.group(1) if m else None


def classify_operator(name: str) -> KernelClass:
    """The family of one CPU operator (tensor cores: null, a GPU's)."""
    family = next((f for pattern, f in _CPU_FAMILIES if re.search(pattern, name)), UNKNOWN)
    return KernelClass(family, None)


def layer_verdict(names: Sequence[str], device: str) -> tuple[str, bool | None]:
    """A layer's kernel family and tensor-core flag from the names that ran it (the rule above).

    The family is that of its compute kernels (several joined with ``+`` in the order they ran); ``unknown``
    where one of them is unknown or nothing but support work was seen.
    """
    classify: Callable[[str], KernelClass] = classify_kernel if device == "cuda" else classify_operator
    compute = [c for c in map(classify, names) if c.compute]
    families = list(dict.fromkeys(c.family for c in compute))
    family = UNKNOWN if not families or UNKNOWN in families else "+".join(families)
    if device != "cuda" or not compute:
        return family, None
    if any(c.tensor_cores for c in compute):
        return family, True
    if all(c.tensor_cores is False for c in compute):
        return family, False
    return family, None


@dataclass(frozen=True)
class LayerKernels:
    """What ran one conv layer call: the kernel (GPU) or operator (CPU) names in the order first seen."""

    index: int  # the call's position in the forward (the layers rows' layer_index)
    name: str
    names: tuple[str, ...]
    family: str
    tensor_cores: bool | None
    cudnn_engine: str | None = None  # the torch baseline on a GPU: the cuDNN engine its API log names

    def columns(self) -> dict[str, Any]:
        """This layer's columns of the layers table."""
        return {
            "kernels": list(self.names),
            "kernel_family": self.family,
            "tensor_cores": self.tensor_cores,
            "cudnn_engine": self.cudnn_engine,
        }


def point_columns(layers: Sequence[LayerKernels] | None) -> dict[str, Any]:
    """The points row's summary: layer calls per kernel family (``family:count; ...``, most first) and how
    many used tensor cores (null where the flag is unknown for every layer: the CPU)."""
    if not layers:
        return {}
    counts: dict[str, int] = {}
    for lk in layers:
        counts[lk.family] = counts.get(lk.family, 0) + 1
    families = "; ".join(f"{f}:{n}" for f, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    flags = [lk.tensor_cores for lk in layers if lk.tensor_cores is not None]
    return {"kernel_families": families, "tensor_core_layers": sum(flags) if flags else None}


# -- the pass ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Event:
    """One profiler event, as the attribution needs it (torch.profiler's FunctionEvent, reduced)."""

    name: str
    cuda: bool  # a kernel (or a GPU-side range) on the device's timeline
    start_us: float
    end_us: float
    thread: int
    kernels: tuple[str, ...] = ()  # the kernels torch.profiler linked to this host event (CUPTI correlation)


def _label(call: int, name: str) -> str:
    return f"{LABEL}[{call}] {name}"


_LABEL_RE = re.compile(re.escape(LABEL) + r"\[(\d+)\] ")


def attribute(events: Iterable[Event], device: str) -> dict[int, list[str]]:
    """Per layer call (its range's index): the names that ran inside its range, each once, in order.

    GPU: the kernels torch.profiler linked to the layer's range or to any host event inside it. Kineto links a
    kernel (by its launch's CUPTI correlation id) to the innermost operator open on the host when it was
    launched: an aten operator for torch's own convolutions, and the layer's ``record_function`` range itself
    for our ctypes cuDNN calls, which open no operator. Also the kernels inside the layer's range on the
    device's timeline (the profiler's GPU-side copy of a ``record_function`` range), where it has one. CPU:
    the operators inside the range on its thread.
    """
    events = list(events)
    timelines = {
        side: sorted((e for e in events if e.cuda == side), key=lambda e: e.start_us) for side in (False, True)
    }
    starts = {side: [e.start_us for e in line] for side, line in timelines.items()}
    ranges = [(int(m.group(1)), e) for e in events if (m := _LABEL_RE.match(e.name))]
    out: dict[int, list[str]] = {}
    for call, r in ranges:
        names = out.setdefault(call, [])
        if device == "cuda" and not r.cuda:
            names.extend(r.kernels)
        line = timelines[r.cuda]
        first, last = bisect_left(starts[r.cuda], r.start_us), bisect_right(starts[r.cuda], r.end_us)
        for e in line[first:last]:  # the events starting inside the range, in order
            if e is r or _LABEL_RE.match(e.name) or e.end_us > r.end_us:
                continue
            if r.cuda:
                names.append(e.name)
            elif device == "cuda":
                names.extend(e.kernels)
            elif e.thread == r.thread:
                names.append(e.name)
    # a GPU-side range is linked like a kernel to the operator that opened it: not a kernel
    return {call: [n for n in dict.fromkeys(names) if not _LABEL_RE.match(n)] for call, names in sorted(out.items())}


def _events(prof: Any) -> list[Event]:
    """torch.profiler's events as ``Event`` records (the one place that reads its FunctionEvent fields)."""
    out = []
    for e in prof.events():
        cuda = str(getattr(e.device_type, "name", e.device_type)).upper() == "CUDA"
        kernels = tuple(k.name for k in getattr(e, "kernels", ()) or ())
        out.append(Event(e.name, cuda, float(e.time_range.start), float(e.time_range.end), int(e.thread), kernels))
    return out


class _Ranges:
    """Hooks opening a ``record_function`` range at each conv call and closing it after."""

    def __init__(self, model: nn.Module) -> None:
        self.names = {m: name for name, m in model.named_modules() if is_conv(m)}
        self.calls: list[str] = []  # the names of this forward's conv calls, in order
        self._open: list[Any] = []
        self._handles: list[Any] = []

    def __enter__(self) -> _Ranges:
        for module in self.names:
            self._handles.append(module.register_forward_pre_hook(self._pre))
            self._handles.append(module.register_forward_hook(self._post))
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()
        while self._open:  # a forward that raised inside a layer
            self._open.pop().__exit__(None, None, None)

    def _pre(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        rf = torch.autograd.profiler.record_function(_label(len(self.calls), self.names[module]))
        rf.__enter__()
        self._open.append(rf)
        self.calls.append(self.names[module])

    def _post(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        self._open.pop().__exit__(None, None, None)

    def new_forward(self) -> None:
        self.calls = []


def kernel_pass(model: nn.Module, x: torch.Tensor, iters: int = 2) -> list[LayerKernels]:
    """Run ``model(x)`` ``iters`` times under torch.profiler and say what ran each conv layer call.

    One forward first, unprofiled, so that what runs once (cuDNN's plans, torch's benchmark search) is not
    taken for the layer's kernels. A layer's names are the union over the profiled forwards.
    """
    device = x.device.type
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.inference_mode(), _Ranges(model) as ranges:
        model(x)
        layers = list(ranges.calls)
        with torch.profiler.profile(activities=activities) as prof:
            for _ in range(max(1, iters)):
                ranges.new_forward()
                model(x)
            if device == "cuda":
                torch.cuda.synchronize(x.device)
    seen = attribute(_events(prof), device)
    out = []
    for call, name in enumerate(layers):
        names = tuple(seen.get(call, ()))
        family, tc = layer_verdict(names, device)
        out.append(LayerKernels(call, name, names, family, tc))
    if not any(lk.names for lk in out) and out:
        log.warning("the kernel pass saw nothing run inside the %d conv layers' ranges", len(out))
    return out
