"""Convolution algorithms: their names, where each can run, and preparing a model to run one.

``torch`` is the framework's own convolution (nothing swapped): the baseline every other algorithm is
compared with. The others are cuDNN's forward algorithms (GPU) and reference implementations (CPU).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from harness.errors import ConfigError

# Our names, in cuDNN's CUDNN_CONVOLUTION_FWD_ALGO_* order, then the heuristic and the baseline.
ALGORITHMS = (
    "implicit_gemm",
    "implicit_precomp_gemm",
    "gemm",
    "direct",
    "fft",
    "fft_tiling",
    "winograd",
    "winograd_nonfused",
    "guess",
    "torch",
)


def runnable_on(device: torch.device) -> tuple[str, ...]:
    """The algorithms this harness can run on ``device`` today."""
    return ("torch",)


def check_runnable(algo: str, device: torch.device) -> None:
    if algo not in ALGORITHMS:
        raise ConfigError(f"unknown algo {algo!r}; valid choices: {', '.join(ALGORITHMS)}")
    here = runnable_on(device)
    if algo not in here:
        raise ConfigError(
            f"algo={algo} cannot run on {device.type} yet: only {', '.join(here)} can "
            f"(the framework's own convolution, the baseline). Nothing was substituted or measured."
        )


@dataclass(frozen=True)
class LayerPlan:
    """What runs one conv layer: the algorithm asked for, the one used, on which backend, and how."""

    algo_requested: str
    algo_used: str
    backend: str  # "torch", "cudnn" or "reference"
    status: str  # "ok", "unsupported" or "fallback"
    workspace_bytes: int | None = None


def prepare(model: nn.Module, algo: str) -> dict[str, LayerPlan]:
    """Make ``model`` run ``algo`` in its conv layers; returns each conv module's plan by module path."""
    plans = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            plans[name] = LayerPlan(algo, "torch", "torch", "ok")
    return plans
