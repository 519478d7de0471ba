"""The time budget: what each part of a suite should take on an H100 or H200 (conservative), so that a suite's
sweep leaves its extra runs their share and the suite fits one lease of a GPU (15 minutes of device time,
the machine's start included).

The per-point costs are estimates, to be replaced by what a lease measures: since acceptance v2 a point is
timed until its median's 95% interval is within 1% (at most 3 s), and a batch of 256 at 224 px takes tens to
hundreds of milliseconds per forward, so a point's cost grows with its batch."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from harness.acceptance.plan import Job, Suite, SweepPlan, extra_jobs, training_plan_job

SECONDS_PER_POINT = 1.5  # batch 1: planning, verification, timing to the interval goal, the layer pass
SECONDS_PER_BATCH_ITEM = 0.025  # added per input of the batch (256: about 8 s a point)
SECONDS_PER_JOB = 1.0
SECONDS_GPU_TESTS = 120.0
# the OOM run (its batch of 16384 fails at the first allocation); eager runs count per point, repeats per process
SECONDS_EXTRAS = 30.0
SECONDS_PER_PROCESS = 15.0  # a spawned interpreter's start: imports, CUDA context, the model (repeats)
SECONDS_PER_ENERGY_POINT = 70.0  # idle power, steady state (<= 30 s), 3 windows of 5 s, cooldown (<= 15 s)
SECONDS_ENERGY_PROBE = 60.0  # the counter's period, idle power, 3 windows of N and of 2N forwards (5 and 10 s)
SECONDS_REPORT = 10.0
# The training suite (a point of another direction than forward): planning in each timed direction (find: cuDNN's
# search per layer), the gradients checked against a float64 copy of the model, timing to the interval goal
# (<= 3 s), the layer pass of every call; a step is about three forwards, hence the larger cost per input.
SECONDS_PER_TRAINING_POINT = 5.0
SECONDS_PER_TRAINING_BATCH_ITEM = 0.1  # batch 8: 0.8 s more a point
SECONDS_TRAINING_TESTS = 90.0  # the backward families' GPU tests only (resnet18's layers at 112, a few steps)
SECONDS_TRAINING_PLAN = 30.0  # python -m analysis.plans make, then python -m analysis (the projection): two processes
DEFAULT_BUDGET_S = 480.0  # a suite: 8 minutes, which leaves a 15-minute lease its machine start and a margin
TESTS_TIMEOUT_S = 300


def job_s(job: Job) -> float:
    """What one job should take: its points (an energy point at its own cost), and the job's start; the OOM
    run's cost is SECONDS_EXTRAS (its large batch fails at once)."""
    if job.phase == "oom":
        return 0.0
    per_point, per_item = SECONDS_PER_POINT, SECONDS_PER_BATCH_ITEM
    if job.phase == "energy":
        per_point = SECONDS_PER_ENERGY_POINT
    elif dict(job.extra).get("direction", "forward") != "forward":
        per_point, per_item = SECONDS_PER_TRAINING_POINT, SECONDS_PER_TRAINING_BATCH_ITEM
    points = sum(per_point + per_item * b for b in job.batches) * len(job.sizes)
    return points * int(dict(job.extra).get("repeats", "1")) + SECONDS_PER_JOB


def extras_s(plan: SweepPlan, extras: Sequence[Job] | None = None) -> float:
    """What the extra runs should take (what the sweep leaves them from the budget); ``extras``: the suite's
    (default: the core suite's)."""
    jobs = extra_jobs(plan) if extras is None else list(extras)
    if not jobs:
        return 0.0
    processes = sum(int(dict(j.extra).get("repeats", "1")) for j in jobs if j.phase == "repeat")
    return SECONDS_EXTRAS + sum(job_s(j) for j in jobs) + processes * SECONDS_PER_PROCESS


def plan_s(suite: Suite | None, extras: Sequence[Job]) -> float:
    """What the training plan's step should take (the suites that make one): the plan made, its run, its
    projection."""
    steps = [j for j in extras if j.phase == "train_step"]
    if suite is None or not suite.training_plan or not steps:
        return 0.0
    return SECONDS_TRAINING_PLAN + job_s(training_plan_job(steps, Path("plan.json")))


def tests_s(suite: Suite | None) -> float:
    """The suite's GPU tests: all of them (core), the training suite's own list, or none."""
    if suite is None:
        return SECONDS_GPU_TESTS
    if not suite.gpu_tests:
        return 0.0
    return SECONDS_TRAINING_TESTS if suite.tests else SECONDS_GPU_TESTS


def estimate_s(plan: SweepPlan, suite: Suite | None = None, quick: bool = False) -> float:
    """What a suite should take (default: the core suite), from conservative per-point and per-job costs."""
    extras = suite.extras(plan, quick) if suite is not None else None
    return (
        tests_s(suite)
        + sum(job_s(j) for j in plan.sweep_jobs())
        + extras_s(plan, extras)
        + plan_s(suite, extras or [])
        + (SECONDS_ENERGY_PROBE if suite is not None and suite.energy_probe else 0.0)
        + SECONDS_REPORT
    )
