"""dry_run=true: the plan and predicted cost of single runs and multiruns, here and on SLURM, with nothing
submitted or measured; a submission's --time from the prediction, and its growth at requeue."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from harness.launch.submit import HarnessJob, LauncherSpec, Task, grow_time_limit, time_limits
from harness.results import read
from tests.conftest import FAST
from tests.conftest import run_cli as _run_cli
from tests.helpers import compose_config, make_spec


def run_cli(*args: str, cwd: Path) -> object:
    return _run_cli(*args, cwd=cwd, env={"COLUMNS": "200"})  # rich's tables: one line a row


def test_a_single_runs_dry_run_plans_it_here_and_measures_nothing(tmp_path: Path):
    results = tmp_path / "results"
    proc = run_cli(*FAST, "dry_run=true", f"results_dir={results}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "nothing is submitted or measured" in proc.stdout and "1 job(s) would run here" in proc.stdout
    assert "default 100%" in proc.stdout  # an empty tree: the stage's default latency
    assert not results.exists()


def test_a_multiruns_dry_run_on_slurm_shows_arrays_time_limits_and_gpu_hours_without_sbatch(tmp_path: Path):
    proc = run_cli(
        "-m",
        *FAST,
        "dry_run=true",
        "launcher=slurm",
        "gpu=h100,l40s",
        "model=resnet18,alexnet",
        f"results_dir={tmp_path / 'results'}",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "SLURM submissions" in out and "h100" in out and "l40s" in out
    assert "requeued (at most 3 times)" in out and "min" in out
    assert not (tmp_path / "jobs").exists() or not list((tmp_path / "jobs").rglob("manifest.json"))


def test_a_local_multirun_dry_run_counts_its_jobs_and_what_is_already_measured(tmp_path: Path):
    results = tmp_path / "results"
    assert run_cli(*FAST, f"results_dir={results}", cwd=tmp_path).returncode == 0  # one point, measured
    proc = run_cli("-m", *FAST, "dry_run=true", "algo=torch,gemm", f"results_dir={results}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "2 job(s) would run here" in proc.stdout
    assert "measured 50%" in proc.stdout  # torch's point is in the tree with this config: skipped
    assert len(read(results)) == 1  # nothing more measured


def test_bad_time_settings_are_one_line_refusals_at_the_command_line(tmp_path: Path):
    proc = run_cli(*FAST, "dry_run=true", "launcher.time_factor=0", cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "launcher.time_factor=0" in lines[0] and "> 0" in lines[0], proc.stderr
    proc = run_cli(*FAST, "launcher.time_min_minutes=60", "launcher.time_max_minutes=30", cwd=tmp_path)
    assert proc.returncode == 2 and "launcher.time_max_minutes=30" in proc.stderr


def _task(tmp_path: Path, run_id: str, *overrides: str) -> Task:
    return Task(compose_config(*overrides), make_spec(tmp_path, *overrides), run_id)


@pytest.mark.parametrize(("rule", "arrays", "limits"), [("bins", 2, [10, 80]), ("max", 1, [50])])
def test_tasks_of_one_resource_group_share_a_time_limit_by_bins_or_their_maximum(
    tmp_path: Path, rule: str, arrays: int, limits: list[int]
):
    tasks = [
        _task(tmp_path, f"run-{i}", "stage=full", "gpu=h100", f"model={m}") for i, m in enumerate(("alexnet", "vgg16"))
    ]
    launcher = LauncherSpec(time_arrays=rule)
    groups, why = time_limits(tasks, [120.0, 1500.0], launcher)  # 4 min and 50 min once doubled
    assert len(groups) == arrays and why
    assert sorted(params["timeout_min"] for params, _ in groups) == limits


def test_a_requeue_asks_slurm_for_the_next_attempts_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The real code path with a fake ``scontrol`` at the border: it records its arguments."""
    log = tmp_path / "scontrol.log"
    fake = tmp_path / "bin" / "scontrol"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "77")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "4")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")  # the second attempt is ending: the third is next
    assert grow_time_limit([30, 60, 120, 1440])
    assert log.read_text().split() == ["update", "JobId=77_4", "TimeLimit=120"]
    delayed = HarnessJob([30, 60, 120, 1440]).checkpoint({"a": 1}, "run-1")  # what submitit calls on USR2
    assert delayed.args == ({"a": 1}, "run-1") and log.read_text().count("TimeLimit=120") == 2
    fake.write_text("#!/bin/sh\necho 'Access/permission denied' >&2\nexit 1\n")
    assert not grow_time_limit([30, 60, 120, 1440])  # refused: the job is requeued with the limit it had


def test_an_adaptive_grids_dry_run_plans_round_one_and_writes_nothing(tmp_path: Path):
    results = tmp_path / "results"
    proc = run_cli(
        "-m",
        *FAST,
        "dry_run=true",
        "algo=torch,gemm",
        "stage.sizes=adaptive",
        "stage.adaptive.start=32",
        "stage.adaptive.stop=64",
        "stage.adaptive.coarse=3",
        f"results_dir={results}",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "2 job(s) would run here" in proc.stdout  # round 1: the coarse grid of each algorithm
    assert "round 1 only" in proc.stdout and "not in this estimate" in proc.stdout
    assert not results.exists()  # no point measured, no journal written
