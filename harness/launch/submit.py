"""Launching jobs: here in this process, or on SLURM through submitit, without waiting.

A sweep (Hydra's multirun, or one run) becomes ``Task``s: a resolved config, its RunSpec and a run id.
Tasks bound for SLURM are grouped by the resources they need (the stage's time, memory and cpus; the GPU
type's partition, gres and constraint, and the interpreter or container its jobs run with:
``job_interpreter``), and each group is submitted as one job array; the call returns
as soon as sbatch has answered. A manifest under ``<launcher.folder>/<sweep id>/manifest.json`` records
job ids, each task's config and where its results go, for the status tool and for people.

The job (``HarnessJob``) is checkpointable: on SLURM's timeout or preemption signal submitit requeues it
with the same arguments, the same run id, and the runner skips the points already written, so every point
is measured exactly once however many times the job is interrupted (up to ``max_requeues``).
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import submitit
import torch

from harness.campaign.timelimit import TimeLimitPolicy
from harness.config.spec import GpuSpec, RunSpec, resolve_job_environment, run_spec_from_dict
from harness.errors import Cancelled, ConfigError
from harness.measure.source import SourceStamp, stamp_at_submission
from harness.results.store import write_json_atomic
from harness.run.runner import new_run_id, planned_keys, run
from harness.run.sanity_gate import check_stage_gate

log = logging.getLogger(__name__)

LAUNCHERS = ("auto", "local", "slurm")


@dataclass(frozen=True)
class LauncherSpec:
    name: str = "auto"
    folder: Path = Path("jobs")
    array_parallelism: int = 16
    max_requeues: int = 3
    signal_delay_s: int = 90
    account: str | None = None
    qos: str | None = None
    wait: bool = False
    # --time from the predicted duration (harness.campaign.timelimit): x time_factor, held between
    # time_min_minutes and time_max_minutes (None: the stage's stage.slurm.timeout_min), x time_growth per requeue
    time_factor: float = 2.0
    time_min_minutes: int = 10
    time_max_minutes: int | None = None
    time_growth: float = 2.0
    time_arrays: str = "bins"

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> LauncherSpec:
        d = dict(d or {})
        if d.get("name", "auto") not in LAUNCHERS:
            raise ConfigError(f"unknown launcher {d.get('name')!r}; valid choices: {', '.join(LAUNCHERS)}")
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        known["folder"] = Path(str(known.get("folder", "jobs")))
        spec = cls(**known)
        spec.time_policy(None)  # the time keys checked once, here, with or without a stage's bound
        return spec

    def time_policy(self, stage_timeout_min: int | None) -> TimeLimitPolicy:
        """The --time rule for a job of a stage whose ``stage.slurm.timeout_min`` is ``stage_timeout_min``: the
        upper bound where ``time_max_minutes`` is null (and then the lower one too where it is below it)."""
        lower, upper = self.time_min_minutes, self.time_max_minutes
        own = TimeLimitPolicy(
            self.time_factor, lower, lower if upper is None else upper, self.time_growth, self.time_arrays
        )
        if upper is not None or stage_timeout_min is None:
            return own
        # the stage's bound holds where it is below the lower bound (a stage of 1-minute jobs asks for 1 minute)
        lower = min(lower, stage_timeout_min)
        return TimeLimitPolicy(self.time_factor, lower, stage_timeout_min, self.time_growth, self.time_arrays)


@dataclass(frozen=True)
class Task:
    """One job of a sweep: what to measure (the resolved config) and under which run id."""

    config: dict[str, Any]
    spec: RunSpec
    run_id: str
    source: SourceStamp | None = None  # the code's stamp, taken where the sweep was launched

    @property
    def label(self) -> str:
        s = self.spec
        repeat = f" (repeat {s.repeat + 1} of {s.repeats})" if s.repeats > 1 else ""
        return f"{s.stage.name}/{s.gpu.name}/{s.model.name}/{s.algo}{repeat}"


READ_HERE = "read here"


def make_tasks(config: dict[str, Any], source: SourceStamp | None | str = READ_HERE) -> list[Task]:
    """The tasks of a resolved config: one, or with ``repeats=K`` one per repeat (``repeat`` 0 .. K-1, each its
    own run and process), so that every point is measured in K separate processes. ``source``: the code's
    stamp, read once per sweep by the caller (None: not known), or read here (READ_HERE)."""
    if source == READ_HERE:
        source = stamp_at_submission()
    first = make_task(config, source)
    if first.spec.repeats == 1:
        return [first]
    return [first, *(make_task(config | {"repeat": i}, source) for i in range(1, first.spec.repeats))]


def make_task(config: dict[str, Any], source: SourceStamp | None = None) -> Task:
    """A Task from a resolved config (no ``hydra`` node); refuses a stage whose sanity stage failed."""
    config = resolve_job_environment(dict(config))
    config["results_dir"] = str(Path(str(config.get("results_dir", "results"))).resolve())
    for key in ("references", "plan"):  # files a SLURM job reads again, from another folder
        if key in config:
            config[key] = _absolute(config[key])
    model = config.get("model")
    if isinstance(model, dict) and "path" in model:  # likewise a model file
        config["model"] = model | {"path": _absolute(model["path"])}
    spec = run_spec_from_dict(config)
    check_stage_gate(spec, force=config.get("force", False) is True)  # a bool: checked by run_spec_from_dict
    return Task(config, spec, new_run_id(), source)


def _absolute(value: Any) -> Any:
    """A path given in the config, made absolute (``~`` expanded); anything else (null, a bad value the config
    border names) as it is."""
    return str(Path(value).expanduser().resolve()) if isinstance(value, str) and value else value


def in_slurm_job() -> bool:
    return "SLURM_JOB_ID" in os.environ


def where(launcher: LauncherSpec, task: Task, dry_run: bool = False) -> str:
    """ "local" or "slurm" for a task, by the launcher's name (auto: SLURM for a named GPU type, if any).
    ``dry_run``: launcher=slurm plans for SLURM without sbatch here (nothing is submitted)."""
    has_sbatch = shutil.which("sbatch") is not None
    if launcher.name == "local" or in_slurm_job():
        return "local"
    if launcher.name == "slurm":
        if not has_sbatch and not dry_run:
            raise ConfigError("launcher=slurm, but sbatch is not on PATH: run on a login node, or use launcher=local")
        return "slurm"
    return "slurm" if has_sbatch and task.spec.gpu.nvml_name is not None else "local"


def job_interpreter(gpu: GpuSpec) -> str | None:
    """The command line that starts a job's Python for this GPU type (submitit's ``python``: the sbatch
    script runs ``srun <it> -u -m submitit.core._submit <folder>``), or None for the submitting interpreter.

    ``gpu.container`` and ``gpu.python`` compose: the image run by ``gpu.container_exec`` with the python in
    it (``python`` on the image's PATH unless ``gpu.python`` names one); ``gpu.python`` alone: that
    interpreter on the node.
    """
    if gpu.container is None:
        return None if gpu.python is None else shlex.quote(gpu.python)
    return shlex.join([*shlex.split(gpu.container_exec), gpu.container, gpu.python or "python"])


def slurm_parameters(spec: RunSpec, launcher: LauncherSpec) -> dict[str, Any]:
    """submitit's parameters for a job of this stage on this GPU type (never a shell string, except the
    interpreter's command line, ``python``, which submitit takes as one: see ``job_interpreter``)."""
    stage, gpu = spec.stage.slurm, spec.gpu.slurm or {}
    params: dict[str, Any] = {
        "name": f"harness-{spec.stage.name}-{spec.gpu.name}",
        "timeout_min": int(stage.get("timeout_min", 60)),
        "mem_gb": stage.get("mem_gb"),
        "cpus_per_task": stage.get("cpus_per_task"),
        "slurm_partition": gpu.get("partition"),
        "slurm_gres": gpu.get("gres"),
        "slurm_constraint": gpu.get("constraint"),
        "slurm_account": launcher.account,
        "slurm_qos": launcher.qos,
        "slurm_array_parallelism": launcher.array_parallelism,
        "slurm_signal_delay_s": launcher.signal_delay_s,
        "python": job_interpreter(spec.gpu),  # the executor's, not sbatch's: submit() takes it out
    }
    extra = {k: v for k, v in gpu.items() if k not in ("partition", "gres", "constraint")}
    if extra:
        params["slurm_additional_parameters"] = extra
    return {k: v for k, v in params.items() if v is not None}


class _Signals:
    """SIGTERM means "cancelled" unless it follows submitit's checkpoint-and-requeue (SIGUSR2), when SLURM
    terminates the old attempt of a job it has just requeued."""

    def __init__(self) -> None:
        self.requeueing = False
        self._submitit_usr2 = signal.getsignal(signal.SIGUSR2)

    def install(self) -> None:
        signal.signal(signal.SIGUSR2, self._usr2)
        signal.signal(signal.SIGTERM, self._term)

    def _usr2(self, signum: int, frame: Any) -> None:
        self.requeueing = True
        if callable(self._submitit_usr2):
            self._submitit_usr2(signum, frame)

    def _term(self, signum: int, frame: Any) -> None:
        if self.requeueing:
            log.info("SIGTERM after the requeue: this attempt ends, the job goes on")
            return
        raise Cancelled(f"received {signal.Signals(signum).name}: the job was cancelled")


class HarnessJob(submitit.helpers.Checkpointable):
    """What a SLURM job runs: the runner, for one task. Requeued with the same run id when interrupted.

    ``limits``: the time limit (minutes) of each attempt, first to last (harness.campaign.timelimit); before a
    requeue the job asks SLURM for the next attempt's (``grow_time_limit``)."""

    def __init__(self, limits: list[int] | None = None) -> None:
        self.limits = limits

    def checkpoint(self, *args: Any, **kwargs: Any) -> submitit.helpers.DelayedSubmission:
        if self.limits:
            grow_time_limit(self.limits)
        return super().checkpoint(*args, **kwargs)

    def __call__(self, config: dict[str, Any], run_id: str, source: dict[str, Any] | None = None) -> dict[str, Any]:
        """``source``: the code's stamp taken at submission (a plain dict: what the job is pickled with); a
        requeued job is called again with the same arguments."""
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        log.info(
            "job interpreter: %s (torch %s, CUDA build %s)",
            sys.executable,
            torch.__version__,
            torch.version.cuda or "none",
        )
        _Signals().install()  # submitit ignores SIGTERM; scancel sends it
        spec = run_spec_from_dict(config)
        stamp = SourceStamp.from_dict(source) if source else None
        result = run(spec, config=config, run_id=run_id, source=stamp)
        # The work is done and on disk: a time-limit signal arriving now (SLURM may send it up to a minute
        # early) must neither requeue the job nor kill it before submitit records its success.
        signal.signal(signal.SIGUSR2, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        statuses = [p["status"] for p in result.points]
        return {
            "run_id": run_id,
            "outcome": result.outcome,
            "directory": str(result.directory),
            "points": len(result.points),
            "skipped": len(result.skipped),
            "by_status": {s: statuses.count(s) for s in sorted(set(statuses))},
        }


def grow_time_limit(limits: list[int]) -> bool:
    """Ask SLURM for the next attempt's time limit (``scontrol update``) before the job is requeued; whether it
    was granted. Many sites let only operators raise a limit: refused, the job is requeued with the limit it had
    and resumes where it stopped all the same (each attempt measures more points; a warning says so)."""
    attempt = int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0) + 1  # the attempt about to start
    minutes = limits[min(attempt, len(limits) - 1)]
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    job = f"{array}_{task}" if array and task else os.environ.get("SLURM_JOB_ID", "")
    command = ["scontrol", "update", f"JobId={job}", f"TimeLimit={minutes}"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        log.warning("requeue %d: the time limit stays (%s: %s)", attempt, " ".join(command), e)
        return False
    if done.returncode != 0:
        log.warning(
            "requeue %d: SLURM kept the time limit (%s: %s); the job resumes with it",
            attempt,
            " ".join(command),
            (done.stderr or done.stdout).strip()[:200],
        )
        return False
    log.info("requeue %d: time limit raised to %d min", attempt, minutes)
    return True


@dataclass
class SubmittedGroup:
    parameters: dict[str, Any]
    tasks: list[Task]
    jobs: list[Any]  # submitit Job objects, one per task (array tasks share the array's id)
    limits: list[int] | None = None  # each attempt's --time in minutes (None: the stage's, fixed)


@dataclass
class Sweep:
    sweep_id: str
    folder: Path
    groups: list[SubmittedGroup] = field(default_factory=list)

    @property
    def manifest_path(self) -> Path:
        return self.folder / "manifest.json"


def _resource_key(params: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in params.items() if k != "name"}, sort_keys=True, default=str)


def group_by_resources(tasks: Iterable[Task], launcher: LauncherSpec) -> list[tuple[dict[str, Any], list[Task]]]:
    groups: dict[str, tuple[dict[str, Any], list[Task]]] = {}
    for task in tasks:
        params = slurm_parameters(task.spec, launcher)
        groups.setdefault(_resource_key(params), (params, []))[1].append(task)
    return list(groups.values())


def time_limits(
    tasks: list[Task], predicted_s: list[float], launcher: LauncherSpec
) -> tuple[list[tuple[dict[str, Any], list[Task]]], str]:
    """The submissions of ``tasks`` with their ``--time`` from their predicted seconds: resource groups, split by
    time limit where ``launcher.time_arrays`` is bins; and a line saying which rule gave an array its --time.
    Each group's upper bound: ``launcher.time_max_minutes``, else its stage's ``stage.slurm.timeout_min``."""
    seconds = {t.run_id: s for t, s in zip(tasks, predicted_s)}
    submissions: list[tuple[dict[str, Any], list[Task]]] = []
    rule = ""
    for params, group in group_by_resources(tasks, launcher):
        policy = launcher.time_policy(params.get("timeout_min"))
        limits, rule = policy.array_limits([seconds[t.run_id] for t in group])
        split: dict[int, list[Task]] = {}
        for task, minutes in zip(group, limits):
            split.setdefault(minutes, []).append(task)
        submissions += [(params | {"timeout_min": m}, split[m]) for m in sorted(split)]
    return submissions, rule


def attempt_limits(params: dict[str, Any], launcher: LauncherSpec, stage_timeout_min: int | None) -> list[int]:
    """The time limit of each attempt of a job submitted with ``params`` (its first ``timeout_min``)."""
    policy = launcher.time_policy(stage_timeout_min)
    first = int(params["timeout_min"])
    return [policy.attempt_min(first, k, launcher.max_requeues) for k in range(launcher.max_requeues + 1)]


def submit(
    tasks: list[Task], launcher: LauncherSpec, groups: list[tuple[dict[str, Any], list[Task]]] | None = None
) -> Sweep:
    """Submit tasks to SLURM, one job array per group (a lone task: a plain job); no waiting. ``groups``: from
    ``time_limits`` (each with its predicted --time, growing at each requeue); None: by resources, each with
    its stage's fixed ``stage.slurm.timeout_min``."""
    sweep_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + tasks[0].run_id.rsplit("-", 1)[1]
    sweep = Sweep(sweep_id, (launcher.folder / sweep_id).resolve())
    for params, group in groups if groups is not None else group_by_resources(tasks, launcher):
        stage_limit = int(group[0].spec.stage.slurm.get("timeout_min", 60))
        limits = attempt_limits(params, launcher, stage_limit) if groups is not None else None
        executor = submitit.AutoExecutor(
            folder=sweep.folder / "%j",
            cluster="slurm",
            slurm_max_num_timeout=launcher.max_requeues,
            slurm_python=params.get("python"),
        )
        executor.update_parameters(**{k: v for k, v in params.items() if k != "python"})
        if len(group) == 1:
            jobs = [executor.submit(HarnessJob(limits), *_job_arguments(group[0]))]
        else:
            with executor.batch():
                jobs = [executor.submit(HarnessJob(limits), *_job_arguments(t)) for t in group]
        sweep.groups.append(SubmittedGroup(params, group, jobs, limits))
        log.info("submitted %d task(s) as %s", len(group), jobs[0].job_id.split("_")[0])
    write_manifest(sweep, launcher)
    return sweep


def _job_arguments(task: Task) -> tuple[Any, ...]:
    """What HarnessJob is called with on the node."""
    return task.config, task.run_id, task.source.to_dict() if task.source is not None else None


def _planned(spec: RunSpec) -> dict[str, Any]:
    """A task's planned points as the runner plans them and its run record lists them (harness.status joins
    both): their count and their keys."""
    keys = planned_keys(spec)
    return {"points_planned": len(keys), "points_planned_keys": keys}


def write_manifest(sweep: Sweep, launcher: LauncherSpec) -> Path:
    sources = {t.source for g in sweep.groups for t in g.tasks}
    doc = {
        "sweep_id": sweep.sweep_id,
        "created_at": datetime.now(timezone.utc).isoformat(),
        "launcher": "slurm",
        "max_requeues": launcher.max_requeues,
        # the code's stamp at submission (harness.measure.source), as every job of the sweep carries it
        "source": sources.pop().to_dict() if len(sources) == 1 and None not in sources else None,
        "groups": [
            {
                "parameters": g.parameters,
                "time_limits_min": g.limits,
                "array_job_id": g.jobs[0].job_id.split("_")[0],
                "tasks": [
                    {
                        "job_id": job.job_id,
                        "run_id": t.run_id,
                        "stage": t.spec.stage.name,
                        "repeat": t.spec.repeat,
                        "model": t.spec.model.name,
                        "algo": t.spec.algo,
                        "gpu": t.spec.gpu.name,
                        "results_dir": str(t.spec.results_dir),
                        "stdout": str(job.paths.stdout),
                        **_planned(t.spec),
                        "config": t.config,
                    }
                    for t, job in zip(g.tasks, g.jobs)
                ],
            }
            for g in sweep.groups
        ],
    }
    sweep.folder.mkdir(parents=True, exist_ok=True)
    write_json_atomic(doc, sweep.manifest_path)
    return sweep.manifest_path
