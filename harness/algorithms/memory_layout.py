"""The memory layout of a conv layer's tensors: ``nchw`` (contiguous) or ``nhwc`` (torch.channels_last).

One owner for the names a job's ``layout`` key takes and what each means in torch: a tensor's shape is always
(N, C, H, W); the layout is its strides. ``nhwc`` is torch.channels_last, in which the channels of a pixel are
adjacent (C stride 1): for a weight (K, C, R, S) that is the KRSC order cuDNN's NHWC filter format reads.
A tensor with one pixel (H = W = 1) or one channel is both at once; ``in_layout`` is true for both then.
"""

from __future__ import annotations

import torch
from torch import nn

LAYOUTS = ("nchw", "nhwc")
MEMORY_FORMATS = {"nchw": torch.contiguous_format, "nhwc": torch.channels_last}


def check(layout: str) -> str:
    """``layout`` if it is one of LAYOUTS, else ValueError naming the valid ones."""
    if layout not in MEMORY_FORMATS:
        raise ValueError(f"unknown layout {layout!r}; valid: {', '.join(LAYOUTS)}")
    return layout


def memory_format(layout: str) -> torch.memory_format:
    """torch's memory format for ``layout``."""
    return MEMORY_FORMATS[check(layout)]


def in_layout(t: torch.Tensor, layout: str) -> bool:
    """Whether the 4-d ``t`` is laid out densely in ``layout`` (no copy needed to read it so)."""
    return t.is_contiguous(memory_format=memory_format(layout))


def only_in_other(t: torch.Tensor, layout: str) -> str | None:
    """The other layout where ``t`` is dense in it and not in ``layout`` (what a plan would misread or copy
    every call), else None."""
    other = LAYOUTS[1 - LAYOUTS.index(check(layout))]
    return other if t.dim() == 4 and in_layout(t, other) and not in_layout(t, layout) else None


def to_layout(t: torch.Tensor, layout: str) -> torch.Tensor:
    """``t`` dense in ``layout`` (``t`` itself where it already is)."""
    return t.contiguous(memory_format=memory_format(layout))


def model_to_layout(model: nn.Module, layout: str) -> nn.Module:
    """``model`` with its 4-d parameters and buffers in ``layout`` (in place, as ``nn.Module.to`` does)."""
    return model.to(memory_format=memory_format(layout))
