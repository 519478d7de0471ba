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
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import submitit
import torch

from harness.config.spec import GpuSpec, RunSpec, resolve_job_environment, run_spec_from_dict
from harness.errors import Cancelled, ConfigError
from harness.measure.source import SourceStamp, stamp_at_submission
from harness.results.store import write_json_atomic
from harness.run.runner import new_run_id, run
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

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> LauncherSpec:
        d = dict(d or {})
        if d.get("name", "auto") not in LAUNCHERS:
            raise ConfigError(f"unknown launcher {d.get('name')!r}; valid choices: {', '.join(LAUNCHERS)}")
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        known["folder"] = Path(str(known.get("folder", "jobs")))
        return cls(**known)


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


def where(launcher: LauncherSpec, task: Task) -> str:
    """ "local" or "slurm" for a task, by the launcher's name (auto: SLURM for a named GPU type, if any)."""
    has_sbatch = shutil.which("sbatch") is not None
    if launcher.name == "local" or in_slurm_job():
        return "local"
    if launcher.name == "slurm":
        if not has_sbatch:
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
    """What a SLURM job runs: the runner, for one task. Requeued with the same run id when interrupted."""

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


@dataclass
class SubmittedGroup:
    parameters: dict[str, Any]
    tasks: list[Task]
    jobs: list[Any]  # submitit Job objects, one per task (array tasks share the array's id)


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


def submit(tasks: list[Task], launcher: LauncherSpec) -> Sweep:
    """Submit tasks to SLURM, one job array per resource group (a lone task: a plain job); no waiting."""
    sweep_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + tasks[0].run_id.rsplit("-", 1)[1]
    sweep = Sweep(sweep_id, (launcher.folder / sweep_id).resolve())
    for params, group in group_by_resources(tasks, launcher):
        executor = submitit.AutoExecutor(
            folder=sweep.folder / "%j",
            cluster="slurm",
            slurm_max_num_timeout=launcher.max_requeues,
            slurm_python=params.get("python"),
        )
        executor.update_parameters(**{k: v for k, v in params.items() if k != "python"})
        if len(group) == 1:
            jobs = [executor.submit(HarnessJob(), *_job_arguments(group[0]))]
        else:
            with executor.batch():
                jobs = [executor.submit(HarnessJob(), *_job_arguments(t)) for t in group]
        sweep.groups.append(SubmittedGroup(params, group, jobs))
        log.info("submitted %d task(s) as %s", len(group), jobs[0].job_id.split("_")[0])
    write_manifest(sweep, launcher)
    return sweep


def _job_arguments(task: Task) -> tuple[Any, ...]:
    """What HarnessJob is called with on the node."""
    return task.config, task.run_id, task.source.to_dict() if task.source is not None else None


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
                        "points_planned": len(t.spec.stage.sizes) * len(t.spec.batch_sizes),
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
