"""Swapping a model's nn.Conv2d layers for modules that run a chosen algorithm, and undoing it.

``swap(model, "winograd")``, ``swap(model, {"features.0": "fft", ...})`` or, per direction of a training
step, ``swap(model, {"features.0": {"forward": "fft", "backward_data": "gemm", "backward_filter": "fft"}})``
replaces each chosen conv layer by an ``AlgoConv2d`` that shares its weight and bias (no copy) and returns a
``Swap`` whose ``undo()`` puts the original layers back. Usable from plain Python, without Hydra or the runner.
One algorithm name means that algorithm in every direction (forward, backward_data, backward_filter; what a
name means in a backward direction: the registry's ``cudnn_for`` on cuDNN, ``reference_backward`` on the CPU).

What runs a layer is decided per direction and input shape, when ``AlgoConv2d`` first needs it (``plan``):
the backend is asked whether it supports the layer in that direction (for cuDNN: a workspace query and one
trial run), and the fallback policy decides what an unsupported layer runs there. The decision is recorded
as a ``LayerPlan`` (its ``direction`` says which). The forward runs through an autograd function
(``autograd_conv``), so ``loss.backward()`` runs each layer's backward_data runner (only where its input needs
a gradient) and backward_filter runner (only where its weight needs one). The runner makes a planning forward
(and, for a training step, ``Swap.plan_step``: a planning forward and backward) before timing, so a timed
call never plans.

``layout`` (nchw or nhwc, harness.algorithms.memory_layout) is the memory layout the layers compute in: the
model's weights and its input must be in it (``memory_layout.model_to_layout``); each backend then reads and
writes that layout (cuDNN: descriptors of that format; the references: their NHWC implementations), and an
algorithm with no implementation in the layout is unsupported for the layer, with the reason.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace

import torch
from torch import nn

from harness.algorithms import autograd_conv, memory_layout, reference, reference_backward
from harness.algorithms.geometry import ConvGeometry
from harness.algorithms.plan import DIRECTIONS, Plan, check_model, conv_layers, per_direction
from harness.errors import ConfigError

log = logging.getLogger(__name__)

FALLBACKS = ("none", "guess", "torch")
BACKENDS = ("cudnn", "reference")
AlgoChoice = str | Mapping[str, str]  # one algorithm for every direction, or {direction: algorithm}


@dataclass(frozen=True)
class LayerPlan:
    """What runs one conv layer in one direction for one input shape, and how that was decided."""

    algo_requested: str
    algo_used: str  # the algorithm that really runs ("torch" for the framework's own convolution)
    backend: str  # "cudnn", "reference" or "torch"
    status: str  # "ok", "fallback" or "unsupported" (nothing runs it: fallback=none)
    workspace_bytes: int | None = None
    detail: str | None = None  # why a layer was unsupported or fell back
    math: str | None = None  # cuDNN math type ("fma" or "tensor_op"); None off cuDNN
    compute_type: str | None = None  # cuDNN's compute type ("float32" for every data type); None off cuDNN
    direction: str = "forward"  # forward, backward_data or backward_filter (plan.DIRECTIONS)
    # cuDNN documents the enum that runs as non-deterministic (cudnn_enums.NONDETERMINISTIC); None off cuDNN
    nondeterministic: bool | None = None


class UnsupportedLayer(RuntimeError):
    """Raised by a layer with no runnable plan when it is called outside planning."""


@dataclass
class _Runner:
    """A planned runner; ``rebuild`` makes it again for the weight as it is now, where the runner precomputed
    from the weight (a reference FFT's kernel spectra): after an optimizer step, the next call rebuilds it."""

    run: Callable[..., torch.Tensor] | None
    rebuild: Callable[[], Callable[..., torch.Tensor]] | None = None
    weight_version: int = 0


class AlgoConv2d(nn.Module):
    """Stands in for an nn.Conv2d, running ``algo`` on ``backend``; shares the original's parameters.

    ``algo``: one algorithm name (the same in every direction) or {direction: algorithm} (a direction left
    out: ``torch``, the framework's own); ``algos`` holds all three. ``forward`` goes through an autograd
    function (harness.algorithms.autograd_conv), so the model's backward runs this layer's backward_data and
    backward_filter choices. ``plans`` is the forward's {input key: LayerPlan} (``plans_by_direction``:
    every direction's)."""

    is_conv2d_stand_in = True

    def __init__(
        self, conv: nn.Conv2d, algo: AlgoChoice, backend: str, fallback: str, math: str, layout: str = "nchw"
    ) -> None:
        super().__init__()
        self.geometry = ConvGeometry.of(conv)
        for attr in ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups"):
            setattr(self, attr, getattr(conv, attr))
        self.padding_mode = conv.padding_mode
        self.weight = conv.weight
        self.bias = conv.bias
        self.algos = per_direction(algo)
        self.algo = self.algos["forward"]
        self.backend, self.fallback, self.math = backend, fallback, math
        self.layout = memory_layout.check(layout)
        self.planning = False  # see Swap.planning
        self.plans_by_direction: dict[str, dict[tuple, LayerPlan]] = {d: {} for d in DIRECTIONS}
        self.plans = self.plans_by_direction["forward"]
        self._runners: dict[tuple[str, tuple], _Runner] = {}

    def extra_repr(self) -> str:
        algos = self.algo if len(set(self.algos.values())) == 1 else self.algos
        return (
            f"{self.geometry.describe()}, algo={algos}, backend={self.backend}, fallback={self.fallback}, "
            f"layout={self.layout}"
        )

    @staticmethod
    def _key(x: torch.Tensor) -> tuple:
        return (tuple(x.shape), x.dtype, x.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and self._needs_grad(x):
            return self._differentiable(x)
        # nothing to differentiate (inference_mode, no_grad, frozen): the forward runner itself, without an
        # autograd node, whose microseconds per layer would weigh on a host-bound forward's time
        r = self._runners.get(("forward", (tuple(x.shape), x.dtype, x.device)))
        if r is not None and r.run is not None and r.rebuild is None:
            return r.run(x)  # the planned runner, as before backward existed (no weight to watch)
        return self.runner_to_call(x, "forward")(x)

    def _needs_grad(self, x: torch.Tensor) -> bool:
        return x.requires_grad or self.weight.requires_grad or (self.bias is not None and self.bias.requires_grad)

    def _differentiable(self, x: torch.Tensor) -> torch.Tensor:
        if _autocast_on(x.device.type):
            # the runners run in their operands' dtype, with the weight they were planned for: under autocast
            # they would run in the weight's dtype where torch's convolution runs in autocast's
            raise ConfigError(
                f"a swapped layer runs in the model's dtype ({self.weight.dtype}), not under torch.autocast; "
                "run the model in one dtype (e.g. dtype=float16) or leave autocast off"
            )
        return autograd_conv.conv2d(x, self.weight, self.bias, self)

    def plan(self, x: torch.Tensor, direction: str = "forward") -> LayerPlan:
        """Decide what runs this layer in ``direction`` for inputs shaped like ``x`` (the layer's input, in
        every direction; cached); see the module docstring."""
        plans = self.plans_by_direction[_check_direction(direction)]
        key = self._key(x)
        if key in plans:
            return plans[key]
        plan, run, rebuild = self._plan_requested(x, direction)
        if run is None and self.fallback != "none":
            plan, run, rebuild = self._plan_fallback(x, direction, plan.detail)
        plans[key] = plan
        self._runners[(direction, key)] = _Runner(run, rebuild, self.weight._version)
        return plan

    def runner(self, x: torch.Tensor, direction: str = "forward") -> Callable[..., torch.Tensor] | None:
        """What runs ``direction`` for inputs shaped like ``x`` (planned here where not yet): forward
        ``run(x) -> y``, backward_data ``run(grad_out) -> grad_input``, backward_filter ``run(x, grad_out) ->
        grad_weight``; None where nothing runs it (fallback=none)."""
        key = self._key(x)
        r = self._runners.get((direction, key))
        if r is None:
            self.plan(x, direction)
            r = self._runners[(direction, key)]
        if r.rebuild is not None and r.weight_version != self.weight._version:
            r.run, r.weight_version = r.rebuild(), self.weight._version
        return r.run

    def runner_to_call(self, x: torch.Tensor, direction: str) -> Callable[..., torch.Tensor]:
        """``runner``, or where nothing runs the layer: torch's own during planning, else UnsupportedLayer."""
        run = self.runner(x, direction)
        if run is not None:
            return run
        if self.planning:
            return autograd_conv.torch_runner(direction, self.weight, self.bias, self.geometry, tuple(x.shape))
        plan = self.plans_by_direction[direction][self._key(x)]
        raise UnsupportedLayer(f"{plan.algo_requested} cannot run this layer ({direction}): {plan.detail}")

    def forget_plans(self) -> None:
        """Drop every shape's plan in every direction (and with them any cuDNN descriptors); the next call
        plans again."""
        for plans in self.plans_by_direction.values():
            plans.clear()
        self._runners.clear()

    def _plan_requested(self, x: torch.Tensor, direction: str) -> tuple[LayerPlan, Callable | None, Callable | None]:
        algo = self.algos[direction]
        if algo == "torch":
            return LayerPlan(algo, "torch", "torch", "ok", direction=direction), self._torch(x, direction), None
        if self.backend == "reference":
            return self._plan_reference(algo, x, direction)
        plan, run = self._plan_cudnn(algo, x, direction, status="ok")
        return plan, run, None

    def _plan_reference(
        self, algo: str, x: torch.Tensor, direction: str
    ) -> tuple[LayerPlan, Callable | None, Callable | None]:
        g, hw, layout = self.geometry, (int(x.shape[2]), int(x.shape[3])), self.layout
        if direction == "forward":
            reason = reference.supports(algo, g, layout)

            def build() -> Callable[..., torch.Tensor]:
                return reference.make_runner(algo, self.weight, self.bias, g, hw, layout)
        else:
            reason = reference_backward.supports(direction, algo, g, layout)

            def build() -> Callable[..., torch.Tensor]:
                return reference_backward.make_runner(direction, algo, self.weight, g, hw, layout)

        if reason is not None:
            return LayerPlan(algo, algo, "reference", "unsupported", detail=reason, direction=direction), None, None
        return LayerPlan(algo, algo, "reference", "ok", direction=direction), build(), build

    def _plan_cudnn(self, algo: str, x: torch.Tensor, direction: str, status: str) -> tuple[LayerPlan, Callable | None]:
        from harness.algorithms import cudnn  # ctypes binding: only where cuDNN is used

        requested = self.algos[direction]
        g = self.geometry
        try:
            if direction == "forward":
                p = cudnn.CudnnConvPlan.build(algo, self.weight, self.bias, g, x, self.math, self.layout)
            else:
                from harness.algorithms import cudnn_backward

                p = cudnn_backward.CudnnBackwardPlan.build(direction, algo, self.weight, g, x, self.math, self.layout)
        except (cudnn.CudnnNotSupported, cudnn.WorkspaceOutOfMemory) as e:
            return LayerPlan(
                requested, algo, "cudnn", "unsupported", detail=e.name, math=self.math, direction=direction
            ), None
        # cuDNN documents none of its forward algorithms as non-deterministic (cudnn_enums.NONDETERMINISTIC)
        nondeterministic = False if direction == "forward" else p.nondeterministic
        plan = LayerPlan(
            requested,
            p.algo,
            "cudnn",
            status,
            p.workspace_bytes,
            p.note,
            self.math,
            p.compute_type,
            direction,
            nondeterministic,
        )
        return plan, p

    def _torch(self, x: torch.Tensor, direction: str) -> Callable[..., torch.Tensor]:
        return autograd_conv.torch_runner(direction, self.weight, self.bias, self.geometry, tuple(x.shape))

    def _plan_fallback(
        self, x: torch.Tensor, direction: str, why: str | None
    ) -> tuple[LayerPlan, Callable | None, Callable | None]:
        requested = self.algos[direction]
        if self.fallback == "torch":
            plan = LayerPlan(requested, "torch", "torch", "fallback", detail=why, direction=direction)
            return plan, self._torch(x, direction), None
        plan, run = self._plan_cudnn("guess", x, direction, status="fallback")
        detail = why if run is not None else f"{why}; guess: {plan.detail}"
        return replace(plan, detail=detail), run, None


def _autocast_on(device_type: str) -> bool:
    try:
        return torch.is_autocast_enabled(device_type)
    except RuntimeError:  # a device type autocast has no notion of (meta, a tracer's): no autocast there
        return False


def _check_direction(direction: str) -> str:
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}; valid: {', '.join(DIRECTIONS)}")
    return direction


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
        """A block in which a layer with no runnable plan runs torch's convolution (or its gradient) instead
        of raising, so that one forward (and backward) plans every layer and finds every unsupported one."""
        for m in self.swapped.values():
            m.planning = True
        try:
            yield self.model
        finally:
            for m in self.swapped.values():
                m.planning = False

    def plan_step(self, *inputs: torch.Tensor, input_grad: bool = False) -> dict[str, dict[str, LayerPlan]]:
        """Plan every swapped layer in every direction a training step runs, before anything is timed: one
        forward and backward of the model on ``inputs`` under ``planning()`` (the model's output: each of its
        floating-point tensors back-propagated with a gradient of ones). ``input_grad``: whether the inputs
        need a gradient (whether layer 0 plans and runs backward_data). What the step would change is put back:
        the parameters' ``.grad`` and the buffers (batch norm's running statistics).

        Returns {layer: {direction: LayerPlan}} at the input shape each layer saw (first call, where a layer is
        called more than once), for the layers the step ran; a direction no gradient asked for (e.g. layer 0's
        backward_data without ``input_grad``) is not planned and not in it."""
        params = list(self.model.parameters())
        grads = [p.grad for p in params]
        buffers = {name: b.clone() for name, b in self.model.named_buffers()}
        for p in params:
            p.grad = None
        seen: dict[str, tuple] = {}

        def note_key(name: str) -> Callable[..., None]:
            def hook(m: AlgoConv2d, args: tuple) -> None:  # returns None: a pre-hook's result replaces the input
                seen.setdefault(name, m._key(args[0]))

            return hook

        hooks = [m.register_forward_pre_hook(note_key(name)) for name, m in self.swapped.items()]
        try:
            with self.planning(), torch.enable_grad():
                out = self.model(*(x.detach().requires_grad_(input_grad) for x in inputs))
                outs = [t for t in _tensors(out) if t.requires_grad]
                if outs:
                    torch.autograd.backward(outs, [torch.ones_like(t) for t in outs])
        finally:
            for h in hooks:
                h.remove()
            for p, g in zip(params, grads, strict=True):
                p.grad = g
            with torch.no_grad():
                for name, b in self.model.named_buffers():
                    if name in buffers:
                        b.copy_(buffers[name])
        return {
            name: {d: p[seen[name]] for d in DIRECTIONS if seen[name] in (p := m.plans_by_direction[d])}
            for name, m in self.swapped.items()
            if name in seen
        }


def _tensors(out: object) -> list[torch.Tensor]:
    """The floating-point tensors of a model's output (a tensor, or a tuple, list or dict of them)."""
    if isinstance(out, torch.Tensor):
        return [out] if out.is_floating_point() else []
    if isinstance(out, Mapping):
        out = list(out.values())
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _tensors(o)]
    return []


