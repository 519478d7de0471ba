"""A convolution whose forward and both gradients run the runners a swapped layer chose, through autograd.

``conv2d(x, weight, bias, layer)`` is what ``AlgoConv2d.forward`` calls: an ``autograd.Function`` whose forward
runs the layer's forward runner and whose backward runs, for the gradient autograd asks for and only for it
(``ctx.needs_input_grad``), the layer's backward_data runner (the input's gradient), its backward_filter runner
(the weight's) and the bias gradient, which is no convolution: grad_out summed over N, H and W. So
``loss.backward()`` on a swapped model runs the chosen algorithm in each direction, and a layer whose input
needs no gradient (layer 0 of a model, typically) runs no backward_data at all, as torch's own convolution
does not.

The runner signatures (harness.algorithms.reference_backward, cudnn_backward): forward ``run(x) -> y`` (bias
included), backward_data ``run(grad_out) -> grad_input``, backward_filter ``run(x, grad_out) -> grad_weight``.
``torch_runner`` gives torch's own convolution in each direction with these signatures: what ``fallback=torch``
and ``algo=torch`` run, and what a layer with nothing runnable runs during planning.

Higher-order gradients are not supported (``once_differentiable``): the runners are not differentiable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from harness.algorithms import memory_layout
from harness.algorithms.geometry import ConvGeometry


class DirectionRunners(Protocol):
    """What the autograd function asks of a layer (``AlgoConv2d``)."""

    layout: str

    def runner_to_call(self, x: torch.Tensor, direction: str) -> Callable[..., torch.Tensor]:
        """The callable that runs ``direction`` for inputs shaped like ``x`` now (planning it where not
        planned yet); raises where nothing may run it."""
        ...


def torch_runner(
    direction: str, weight: torch.Tensor, bias: torch.Tensor | None, g: ConvGeometry, x_shape: tuple[int, ...]
) -> Callable[..., torch.Tensor]:
    """torch's own convolution in ``direction`` for inputs of ``x_shape``, with the runners' signature."""
    conv = (g.stride, g.padding, g.dilation, g.groups)
    if direction == "forward":
        return lambda x: F.conv2d(x, weight, bias, *conv)
    if direction == "backward_data":
        return lambda grad_out: torch.nn.grad.conv2d_input(x_shape, weight, grad_out, *conv)
    if direction == "backward_filter":
        return lambda x, grad_out: torch.nn.grad.conv2d_weight(x, weight.shape, grad_out, *conv)
    raise ValueError(f"unknown direction {direction!r}; valid: forward, backward_data, backward_filter")


def bias_grad(grad_out: torch.Tensor) -> torch.Tensor:
    """The bias gradient: grad_out summed over the batch and the output's height and width."""
    return grad_out.sum(dim=(0, 2, 3))


class _AlgoConv(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, layer: DirectionRunners
    ) -> torch.Tensor:
        y = layer.runner_to_call(x, "forward")(x)
        ctx.layer = layer
        ctx.save_for_backward(x, weight)  # weight: autograd checks it was not changed before the backward
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        x, _ = ctx.saved_tensors
        layer: DirectionRunners = ctx.layer
        needs_x, needs_w, needs_b = ctx.needs_input_grad[:3]
        # autograd may hand a gradient in any strides (a sum's is an expanded scalar): dense, in the layer's layout
        grad_out = memory_layout.to_layout(grad_out, layer.layout)
        gx = layer.runner_to_call(x, "backward_data")(grad_out) if needs_x else None
        gw = layer.runner_to_call(x, "backward_filter")(x, grad_out) if needs_w else None
        gb = bias_grad(grad_out) if needs_b else None
        return gx, gw, gb, None


def conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, layer: DirectionRunners) -> torch.Tensor:
    """``layer``'s convolution of ``x``, differentiable through ``layer``'s backward runners."""
    return _AlgoConv.apply(x, weight, bias, layer)
