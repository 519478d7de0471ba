"""The harness from plain Python: one point measured without the command line, its files or SLURM.

    import harness
    result = harness.measure_point("resnet18", "direct", input_size=32)
    result                      # prints a summary; result.profile.timing.samples_ms, result.layers, ...
    result.row({})              # the points row the command line would have written (without its identity)

The configuration is composed exactly as ``python -m harness`` composes it (the same defaults, the same checks
and the same clear errors), so a point measured here is the point a sweep would measure with those overrides.
Nothing is written: to keep results, run ``python -m harness`` (resume, provenance, the results tree).
"""

from __future__ import annotations

from collections.abc import Sequence

from harness import algorithms
from harness.config.compose import compose_config
from harness.config.spec import RunSpec, run_spec_from_dict
from harness.measure.point import PointMeasurer, PointResult
from harness.measure.threads import job_threads
from harness.run.runner import checked_job


def point_spec(
    model: str = "resnet18", algo: str = "torch", *, stage: str = "sanity", overrides: Sequence[str] = ()
) -> RunSpec:
    """The job ``python -m harness model=MODEL algo=ALGO stage=STAGE OVERRIDES...`` would run, checked."""
    return run_spec_from_dict(compose_config([f"model={model}", f"algo={algo}", f"stage={stage}", *overrides]))


def measure_point(
    model: str = "resnet18",
    algo: str = "torch",
    *,
    input_size: int | None = None,
    batch_size: int | None = None,
    stage: str = "sanity",
    overrides: Sequence[str] = (),
) -> PointResult:
    """Measure one point and return it: ``input_size`` and ``batch_size`` (default: the stage's first) are the
    overrides ``stage.sizes=N`` and ``batch_size=N``, so they are checked as the command line's are.

    ``overrides`` are the command line's (``["dtype=float16", "gpu=h200"]``); a bad one raises ConfigError
    naming the value and the valid choices, before anything is measured.
    """
    given = [f"stage.sizes={input_size}"] if input_size is not None else []
    given += [f"batch_size={batch_size}"] if batch_size is not None else []
    spec = point_spec(model, algo, stage=stage, overrides=[*overrides, *given])
    device, loaded = checked_job(spec)
    with job_threads(spec.cpu_threads), algorithms.backend_flags(spec.math, spec.cudnn_benchmark):
        try:
            return PointMeasurer(spec, device, loaded).measure_point(spec.stage.sizes[0], spec.batch_sizes[0])
        finally:
            algorithms.release_workspaces()
