"""cuDNN's backward convolutions (cudnnConvolutionBackwardData, cudnnConvolutionBackwardFilter) through the same
thin ctypes layer as the forward (harness.algorithms.cudnn: descriptors, workspace queries, the ``_v7`` heuristic,
Find, the shared workspace, error classification; cudnn_library.CALLS says what each direction's calls take).

A ``CudnnBackwardPlan`` is built once per (layer, input shape, dtype, direction) and called like the reference
runners of harness.algorithms.reference_backward:

- backward_data: ``plan(grad_out) -> grad_input`` (the layer input's shape);
- backward_filter: ``plan(x, grad_out) -> grad_weight`` (the weight's shape).

Each call writes a fresh tensor with beta = 0 (nothing accumulated into an earlier gradient); the bias gradient
is not a convolution and is the caller's. The algorithm is named as everywhere in the harness (``gemm``, ``fft``,
...): what it means in a backward direction is the registry's ``Algorithm.cudnn_for(direction)``; cuDNN's own
names in that direction (``algo_0``, ``algo_3``, what a plan records as ``algo``) are accepted too. ``guess`` is
the direction's ``_v7`` heuristic and ``find`` its Find*Ex, both recorded as the enum that ran.

What cuDNN documents (cudnn_ops.h, cudnn_enums.NONDETERMINISTIC / NOT_IMPLEMENTED): backward-data ALGO_0 and
backward-filter ALGO_0 and ALGO_3 are non-deterministic (atomic adds), recorded as ``nondeterministic``;
backward-filter WINOGRAD is not implemented and is never called: it is unsupported, with that reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from harness.algorithms import cudnn, memory_layout, registry
from harness.algorithms.cudnn_enums import DIRECTIONS, NONDETERMINISTIC, NOT_IMPLEMENTED
from harness.algorithms.cudnn_library import CALLS, COMPUTE_TYPE_NAME
from harness.algorithms.geometry import ConvGeometry

log = logging.getLogger(__name__)

BACKWARD = ("backward_data", "backward_filter")
SEARCHES = ("guess", "find")


def enum_for(direction: str, algo: str) -> str:
    """cuDNN's name of the algorithm ``algo`` runs in ``direction`` (``gemm`` -> ``algo_0``).

    CudnnNotSupported (the layer's outcome, with the reason naming ``algo``) where the algorithm has no enum
    in that direction or cuDNN documents its enum as not implemented; ValueError for a name that is neither
    the harness's nor cuDNN's."""
    table, _, prefix = DIRECTIONS[direction]
    try:
        record = registry.get(algo)
    except KeyError:
        if algo not in table:
            known = [a.name for a in registry.algorithms() if a.cudnn_for(direction)]
            raise ValueError(
                f"unknown algorithm {algo!r} for cuDNN's {direction}; valid: {', '.join(known + list(SEARCHES))} "
                f"or cuDNN's own names {', '.join(table)}"
            ) from None
        name = algo
    else:
        found = record.cudnn_for(direction)
        if found is None:
            why = f"{algo} has no {direction} algorithm in cuDNN"
            if algo in NOT_IMPLEMENTED[direction]:
                why += f" ({prefix}{algo.upper()} is documented as not implemented)"
            raise cudnn.CudnnNotSupported(CALLS[direction].run, 3000, f"CUDNN_STATUS_NOT_SUPPORTED: {why}")
        name = found.name
    if name in NOT_IMPLEMENTED[direction]:
        raise cudnn.CudnnNotSupported(
            CALLS[direction].run,
            3000,
            f"CUDNN_STATUS_NOT_SUPPORTED: {prefix}{name.removeprefix('algo_').upper()} is documented as not "
            f"implemented (cudnn_ops.h); requested as {algo}",
        )
    return name


@dataclass
class CudnnBackwardPlan:
    """One backward direction of one layer, for one input shape and dtype, with one cuDNN algorithm."""

    direction: str  # backward_data or backward_filter
    algo: str  # cuDNN's name of the enum that runs, in this direction (``algo_0``, ``fft``...)
    math: str
    workspace_bytes: int
    out_shape: tuple[int, ...]  # what a call returns: the input's shape (backward_data) or the weight's
    input_shape: tuple[int, ...]  # the layer's input x
    grad_out_shape: tuple[int, ...]  # the layer's output, and so its gradient
    nondeterministic: bool  # cuDNN documents this enum as non-deterministic (NONDETERMINISTIC)
    _cudnn: cudnn.Cudnn
    _handle: cudnn.Handle
    _descs: tuple[cudnn.Descriptor, ...]  # in this direction's call order (cudnn_library.CALLS)
    _weight: torch.Tensor
    note: str | None = None  # algo=find: what Find timed (cudnn.describe_found)
    layout: str = "nchw"  # the format of every descriptor (TENSOR_FORMATS)
    compute_type: str = COMPUTE_TYPE_NAME
    # guess/find: the determinism field of cuDNN's perf struct for the enum that runs (True: NON_DETERMINISTIC);
    # None where no search reported one (an explicit algorithm)
    reported_nondeterministic: bool | None = None

    @classmethod
    def build(
        cls,
        direction: str,
        algo: str,
        weight: torch.Tensor,
        g: ConvGeometry,
        x: torch.Tensor,
        math: str,
        layout: str = "nchw",
    ) -> CudnnBackwardPlan:
        """Descriptors, workspace and a trial run: ``x`` is the layer's real input (its shape and, for
        backward_filter, an operand); the gradient of the output in the trial run and in Find is random
        (the real one does not exist yet when a layer is planned).

        ``algo``: a harness name (see ``enum_for``), ``guess`` or ``find``; for those two the plan's ``algo``
        says what was chosen, trying the next choice where one cannot run, and for find ``note`` keeps Find's
        times. Raises CudnnNotSupported where cuDNN refuses the layer and WorkspaceOutOfMemory where the
        workspace does not fit, as CudnnConvPlan.build does; other CudnnErrors are the point's.
        """
        if direction not in BACKWARD:
            raise ValueError(f"unknown backward direction {direction!r}; valid: {', '.join(BACKWARD)}")
        api = CALLS[direction]
        requested = None if algo in SEARCHES else enum_for(direction, algo)
        cudnn.check_operands(x, weight, layout)
        lib, device = cudnn.library(), weight.device
        handle = cudnn.handle_for(device)
        layer = cudnn.LayerDescriptors.build(lib, tuple(x.shape), tuple(weight.shape), weight.dtype, g, math, layout)
        descs = layer.for_calls(api)
        fmt = memory_layout.memory_format(layout)
        # a generator of its own: planning a layer leaves the job's random stream (its inputs) as it was
        noise = torch.Generator(device=device).manual_seed(0)
        grad_out = torch.randn(layer.out_shape, dtype=weight.dtype, device=device, generator=noise)
        grad_out = grad_out.contiguous(memory_format=fmt)
        trial = (grad_out,) if direction == "backward_data" else (x, grad_out)
        out_shape = tuple(x.shape) if direction == "backward_data" else tuple(weight.shape)
        note, reported = None, {}
        if requested is not None:
            candidates = [requested]
        else:
            if algo == "find":
                a = weight if direction == "backward_data" else memory_layout.to_layout(x, layout)
                found, budget = cudnn.find_algorithms(lib, handle, api, descs, a, grad_out, out_shape, layout)
                note = cudnn.describe_found(found, budget)
            else:
                found = cudnn.heuristic(lib, handle, api, descs)
            for f in found:  # an algorithm may come back once per math type: the first report is kept
                reported.setdefault(f.algo, f.deterministic)
            candidates = list(reported)

        def attempt(name: str) -> CudnnBackwardPlan:
            nbytes = cudnn.reserve_workspace(lib, handle, api, descs, name, device)
            deterministic = reported.get(name)
            plan = cls(
                direction,
                name,
                math,
                nbytes,
                out_shape,
                tuple(x.shape),
                layer.out_shape,
                name in NONDETERMINISTIC[direction],
                lib,
                handle,
                descs,
                weight,
                note,
                layout,
                reported_nondeterministic=None if deterministic is None else not deterministic,
            )
            plan(*trial)
            torch.cuda.synchronize(device)
            return plan

        return cudnn.first_runnable(candidates, attempt, api.find if algo == "find" else api.heuristic)

    def __call__(self, *operands: torch.Tensor) -> torch.Tensor:
        """backward_data: ``(grad_out) -> grad_input``; backward_filter: ``(x, grad_out) -> grad_weight``."""
        wanted = ("grad_out",) if self.direction == "backward_data" else ("x", "grad_out")
        if len(operands) != len(wanted):
            raise TypeError(f"a {self.direction} plan takes ({', '.join(wanted)}), not {len(operands)} tensors")
        grad_out = self._dense(operands[-1], "grad_out", self.grad_out_shape)
        if self.direction == "backward_data":
            a = self._weight
        else:
            cudnn.check_operands(operands[0], self._weight, self.layout)
            a = self._dense(operands[0], "x", self.input_shape)
        fmt = memory_layout.memory_format(self.layout)
        out = torch.empty(self.out_shape, dtype=self._weight.dtype, device=grad_out.device, memory_format=fmt)
        api = CALLS[self.direction]
        cudnn.execute(self._cudnn, self._handle, api, self._descs, a, grad_out, self.algo, self.workspace_bytes, out)
        return out

    def _dense(self, t: torch.Tensor, what: str, shape: tuple[int, ...]) -> torch.Tensor:
        """``t`` dense in the plan's layout, after checking what the descriptors say of it. A gradient from
        autograd may come in any strides (an expanded one from a sum, say): it is copied where it must be."""
        if tuple(t.shape) != shape:
            raise ValueError(f"{self.direction} plan for {what} of shape {shape}, called with {tuple(t.shape)}")
        if t.dtype != self._weight.dtype:
            raise TypeError(
                f"{self.direction} plan: {what} is {t.dtype} but the layer's weight is {self._weight.dtype}"
            )
        return memory_layout.to_layout(t, self.layout)
