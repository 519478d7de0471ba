"""The plans CLI (analysis.plans.cli): ``export --ai3`` says on stderr which entries ai3 can run on the
plan's device; ``python -m analysis.plan`` stays the old name of ``python -m analysis.plans``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analysis.plans.cli import ai3_support_note, device_of, main
from harness.algorithms import plan as plans
from tests.test_plan import mixed_plan


def _export(tmp_path: Path, capsys: pytest.CaptureFixture, plan: plans.Plan, *extra: str) -> tuple[list, str]:
    path = plans.write(plan, tmp_path / "plan.json")
    assert main(["export", str(path), "--ai3", *extra]) == 0
    out, err = capsys.readouterr()
    return json.loads(out), err


def test_export_ai3_notes_what_ai3_cannot_run_on_the_cpu(tmp_path: Path, capsys: pytest.CaptureFixture):
    plan = mixed_plan()  # backend reference: the CPU; torch on the stem, winograd and gemm elsewhere
    assert device_of(plan) == "cpu"
    names, err = _export(tmp_path, capsys, plan)
    assert names == plans.ai3_algorithms(plan, "guess")  # stdout: the list alone, as before
    lines = err.splitlines()
    assert lines[0] == "ai3 0.1.0 on cpu:"
    by_name = {line.split()[0]: line.split()[1] for line in lines[1:]}
    assert by_name == {"guess": "no", "winograd": "no", "gemm": "no"}  # cuDNN-only algorithms, in layer order
    assert [line.split()[0] for line in lines[1:]] == ["guess", "winograd", "gemm"]
    assert "runs only on cuda, not cpu" in err


def test_export_ai3_on_a_gpu_plan_and_torch_as(tmp_path: Path, capsys: pytest.CaptureFixture):
    gpu = mixed_plan(backend="cudnn")
    assert device_of(gpu) == "cuda"
    _, err = _export(tmp_path, capsys, gpu)
    assert err.splitlines()[0] == "ai3 0.1.0 on cuda:"
    assert all(line.split()[1] == "ok" for line in err.splitlines()[1:])
    # the stem kept on torch is written as --torch-as: direct, which ai3 runs on the CPU only
    note = ai3_support_note(mixed_plan(), "direct")
    assert note.splitlines()[1].split()[:2] == ["direct", "ok"]
    assert ai3_support_note(gpu, "direct").splitlines()[1].split()[:2] == ["direct", "no"]


def test_the_old_module_is_the_same_cli(tmp_path: Path, capsys: pytest.CaptureFixture):
    from analysis import plan as old
    from analysis.plans import cli

    assert old.make is cli.make and old.lines is cli.lines
    assert old.main(["show", str(tmp_path / "nowhere.json")]) == 2
    assert "(see python -m analysis.plan show --help)" in capsys.readouterr().err
    assert main(["show", str(tmp_path / "nowhere.json")]) == 2
    assert "(see python -m analysis.plans show --help)" in capsys.readouterr().err
