"""The time budget: what each part of a suite should take on an H100 or H200 (conservative), so that a suite's
sweep leaves its extra runs their share and the suite fits one lease of a GPU (15 minutes of device time,
the machine's start included).

The per-point costs are estimates, to be replaced by what a lease measures: since acceptance v2 a point is
timed until its median's 95% interval is within 1% (at most 3 s), and a batch of 256 at 224 px takes tens to
hundreds of milliseconds per forward, so a point's cost grows with its batch."""

from __future__ import annotations

from collections.abc import Sequence

from harness.acceptance.plan import Job, Suite, SweepPlan, extra_jobs

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
DEFAULT_BUDGET_S = 480.0  # a suite: 8 minutes, which leaves a 15-minute lease its machine start and a margin
TESTS_TIMEOUT_S = 300


def job_s(job: Job) -> float:
    """What one job should take: its points (an energy point at its own cost), and the job's start; the OOM
    run's cost is SECONDS_EXTRAS (its large batch fails at once)."""
    if job.phase == "oom":
        return 0.0
    per_point = SECONDS_PER_ENERGY_POINT if job.phase == "energy" else SECONDS_PER_POINT
    points = sum(per_point + SECONDS_PER_BATCH_ITEM * b for b in job.batches) * len(job.sizes)
    return points * int(dict(job.extra).get("repeats", "1")) + SECONDS_PER_JOB


def extras_s(plan: SweepPlan, extras: Sequence[Job] | None = None) -> float:
    """What the extra runs should take (what the sweep leaves them from the budget); ``extras``: the suite's
    (default: the core suite's)."""
    jobs = extra_jobs(plan) if extras is None else list(extras)
    if not jobs:
        return 0.0
    processes = sum(int(dict(j.extra).get("repeats", "1")) for j in jobs if j.phase == "repeat")
    return SECONDS_EXTRAS + sum(job_s(j) for j in jobs) + processes * SECONDS_PER_PROCESS


def estimate_s(plan: SweepPlan, suite: Suite | None = None, quick: bool = False) -> float:
    """What a suite should take (default: the core suite), from conservative per-point and per-job costs."""
    gpu_tests = suite.gpu_tests if suite is not None else True
    extras = suite.extras(plan, quick) if suite is not None else None
    return (
        (SECONDS_GPU_TESTS if gpu_tests else 0.0)
        + sum(job_s(j) for j in plan.sweep_jobs())
        + extras_s(plan, extras)
        + (SECONDS_ENERGY_PROBE if suite is not None and suite.energy_probe else 0.0)
        + SECONDS_REPORT
    )
