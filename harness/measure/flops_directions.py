"""The work of each direction of a training step, per conv layer: FLOPs, least bytes, arithmetic intensity.

Counted by torch's flop counter (``torch.utils.flop_counter.FlopCounterMode``) on the UNSWAPPED model: one
forward and one backward of a copy of it on the meta device (shapes only: no arithmetic, no device memory),
where every convolution is torch's own. Our algorithm modules (harness.algorithms.swap.AlgoConv2d) run their
gradients in calls the counter cannot see (ctypes into cuDNN, our references), so in the copy each of them is
put back as the nn.Conv2d it stands in for. The counter attributes each aten call to the module running it,
in the backward too (its module tracker), and ``aten.convolution_backward`` computes both gradients in one
call, as its ``output_mask`` asks: the backward is counted twice, once with a formula that keeps the
gradient of the input only (backward_data) and once the gradient of the weight only (backward_filter).
Those are torch's own formulas for the two parts, with one correction: torch counts the gradient of a
grouped convolution's weight as if it were not grouped, ``groups`` times too much (depthwise: channels times
too much); here it is divided by ``groups``. Each direction of a conv call is then 2*N*K*(C/groups)*R*S*P*Q
FLOPs, the forward's count, whatever the stride and dilation; the bias (its add in the forward, its gradient,
a reduction of grad_output, in the backward) is not counted, as torch's formulas do not count it.

A direction is present for a layer where the backward asked for it: backward_data where the layer's input
needs a gradient (not layer 0 unless ``input_grad``), backward_filter where its weight does (not a frozen
layer). The backward is seeded with ones on the model's floating-point outputs (through their sums): no loss,
no optimizer step; neither is a convolution, and the FLOPs outside convolutions are reported apart (``ModelCosts``).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, flop_registry

from harness.algorithms.plan import DIRECTIONS
from harness.algorithms.swap import _tensors
from harness.measure import roofline
from harness.measure.flops import module_counts
from harness.measure.layers import is_conv

log = logging.getLogger(__name__)

aten = torch.ops.aten
# the forward convolutions torch's counter has a formula for (torch.utils.flop_counter.conv_flop)
CONV_FORWARD_OPS = (
    aten.convolution,
    aten._convolution,
    aten.cudnn_convolution,
    aten._slow_conv2d_forward,
    aten.convolution_overrideable,
)
CONV_BACKWARD_OP = aten.convolution_backward
# convolution_backward's outputs (and output_mask's entries): grad_input, grad_weight, grad_bias
BACKWARD_PART = {"backward_data": 0, "backward_filter": 1}
_TORCH_CONV_BACKWARD = flop_registry[CONV_BACKWARD_OP]


@dataclass(frozen=True)
class LayerCost:
    """One call of one conv layer in one direction, for the whole batch."""

    flops: int  # 2 x multiply-adds (torch's formulas; the bias not counted)
    bytes: int  # the least traffic: harness.measure.roofline.DIRECTION_OPERANDS, each tensor moved once

    @property
    def arithmetic_intensity(self) -> float | None:
        """FLOPs per byte; None where nothing is moved."""
        return self.flops / self.bytes if self.bytes else None

    def roofline(
        self, spec: dict[str, Any] | None, dtype: str, math_type: str | None
    ) -> tuple[float | None, str | None]:
        """(arithmetic intensity, "compute" or "memory" bound) against ``spec``'s peaks: roofline.verdict."""
        return roofline.verdict(self.flops, self.bytes, spec, dtype, math_type)


@dataclass(frozen=True)
class ModelCosts:
    """The whole model's FLOPs per direction, every call of every layer, for the whole batch.

    ``flops``: {direction: the convolutions' FLOPs in that direction}. ``other_forward_flops`` and
    ``other_backward_flops``: what the counter saw outside convolutions (a linear layer's matmul in the forward,
    its two in the backward), not split by direction. Neither counts the loss or the optimizer step."""

    flops: Mapping[str, int]
    other_forward_flops: int
    other_backward_flops: int

    @property
    def train_step_flops(self) -> int:
        """The convolutions of one training step: forward, backward_data and backward_filter."""
        return sum(self.flops[d] for d in DIRECTIONS)

    @property
    def train_step_other_flops(self) -> int:
        """A training step's FLOPs outside convolutions (forward and backward; no loss, no optimizer)."""
        return self.other_forward_flops + self.other_backward_flops


@dataclass(frozen=True)
class DirectionCosts:
    layers: Mapping[tuple[str, str], LayerCost]  # (layer name, direction) -> one call's cost
    calls: Mapping[str, int]  # layer name -> its calls per forward
    model: ModelCosts


