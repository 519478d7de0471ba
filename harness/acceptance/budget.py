"""The time budget: what each part of the acceptance run should take on an H100 (conservative), so that
the sweep leaves the extra runs their share."""

from __future__ import annotations

from harness.acceptance.plan import REPEAT_PROCESSES, SweepPlan, extra_jobs

# Budget (seconds on an H100; conservative): what the estimate prints, and the reserve kept for the extras.
SECONDS_PER_POINT = 0.8
SECONDS_PER_JOB = 1.0
SECONDS_GPU_TESTS = 120.0
SECONDS_EXTRAS = 60.0  # the repeat, energy and OOM runs; the eager runs are counted per point
SECONDS_PER_PROCESS = 15.0  # a spawned interpreter's start: imports, CUDA context, the model (repeats)
SECONDS_REPORT = 10.0
DEFAULT_BUDGET_S = 570.0
TESTS_TIMEOUT_S = 300


def extras_s(plan: SweepPlan) -> float:
    """What the extra runs should take on an H100 (what the sweep leaves them from the budget)."""
    eager = [j for j in extra_jobs(plan) if j.phase == "eager"]
    return (
        SECONDS_EXTRAS
        + sum(j.points() for j in eager) * SECONDS_PER_POINT
        + len(eager) * SECONDS_PER_JOB
        + REPEAT_PROCESSES * SECONDS_PER_PROCESS
    )


def estimate_s(plan: SweepPlan) -> float:
    """What the whole command should take on an H100, from conservative per-point and per-job costs."""
    return (
        SECONDS_GPU_TESTS
        + plan.points() * SECONDS_PER_POINT
        + len(plan.sweep_jobs()) * SECONDS_PER_JOB
        + extras_s(plan)
        + SECONDS_REPORT
    )
