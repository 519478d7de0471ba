"""The launch layer without a cluster: SLURM parameters from config, grouping, where a job runs, staging."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from harness.config.spec import run_spec_from_dict
from harness.errors import ConfigError
from harness.launch.submit import (
    LauncherSpec,
    Task,
    group_by_resources,
    slurm_parameters,
    where,
)
from harness.results import read
from harness.run.sanity_gate import StageGateError, check_stage_gate
from tests.conftest import FAST, run_cli
from tests.helpers import compose_config, compose_configs, make_spec


def _task(tmp_path: Path, *overrides: str) -> Task:
    return Task(compose_config(*overrides), make_spec(tmp_path, *overrides), "run-1")


def test_slurm_parameters_come_from_stage_and_gpu_config(tmp_path: Path):
    spec = make_spec(tmp_path, "stage=quick", "gpu=l40s")
    params = slurm_parameters(spec, LauncherSpec(account="proj42", qos="high", array_parallelism=8))
    assert params == {
        "name": "harness-quick-l40s",
        "timeout_min": 120,
        "mem_gb": 32,
        "cpus_per_task": 8,
        "slurm_partition": "gpu",
        "slurm_gres": "gpu:1",
        "slurm_constraint": "gpul40s",
        "slurm_account": "proj42",
        "slurm_qos": "high",
        "slurm_array_parallelism": 8,
        "slurm_signal_delay_s": 90,
    }
    site = slurm_parameters(
        make_spec(tmp_path, "gpu=h100", "gpu.slurm.partition=hopper", "+gpu.slurm.reservation=r1"), LauncherSpec()
    )
    assert site["slurm_partition"] == "hopper" and site["slurm_additional_parameters"] == {"reservation": "r1"}
    assert "slurm_account" not in slurm_parameters(spec, LauncherSpec())


def test_a_quick_sweep_of_6_models_9_algorithms_3_gpus_is_3_arrays(tmp_path: Path):
    models = ["vgg16", "densenet121", "resnet152", "googlenet", "alexnet", "resnet50"]
    algos = [
        "implicit_gemm",
        "implicit_precomp_gemm",
        "gemm",
        "fft",
        "fft_tiling",
        "winograd",
        "winograd_nonfused",
        "guess",
        "torch",
    ]
    # A model group file is its name alone (conf/model/*.yaml): compose algo x gpu, then name each model.
    per_algo_gpu = compose_configs(
        [
            [f"results_dir={tmp_path}", "stage=quick", f"algo={a}", f"gpu={g}"]
            for a in algos
            for g in ("l40s", "h100", "v100")
        ]
    )
    tasks = []
    for m in models:
        for cfg in per_algo_gpu:
            cfg = {**cfg, "model": {**cfg["model"], "name": m}}
            tasks.append(Task(cfg, run_spec_from_dict(cfg), "run-1"))
    assert {t.spec.model.name for t in tasks} == set(models)
    groups = group_by_resources(tasks, LauncherSpec())
    assert len(tasks) == 162 and len(groups) == 3
    assert sorted(p["slurm_constraint"] for p, _ in groups) == ["gpu2h100", "gpu4v100", "gpul40s"]
    assert all(len(g) == 54 for _, g in groups)


def _fake_sbatch(folder: Path) -> None:
    path = folder / "sbatch"
    path.write_text("#!/bin/sh\nexit 1\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_where_a_job_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch
    local, l40s = _task(tmp_path), _task(tmp_path, "gpu=l40s")
    assert where(LauncherSpec(name="auto"), l40s) == "local"  # no SLURM here: run here (the device check decides)
    with pytest.raises(ConfigError, match="sbatch is not on PATH"):
        where(LauncherSpec(name="slurm"), l40s)
    _fake_sbatch(tmp_path)
    assert where(LauncherSpec(name="auto"), l40s) == "slurm"  # a login node: a named GPU type goes to SLURM
    assert where(LauncherSpec(name="auto"), local) == "local"  # gpu=local means this machine
    assert where(LauncherSpec(name="local"), l40s) == "local"
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    assert where(LauncherSpec(name="slurm"), l40s) == "local"  # inside a job: never submit again


def test_unknown_launcher_is_refused():
    with pytest.raises(ConfigError, match="auto, local, slurm"):
        LauncherSpec.from_dict({"name": "kubernetes"})


def test_quick_stage_is_refused_after_a_failed_sanity_stage(tmp_path: Path):
    results = tmp_path / "results"
    quick = ["stage=quick", "stage.sizes=[32]", "algo=fft", f"results_dir={results}"]
    proc = run_cli(*FAST[1:], *quick, cwd=tmp_path)  # no sanity record yet: a warning, and it runs
    assert proc.returncode == 0, proc.stderr
    assert "no sanity record" in proc.stdout + proc.stderr
    failed = run_cli(*FAST, "algo=fft", "tolerance.float32=1e-12", f"results_dir={results}", cwd=tmp_path)
    assert failed.returncode == 0 and read(results).query("stage == 'sanity'")["status"].tolist() == ["error"]
    proc = run_cli(*FAST[1:], *quick, cwd=tmp_path)
    assert proc.returncode == 2
    assert "stage=quick refused: the sanity stage of model=resnet18 algo=fft gpu=local failed" in proc.stderr
    assert "force=true" in proc.stderr
    forced = run_cli(*FAST[1:], *quick, "force=true", "remeasure=true", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr


def test_a_later_good_sanity_run_lifts_the_gate(tmp_path: Path):
    results = tmp_path / "results"
    assert run_cli(*FAST, "algo=fft", "tolerance.float32=1e-12", f"results_dir={results}", cwd=tmp_path).returncode == 0
    with pytest.raises(StageGateError):
        check_stage_gate(make_spec(results, "stage=quick", "algo=fft"))
    assert run_cli(*FAST, "algo=fft", f"results_dir={results}", cwd=tmp_path).returncode == 0  # error rows are retried
    check_stage_gate(make_spec(results, "stage=quick", "algo=fft"))
