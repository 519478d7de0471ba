"""The work of a forward pass: FLOPs per module (torch.utils.flop_counter) and parameter counts.

Counted on a copy of the model on the meta device, so it costs no arithmetic and no device memory, and it
counts the convolution as defined (2 x multiply-adds), whatever algorithm later runs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from harness.models import meta_model


@dataclass(frozen=True)
class Work:
    flops: int  # whole forward, whole batch
    params: int
    module_flops: dict[str, int]  # module path ("layer1.0.conv1") -> FLOPs of all its calls


def module_counts(counts: dict[str, dict[Any, int]], model: nn.Module) -> dict[str, dict[Any, int]]:
    """A flop counter's per-module table (``FlopCounterMode.get_flop_counts()``) under the harness's layer
    names: {module path ("layer1.0.conv1"): {aten op: FLOPs}}, the path as ``model.named_modules()`` gives it
    (the counter prefixes the root's class name)."""
    prefix = type(model).__name__ + "."
    return {
        key[len(prefix) :]: {op: int(n) for op, n in ops.items()}
        for key, ops in counts.items()
        if key.startswith(prefix)
    }


def count_work(name: str, kwargs: dict[str, Any], input_shape: tuple[int, ...]) -> Work:
    return count_work_of(meta_model(name, kwargs), input_shape)


def count_work_of(
    model: nn.Module,
    input_shape: tuple[int, ...],
    device: torch.device | str = "meta",
    dtype: torch.dtype = torch.float32,
) -> Work:
    """``count_work`` of a model already on ``device`` (the meta device: no arithmetic, no memory)."""
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(input_shape, device=device, dtype=dtype))
    per_module = {name: int(sum(ops.values())) for name, ops in module_counts(counter.get_flop_counts(), model).items()}
    params = sum(p.numel() for p in model.parameters())
    return Work(int(counter.get_total_flops()), int(params), per_module)
