"""The training directions of a point: a whole training step, or the conv layers' gradients alone.

``direction`` (harness.config.keys) says what one timed iteration is:

- ``train_step``: ``zero_grad`` + forward + loss + backward + ``optimizer.step`` (``TrainStep``), on a fixed random
  batch with fixed random labels (seeded: the same at every point of a job). With ``train.amp`` the forward and
  loss run under ``torch.autocast`` (float16) and the loss is scaled by a ``GradScaler`` (GPU only).
- ``backward_data`` / ``backward_filter``: every conv layer's gradient call in that direction, one after the other
  in the order a backward pass makes them, each on the operands a real step gave it (its input and the gradient
  of its output, saved once per point: ``saved_operands``). The forward and the other layers' backward are not
  in the timed interval: the sum of the conv calls is what the direction's algorithms decide. Layer 0's
  backward_data runs only with ``train.input_grad`` (as in a step, where the input needs no gradient).

``train.model_mode`` is the model's mode during the point (``model_mode``); ``eval`` is the default (the
convolutions do the same work in both modes). ``train``: a real training step, batch norm normalising with the
batch's statistics (and updating its running ones) and dropout on. Each step that is compared with another (the
gradient check's two, the step whose operands are saved) runs on the same random numbers (``same_random``: a fixed
seed, the CPU's and the device's generators forked), so both see the same dropout masks; and every phase that steps
the model (those and the timed loops) gives back its buffers (``kept_buffers``), so the running statistics do not
drift from one phase, or point, to the next. A batch norm that would see one value per channel (batch 1 at a 1x1
feature map) cannot normalise in train mode, nor usefully two: the job is refused before it measures
(``thin_batch_norm``). A few more values per channel run but leave the gradients ill-conditioned (rounding amplified
by the small samples' spread): the gradient check may then fail. ``eval``: the model as it was loaded, batch norm on
its running statistics and no dropout (the step before the key existed); a batch of 1 runs at any size. The conv
layers' work is the same in either mode; the rest of the step (batch norm's statistics, dropout) is not.

Timing is the forward's (``time_adaptively``, adaptive to the stage's CI target). On a GPU the step (or the
gradient calls) is captured as a CUDA graph where it can be and its replays are timed; where it cannot
(``train.amp``: the GradScaler's inf check synchronizes with the host), it is timed eagerly and the row says why
(``cuda_graph``, ``graph_error``). On the CPU every iteration is eager.

The layer pass times each conv call in each direction with hooks around the swapped layers' runners
(``RunnerClock``: the callable ``AlgoConv2d.runner_to_call`` returns, which the autograd function calls in the
forward and in the backward): ``stage.layer_iters`` steps (or rounds of gradient calls), each call timed by
itself (CUDA events behind a head start on a GPU, perf_counter on the CPU). The framework's own convolution
(algo=torch) is timed the same way through ``swap_torch`` (torch's convolution and its two gradients as
runners). What ran each call is the layer's ``LayerPlan`` in that direction (``Swap.plan_step``).

Gradients are checked at every point against torch's own convolution (``check_gradients``): the same weights,
input and labels, every parameter's gradient (and the input's, with ``train.input_grad``), in float64 for the
reference so that its own rounding does not count against the algorithm; the worst relative error over the
parameters is ``grad_max_rel_err``, within ``GRAD_TOLERANCES`` of the dtype ``grad_ok``. A gradient that is zero
in exact arithmetic (a conv's bias before a train-mode batch norm, which removes any constant shift) is
rounding noise on both sides: it is compared at the scale of the model's largest gradient (``grad_errors``).
"""

from __future__ import annotations

import copy
import logging
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from harness.algorithms import LayerPlan
from harness.algorithms.plan import DIRECTIONS
from harness.algorithms.swap import AlgoConv2d, Swap, swap_torch
from harness.config.spec import TrainSpec
from harness.measure.flops_directions import LayerCost
from harness.measure.layers import HeadStart, conv_geometry, is_conv, with_share_of_model
from harness.stats import layer_summary

log = logging.getLogger(__name__)

Row = dict[str, Any]

