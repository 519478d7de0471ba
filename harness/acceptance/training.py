"""The training suite's plan step (thin): a training plan made from the suite's train_step points with the
project's one plan maker (``python -m analysis.plans make --direction train_step``), its algo=per_layer run
prepared, and the plan's projected step against its measured one read back from the report's own table
(``python -m analysis RESULTS --no-plots``: tables/training_projection, analysis.tables.catalog.
training_projection). Both are run as the commands they are, in subprocesses: the harness does not import
the analysis (which imports the harness). The judging is harness.acceptance.training_checks'."""

from __future__ import annotations

import logging
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.acceptance.plan import COMMON, Job, training_plan_job
from harness.acceptance.rows import Row, as_rows

log = logging.getLogger(__name__)


@dataclass
class TrainingPlanStep:
    """What the plan step did: the plan file (None where it could not be made, and why), the command that made
    it, and the projection rows of its run (training_projection's columns)."""

    command: str
    path: Path | None = None
    error: str | None = None
    plan_extra: dict[str, Any] = field(default_factory=dict)  # the plan's own projection (plan.extra)
    switched: int = 0  # calls the plan moved off its baseline
    calls: int = 0
    projection: list[Row] = field(default_factory=list)
    projection_error: str | None = None


def setting_filters(job: Job) -> list[str]:
    """The analysis's setting filters of the suite's rows: on a GPU, the points timed as CUDA graphs
    (``--graph true``; a point that could not be captured, timed eagerly, is another setting, which the plan
    maker refuses to mix); on the CPU, none (a CPU row has no graph setting)."""
    values = dict(job.extra)
    on_gpu = values.get("device", COMMON["device"]) == "cuda" and values.get("graph", "auto") != "false"
    return ["--graph", "true"] if on_gpu else []


def make_arguments(results: Path, job: Job, out: Path) -> list[str]:
    """``python -m analysis.plans`` arguments of the training plan at ``job``'s point."""
    (size,), (batch,) = job.sizes, job.batches
    return [
        "make",
        str(results),
        "--model",
        job.model,
        "--size",
        str(size),
        "--batch",
        str(batch),
        "--dtype",
        job.config.dtype,
        "--direction",
        "train_step",
        "--out",
        str(out),
        *setting_filters(job),
    ]


def _run(argv: list[str], what: str) -> str | None:
    """``python -m ...`` at the repository root; None where it succeeded, else why not (its output's tail)."""
    from harness.acceptance.suite import REPO

    try:
        proc = subprocess.run([sys.executable, *argv], cwd=REPO, capture_output=True, text=True, timeout=PLAN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return f"{what} did not finish within {PLAN_TIMEOUT_S} s"
    if proc.returncode == 0:
        return None
    tail = " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-3:])
    log.error("%s failed (exit code %d): %s", what, proc.returncode, tail)
    return f"{what} failed (exit code {proc.returncode}): {tail}"[:2000]


PLAN_TIMEOUT_S = 300


def make_training_plan(results: Path, step_jobs: list[Job], out: Path) -> TrainingPlanStep:
    """The training plan of the train_step jobs' point from the rows under ``results``, written to ``out`` by
    ``python -m analysis.plans make --direction train_step``; a failure is recorded, never raised (the check
    reports it)."""
    from harness.algorithms import plan as plans

    argv = make_arguments(results, step_jobs[0], out)
    step = TrainingPlanStep("python -m analysis.plans " + " ".join(shlex.quote(a) for a in argv))
    step.error = _run(["-m", "analysis.plans", *argv], "python -m analysis.plans make")
    if step.error is not None:
        return step
    try:
        plan = plans.read(out)
    except Exception as e:  # noqa: BLE001 - a plan file that does not read back is a finding of the suite
        step.error = f"the plan written does not read back: {type(e).__name__}: {e}"[:2000]
        return step
    step.path = out
    step.plan_extra = dict(plan.extra)
    for layer in plan.layers:
        for chosen in layer.algos().values():
            step.calls += 1
            step.switched += chosen != plan.baseline
    return step


def plan_job(step_jobs: list[Job], step: TrainingPlanStep) -> Job | None:
    """The plan's algo=per_layer run (None where no plan was made)."""
    return training_plan_job(step_jobs, step.path) if step.path is not None else None


def read_projection(results: Path, step: TrainingPlanStep, job: Job, run_id: str | None, out: Path) -> None:
    """The report's training_projection table of ``results`` at the plan run ``job``'s model and settings
    (``python -m analysis RESULTS --out OUT --no-plots``): its rows (one per per_layer point: the measured step
    over the step its calls project) into ``step.projection``; why not, into ``step.projection_error``."""
    import pandas as pd

    if run_id is None:
        step.projection_error = "the plan's run wrote no rows"
        return
    argv = ["-m", "analysis", str(results), "--out", str(out), "--no-plots", "--model", job.model]
    error = _run([*argv, *setting_filters(job)], "python -m analysis")
    table = out / "tables" / "training_projection.csv"
    if error is None and not table.is_file():
        error = f"python -m analysis wrote no {table}"
    if error is not None:
        step.projection_error = error
        return
    step.projection = as_rows(pd.read_csv(table))
    if not step.projection:
        step.projection_error = "training_projection has no row (no ok per_layer train_step point)"
