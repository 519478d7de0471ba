"""The framework's CPU threads for one job: set explicitly, so that the count is known and recorded."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def job_threads(requested: int | None) -> Iterator[int]:
    """torch's intra-op threads for the job: ``requested``, or (None: cpu_threads=auto) torch's default for this
    process, which follows the CPUs it may use (its affinity: on SLURM, the job's cpus_per_task). Yields the
    count in effect; the previous count is restored after the job (the local launcher runs several jobs in
    one process)."""
    before = torch.get_num_threads()
    torch.set_num_threads(requested or before)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
