"""Provenance: the versions, host, job and code that every row carries."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)


_SOURCE_DIR = Path(__file__).resolve().parent


def git_commit(path: Path = _SOURCE_DIR) -> str | None:
    """The commit of the harness's own source tree, with "-dirty" if it has uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=path,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("-dirty" if dirty else "")


def nvml_driver_version() -> str | None:
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            return str(pynvml.nvmlSystemGetDriverVersion())
        finally:
            pynvml.nvmlShutdown()
    except Exception as e:  # no NVML library, no driver: this is a CPU machine
        log.debug("NVML not available: %s", e)
        return None


def slurm_job_id() -> str | None:
    """SLURM's job id; for an array task, <array job id>_<task id>, as squeue shows it."""
    array_job, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array_job and task:
        return f"{array_job}_{task}"
    return os.environ.get("SLURM_JOB_ID")


def provenance(device: torch.device) -> dict[str, Any]:
    """Provenance columns; the CUDA/cuDNN/driver versions are null when the run measured the CPU."""
    on_gpu = device.type == "cuda"
    cudnn = torch.backends.cudnn.version() if on_gpu and torch.backends.cudnn.is_available() else None
    return {
        "torch_version": torch.__version__,
        "cuda_version": torch.version.cuda if on_gpu else None,
        "cudnn_version": str(cudnn) if cudnn else None,
        "driver_version": nvml_driver_version() if on_gpu else None,
        "hostname": socket.gethostname(),
        "slurm_job_id": slurm_job_id(),
        "git_commit": git_commit(),
    }
