"""The runs (thin GPU work): a job composed and validated before any GPU work, then one
``harness.run.runner.run`` per job; the layers rows read back from the store."""

from __future__ import annotations

import logging
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from harness.acceptance.compose import compose_config
from harness.acceptance.plan import Job
from harness.acceptance.rows import Row, as_rows
from harness.config.spec import RunSpec, run_spec_from_dict

log = logging.getLogger(__name__)


@dataclass
class JobResult:
    job: Job
    command: str  # the same job as a `python -m harness` command line
    outcome: str = "not run"  # completed | failed | interrupted | not run
    error: str | None = None
    run_id: str | None = None
    rows: list[Row] = field(default_factory=list)  # RunResult.points


@dataclass
class PreparedJob:
    record: JobResult
    spec: RunSpec
    config: dict[str, Any]  # the resolved config, kept in the run's run.json


def prepare_job(job: Job, results: Path) -> PreparedJob:
    """Compose and validate the job's config (before any GPU work); ConfigError names a bad value."""
    overrides = job.overrides(results)
    cfg = compose_config(overrides)
    command = "python -m harness " + " ".join(shlex.quote(o) for o in overrides)
    return PreparedJob(JobResult(job, command), run_spec_from_dict(cfg), cfg)


def run_job(prepared: PreparedJob, on_point: Callable[[Any, Row | None], None]) -> JobResult:
    """One ``harness.run.runner.run``; an exception ends this job only (recorded), never the acceptance run."""
    from harness.run import runner

    record = prepared.record
    try:
        if prepared.spec.repeats > 1:
            results = _run_in_processes(prepared, on_point)
        else:
            results = [runner.run(prepared.spec, config=prepared.config, on_point=on_point)]
    except Exception as e:  # noqa: BLE001 - a job that fails is a finding of the acceptance run
        log.error("%s failed: %s: %s", record.job.label, type(e).__name__, e)
        log.debug("traceback", exc_info=True)
        record.outcome, record.error = "failed", f"{type(e).__name__}: {e}"[:2000]
    else:
        outcomes = {r.outcome for r in results}
        record.outcome = outcomes.pop() if len(outcomes) == 1 else "mixed: " + ", ".join(sorted(outcomes))
        record.run_id, record.rows = results[0].run_id, [p for r in results for p in r.points]
        log.debug("%s: %s, %d point(s)", record.job.label, record.outcome, len(record.rows))
    finally:
        runner.release_memory(torch.device("cuda"))
    return record


def _run_in_processes(prepared: PreparedJob, on_point: Callable[[Any, Row | None], None]) -> list[Any]:
    """repeats=K: each repeat in a process of its own (harness.launch.isolated), one after the other."""
    from harness.launch.isolated import run_isolated
    from harness.launch.submit import make_tasks

    return [
        run_isolated(t.config, t.run_id, t.label, lambda: on_point(None, None), source=t.source)
        for t in make_tasks(prepared.config)
    ]


def read_layers(results: Path, run_ids: set[str]) -> list[Row]:
    """The layers rows of these runs, read back from the store (empty where nothing was written)."""
    from harness.results import read

    try:
        frame = read(results, "layers")
    except (OSError, ValueError) as e:  # no results folder: every job failed before writing
        log.warning("cannot read the layers of %s: %s", results, e)
        return []
    return [r for r in as_rows(frame) if r.get("run_id") in run_ids]