# Gradient tolerances per dtype (tf32: float32 data with tensor-op math): max |g - g_torch| / max |g_torch| over
# one parameter's gradient, the worst parameter. The one place they are stated (docs/running.md quotes them).
GRAD_TOLERANCES = {"float32": 1e-3, "tf32": 2e-2, "float16": 3e-2, "bfloat16": 1e-1}
# A reference gradient this small against the model's largest is zero in exact arithmetic (float64 leaves
# ~1e-16 of it): its parameter's error is taken against the model's largest gradient instead of its own.
ZERO_GRADIENT = 1e-6
# The fewest values per channel a train-mode batch norm is measured with (``thin_batch_norm``).
BATCH_NORM_VALUES = 3
# The values per channel from which a train-mode batch norm's gradients pass the gradient check with a wide
# margin (resnet18, float32: 8 at a 1x1 map errs by 1e-5 with gemm or fft; 3 by 3e-3, 4 by 2e-4 to 4e-4).
WELL_CONDITIONED_VALUES = 8
# The seed of the random numbers (dropout masks) of each step compared with another (``same_random``).
COMPARED_SEED = 0
BACKWARD = DIRECTIONS[1:]  # backward_data, backward_filter


def timed_directions(direction: str) -> tuple[str, ...]:
    """The conv directions a point of ``direction`` times: all three for a training step, else its own."""
    return DIRECTIONS if direction == "train_step" else (direction,)


def direction_columns(direction: str, algo: str, train: TrainSpec) -> Row:
    """The points row's columns of the direction: the algorithm asked for in each conv direction (null where the
    point does not time it) and, off the forward, the step's settings."""
    timed = timed_directions(direction)
    row: Row = {f"algo_{d}": algo if d in timed else None for d in DIRECTIONS}
    if direction == "forward":
        return row
    return row | {
        "train_loss": train.loss,
        "train_optimizer": train.optimizer,
        "train_amp": train.amp,
        "train_deterministic": train.deterministic,
        "train_input_grad": train.input_grad,
        "train_model_mode": train.model_mode,
    }


# -- the step ---------------------------------------------------------------------------------------------------


def fixed_labels(out: torch.Tensor, loss: str, seed: int) -> torch.Tensor:
    """The step's fixed random labels for a model output ``out``: class indices (cross_entropy: one per sample
    over the output's second dimension) or targets of its shape (mse), from a generator seeded with ``seed``."""
    g = torch.Generator().manual_seed(seed + 1)
    if loss == "cross_entropy":
        if out.dim() < 2:
            raise ValueError(
                f"train.loss=cross_entropy needs an output of (batch, classes, ...); got {tuple(out.shape)} "
                "(use train.loss=mse)"
            )
        shape = (out.shape[0], *out.shape[2:])
        return torch.randint(0, out.shape[1], shape, generator=g).to(out.device)
    return torch.randn(tuple(out.shape), generator=g).to(out.device, out.dtype)


