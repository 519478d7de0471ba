"""CUDA graphs of the forward: captured, checked against the eager forward, or refused with the reason.

A graph is used for timing only once its replay has given the eager forward's output on the same input
(``compare_replay``, within the point's per-dtype tolerance); otherwise the point is timed eagerly and the
reason goes to the row (``graph_error``). Every torch.cuda call of a capture goes through ``CudaGraphs``
(the border): the CPU tests pass a fake of it, since nothing on the CPU can capture a graph.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)

WARMUP_ITERS = 3  # eager forwards on a side stream before the capture (PyTorch's CUDA-graph notes)


class GraphResetError(RuntimeError):
    """A failed capture left the device in a state that could not be verified clean: the job stops here (its
    points so far are kept; a rerun resumes in a fresh process), since later points could be polluted."""


@dataclass(frozen=True)
class ReplayCheck:
    """A graph's replay against the eager forward on the same input."""

    max_abs_err: float
    max_rel_err: float  # max_abs_err / max |eager|
    tolerance_key: str  # float32, tf32, float16 or bfloat16: the point's verification tolerance
    tolerance: float | None  # None: only shapes and finiteness are checked
    mismatch: str | None = None  # outputs that cannot be compared (shapes, count, NaN/Inf)

    def problem(self) -> str | None:
        """Why the replay cannot stand in for the eager forward, or None."""
        if self.mismatch is not None:
            return f"replay differs from eager: {self.mismatch}"
        if self.tolerance is not None and not self.max_rel_err <= self.tolerance:
            return (
                f"replay differs from eager: max|replay - eager| / max|eager| = {self.max_rel_err:.3g} exceeds the "
                f"{self.tolerance_key} tolerance {self.tolerance:g} (max abs error {self.max_abs_err:.3g})"
            )
        return None


def _tensors(out: Any) -> Iterator[torch.Tensor]:
    """The tensors of a forward's output (a tensor, or tuples, lists and dicts of them), in order."""
    if isinstance(out, torch.Tensor):
        yield out
    elif isinstance(out, (tuple, list)):
        for item in out:
            yield from _tensors(item)
    elif isinstance(out, dict):
        for item in out.values():
            yield from _tensors(item)


def compare_replay(eager: Any, replayed: Any, tolerance_key: str, tolerance: float | None) -> ReplayCheck:
    """Pure: the replay's output(s) against the eager forward's, as the point's verification compares a
    layer's algorithm with torch's (relative to the largest eager magnitude)."""
    a, b = list(_tensors(eager)), list(_tensors(replayed))
    if len(a) != len(b):
        return ReplayCheck(math.inf, math.inf, tolerance_key, tolerance, f"{len(b)} output tensors, eager {len(a)}")
    abs_err, scale = 0.0, 0.0
    for i, (e, r) in enumerate(zip(a, b)):
        if e.shape != r.shape:
            mismatch = f"output {i} has shape {tuple(r.shape)}, eager {tuple(e.shape)}"
            return ReplayCheck(math.inf, math.inf, tolerance_key, tolerance, mismatch)
        e, r = e.detach().float(), r.detach().float()
        if not torch.isfinite(r).all() and torch.isfinite(e).all():
            return ReplayCheck(math.inf, math.inf, tolerance_key, tolerance, f"output {i} has NaN or Inf values")
        if e.numel():
            abs_err = max(abs_err, float((r - e).abs().max()))
            scale = max(scale, float(e.abs().max()))
    rel_err = abs_err / scale if scale > 0 else (0.0 if abs_err == 0 else math.inf)
    return ReplayCheck(abs_err, rel_err, tolerance_key, tolerance)


