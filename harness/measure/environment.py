"""Provenance: the versions, host, job and code that every row carries."""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

import torch

from harness.measure.source import SourceStamp

log = logging.getLogger(__name__)


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


def provenance(device: torch.device, source: SourceStamp | None) -> dict[str, Any]:
    """Provenance columns; the CUDA/cuDNN/driver versions are null when the run measured the CPU. ``source``:
    the code that measured (harness.measure.source.job_source); its columns are null where it is unknown."""
    on_gpu = device.type == "cuda"
    cudnn = torch.backends.cudnn.version() if on_gpu and torch.backends.cudnn.is_available() else None
    return {
        "torch_version": torch.__version__,
        "cuda_version": torch.version.cuda if on_gpu else None,
        "cudnn_version": str(cudnn) if cudnn else None,
        "driver_version": nvml_driver_version() if on_gpu else None,
        "hostname": socket.gethostname(),
        "slurm_job_id": slurm_job_id(),
        "git_commit": None,
        "git_dirty": None,
        "git_diff_hash": None,
    } | (source.columns() if source is not None else {})
