"""containers/: the Apptainer definitions and the Dockerfile parse and agree with the project.

No image can be built here (no container registry); what can be checked is: the files' structure, that the
torch they pin is the set-up command's and satisfies pyproject's constraint, that the V100 variant takes
PyTorch's CUDA 12.6 build, that every file they copy exists, and that their build-time arch check (run here
on this environment's torch) passes or fails as it should. tests/test_slurm.py runs a job through
`apptainer exec --nv IMAGE python` on the real test cluster (with a stand-in apptainer).
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
import torch
from packaging.requirements import Requirement

from tests.conftest import REPO

CONTAINERS = REPO / "containers"
SECTIONS = {"%files", "%environment", "%post", "%test", "%runscript"}
CU126 = "https://download.pytorch.org/whl/cu126"


def _setup_pins() -> dict[str, str]:
    """torch and torchvision as README's set-up command pins them."""
    setup = (REPO / "README.md").read_text()
    return dict(re.findall(r"\b(torch|torchvision)==([\w.]+)", setup.split("## Two commands", 1)[1].split("```", 2)[1]))


def parse_def(path: Path) -> tuple[dict[str, str], dict[str, list[str]]]:
    """An Apptainer definition: its header (key: value) and its sections' lines."""
    header: dict[str, str] = {}
    sections: dict[str, list[str]] = {}
    current = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line.startswith("%"):
            current = line.split()[0]
            assert current not in sections, f"{path.name}: {current} twice"
            sections[current] = []
        elif current is not None:
            if line and not line.startswith("#"):
                sections[current].append(line)
        elif line and not line.startswith("#"):
            key, colon, value = line.partition(":")
            assert colon and key.strip() and value.strip(), f"{path.name}: not a header line: {raw!r}"
            header[key.strip()] = value.strip()
    return header, sections


