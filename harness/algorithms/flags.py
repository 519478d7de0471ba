"""PyTorch's process-global backend flags, set for one job and restored after it.

``torch.backends.cudnn.allow_tf32``, ``torch.backends.cuda.matmul.allow_tf32`` and
``torch.backends.cudnn.benchmark`` belong to the process, not to a job: a job that changed them and left
them changed would alter the next job in the same process (local multiruns run in one). So a job sets them
inside ``backend_flags`` and they are put back on the way out, whatever happens.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from harness.errors import ConfigError

MATH = ("auto", "fma", "tensor_op")
# ``auto``'s fixed rule: PyTorch's own default for convolutions (torch.backends.cudnn.allow_tf32 is True
# out of the box), whatever an earlier job set; it does not read the flags.
AUTO_MATH = "tensor_op"


def resolve_math(math: str) -> str:
    """The math type a job uses: ``fma`` (strict FP32, no tensor cores) or ``tensor_op`` (tensor cores;
    TF32 for float32 data). ``auto`` resolves to AUTO_MATH, the same on every job."""
    if math not in MATH:
        raise ConfigError(f"unknown math {math!r}; valid choices: {', '.join(MATH)}")
    return AUTO_MATH if math == "auto" else math


@contextlib.contextmanager
def backend_flags(math: str, cudnn_benchmark: bool) -> Iterator[None]:
    """TF32 on or off for convolutions and matmuls (``math``, resolved) and cudnn.benchmark, for the block.

    The torch baseline and the swapped layers see the same math; cudnn.benchmark decides whether the
    baseline asks cuDNN's heuristic (False, PyTorch's default) or times every algorithm (True).
    """
    if math not in MATH[1:]:
        raise ValueError(f"backend_flags needs a resolved math type (fma or tensor_op), got {math!r}")
    saved = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.benchmark)
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = math == "tensor_op"
    torch.backends.cudnn.benchmark = bool(cudnn_benchmark)
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.benchmark = saved
