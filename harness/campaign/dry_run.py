"""The dry run (``dry_run=true``): what a run or sweep would create and cost, without submitting or measuring.

The plan: the jobs that would run here, the SLURM job arrays (grouped by resources and, per
``launcher.time_arrays``, by time limit) with each array's ``--time``, and per GPU type the points, the points
left to measure and the predicted GPU-hours with their range, and which source (harness.campaign.cost)
covered what share of the points.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from harness.campaign.cost import SOURCES, ZERO, Range, TaskCost

if TYPE_CHECKING:  # harness.launch imports this package, not the reverse
    from harness.launch.submit import LauncherSpec, Task


@dataclass
class GpuTotal:
    """What a sweep asks of one GPU type."""

    jobs: int = 0
    points: int = 0
    seconds: Range = ZERO
    by_source: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SOURCES, 0))

    def add(self, cost: TaskCost) -> None:
        self.jobs += 1
        self.points += cost.points
        self.seconds += cost.seconds
        for source, n in cost.by_source.items():
            self.by_source[source] += n

    def shares(self) -> str:
        total = sum(self.by_source.values())
        return ", ".join(f"{s} {n / total:.0%}" for s, n in self.by_source.items() if n) if total else "no points"


@dataclass
class Array:
    """One SLURM submission: a job array (or a lone job) of tasks that share resources and ``--time``."""

    parameters: dict[str, Any]
    tasks: list[Task]
    costs: list[TaskCost]


@dataclass
class Plan:
    local: list[tuple[Task, TaskCost]]
    arrays: list[Array]
    time_rule: str | None
    launcher: LauncherSpec

    def per_gpu(self) -> dict[str, GpuTotal]:
        totals: dict[str, GpuTotal] = {}
        pairs = [*self.local, *((t, c) for a in self.arrays for t, c in zip(a.tasks, a.costs))]
        for task, cost in pairs:
            totals.setdefault(task.spec.gpu.name, GpuTotal()).add(cost)
        return totals


def make_plan(
    tasks: list[Task],
    costs: list[TaskCost],
    placement: list[str],
    groups: list[tuple[dict[str, Any], list[Task]]],
    time_rule: str | None,
    launcher: LauncherSpec,
) -> Plan:
    """The plan of a sweep: its tasks, their costs, where each goes (``local`` or ``slurm``) and the SLURM
    submissions (``groups``: parameters with ``timeout_min``, and tasks; harness.launch.submit.time_limits)."""
    cost_of = {t.run_id: c for t, c in zip(tasks, costs)}
    local = [(t, cost_of[t.run_id]) for t, p in zip(tasks, placement) if p == "local"]
    arrays = [Array(params, group, [cost_of[t.run_id] for t in group]) for params, group in groups]
    return Plan(local, arrays, time_rule, launcher)


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.3g}"


def show(out: Console, plan: Plan) -> None:
    """The plan as tables (what the user asked to see: printed, not logged)."""
    out.print("[bold]dry run[/bold]: nothing is submitted or measured")
    if plan.local:
        out.print(f"{len(plan.local)} job(s) would run here, one after another")
    if plan.arrays:
        jobs = Table(title="SLURM submissions", title_justify="left")
        for column in ("array", "tasks", "stage", "GPU type", "--time", "partition", "gres", "predicted h per task"):
            jobs.add_column(column)
        for i, array in enumerate(plan.arrays, 1):
            p, spec = array.parameters, array.tasks[0].spec
            longest = max(c.seconds.mid for c in array.costs)
            jobs.add_row(
                str(i),
                str(len(array.tasks)),
                spec.stage.name,
                spec.gpu.name,
                f"{p['timeout_min']} min",
                str(p.get("slurm_partition", "-")),
                str(p.get("slurm_gres", "-")),
                f"up to {longest / 3600:.3g}",
            )
        out.print(jobs)
        out.print(f"--time: {plan.time_rule}; {requeue_line(plan)}")
    totals = Table(title="Per GPU type", title_justify="left")
    for column in ("GPU type", "jobs", "points", "to measure", "GPU-hours", "low", "high", "prediction from"):
        totals.add_column(column)
    for gpu, total in plan.per_gpu().items():
        totals.add_row(
            gpu,
            str(total.jobs),
            str(total.points),
            str(total.points - total.by_source["measured"]),
            _hours(total.seconds.mid),
            _hours(total.seconds.low),
            _hours(total.seconds.high),
            total.shares(),
        )
    out.print(totals)


def requeue_line(plan: Plan) -> str:
    """How the limit of the first array grows over its requeues (the same rule holds for every array)."""
    first = plan.arrays[0]
    stage = first.tasks[0].spec.stage.slurm.get("timeout_min")
    policy = plan.launcher.time_policy(int(stage) if stage is not None else None)
    limits = [
        policy.attempt_min(first.parameters["timeout_min"], k, plan.launcher.max_requeues)
        for k in range(plan.launcher.max_requeues + 1)
    ]
    return f"a job past its limit is requeued (at most {plan.launcher.max_requeues} times), limits " + ", ".join(
        f"{m} min" for m in limits
    )