def layer_costs(
    model: nn.Module,
    example_input: torch.Tensor,
    directions: Iterable[str] = DIRECTIONS,
    *,
    input_grad: bool = False,
    dtype: str | torch.dtype | None = None,
) -> dict[tuple[str, str], LayerCost]:
    """{(layer name, direction): LayerCost} of every conv layer of ``model`` in each of ``directions`` it has
    (see ``count_directions``). A layer called more than once per forward: the mean of its calls."""
    wanted = check_directions(directions)
    costs = count_directions(model, example_input, input_grad=input_grad, dtype=dtype)
    return {key: cost for key, cost in costs.layers.items() if key[1] in wanted}


def check_directions(directions: Iterable[str]) -> tuple[str, ...]:
    """``directions`` as a tuple; ValueError naming an unknown one and the valid ones."""
    if isinstance(directions, str):
        directions = (directions,)
    wanted = tuple(directions)
    unknown = [d for d in wanted if d not in DIRECTIONS]
    if unknown:
        raise ValueError(
            f"unknown direction {', '.join(map(repr, unknown))} for a conv layer's cost; valid: "
            f"{', '.join(DIRECTIONS)} (a train_step point has all three)"
        )
    return wanted


def count_directions(
    model: nn.Module,
    example_input: torch.Tensor,
    *,
    input_grad: bool = False,
    dtype: str | torch.dtype | None = None,
) -> DirectionCosts:
    """Each conv layer's cost in each direction it has, and the whole model's, for ``example_input``'s shape.

    ``model`` is not run or changed: a meta copy of it is (swapped layers as torch's nn.Conv2d, its training
    or eval mode kept). ``input_grad``: whether the input needs its gradient (layer 0's backward_data).
    ``dtype`` (bytes per element): the dtype the convolutions run in; default ``example_input``'s."""
    dtype_name = dtype_name_of(dtype if dtype is not None else example_input.dtype)
    with torch.inference_mode(False):  # the copy's tensors: normal ones, whatever mode the caller is in
        meta = meta_copy(model)
        x = torch.empty_like(example_input, device="meta")
    names = {m: name for name, m in meta.named_modules() if is_conv(m)}
    tally = _Tally(names)
    fwd, full = tally.run(meta, x, input_grad)
    forward = module_counts(fwd, meta)
    global_fwd = fwd.get("Global", {})
    global_bwd = {op: n - global_fwd.get(op, 0) for op, n in full.get("Global", {}).items()}
    conv_ops = (*CONV_FORWARD_OPS, CONV_BACKWARD_OP)
    totals = {"forward": sum(n for op, n in global_fwd.items() if op in CONV_FORWARD_OPS)}
    totals.update({d: sum(tally.backward[d].values()) for d in BACKWARD_PART})
    other_forward = sum(n for op, n in global_fwd.items() if op not in conv_ops)
    other_backward = sum(n for op, n in global_bwd.items() if op not in conv_ops)
    layers: dict[tuple[str, str], LayerCost] = {}
    for module, name in names.items():
        if name not in tally.calls:
            continue  # a conv module the forward did not call
        in_shape, out_shape = tally.shapes[name]
        per_direction = {"forward": sum(forward.get(name, {}).values())}
        per_direction.update({d: tally.backward[d].get(name, 0) for d in BACKWARD_PART})
        for direction in DIRECTIONS:
            flops = per_direction[direction]
            if flops > 0:  # a gradient nothing asked for is not computed, so it has no cost and no entry
                nbytes = roofline.direction_bytes(direction, in_shape, out_shape, module.weight.numel(), dtype_name)
                layers[(name, direction)] = LayerCost(flops // tally.calls[name], nbytes)
    for direction in DIRECTIONS:
        attributed = sum(c.flops * tally.calls[n] for (n, d), c in layers.items() if d == direction)
        if attributed != totals[direction]:
            log.warning(
                "%s: %d of the model's %d convolution FLOPs are in no conv layer (a convolution called outside "
                "a conv module?)",
                direction,
                totals[direction] - attributed,
                totals[direction],
            )
    log.debug("direction costs of %d conv layer(s): %s", len(tally.calls), totals)
    return DirectionCosts(layers, dict(tally.calls), ModelCosts(totals, other_forward, other_backward))


def model_costs(model: nn.Module, example_input: torch.Tensor, *, input_grad: bool = False) -> ModelCosts:
    """The whole model's FLOPs per direction (``count_directions(...).model``)."""
    return count_directions(model, example_input, input_grad=input_grad).model


def dtype_name_of(dtype: str | torch.dtype) -> str:
    """ "float32" for torch.float32 or "float32"; ValueError for a dtype with no bytes per element known."""
    name = str(dtype).removeprefix("torch.")
    if name not in roofline.DTYPE_BYTES:
        raise ValueError(f"no bytes per element for dtype {dtype!r}; valid: {', '.join(roofline.DTYPE_BYTES)}")
    return name


def meta_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` on the meta device, every stand-in conv (our algorithm modules) replaced by the
    nn.Conv2d it stands for; parameters keep ``requires_grad``. Nothing of ``model`` is copied to memory."""
    memo: dict[int, Any] = {}
    for p in model.parameters():
        memo[id(p)] = nn.Parameter(torch.empty_like(p, device="meta"), requires_grad=p.requires_grad)
    for b in model.buffers():
        memo[id(b)] = torch.empty_like(b, device="meta")
    for m in model.modules():
        if is_conv(m) and not isinstance(m, nn.Conv2d):
            memo[id(m)] = _torch_conv(m, memo)
    return copy.deepcopy(model, memo)


def _torch_conv(m: nn.Module, memo: dict[int, Any]) -> nn.Conv2d:
    """The nn.Conv2d (meta) that stand-in ``m`` computes, with the meta copies of its parameters."""
    conv = nn.Conv2d(
        m.in_channels,
        m.out_channels,
        m.kernel_size,
        stride=m.stride,
        padding=m.padding,
        dilation=m.dilation,
        groups=m.groups,
        bias=m.bias is not None,
        padding_mode=getattr(m, "padding_mode", "zeros"),
        device="meta",
    )
    conv.weight = memo[id(m.weight)]
    if m.bias is not None:
        conv.bias = memo[id(m.bias)]
    conv.train(m.training)
    return conv


class _Tally:
    """One counted forward and backward of a meta model, and each conv call's gradients, by layer.

    The forward is attributed by the counter's own module table. The backward is not: its module tracker
    marks a module as running from the moment its output's gradient is ready until its input's is, so in a
    branching model (a residual block's shortcut) the convolutions of the other branch, run meanwhile, are
    credited to the shortcut conv too. Here each conv call's autograd node says which layer runs: a pre-hook on
    the node its output came from names the layer, a post-hook clears it, and the counter's formula for
    aten.convolution_backward (run by that node) adds each gradient it computes to that layer."""

    def __init__(self, names: dict[nn.Module, str]) -> None:
        self.names = names
        self.shapes: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {}  # first call's input, output
        self.calls: dict[str, int] = {}
        self.backward: dict[str, dict[str | None, int]] = {d: {} for d in BACKWARD_PART}  # None: no layer's
        self.current: str | None = None

    def run(
        self, meta: nn.Module, x: torch.Tensor, input_grad: bool
    ) -> tuple[dict[str, dict[Any, int]], dict[str, dict[Any, int]]]:
        """(the forward's counts, the forward and backward's counts), each FlopCounterMode.get_flop_counts()."""
        hooks = [m.register_forward_hook(self._forward_hook) for m in self.names]
        counter = FlopCounterMode(display=False, custom_mapping={CONV_BACKWARD_OP: self._formula})
        try:
            with torch.inference_mode(False), torch.enable_grad(), counter:
                out = meta(x.detach().requires_grad_(input_grad))
                forward = counter.get_flop_counts()  # a copy: the counts so far
                outs = [t for t in _tensors(out) if t.requires_grad]
                if outs:
                    torch.autograd.backward([t.sum() for t in outs])  # a gradient of ones on each output
        finally:
            for h in hooks:
                h.remove()
        return forward, counter.get_flop_counts()

    def _forward_hook(self, module: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> None:
        name = self.names[module]
        self.shapes.setdefault(name, (tuple(args[0].shape), tuple(output.shape)))
        self.calls[name] = self.calls.get(name, 0) + 1
        node = output.grad_fn
        if node is not None:

            def enter(grad_outputs: Any) -> None:
                self.current = name

            def leave(grad_inputs: Any, grad_outputs: Any) -> None:
                self.current = None

            node.register_prehook(enter)
            node.register_hook(leave)

    def _formula(
        self,
        grad_out_shape: Any,
        x_shape: Any,
        w_shape: Any,
        bias: Any,
        stride: Any,
        padding: Any,
        dilation: Any,
        transposed: bool,
        output_padding: Any,
        groups: int,
        output_mask: Any,
        out_shape: Any = None,
        **kwargs: Any,
    ) -> int:
        """The FLOPs of one aten.convolution_backward (each gradient it computes, with torch's own formula for
        it), each added to the layer running; the bias's gradient not counted."""
        args = (grad_out_shape, x_shape, w_shape, bias, stride, padding, dilation, transposed, output_padding, groups)
        total = 0
        for direction, part in BACKWARD_PART.items():
            if not output_mask[part]:
                continue
            flops = int(_TORCH_CONV_BACKWARD(*args, [i == part for i in range(3)], out_val=out_shape))
            if direction == "backward_filter":
                flops //= groups  # torch takes grad_output as an ungrouped filter: groups times the real count
            by_layer = self.backward[direction]
            by_layer[self.current] = by_layer.get(self.current, 0) + flops
            total += flops
        return total
