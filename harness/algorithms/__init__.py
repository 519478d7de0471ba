"""Convolution algorithms: their names, where each can run, and preparing a model to run one.

``torch`` is the framework's own convolution (nothing swapped): the baseline every other algorithm is
compared with. The others run on one of two backends:

- ``cudnn`` (GPU): cuDNN's legacy API with an explicit CUDNN_CONVOLUTION_FWD_ALGO_* (``guess``: its
  heuristic; ``find``: its exhaustive search, per layer, what PyTorch's cudnn.benchmark runs), through
  ctypes (``cudnn.py``);
- ``reference`` (CPU, and GPU on request): direct, gemm, fft and winograd in plain PyTorch (``reference.py``).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import TYPE_CHECKING, Any

from harness import lazy
from harness.algorithms import registry
from harness.algorithms.builtin import register_builtin
from harness.algorithms.plan import Plan, conv_layers, per_direction
from harness.algorithms.plan import check_model as check_plan_model
from harness.errors import ConfigError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from harness.algorithms.swap import Swap

# Every name, derived from the registry (harness.algorithms.registry; built-in records in builtin.py): cuDNN's
# CUDNN_CONVOLUTION_FWD_ALGO_* order, then the heuristic, cuDNN's search and the baseline. register() and
# unregister() keep these module attributes current; read them as ``algorithms.ALGORITHMS`` where that matters.
# The registry, the plans and these names import without torch (the analysis reads them); what runs an
# algorithm (swap, flags, the references) is imported on first use, below.
register_builtin()
ALGORITHMS = registry.names()
CUDNN_ALGORITHMS = registry.sweep_names()  # the eight and guess; find (cuDNN's exhaustive search) is measured apart
# Not one algorithm but a mix, one per layer: ``per_layer`` runs a plan file (plan=PATH, harness.algorithms.plan).
MIXED = ("per_layer",)
# The spellings of the system this harness replaces ("implicit precomp gemm"), and a few obvious others.
ALIASES = registry.aliases()

# The exports that need torch, each imported from its module on first use (harness.lazy, PEP 562).
_LAZY: lazy.Exports = {
    "MATH": "harness.algorithms.flags",
    "backend_flags": "harness.algorithms.flags",
    "resolve_math": "harness.algorithms.flags",
    "reference_algorithms": "harness.algorithms.reference",
    "BACKENDS": "harness.algorithms.swap",
    "FALLBACKS": "harness.algorithms.swap",
    "LayerPlan": "harness.algorithms.swap",
    "Swap": "harness.algorithms.swap",
    "swap": "harness.algorithms.swap",
}


def __getattr__(name: str) -> Any:
    if name == "BACKEND_CHOICES":
        globals()[name] = ("auto", *__getattr__("BACKENDS"))
        return globals()[name]
    if name not in _LAZY and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        # a submodule read as an attribute (``algorithms.reference.REFERENCE_ALGORITHMS``), as when every
        # submodule was imported eagerly: imported now (the import binds it to this package)
        return importlib.import_module(f"{__name__}.{name}")
    return lazy.export(globals(), name, _LAZY)


class _Package(types.ModuleType):
    """This package, whose ``swap`` is the function: importing the submodule harness.algorithms.swap (which the
    import system then binds to the package's attribute of that name) keeps it so, as the eager import did."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "swap" and isinstance(value, types.ModuleType):
            value = value.swap
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

__all__ = [
    "ALGORITHMS",
    "ALIASES",
    "CUDNN_ALGORITHMS",
    "FALLBACKS",
    "MATH",
    "MIXED",
    "LayerPlan",
    "Plan",
    "Swap",
    "backend_flags",
    "canonical_name",
    "check_runnable",
    "prepare",
    "resolve_backend",
    "resolve_math",
    "swap",
]


def canonical_name(name: str) -> str:
    """Our name for an algorithm given by our name or an alias; ConfigError listing them otherwise."""
    key = str(name).strip().lower()
    known = registry.names()
    if key in known or key in MIXED:
        return key
    if key in registry.aliases():
        return registry.aliases()[key]
    raise ConfigError(f"unknown algo {name!r}; valid choices: {', '.join((*known, *MIXED))}")


def resolve_backend(backend: str, device: torch.device) -> str:
    """``auto`` -> cudnn on a GPU, reference on the CPU (``backend`` is one of BACKEND_CHOICES: checked at
    the config border)."""
    if backend == "auto":
        return "cudnn" if device.type == "cuda" else "reference"
    return backend


def runnable_on(device: torch.device, backend: str) -> tuple[str, ...]:
    """The algorithms that can run on ``device`` with ``backend`` (already resolved)."""
    if backend == "reference":
        from harness.algorithms.reference import reference_algorithms

        return (*reference_algorithms(), "torch")
    return (
        tuple(a for a in registry.names() if a != "direct" and registry.get(a).kind != "reference")
        if device.type == "cuda"
        else ("torch",)
    )


def check_runnable(algo: str, device: torch.device, backend: str, fallback: str) -> None:
    """Refuse, before anything is measured, a combination that would measure nothing or the wrong thing.

    The values themselves (a known algo, backend, fallback) were checked once, at the config border
    (harness.config.spec); here only their combination with this device. A setting that cannot apply on this
    device is refused whatever the algorithm, the baseline (``torch``) included: its rows record the setting.
    """
    check_settings_apply(device, backend, fallback)
    if algo == "torch":
        return
    if backend == "cudnn" and algo == "direct":
        raise ConfigError(
            "algo=direct: cuDNN does not implement CUDNN_CONVOLUTION_FWD_ALGO_DIRECT (every layer is "
            "NOT_SUPPORTED), so nothing would be measured. To measure the reference direct convolution "
            "on this GPU instead, use backend=reference (its rows say backend=reference)."
        )
    here = runnable_on(device, backend)
    if algo not in here:
        where = "the CPU" if device.type == "cpu" else f"backend={backend}"
        raise ConfigError(
            f"algo={algo} exists only in cuDNN and cannot run on {where}. What runs here: "
            f"{', '.join(here)}. Nothing was substituted or measured."
        )
    if backend == "cudnn":
        from harness.algorithms import cudnn

        try:
            cudnn.library()
        except cudnn.CudnnUnavailable as e:
            raise ConfigError(f"algo={algo} needs cuDNN: {e}") from e


def check_settings_apply(device: torch.device, backend: str, fallback: str) -> None:
    """Refuse a backend or fallback that cannot run on ``device`` (``backend`` already resolved)."""
    from harness.algorithms.reference import reference_algorithms

    if backend == "cudnn" and device.type != "cuda":
        raise ConfigError(
            f"backend=cudnn needs a CUDA GPU, and this run measures the {device.type}; "
            f"use backend=reference (algorithms {', '.join(reference_algorithms())}) or run on a GPU"
        )
    if fallback == "guess" and backend != "cudnn":
        raise ConfigError(
            "fallback=guess asks cuDNN's heuristic, which needs backend=cudnn on a GPU; "
            "use fallback=torch or fallback=none here"
        )


def release_workspaces() -> None:
    """Free the shared cuDNN workspace (if cuDNN was ever used in this process): at the end of a job, so
    the next job in the same process does not carry it in its memory figures."""
    cudnn = sys.modules.get("harness.algorithms.cudnn")
    if cudnn is not None:
        cudnn.release_workspaces()


def workspace_bytes(device: torch.device) -> int:
    """Bytes of the shared cuDNN workspace held on ``device`` now (0 where cuDNN was never used)."""
    cudnn = sys.modules.get("harness.algorithms.cudnn")
    return cudnn.WORKSPACES.size(device) if cudnn is not None else 0


def prepare(
    model: nn.Module,
    algo: str,
    *,
    backend: str,
    fallback: str = "none",
    math: str = "fma",
    plan: Plan | None = None,
    layout: str = "nchw",
    directions: tuple[str, ...] | None = None,
) -> Swap | None:
    """Swap ``model``'s conv layers to run ``algo`` (None for the baseline ``torch``: nothing swapped;
    ``per_layer``: each layer what ``plan`` says) in the memory ``layout`` the model is in. ``directions``: the
    directions that run the choice (a backward-only point's own direction), torch's own in the others; None:
    every direction (as before directions existed)."""
    from harness.algorithms.swap import swap

    if algo == "torch":
        return None
    if algo == "per_layer" and plan is None:
        raise ValueError("algo=per_layer needs a plan")
    if directions is None:
        choice = plan if algo == "per_layer" else algo
        return swap(model, choice, backend=backend, fallback=fallback, math=math, layout=layout)
    if algo == "per_layer":
        check_plan_model(plan, model)
        per_layer = {name: per_direction(c) for name, c in plan.choice().items()}
    else:
        per_layer = {name: per_direction(algo) for name, _ in conv_layers(model)}
    choice = {name: {d: algos[d] for d in directions} for name, algos in per_layer.items()}
    return swap(model, choice, backend=backend, fallback=fallback, math=math, layout=layout)


def check_runnable_in(algo: str, direction: str, device: torch.device, backend: str) -> None:
    """Refuse ``algo`` in a backward ``direction`` where it has nothing to run there: on the references, no
    reference of that gradient (reference_backward); on cuDNN, no enum in that direction (registry
    ``cudnn_for``). ``torch``, cuDNN's heuristic (guess) and Find run in every direction."""
    if algo == "torch" or direction == "forward":
        return
    if backend == "reference":
        from harness.algorithms import reference_backward

        has = reference_backward.backward_algorithms(direction)
        if algo not in has:
            raise ConfigError(
                f"algo={algo} has no {direction} reference, so backend=reference cannot run it in that direction; "
                f"valid choices there: {', '.join((*has, 'torch'))}"
            )
        return
    record = registry.get(algo)
    if record.kind == "cudnn" and record.cudnn_for(direction) is None:
        has = [a.name for a in registry.algorithms() if a.kind != "cudnn" or a.cudnn_for(direction) is not None]
        raise ConfigError(
            f"algo={algo} has no cuDNN {direction} algorithm (no enum in that direction); valid choices there: "
            f"{', '.join(a for a in has if a in runnable_on(device, backend))}"
        )
