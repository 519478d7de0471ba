"""What `python -m harness` does with resolved configs: check them all, then run here or submit.

Shared by the single-run entry point (``__main__``) and the multirun launcher plugin, so both paths
validate, run and report the same way. Every config is checked before anything starts.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from rich.console import Console

from harness.campaign.rounds import is_adaptive_config
from harness.errors import ConfigError
from harness.launch import console as views
from harness.launch.isolated import run_isolated
from harness.launch.submit import LauncherSpec, Sweep, Task, make_tasks, submit, where
from harness.measure.source import stamp_at_submission
from harness.run.runner import job_points, run

log = logging.getLogger(__name__)


def launch_configs(configs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run or submit each resolved config; returns, per config, what happened to it. Configs with
    stage.sizes=adaptive go to the adaptive grid's rounds (harness.launch.decider), which come back here
    with each round's sizes."""
    if any(is_adaptive_config(c) for c in configs):
        from harness.launch.decider import run_adaptive

        return run_adaptive(configs, launch_configs)
    launchers = {LauncherSpec.from_dict(c.get("launcher")) for c in configs}
    if len(launchers) > 1:
        raise ConfigError("the launcher settings must be the same for the whole sweep")
    (launcher,) = launchers
    source = stamp_at_submission()  # once for the sweep: every job carries it
    tasks = [t for c in configs for t in make_tasks(c, source)]  # every config checked before anything starts
    placement = [where(launcher, t) for t in tasks]
    out = Console()
    if len(tasks) > 1:
        out.print(f"sweep of {len(tasks)} jobs: {placement.count('local')} here, {placement.count('slurm')} on SLURM")
    outcomes: dict[str, dict[str, Any]] = {}
    for task in (t for t, p in zip(tasks, placement) if p == "local"):
        outcomes[task.run_id] = _run_here(task, out)
    remote = [t for t, p in zip(tasks, placement) if p == "slurm"]
    if remote:
        sweep = submit(remote, launcher)
        views.report_submission(out, sweep)
        for group in sweep.groups:
            for task, job in zip(group.tasks, group.jobs):
                outcomes[task.run_id] = {"job_id": job.job_id, "run_id": task.run_id, "submitted": True}
        if launcher.wait:
            _wait(sweep, out)
    return [outcomes[t.run_id] for t in tasks]


def _run_here(task: Task, out: Console) -> dict[str, Any]:
    spec = task.spec
    if spec.gpu.python or spec.gpu.container:  # they choose a SLURM job's interpreter, not this process's
        log.warning("gpu.python / gpu.container apply to SLURM jobs; this run is here, in %s", sys.executable)
    with views.progress(Console(stderr=True)) as bar:
        bar_task = bar.add_task(task.label, total=len(job_points(spec)))
        if spec.repeats > 1:  # each repeat in a process of its own: nothing of another repeat's carries over
            result = run_isolated(
                task.config, task.run_id, task.label, lambda: bar.advance(bar_task), source=task.source
            )
        else:
            result = run(
                spec,
                config=task.config,
                run_id=task.run_id,
                on_point=lambda key, point: bar.advance(bar_task),
                source=task.source,
            )
    views.report(out, result)
    return {"run_id": task.run_id, "outcome": result.outcome, "points": len(result.points)}


def _wait(sweep: Sweep, out: Console, poll_s: float = 5.0) -> None:
    jobs = [job for group in sweep.groups for job in group.jobs]
    with views.progress(Console(stderr=True)) as bar:
        bar_task = bar.add_task(f"sweep {sweep.sweep_id}: jobs done", total=len(jobs))
        while True:
            done = sum(job.done() for job in jobs)
            bar.update(bar_task, completed=done)
            if done == len(jobs):
                break
            time.sleep(poll_s)
    for job in jobs:
        out.print(f"job {job.job_id}: {job.state}")
