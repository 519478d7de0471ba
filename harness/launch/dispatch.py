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

from harness.campaign import dry_run, estimate
from harness.campaign.rounds import is_adaptive_config
from harness.config import keys
from harness.errors import ConfigError
from harness.launch import console as views
from harness.launch.isolated import run_isolated
from harness.launch.submit import LauncherSpec, Sweep, Task, make_tasks, submit, time_limits, where
from harness.measure.source import stamp_at_submission
from harness.run.runner import job_points, run

log = logging.getLogger(__name__)


def launch_configs(configs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run or submit each resolved config; returns, per config, what happened to it. Configs with
    stage.sizes=adaptive go to the adaptive grid's rounds (harness.launch.decider), which come back here
    with each round's sizes."""
    if any(is_adaptive_config(c) for c in configs):
        from harness.launch.decider import dry_run_adaptive, run_adaptive

        if any(keys.check("dry_run", c.get("dry_run", False)) for c in configs):
            return dry_run_adaptive(configs, launch_configs)
        return run_adaptive(configs, launch_configs)
    launchers = {LauncherSpec.from_dict(c.get("launcher")) for c in configs}
    if len(launchers) > 1:
        raise ConfigError("the launcher settings must be the same for the whole sweep")
    (launcher,) = launchers
    dry = {keys.check("dry_run", c.get("dry_run", False)) for c in configs}
    if len(dry) > 1:
        raise ConfigError("dry_run must be the same for the whole sweep (true: plan it all, run nothing)")
    (dry_run,) = dry
    source = stamp_at_submission()  # once for the sweep: every job carries it
    tasks = [t for c in configs for t in make_tasks(c, source)]  # every config checked before anything starts
    placement = [where(launcher, t, dry_run=dry_run) for t in tasks]
    out = Console()
    if dry_run:
        return _dry_run(tasks, placement, launcher, out)
    if len(tasks) > 1:
        out.print(f"sweep of {len(tasks)} jobs: {placement.count('local')} here, {placement.count('slurm')} on SLURM")
    outcomes: dict[str, dict[str, Any]] = {}
    for task in (t for t, p in zip(tasks, placement) if p == "local"):
        outcomes[task.run_id] = _run_here(task, out)
    remote = [t for t, p in zip(tasks, placement) if p == "slurm"]
    if remote:
        groups, rule = time_limits(remote, [c.seconds.mid for c in estimate.predict(remote)], launcher)
        log.info("--time: %s", rule)
        sweep = submit(remote, launcher, groups)
        views.report_submission(out, sweep)
        for group in sweep.groups:
            for task, job in zip(group.tasks, group.jobs):
                outcomes[task.run_id] = {"job_id": job.job_id, "run_id": task.run_id, "submitted": True}
        if launcher.wait:
            _wait(sweep, out)
    return [outcomes[t.run_id] for t in tasks]


def _dry_run(tasks: list[Task], placement: list[str], launcher: LauncherSpec, out: Console) -> list[dict[str, Any]]:
    """Print what the sweep would create and cost; submit and measure nothing."""
    costs = estimate.predict(tasks)
    remote = [(t, c) for t, c, p in zip(tasks, costs, placement) if p == "slurm"]
    groups, rule = time_limits([t for t, _ in remote], [c.seconds.mid for _, c in remote], launcher)
    dry_run.show(out, dry_run.make_plan(tasks, costs, placement, groups if remote else [], rule or None, launcher))
    return [
        {"run_id": t.run_id, "dry_run": True, "where": p, "points": c.points, "predicted_s": c.seconds.mid}
        for t, c, p in zip(tasks, costs, placement)
    ]


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
