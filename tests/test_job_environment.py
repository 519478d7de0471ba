"""Environments per GPU type: the interpreter or container a type's SLURM jobs run with (no cluster here;
tests/test_slurm.py sends them through the real test cluster)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest
import torch

from harness.config.spec import run_spec_from_dict
from harness.errors import ConfigError, DeviceMismatchError
from harness.launch.submit import (
    LauncherSpec,
    Task,
    group_by_resources,
    job_interpreter,
    make_task,
    slurm_parameters,
)
from harness.measure.device import check_build_has_kernels
from tests.helpers import compose_config, compose_configs, make_spec


def _executable(path: Path) -> Path:
    path.write_text('#!/bin/sh\nexec python "$@"\n')
    path.chmod(0o755)
    return path


def test_the_interpreter_of_a_gpu_type(tmp_path: Path):
    spec = make_spec(tmp_path, "gpu=v100")
    assert spec.gpu.python is None and spec.gpu.container is None and job_interpreter(spec.gpu) is None
    assert "python" not in slurm_parameters(spec, LauncherSpec())  # submitit's default: the submitting interpreter
    py = make_spec(tmp_path, "gpu=v100", "gpu.python=/opt/envs/cu 126/bin/python")
    assert job_interpreter(py.gpu) == "'/opt/envs/cu 126/bin/python'"  # one word for the shell
    image = make_spec(tmp_path, "gpu=v100", "gpu.container=/img/h.sif")
    assert job_interpreter(image.gpu) == "apptainer exec --nv /img/h.sif python"
    both = make_spec(
        tmp_path,
        "gpu=v100",
        "gpu.container=/img/h.sif",
        "gpu.python=/venv/bin/python",
        "gpu.container_exec='singularity exec --nv -B /scratch'",
    )
    assert shlex.split(job_interpreter(both.gpu)) == [
        "singularity",
        "exec",
        "--nv",
        "-B",
        "/scratch",
        "/img/h.sif",
        "/venv/bin/python",
    ]
    assert slurm_parameters(both, LauncherSpec())["python"] == job_interpreter(both.gpu)


def test_the_interpreter_is_not_part_of_how_a_point_is_measured(tmp_path: Path):
    plain = make_spec(tmp_path, "gpu=v100")
    other = make_spec(tmp_path, "gpu=v100", "gpu.python=/x/bin/python", "gpu.container=/img/h.sif")
    assert plain.config_hash() == other.config_hash()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("gpu.python=''", "gpu.python='' is not valid"),
        ("gpu.container=3", "gpu.container=3 is not valid"),
        ("gpu.container_exec=''", "gpu.container_exec='' is not valid: give the command"),
        ("gpu.container_exec='apptainer \"exec'", "is not valid"),
    ],
)
def test_bad_environment_values_are_refused(tmp_path: Path, override: str, message: str):
    with pytest.raises(ConfigError, match=message):
        make_spec(tmp_path, "gpu=v100", override)


def test_submission_resolves_relative_paths_and_refuses_missing_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "harness.sif").write_text("not really an image")
    _executable(tmp_path / "py")
    task = make_task(compose_config(f"results_dir={tmp_path}", "gpu=v100", "gpu.container=harness.sif"))
    assert task.config["gpu"]["container"] == str(tmp_path / "harness.sif") == task.spec.gpu.container
    task = make_task(compose_config(f"results_dir={tmp_path}", "gpu=v100", "gpu.python=./py"))
    assert task.config["gpu"]["python"] == str(tmp_path / "py")
    inside = make_task(
        compose_config(
            f"results_dir={tmp_path}", "gpu=v100", "gpu.container=harness.sif", "gpu.python=/opt/venv/bin/python"
        )
    )  # the image's: not checked here
    assert inside.spec.gpu.python == "/opt/venv/bin/python"
    assert (
        make_task(
            compose_config(f"results_dir={tmp_path}", "gpu=v100", "gpu.container=docker://x/harness:1")
        ).spec.gpu.container
        == "docker://x/harness:1"
    )
    with pytest.raises(ConfigError, match=r"gpu.container=missing.sif \(gpu=v100\): no such image"):
        make_task(compose_config(f"results_dir={tmp_path}", "gpu=v100", "gpu.container=missing.sif"))
    with pytest.raises(ConfigError, match=r"gpu.python=/no/env/bin/python \(gpu=v100\): no executable file.*cu126"):
        make_task(compose_config(f"results_dir={tmp_path}", "gpu=v100", "gpu.python=/no/env/bin/python"))


def test_gpu_types_with_different_environments_go_to_different_arrays(tmp_path: Path):
    """A mixed sweep: V100 jobs to a build with sm_70, the others to the default, in one multirun."""
    cfgs = compose_configs(
        [[f"results_dir={tmp_path}", f"gpu={g}", f"algo={a}"] for g in ("v100", "h100") for a in ("torch", "gemm")]
    )
    cfgs = [c | {"gpu": c["gpu"] | {"python": sys.executable}} if c["gpu"]["name"] == "v100" else c for c in cfgs]
    groups = group_by_resources([Task(c, run_spec_from_dict(c), "run-1") for c in cfgs], LauncherSpec())
    assert sorted((str(p.get("python")), len(g)) for p, g in groups) == sorted(
        [(shlex.quote(sys.executable), 2), ("None", 2)]
    )
    same = [c | {"gpu": c["gpu"] | {"slurm": cfgs[0]["gpu"]["slurm"]}} for c in cfgs]  # same SLURM options...
    groups = group_by_resources([Task(c, run_spec_from_dict(c), "run-1") for c in same], LauncherSpec())
    assert len(groups) == 2  # ... still two arrays: one interpreter per array


def test_a_build_without_kernels_names_the_gpu_types_environment_keys(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=None: (7, 0))
    monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: ["sm_75", "sm_80", "sm_90"])
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=None: "Tesla V100-SXM2-32GB")
    with pytest.raises(DeviceMismatchError) as e:
        check_build_has_kernels(0, "v100")
    text = str(e.value)
    assert "whl/cu126" in text and "gpu=v100's jobs" in text and "gpu.python=" in text and "gpu.container=" in text
    assert "conf/gpu/v100.yaml" in text and sys.executable in text