def loss_function(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The loss of ``train.loss`` (its output in float32 for a half-precision model output)."""
    if name == "cross_entropy":
        return lambda out, labels: nn.functional.cross_entropy(out.float(), labels)
    if name == "mse":
        return lambda out, target: nn.functional.mse_loss(out.float(), target.float())
    raise ValueError(f"unknown train.loss {name!r}; valid choices: cross_entropy, mse")


def make_optimizer(params: list[nn.Parameter], train: TrainSpec, capturable: bool = False) -> torch.optim.Optimizer:
    """The optimizer of ``train.optimizer``; ``capturable``: its state on the device (a CUDA graph's step)."""
    if train.optimizer == "sgd":
        return torch.optim.SGD(params, lr=train.lr, momentum=train.momentum)
    if train.optimizer == "adam":
        return torch.optim.Adam(params, lr=train.lr, capturable=capturable)
    raise ValueError(f"unknown train.optimizer {train.optimizer!r}; valid choices: sgd, adam")


def first_output(out: Any) -> torch.Tensor:
    """The tensor a loss is computed on: the output, or the first floating-point tensor of a tuple/dict output."""
    if isinstance(out, torch.Tensor):
        return out
    items = out.values() if isinstance(out, dict) else out
    for item in items:
        if isinstance(item, torch.Tensor) and item.is_floating_point():
            return item
    raise ValueError("the model's output holds no floating-point tensor to compute a loss on")


class TrainStep:
    """One training step of ``model`` on the fixed batch ``x`` and ``labels``: ``zero_grad`` + forward + loss +
    backward + optimizer step; ``body`` is the step without ``zero_grad`` (what a CUDA graph captures, with the
    gradients unset before the capture, so that its backward assigns rather than accumulates)."""

    def __init__(self, model: nn.Module, x: torch.Tensor, labels: torch.Tensor, train: TrainSpec) -> None:
        self.model, self.train = model, train
        self.x = x.detach().requires_grad_(train.input_grad)
        self.labels = labels
        self.loss_fn = loss_function(train.loss)
        self.params = [p for p in model.parameters() if p.requires_grad]
        on_gpu = x.device.type == "cuda"
        self.optimizer = make_optimizer(self.params, train, capturable=on_gpu and not train.amp)
        self.scaler = torch.amp.GradScaler("cuda") if train.amp else None
        self.last_loss: torch.Tensor | None = None

    def zero_grad(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        self.x.grad = None

    def body(self) -> torch.Tensor:
        with torch.enable_grad():
            if self.scaler is not None:
                with torch.autocast("cuda", dtype=torch.float16):
                    loss = self.loss_fn(first_output(self.model(self.x)), self.labels)
                self.scaler.scale(loss).backward()
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                loss = self.loss_fn(first_output(self.model(self.x)), self.labels)
                loss.backward()
                self.optimizer.step()
        self.last_loss = loss.detach()
        return self.last_loss

    def __call__(self) -> torch.Tensor:
        self.zero_grad()
        return self.body()


@contextmanager
def deterministic(on: bool) -> Iterator[None]:
    """``torch.use_deterministic_algorithms(on)`` for the block (``train.deterministic``), restored after. On, with
    CUDA: cuBLAS is deterministic only with a fixed workspace configuration (torch refuses its matrix products
    otherwise), so CUBLAS_WORKSPACE_CONFIG is set to ``:4096:8`` where the environment does not set it."""
    before = torch.are_deterministic_algorithms_enabled()
    if on and torch.cuda.is_available() and "CUBLAS_WORKSPACE_CONFIG" not in os.environ:
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = ":4096:8"
        log.info("train.deterministic: CUBLAS_WORKSPACE_CONFIG=:4096:8 for cuBLAS's deterministic products")
    torch.use_deterministic_algorithms(on)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before)


@contextmanager
def model_mode(model: nn.Module, mode: str) -> Iterator[None]:
    """``model`` in ``mode`` (``train.model_mode``: train or eval) for the block; every module's own mode
    put back after."""
    if mode not in ("train", "eval"):
        raise ValueError(f"unknown train.model_mode {mode!r}; valid choices: train, eval")
    before = {m: m.training for m in model.modules()}
    model.train(mode == "train")
    try:
        yield
    finally:
        for m, training in before.items():
            m.training = training


@contextmanager
def kept_buffers(model: nn.Module) -> Iterator[None]:
    """The buffers (batch norm's running statistics and its count of batches) copied back in place after the
    block: a train-mode step updates them, and the next phase must start from the same model. In place, so
    that a CUDA graph captured on them keeps its addresses."""
    saved = [(b, b.detach().clone()) for b in model.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for b, value in saved:
                b.copy_(value)


@contextmanager
def same_random(device: torch.device, seed: int = COMPARED_SEED) -> Iterator[None]:
    """The block on random numbers seeded with ``seed`` (the CPU's generator and, on a GPU, ``device``'s),
    the generators' states put back after: two compared steps see the same dropout masks, and the job's own
    random sequence is not moved."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices, device_type="cuda"):
        torch.manual_seed(seed)
        yield


def thin_batch_norm(model: nn.Module, x: torch.Tensor) -> tuple[str, tuple[int, ...]] | None:
    """The first batch norm of ``model`` that, in train mode, would normalise fewer than BATCH_NORM_VALUES
    values per channel for input ``x``, as (its name, its input's shape); None where there is none. One value
    (batch 1 at a 1x1 feature map): torch refuses to normalise it. Two: they normalise to -1 and +1 whatever
    they are, so the gradient through the layer is what batch norm's epsilon leaves, which rounding swamps (in
    float32 against float64, resnet18 at batch 2 and size 32 errs by 10% in most of its gradients): no gradient
    check can pass. ``model`` is run once in eval mode on ``x`` (a meta model and input: shapes only)."""
    names = {m: n for n, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)}
    found: list[tuple[str, tuple[int, ...]]] = []

    def hook(module: nn.Module, args: tuple) -> None:
        shape = tuple(args[0].shape)
        if not found and len(shape) >= 2 and math.prod(shape) // shape[1] < BATCH_NORM_VALUES:
            found.append((names[module], shape))

    handles = [m.register_forward_pre_hook(hook) for m in names]
    try:
        with model_mode(model, "eval"), torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return found[0] if found else None


@contextmanager
def kept_state(model: nn.Module) -> Iterator[None]:
    """The parameters, their gradients and the buffers as they are now, put back after the block."""
    state = copy.deepcopy(model.state_dict())
    grads = [p.grad for p in model.parameters()]
    try:
        yield
    finally:
        model.load_state_dict(state)
        for p, g in zip(model.parameters(), grads):
            p.grad = g


# -- the operands of each conv call, and the gradient calls alone ------------------------------------------------


@dataclass
class ConvCall:
    """One conv call of a step: its layer, its operands (saved from a real step) and its index in the forward."""

    index: int
    name: str
    module: nn.Module
    x: torch.Tensor
    out_shape: tuple[int, ...]
    grad_out: torch.Tensor | None = None


def saved_operands(model: nn.Module, step: Callable[[], object]) -> list[ConvCall]:
    """Every conv call of one ``step`` with its input and its output's gradient (None where no gradient reached
    it), in forward order: what the backward-only directions replay."""
    names = {m: name for name, m in model.named_modules() if is_conv(m)}
    calls: list[ConvCall] = []

    def pre(module: nn.Module, args: tuple) -> None:
        calls.append(ConvCall(len(calls), names[module], module, args[0].detach(), ()))

    def post(module: nn.Module, args: tuple, out: torch.Tensor) -> None:
        call = calls[-1]
        call.out_shape = tuple(out.shape)
        if out.requires_grad:
            out.register_hook(lambda g, call=call: setattr(call, "grad_out", g.detach()))

    handles = [h for m in names for h in (m.register_forward_pre_hook(pre), m.register_forward_hook(post))]
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    try:
        with same_random(device), kept_buffers(model):
            step()
    finally:
        for h in handles:
            h.remove()
    return calls


def gradient_calls(calls: list[ConvCall], direction: str, input_grad: bool) -> list[ConvCall]:
    """The calls a backward pass makes in ``direction``, in its order (last layer first): those that received a
    gradient, without layer 0's backward_data unless ``input_grad``."""
    out = [c for c in reversed(calls) if c.grad_out is not None]
    if direction == "backward_data" and not input_grad:
        out = [c for c in out if c.index != 0]
    return out


def gradient_pass(calls: list[ConvCall], direction: str) -> Callable[[], list[torch.Tensor]]:
    """One timed iteration of a backward-only direction: each call's runner in ``direction`` on its saved
    operands (through ``runner_to_call``, so ``RunnerClock`` sees each)."""

    def run() -> list[torch.Tensor]:
        with torch.no_grad():
            return [_run_call(c, direction) for c in calls]

    return run


def _run_call(c: ConvCall, direction: str) -> torch.Tensor:
    runner = c.module.runner_to_call(c.x, direction)
    return runner(c.grad_out) if direction == "backward_data" else runner(c.x, c.grad_out)


def check_determinism(calls: list[ConvCall], direction: str) -> dict[int, bool]:
    """{call index: whether two runs of its ``direction`` runner on the same operands differ in any bit}."""
    with torch.no_grad():
        return {c.index: not torch.equal(_run_call(c, direction), _run_call(c, direction)) for c in calls}


# -- the layer pass: each conv call's time, per direction ----------------------------------------------------------


@dataclass
class CallTimes:
    """The times of one conv call in one direction over the layer pass's iterations."""

    index: int  # the layer call's index in the forward
    name: str
    direction: str
    in_shape: tuple[int, ...]
    times_ms: list[float] = field(default_factory=list)
    host_bound: bool | None = None


class RunnerClock:
    """Times every runner call of the swapped layers: while it is open, each layer's ``runner_to_call`` returns
    its runner wrapped between two clock readings (CUDA events behind a ``HeadStart`` on a GPU; perf_counter on
    the CPU). ``run(fn)`` runs one iteration and adds each call's time to ``records``, keyed by the layer call's
    forward index and the direction (a layer called twice: its calls in order)."""

    def __init__(self, swapped: dict[str, AlgoConv2d], device: torch.device, order: dict[str, list[int]]) -> None:
        self.swapped, self.device, self.order = swapped, device, order
        self.head = HeadStart() if device.type == "cuda" else None
        self.records: dict[tuple[int, str], CallTimes] = {}
        self._pending: list[tuple[str, str, tuple[int, ...], Any, Any, bool]] = []

    def __enter__(self) -> RunnerClock:
        for name, m in self.swapped.items():
            m.runner_to_call = self._wrap(name, m)  # an instance attribute: the class's method is hidden
        return self

    def __exit__(self, *exc: object) -> None:
        for m in self.swapped.values():
            m.__dict__.pop("runner_to_call", None)

    def _wrap(self, name: str, m: AlgoConv2d) -> Callable[[torch.Tensor, str], Callable[..., torch.Tensor]]:
        planned = type(m).runner_to_call.__get__(m)

        def runner_to_call(x: torch.Tensor, direction: str) -> Callable[..., torch.Tensor]:
            run = planned(x, direction)

            def timed(*args: torch.Tensor) -> torch.Tensor:
                start = self.head.begin(len(self._pending)) if self.head is not None else time.perf_counter_ns()
                out = run(*args)
                if self.head is not None:
                    end = torch.cuda.Event(enable_timing=True)
                    end.record()
                    covered = self.head.covered(start)
                else:
                    end, covered = time.perf_counter_ns(), True
                self._pending.append((name, direction, tuple(x.shape), start, end, covered))
                return out

            return timed

        return runner_to_call

    def run(self, fn: Callable[[], object]) -> None:
        self._pending = []
        fn()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        seen: dict[tuple[str, str], int] = {}
        for name, direction, in_shape, start, end, covered in self._pending:
            k = seen.get((name, direction), 0)
            seen[(name, direction)] = k + 1
            index = self.order[name][min(k, len(self.order[name]) - 1)]
            ms = start.elapsed_time(end) if self.head is not None else (end - start) / 1e6
            rec = self.records.setdefault((index, direction), CallTimes(index, name, direction, in_shape))
            rec.times_ms.append(ms)
            if self.head is not None:
                rec.host_bound = bool(rec.host_bound) or not covered


def call_order(calls: list[ConvCall]) -> dict[str, list[int]]:
    """{layer name: its calls' forward indices, in order}."""
    order: dict[str, list[int]] = {}
    for c in calls:
        order.setdefault(c.name, []).append(c.index)
    return order


# -- gradients against torch's own convolution ----------------------------------------------------------------------


@dataclass(frozen=True)
class GradCheck:
    """The gradients of the measured layers against torch's own convolution's."""

    max_rel_err: float  # the worst over the parameters (and the input, with input_grad)
    worst: str  # the parameter with the worst error
    tolerance_key: str
    tolerance: float

    @property
    def ok(self) -> bool:
        return self.max_rel_err <= self.tolerance

    def problem(self) -> str | None:
        if self.ok:
            return None
        return (
            f"gradient check failed: max|g - g_torch| / max|g_torch| = {self.max_rel_err:.3g} at {self.worst} exceeds "
            f"the {self.tolerance_key} gradient tolerance {self.tolerance:g}"
        )


def gradients(model: nn.Module, x: torch.Tensor, labels: torch.Tensor, train: TrainSpec) -> dict[str, torch.Tensor]:
    """{parameter name (and "input" with input_grad): the gradient of the step's loss} for ``model`` as it is,
    computed with autograd.grad (no ``.grad`` touched), on the compared steps' random numbers
    (``same_random``), its buffers given back (``kept_buffers``)."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    xx = x.detach().requires_grad_(train.input_grad)
    with torch.enable_grad(), same_random(x.device), kept_buffers(model):
        loss = loss_function(train.loss)(first_output(model(xx)), labels)
        wrt = [p for _, p in named] + ([xx] if train.input_grad else [])
        grads = torch.autograd.grad(loss, wrt, allow_unused=True)
    names = [n for n, _ in named] + (["input"] if train.input_grad else [])
    return {n: g for n, g in zip(names, grads) if g is not None}


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    """max |got - want| / max |want| (0 where both are zero; inf where only ``want`` is)."""
    got, want = got.detach().double(), want.detach().double()
    abs_err = float((got - want).abs().max()) if want.numel() else 0.0
    scale = float(want.abs().max()) if want.numel() else 0.0
    return abs_err / scale if scale > 0 else (0.0 if abs_err == 0 else math.inf)


class _DropoutMaskIn(nn.Module):
    """A dropout layer of the float64 reference that draws its mask in the measured model's dtype: the same
    random numbers give the same mask only for the same dtype (a GPU's dropout kernel maps them to elements by
    vectors whose width is the dtype's), so the mask is dropout applied to ones in ``dtype``, then applied to
    the input in its own dtype."""

    def __init__(self, inner: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.inner, self.dtype = inner, dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.inner.training:
            return self.inner(x)
        return x * self.inner(torch.ones_like(x, dtype=self.dtype)).to(x.dtype)


def masks_in(model: nn.Module, dtype: torch.dtype) -> None:
    """Every dropout layer of ``model`` (a reference copy) drawing its masks in ``dtype`` (``_DropoutMaskIn``)."""
    for name, m in list(model.named_modules()):
        if isinstance(m, nn.modules.dropout._DropoutNd):
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, child, _DropoutMaskIn(m, dtype))


def grad_errors(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> dict[str, float]:
    """{name: the error of ``got[name]`` against ``want[name]``} for the names both have: max |g - g_torch|
    over max |g_torch| of the same parameter (``relative_error``); for a parameter whose reference gradient
    is zero in exact arithmetic (its max below ZERO_GRADIENT of the model's largest gradient), over the model's
    largest gradient instead: an absolute tolerance at the model's scale, since both sides are rounding noise
    whose ratio means nothing."""
    scale = {n: float(w.detach().abs().max()) if w.numel() else 0.0 for n, w in want.items()}
    largest = max(scale.values(), default=0.0)
    errors = {}
    for n in want:
        if n not in got:
            continue
        if largest > 0 and scale[n] <= ZERO_GRADIENT * largest:
            errors[n] = float((got[n].detach().double() - want[n].detach().double()).abs().max()) / largest
        else:
            errors[n] = relative_error(got[n], want[n])
    return errors


def check_gradients(
    swap: Swap, x: torch.Tensor, labels: torch.Tensor, train: TrainSpec, tolerance_key: str
) -> GradCheck:
    """The step's gradients with ``swap``'s layers against those of the original model (torch's convolution)
    computed in float64 on a copy: the same weights, input and labels. float64 for the reference, so that the
    comparison measures the algorithm's rounding and not the reference's own (a bias gradient is a sum over the
    batch and the pixels with cancellation: two float32 summation orders can differ by more than the dtype's
    tolerance relative to a small sum, float64 cannot)."""
    got = gradients(swap.model, x, labels, train)
    with swap.original() as original:
        reference = copy.deepcopy(original).double()
    masks_in(reference, x.dtype)
    want = gradients(reference, x.double(), labels.double() if labels.is_floating_point() else labels, train)
    errors = grad_errors(got, want)
    missing = sorted(set(want) - set(got))
    if missing:
        errors |= dict.fromkeys(missing, math.inf)
    worst = max(errors, key=lambda n: errors[n]) if errors else "-"
    return GradCheck(errors.get(worst, 0.0), worst, tolerance_key, GRAD_TOLERANCES[tolerance_key])


# -- layer rows -----------------------------------------------------------------------------------------------------


def layer_rows(
    calls: list[ConvCall],
    times: dict[tuple[int, str], CallTimes],
    plans: dict[tuple[int, str], LayerPlan],
    costs: dict[tuple[int, str], LayerCost],
    nondeterministic: dict[tuple[int, str], bool],
    math_type: str | None,
    peaks: dict[str, Any] | None = None,
    dtype: str = "float32",
) -> list[Row]:
    """One row per conv call per direction timed, forward first, each direction in forward order. ``costs``:
    each call's FLOPs and least bytes in each direction (``call_costs``; a call with none: null), its roofline
    against ``peaks`` (the detected SKU's; null where unknown) for the convolutions' ``dtype``."""
    rows = []
    for (index, direction), rec in sorted(times.items(), key=lambda kv: (DIRECTIONS.index(kv[0][1]), kv[0][0])):
        call = calls[index]
        plan = plans.get((index, direction))
        checked = (index, direction) in nondeterministic
        documented = plan.nondeterministic if plan is not None else None
        cost = costs.get((index, direction))
        math = (plan.math if plan else None) or math_type
        intensity, bound = cost.roofline(peaks, dtype, math) if cost is not None else (None, None)
        rows.append(
            {
                "layer_index": index,
                "layer_name": call.name,
                "direction": direction,
                **conv_geometry(call.module),
                "in_h": call.x.shape[2],
                "in_w": call.x.shape[3],
                "out_h": call.out_shape[2],
                "out_w": call.out_shape[3],
                "algo_requested": plan.algo_requested if plan else None,
                "algo_used": plan.algo_used if plan else None,
                "backend": plan.backend if plan else None,
                "status": plan.status if plan else None,
                "workspace_bytes": plan.workspace_bytes if plan else None,
                "math_type": math,
                "compute_type": plan.compute_type if plan else None,
                "detail": plan.detail if plan else None,
                "host_bound": rec.host_bound,
                "nondeterministic": (bool(documented) or nondeterministic[(index, direction)])
                if checked
                else documented,
                "determinism_checked": checked,
                **layer_summary(rec.times_ms),
                "flops": cost.flops if cost is not None else None,
                "bytes": cost.bytes if cost is not None else None,
                "arithmetic_intensity": intensity,
                "roofline_bound": bound,
            }
        )
    return with_share_of_model(rows)


def call_costs(calls: list[ConvCall], layers: Mapping[tuple[str, str], LayerCost]) -> dict[tuple[int, str], LayerCost]:
    """{(call index, direction): its LayerCost} from ``layers`` ({(layer name, direction): one call's cost},
    harness.measure.flops_directions.count_directions): a direction no gradient asked for (layer 0's
    backward_data without train.input_grad) has none."""
    return {(c.index, d): layers[(c.name, d)] for c in calls for d in DIRECTIONS if (c.name, d) in layers}


def plans_by_call(layers: dict[str, AlgoConv2d], calls: list[ConvCall]) -> dict[tuple[int, str], LayerPlan]:
    """{(call index, direction): the LayerPlan that ran it} for the swapped layers' calls (from their plans per
    direction at the call's input shape)."""
    out = {}
    for c in calls:
        m = layers.get(c.name)
        if m is None:
            continue
        key = m._key(c.x)
        for d in DIRECTIONS:
            plan = m.plans_by_direction[d].get(key)
            if plan is not None:
                out[(c.index, d)] = plan
    return out


def torch_layers(model: nn.Module, layout: str) -> Swap:
    """``swap_torch``: the framework's own layers behind runners that ``RunnerClock`` can time."""
    return swap_torch(model, layout)
