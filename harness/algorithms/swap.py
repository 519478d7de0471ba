"""Swapping a model's nn.Conv2d layers for modules that run a chosen algorithm, and undoing it.

``swap(model, "winograd")`` or ``swap(model, {"features.0": "fft", ...})`` replaces each chosen conv
layer by an ``AlgoConv2d`` that shares its weight and bias (no copy) and returns a ``Swap`` whose
``undo()`` puts the original layers back. Usable from plain Python, without Hydra or the runner.

What runs a layer is decided per input shape, when ``AlgoConv2d`` first sees that shape (``plan``): the
backend is asked whether it supports the layer (for cuDNN: a workspace query and one trial run), and the
fallback policy decides what an unsupported layer runs. The decision is recorded as a ``LayerPlan``.
The runner makes that first forward before timing, so a timed forward never plans.

``layout`` (nchw or nhwc, harness.algorithms.memory_layout) is the memory layout the layers compute in: the
model's weights and its input must be in it (``memory_layout.model_to_layout``); each backend then reads and
writes that layout (cuDNN: descriptors of that format; the references: their NHWC implementations), and an
algorithm with no implementation in the layout is unsupported for the layer, with the reason.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from harness.algorithms import memory_layout, reference
from harness.algorithms.geometry import ConvGeometry
from harness.algorithms.plan import Plan, check_model, conv_layers

log = logging.getLogger(__name__)

FALLBACKS = ("none", "guess", "torch")
BACKENDS = ("cudnn", "reference")


@dataclass(frozen=True)
class LayerPlan:
    """What runs one conv layer for one input shape, and how that was decided."""

    algo_requested: str
    algo_used: str  # the algorithm that really runs ("torch" for the framework's own convolution)
    backend: str  # "cudnn", "reference" or "torch"
    status: str  # "ok", "fallback" or "unsupported" (nothing runs it: fallback=none)
    workspace_bytes: int | None = None
    detail: str | None = None  # why a layer was unsupported or fell back
    math: str | None = None  # cuDNN math type ("fma" or "tensor_op"); None off cuDNN
    compute_type: str | None = None  # cuDNN's compute type ("float32" for every data type); None off cuDNN


class UnsupportedLayer(RuntimeError):
    """Raised by a layer with no runnable plan when it is called outside planning."""


class AlgoConv2d(nn.Module):
    """Stands in for an nn.Conv2d, running ``algo`` on ``backend``; shares the original's parameters."""

    is_conv2d_stand_in = True

    def __init__(
        self, conv: nn.Conv2d, algo: str, backend: str, fallback: str, math: str, layout: str = "nchw"
    ) -> None:
        super().__init__()
        self.geometry = ConvGeometry.of(conv)
        for attr in ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups"):
            setattr(self, attr, getattr(conv, attr))
        self.padding_mode = conv.padding_mode
        self.weight = conv.weight
        self.bias = conv.bias
        self.algo, self.backend, self.fallback, self.math = algo, backend, fallback, math
        self.layout = memory_layout.check(layout)
        self.planning = False  # see Swap.planning
        self.plans: dict[tuple, LayerPlan] = {}
        self._runners: dict[tuple, Callable[[torch.Tensor], torch.Tensor] | None] = {}

    def extra_repr(self) -> str:
        return (
            f"{self.geometry.describe()}, algo={self.algo}, backend={self.backend}, fallback={self.fallback}, "
            f"layout={self.layout}"
        )

    @staticmethod
    def _key(x: torch.Tensor) -> tuple:
        return (tuple(x.shape), x.dtype, x.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        key = self._key(x)
        if key not in self._runners:
            self.plan(x)
        run = self._runners[key]
        if run is None and self.planning:
            return self._torch_conv(x)
        if run is None:
            plan = self.plans[key]
            raise UnsupportedLayer(f"{plan.algo_requested} cannot run this layer: {plan.detail}")
        return run(x)

    def plan(self, x: torch.Tensor) -> LayerPlan:
        """Decide what runs this layer for inputs shaped like ``x`` (cached); see the module docstring."""
        key = self._key(x)
        if key in self.plans:
            return self.plans[key]
        plan, run = self._plan_requested(x)
        if run is None and self.fallback != "none":
            plan, run = self._plan_fallback(x, plan.detail)
        self.plans[key], self._runners[key] = plan, run
        return plan

    def forget_plans(self) -> None:
        """Drop every shape's plan (and with it any cuDNN descriptors); the next call plans again."""
        self.plans.clear()
        self._runners.clear()

    def _plan_requested(self, x: torch.Tensor) -> tuple[LayerPlan, Callable | None]:
        if self.backend == "reference":
            reason = reference.supports(self.algo, self.geometry, self.layout)
            if reason is None:
                hw = tuple(x.shape[2:])
                run = reference.make_runner(self.algo, self.weight, self.bias, self.geometry, hw, self.layout)
                return LayerPlan(self.algo, self.algo, "reference", "ok"), run
            return LayerPlan(self.algo, self.algo, "reference", "unsupported", detail=reason), None
        return self._plan_cudnn(self.algo, x, status="ok")

    def _plan_cudnn(self, algo: str, x: torch.Tensor, status: str) -> tuple[LayerPlan, Callable | None]:
        from harness.algorithms import cudnn  # ctypes binding: only where cuDNN is used

        try:
            p = cudnn.CudnnConvPlan.build(algo, self.weight, self.bias, self.geometry, x, self.math, self.layout)
        except (cudnn.CudnnNotSupported, cudnn.WorkspaceOutOfMemory) as e:
            return LayerPlan(self.algo, algo, "cudnn", "unsupported", detail=e.name, math=self.math), None
        return LayerPlan(self.algo, p.algo, "cudnn", status, p.workspace_bytes, p.note, self.math, p.compute_type), p

    def _torch_conv(self, x: torch.Tensor) -> torch.Tensor:
        g = self.geometry
        return F.conv2d(x, self.weight, self.bias, g.stride, g.padding, g.dilation, g.groups)

    def _plan_fallback(self, x: torch.Tensor, why: str | None) -> tuple[LayerPlan, Callable | None]:
        if self.fallback == "torch":
            return LayerPlan(self.algo, "torch", "torch", "fallback", detail=why), self._torch_conv
        plan, run = self._plan_cudnn("guess", x, status="fallback")
        detail = why if run is not None else f"{why}; guess: {plan.detail}"
        return LayerPlan(
            self.algo, plan.algo_used, "cudnn", plan.status, plan.workspace_bytes, detail, self.math, plan.compute_type
        ), run


@dataclass
class Swap:
    """The swapped layers of a model; ``undo()`` restores the original nn.Conv2d modules."""

    model: nn.Module
    originals: dict[str, nn.Conv2d]
    swapped: dict[str, AlgoConv2d]

    def undo(self) -> None:
        for name, conv in self.originals.items():
            _set_submodule(self.model, name, conv)

    def redo(self) -> None:
        for name, module in self.swapped.items():
            _set_submodule(self.model, name, module)

    def release(self) -> None:
        """Forget every layer's plans and free the shared cuDNN workspace: called when a point starts, so
        that nothing planned for another input shape stays in memory."""
        for m in self.swapped.values():
            m.forget_plans()
        if any(m.backend == "cudnn" or m.fallback == "guess" for m in self.swapped.values()):
            from harness.algorithms import cudnn

            cudnn.release_workspaces()

    def __enter__(self) -> Swap:
        return self

    def __exit__(self, *exc: object) -> None:
        self.undo()

    @contextlib.contextmanager
    def original(self) -> Iterator[nn.Module]:
        """The model with its original layers for the duration of the block (e.g. for a reference output)."""
        self.undo()
        try:
            yield self.model
        finally:
            self.redo()

    @contextlib.contextmanager
    def planning(self) -> Iterator[nn.Module]:
        """A block in which a layer with no runnable plan runs torch's convolution instead of raising, so
        that one forward plans every layer and finds every unsupported one."""
        for m in self.swapped.values():
            m.planning = True
        try:
            yield self.model
        finally:
            for m in self.swapped.values():
                m.planning = False


def _set_submodule(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)


def swap(
    model: nn.Module,
    choice: str | Mapping[str, str] | Plan,
    *,
    backend: str,
    fallback: str = "none",
    math: str = "fma",
    layout: str = "nchw",
) -> Swap:
    """Replace conv layers of ``model`` in place: every nn.Conv2d (one name) or those named in a mapping.

    ``choice``: an algorithm for all layers, {module path: algorithm}, or a per-layer ``Plan``
    (harness.algorithms.plan; refused with PlanMismatch, naming the first differing layer, where its layers
    are not this model's conv layers); layers not in the mapping, and any layer whose algorithm is "torch",
    stay as they are. ``layout``: the memory layout the swapped layers compute in (see the module docstring).
    """
    if fallback not in FALLBACKS:
        raise ValueError(f"unknown fallback {fallback!r}; valid: {', '.join(FALLBACKS)}")
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; valid: {', '.join(BACKENDS)}")
    convs = dict(conv_layers(model))
    if isinstance(choice, Plan):
        check_model(choice, model)
        choice = choice.choice()
    if isinstance(choice, str):
        wanted = {name: choice for name in convs}
    else:
        unknown = set(choice) - set(convs)
        if unknown:
            raise ValueError(f"not conv layers of this model: {sorted(unknown)}; its conv layers: {sorted(convs)}")
        wanted = dict(choice)
    originals, swapped = {}, {}
    for name, algo in wanted.items():
        if algo == "torch":
            continue
        originals[name] = convs[name]
        swapped[name] = AlgoConv2d(convs[name], algo, backend, fallback, math, layout)
    result = Swap(model, originals, swapped)
    result.redo()
    return result