class CudaGraphs:
    """The torch.cuda border of a capture on one device (a fake stands in for it in the CPU tests)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.capture_stream = torch.cuda.Stream(device)

    def current_stream(self) -> Any:
        return torch.cuda.current_stream(self.device)

    def set_stream(self, stream: Any) -> None:
        torch.cuda.set_stream(stream)

    def synchronize(self) -> None:
        torch.cuda.synchronize(self.device)  # a sticky CUDA error left by the capture surfaces here

    def capturing(self) -> bool:
        """Whether the current stream or the capture stream is still capturing."""
        if torch.cuda.is_current_stream_capturing():
            return True
        with torch.cuda.stream(self.capture_stream):
            return torch.cuda.is_current_stream_capturing()

    def warm_up(self, forward: Callable[[], object], iters: int) -> None:
        """Eager forwards on a side stream, so that lazy initialisation (cuDNN plans, workspaces, allocator
        blocks) happens outside the capture."""
        current = self.current_stream()
        side = torch.cuda.Stream(self.device)
        side.wait_stream(current)
        with torch.cuda.stream(side):
            for _ in range(iters):
                forward()
        current.wait_stream(side)

    def capture(self, forward: Callable[[], object]) -> tuple[Callable[[], object], object]:
        """The graph's replay and its (static) output; raises where the forward cannot be captured."""
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=self.capture_stream):
            out = forward()
        return graph.replay, out

    def probe(self) -> bool:
        """A small computation on the current stream gives the right answer."""
        t = torch.arange(4, device=self.device, dtype=torch.float32)
        return float((t * 2).sum()) == 12.0

    def release(self) -> None:
        torch.cuda.empty_cache()  # the failed graph's private pool, once the graph is gone


def reset_after_failed_capture(api: CudaGraphs, stream: Any) -> None:
    """Return the device to its state before a capture that raised, and verify it; GraphResetError where
    it cannot be verified.

    Why a verified reset rather than a fresh process per failure: the job's points run in one process (a
    local run runs in the caller's), a new process costs the model's load and cuDNN's initialisation, and what
    a failed capture can leave behind is a short list, each item checkable: the capture stream left current
    (restored and compared), a capture still open on it (``capturing``), a sticky CUDA error (raised by the
    synchronize), the failed graph's private memory pool (freed with the graph, then the cache emptied), and
    the cuDNN handles' stream (our plans set it from the current stream at every call, so restoring the
    stream restores theirs). A probe computation then checks the device computes. Where any check fails
    the job stops (GraphResetError) and a rerun resumes from this point in a fresh process.
    """
    try:
        api.set_stream(stream)
        api.synchronize()
        problems = []
        if api.capturing():
            problems.append("a stream is still capturing")
        if api.current_stream() != stream:
            problems.append("the current stream is not the one before the capture")
        api.release()
        if not problems and not api.probe():
            problems.append("a probe computation gave a wrong result")
    except Exception as e:  # noqa: BLE001 - any failure here means the state cannot be trusted
        problems = [f"{type(e).__name__}: {e}"]
    if problems:
        raise GraphResetError(
            "after a failed CUDA-graph capture the device could not be verified clean ("
            + "; ".join(problems)
            + "): the job stops so that no later point is measured in a polluted state; rerun it (a fresh process)"
        )


def capture_graph(
    model: nn.Module,
    x: torch.Tensor,
    tolerance_key: str = "float32",
    tolerance: float | None = None,
    api: CudaGraphs | None = None,
) -> tuple[Callable[[], object] | None, str | None]:
    """A function that replays a CUDA graph of ``model(x)``, or None and the reason it is not used: the
    capture raised (the device then reset and verified, ``reset_after_failed_capture``), or its replay's
    output differs from the eager forward's beyond the ``tolerance_key`` tolerance (``compare_replay``)."""
    return capture_callable(lambda: model(x), x.device, tolerance_key, tolerance, api)


def capture_callable(
    fn: Callable[[], object],
    device: torch.device,
    tolerance_key: str = "float32",
    tolerance: float | None = None,
    api: CudaGraphs | None = None,
) -> tuple[Callable[[], object] | None, str | None]:
    """``capture_graph`` for any ``fn`` whose result depends only on tensors it holds (the same result at every
    call: a forward, the conv layers' gradient calls on saved operands): its replay, or None and why not."""
    api = api or CudaGraphs(device)
    stream = api.current_stream()
    api.warm_up(fn, WARMUP_ITERS)
    eager = fn()
    api.synchronize()
    reason = None
    try:
        replay, static = api.capture(fn)
    except Exception as e:  # noqa: BLE001 - a forward that cannot be captured is timed eagerly instead
        reason = f"capture failed: {type(e).__name__}: {e}"[:500]
    if reason is not None:  # out of the except block: the exception's traceback (and the failed graph) is gone
        reset_after_failed_capture(api, stream)
        log.debug("graph capture failed, device reset verified: %s", reason)
        return None, reason
    replay()
    api.synchronize()
    problem = compare_replay(eager, static, tolerance_key, tolerance).problem()
    if problem is not None:
        return None, problem[:500]
    return replay, None