def _set_submodule(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)


def swap(
    model: nn.Module,
    choice: str | Mapping[str, AlgoChoice] | Plan,
    *,
    backend: str,
    fallback: str = "none",
    math: str = "fma",
    layout: str = "nchw",
) -> Swap:
    """Replace conv layers of ``model`` in place: every nn.Conv2d (one name) or those named in a mapping.

    ``choice``: an algorithm for all layers (in every direction), {module path: algorithm}, {module path:
    {direction: algorithm}} (a direction left out: torch), or a per-layer ``Plan`` (harness.algorithms.plan; a
    training plan chooses per direction; refused with PlanMismatch, naming the first differing layer, where its
    layers are not this model's conv layers); layers not in the mapping, and any layer whose algorithm is
    "torch" in every direction, stay as they are. An unknown direction is refused, naming the valid ones.
    ``layout``: the memory layout the swapped layers compute in (see the module docstring).
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
        wanted = {name: per_direction(choice) for name in convs}
    else:
        unknown = set(choice) - set(convs)
        if unknown:
            raise ValueError(f"not conv layers of this model: {sorted(unknown)}; its conv layers: {sorted(convs)}")
        wanted = {name: per_direction(algo) for name, algo in choice.items()}
    originals, swapped = {}, {}
    for name, algo in wanted.items():
        if set(algo.values()) == {"torch"}:
            continue
        originals[name] = convs[name]
        swapped[name] = AlgoConv2d(convs[name], algo, backend, fallback, math, layout)
    result = Swap(model, originals, swapped)
    result.redo()
    return result


def swap_torch(model: nn.Module, layout: str = "nchw") -> Swap:
    """Every conv layer of ``model`` through an ``AlgoConv2d`` that runs torch's own convolution in every
    direction (``autograd_conv.torch_runner``: F.conv2d and torch.nn.grad's two gradients): what ``swap`` leaves
    alone for ``torch``. The training step's layer pass times torch's layers per direction this way, with the same
    hooks on the runners as a swapped model's (harness.measure.train_step)."""
    convs = dict(conv_layers(model))
    swapped = {name: AlgoConv2d(conv, "torch", "reference", "none", "fma", layout) for name, conv in convs.items()}
    result = Swap(model, convs, swapped)
    result.redo()
    return result