def parse_dockerfile(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of each logical line (continuations joined, comments dropped)."""
    out, pending = [], ""
    for raw in path.read_text().splitlines():
        if raw.lstrip().startswith("#") and not pending:
            continue
        line = pending + raw.strip()
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        pending = ""
        if line:
            instruction, _, args = line.partition(" ")
            out.append((instruction, args.strip()))
    assert not pending, f"{path.name} ends in a continuation"
    return out


def _pip_pins(command: str) -> dict[str, str]:
    return dict(re.findall(r"\b(torch|torchvision)==([\w.${}]+)", command))


def _arch_check(lines: list[str]) -> str:
    (check,) = [line for line in lines if "_cuda_getArchFlags" in line]
    return shlex.split(check)[2]  # /opt/venv/bin/python -c "<this>"


@pytest.mark.parametrize(
    ("name", "cuda", "index", "arch"),
    [
        ("harness.def", "13.0", None, "sm_90"),
        ("harness-v100.def", "12.6", CU126, "sm_70"),
    ],
)
def test_apptainer_definitions(name: str, cuda: str, index: str | None, arch: str):
    header, sections = parse_def(CONTAINERS / name)
    assert header["Bootstrap"] == "docker" and re.fullmatch(
        rf"nvidia/cuda:{re.escape(cuda)}\.\d+-base-ubuntu\d+\.\d+", header["From"]
    )
    assert set(sections) == SECTIONS
    for line in sections["%files"]:  # built from the repository's root: every source must exist there
        source, dest = line.split()
        assert (REPO / source).exists() and dest == f"/opt/harness/{source}"
    assert {"conf", "harness", "pyproject.toml"} <= {line.split()[0] for line in sections["%files"]}
    (install,) = [line for line in sections["%post"] if "pip install" in line and "torch==" in line]
    pins = _pip_pins(install)
    assert pins == _setup_pins()
    assert pins["torch"] in Requirement(_dependency("torch")).specifier
    assert pins["torchvision"] in Requirement(_dependency("torchvision")).specifier
    assert (f"--index-url {index}" in install) if index else "--index-url" not in install
    assert f"'{arch}' in flags" in _arch_check(sections["%post"])
    assert "/opt/venv/bin/pip install -e /opt/harness" in sections["%post"]


def _dependency(name: str) -> str:
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    (dep,) = [d for d in deps if Requirement(d).name == name]
    return dep


@pytest.mark.skipif(torch.version.cuda is None, reason="a CPU-only torch build has no CUDA arch list")
def test_the_build_time_arch_check_fails_on_a_build_without_the_arch():
    """The definitions' own check, run on this environment's torch (the default wheel): it passes for the
    default image's sm_90 and fails for the V100 image's sm_70 unless this build has it."""
    flags = torch._C._cuda_getArchFlags()
    for name, arch in (("harness.def", "sm_90"), ("harness-v100.def", "sm_70")):
        _, sections = parse_def(CONTAINERS / name)
        proc = subprocess.run(
            [sys.executable, "-c", _arch_check(sections["%post"])], capture_output=True, text=True, timeout=120
        )
        assert (proc.returncode == 0) == (arch in flags.split()), (name, proc.stderr)
        if proc.returncode:
            assert "AssertionError" in proc.stderr and flags in proc.stderr


def test_dockerfile():
    instructions = parse_dockerfile(CONTAINERS / "Dockerfile")
    assert instructions[0] == ("ARG", "CUDA_IMAGE=nvidia/cuda:13.0.0-base-ubuntu24.04")
    assert instructions[1] == ("FROM", "${CUDA_IMAGE}")
    args = dict(a.split("=", 1) for i, a in instructions[2:] if i == "ARG")
    assert {"torch": args["TORCH_VERSION"], "torchvision": args["TORCHVISION_VERSION"]} == _setup_pins()
    assert args["TORCH_INDEX_URL"] == "" and args["REQUIRE_ARCH"] == "sm_90"
    runs = " ".join(a for i, a in instructions if i == "RUN")
    env = " ".join(a for i, a in instructions if i == "ENV")
    used = set(re.findall(r"\$\{?(\w+)", runs))
    assert used <= set(args) | set(re.findall(r"(\w+)=", env)) | {"TORCH_INDEX_URL"}, used
    assert _pip_pins(runs) == {"torch": "${TORCH_VERSION}", "torchvision": "${TORCHVISION_VERSION}"}
    assert ("COPY", ". /opt/harness") in instructions and "pip install -e /opt/harness" in runs
    assert {i for i, _ in instructions} <= {"ARG", "FROM", "ENV", "RUN", "COPY", "WORKDIR", "CMD"}
    ignored = (CONTAINERS / "Dockerfile.dockerignore").read_text().split()
    assert {".venv*", "results", "jobs"} <= set(ignored)  # never results or a venv in an image


def test_the_v100_docker_build_matches_the_v100_definition():
    """The V100 variant of the Dockerfile (build arguments, as its header and docs/clusters.md give them) takes the
    same base, index and arch as containers/harness-v100.def."""
    header, sections = parse_def(CONTAINERS / "harness-v100.def")
    builds = [
        line
        for line in (CONTAINERS / "Dockerfile").read_text().splitlines()
        + (REPO / "docs" / "clusters.md").read_text().splitlines()
        if "docker build" in line and "cu126" in line
    ]
    assert len(builds) >= 2  # the Dockerfile's header and docs/clusters.md
    declared = {a.split("=", 1)[0] for i, a in parse_dockerfile(CONTAINERS / "Dockerfile") if i == "ARG"}
    for line in builds:
        words = shlex.split(line.lstrip("#").strip())
        build_args = dict(words[i + 1].split("=", 1) for i, w in enumerate(words) if w == "--build-arg")
        assert set(build_args) <= declared
        assert build_args == {"CUDA_IMAGE": header["From"], "TORCH_INDEX_URL": CU126, "REQUIRE_ARCH": "sm_70"}
        assert words[-1] == "." and words[words.index("-f") + 1] == "containers/Dockerfile"
