"""Shared fixtures: fast settings for real runs, and a way to call the CLI as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent

# Small and quick: a real model, real measurement, a fraction of a second per point. On the CPU, also where
# a CUDA GPU exists (device=auto would measure on it: cuDNN backend, energy columns, other dtypes allowed);
# a test that wants another device adds device=... after FAST (Hydra: the last override of a key wins).
# stage.sizes stays first: tests/test_launch.py drops it with FAST[1:].
FAST = [
    "stage.sizes=[32]",
    "stage.warmup_iters=1",
    "stage.min_iters=3",
    "stage.max_iters=5",
    "stage.max_time_s=1",
    "stage.layer_iters=2",
    "device=cpu",
]


def has_cuda_device_named(fragment: str) -> bool:
    """Whether this machine has a CUDA device whose name contains ``fragment`` (as gpu=<type> checks it)."""
    if not torch.cuda.is_available():
        return False
    return any(fragment.lower() in torch.cuda.get_device_name(i).lower() for i in range(torch.cuda.device_count()))


def run_cli(*args: str, cwd: Path | None = None, module: str = "harness", timeout: int = 300) -> subprocess.CompletedProcess:
    """``python -m harness ARGS`` in a subprocess, as a user types it."""
    env = os.environ | {"PYTHONPATH": str(REPO), "HYDRA_FULL_ERROR": "0"}
    return subprocess.run(  # in a fresh folder by default, so Hydra's jobs/ logs never land in the repo
        [sys.executable, "-m", module, *args], cwd=cwd or tempfile.mkdtemp(prefix="harness-cli-"), env=env, capture_output=True, text=True,
        timeout=timeout,
    )


@pytest.fixture
def results(tmp_path: Path) -> Path:
    return tmp_path / "results"


def _waits_on_slurm(item: pytest.Item) -> bool:
    return any(m.args == ("slurm",) for m in item.iter_markers("xdist_group"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The SLURM tests wait on the cluster more than they compute and run one after the other on one worker:
    # first, so the other workers' tests fill those minutes instead of leaving them for the end.
    items.sort(key=lambda item: not _waits_on_slurm(item))
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
