"""An experiment harness that measures convolution algorithms across CNN models, input sizes and GPUs.

The Python API (docs/python-api.md), importable from here; each name is loaded on first use, so that
``import harness`` stays light for the command line's config-only paths:

- ``measure_point(model, algo, input_size=..., batch_size=..., stage=..., overrides=[...])``: one point,
  configured and checked exactly as ``python -m harness`` would, measured, returned (``PointResult``).
- ``point_spec(...)``: the checked job (``RunSpec``) those arguments make, without measuring.
- ``profile(model, x, ProfileSettings(...))``: everything measured about any ``nn.Module`` on one input.
- ``swap(model, algo_or_plan, backend=...)``: run a model's convolutions (forward and backward) with an
  algorithm, one per layer and direction, or a per-layer plan (``read_plan(path)``; ``analysis.make_plan``
  makes one from a results tree).
- ``HarnessError``: the root of every error the harness raises for bad input (its kinds in harness.errors).
"""

from __future__ import annotations

from typing import Any

from harness import lazy

__version__ = "0.1.0"

_EXPORTS = {
    "measure_point": "harness.api",
    "point_spec": "harness.api",
    "PointResult": "harness.measure.point",
    "profile": "harness.measure.profiler",
    "Profile": "harness.measure.profiler",
    "ProfileSettings": "harness.measure.profiler",
    "SamplingPolicy": "harness.measure.timing",
    "swap": "harness.algorithms.swap",
    "Plan": "harness.algorithms.plan",
    "read_plan": ("harness.algorithms.plan", "read"),
    "write_plan": ("harness.algorithms.plan", "write"),
    "HarnessError": "harness.errors",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    return lazy.export(globals(), name, _EXPORTS)


def __dir__() -> list[str]:
    return sorted(__all__)
