"""`python -m harness.doctor` on this machine, with fake SLURM commands on PATH."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import torch

from harness import doctor

cpu_only_machine = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only machine's answers")


def _fake_command(folder: Path, name: str, script: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def _by_name(checks):
    return {c.name: c for c in checks}


@cpu_only_machine
def test_default_run_is_possible_here_with_warnings(tmp_path: Path, capsys: pytest.CaptureFixture):
    code = doctor.main(["--results-dir", str(tmp_path / "r"), "--jobs-dir", str(tmp_path / "j")])
    assert code == 0 and "harness doctor" in capsys.readouterr().out
    checks = _by_name(doctor.run_checks("local", "torch", False, tmp_path / "r", tmp_path / "j"))
    assert checks["cuda device"].status == "warning" and "no CUDA GPU" in checks["cuda device"].found
    assert checks["algorithms"].status == "ok" and "direct, gemm, fft, winograd, torch" in checks["algorithms"].found
    assert checks["results dir"].status == "ok" and not any(c.status == "problem" and c.needed for c in checks.values())


@cpu_only_machine
def test_a_gpu_run_is_refused_here(tmp_path: Path, capsys: pytest.CaptureFixture):
    code = doctor.main(["--gpu", "l40s", "--algo", "implicit precomp gemm", "--results-dir", str(tmp_path)])
    assert code == 1
    assert "cuda device" in capsys.readouterr().err
    checks = _by_name(doctor.run_checks("l40s", "implicit_precomp_gemm", False, tmp_path, tmp_path))
    assert checks["cuda device"].status == "problem" and checks["algorithms"].status == "problem"


def test_slurm_commands_and_accounting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    (c,) = doctor.slurm_checks(needed=True)
    assert c.status == "problem" and "sbatch" in c.found
    for name in ("sbatch", "squeue", "scontrol"):
        _fake_command(tmp_path, name, "exit 0")
    _fake_command(tmp_path, "sacct", "echo 'Slurm accounting storage is disabled' >&2; exit 1")
    (c,) = doctor.slurm_checks(needed=True)
    assert c.status == "problem" and "accounting storage is disabled" in c.found
    _fake_command(tmp_path, "sacct", "exit 0")
    (c,) = doctor.slurm_checks(needed=True)
    assert c.status == "ok"


def test_unwritable_results_dir_is_a_problem(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    checks = _by_name(doctor.writable_checks(blocker / "results", tmp_path / "jobs"))
    assert checks["results dir"].status == "problem" and checks["results dir"].needed
    assert checks["jobs dir"].status == "ok"


def test_unknown_algorithm_is_refused(capsys: pytest.CaptureFixture):
    assert doctor.main(["--algo", "magic"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown algo 'magic'") and "valid choices" in err and err.count("\n") == 1
