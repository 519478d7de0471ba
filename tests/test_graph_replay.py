"""CUDA graphs checked before they are timed: the replay against the eager output, a failed capture's reason on
the row, and the reset after it verified (or the job stopped).

The comparison is pure and runs here as it runs on a GPU. Capturing needs a GPU: no CPU path can run it, so
the CPU tests pass a fake of the torch.cuda border (``CudaGraphs``: streams, capture, synchronize) and run the
real models' forwards through it; the same paths run on a real capture in the gpu-marked tests at the end.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from harness.measure.graphs import (
    GraphResetError,
    capture_graph,
    compare_replay,
    reset_after_failed_capture,
)
from harness.measure.point import PointMeasurer, PointResult
from harness.measure.profiler import ProfileSettings, profile
from harness.measure.timing import SamplingPolicy
from harness.run import runner
from tests.conftest import FAST
from tests.helpers import make_spec

# -- the comparison ------------------------------------------------------------------------------------------


def test_a_replay_equal_to_eager_or_within_tolerance_passes():
    y = torch.tensor([[1.0, -2.0], [4.0, 0.5]])
    check = compare_replay(y, y.clone(), "float32", 1e-4)
    assert check.problem() is None and check.max_abs_err == 0.0 and check.max_rel_err == 0.0
    close = compare_replay(y, y + 2e-4, "float32", 1e-4)  # 2e-4 / max|y| = 5e-5
    assert close.problem() is None and close.max_rel_err == pytest.approx(5e-5, rel=1e-3)


def test_a_replay_beyond_the_dtypes_tolerance_is_refused_with_the_numbers():
    y = torch.tensor([1.0, 2.0, 4.0], dtype=torch.float16)
    check = compare_replay(y, y + torch.tensor([0.0, 0.0, 0.5], dtype=torch.float16), "float16", 1e-2)
    assert check.max_rel_err == pytest.approx(0.125)
    assert check.problem() == (
        "replay differs from eager: max|replay - eager| / max|eager| = 0.125 exceeds the float16 tolerance 0.01 "
        "(max abs error 0.5)"
    )
    assert compare_replay(y, y + 1, "float16", None).problem() is None  # no tolerance: shapes and finiteness only


def test_outputs_that_cannot_be_compared_are_refused():
    y = torch.ones(2, 3)
    assert compare_replay(y, torch.ones(3, 2), "float32", None).problem() == (
        "replay differs from eager: output 0 has shape (3, 2), eager (2, 3)"
    )
    nan = torch.ones(2, 3)
    nan[1, 1] = math.nan
    assert "output 0 has NaN or Inf values" in compare_replay(y, nan, "float32", 1.0).problem()
    assert "1 output tensors, eager 2" in compare_replay((y, y), [y], "float32", 1.0).problem()
    nested = {"logits": y, "aux": (y, y * 2)}
    assert compare_replay(nested, {"logits": y, "aux": (y, y * 2)}, "float32", 0.0).problem() is None
    assert compare_replay(torch.zeros(3), torch.zeros(3), "float32", 0.0).max_rel_err == 0.0


# -- capture, against a fake of the torch.cuda border ---------------------------------------------------------


class FakeGraphs:
    """The torch.cuda border of a capture on the CPU: a capture runs the forward once with ``capturing`` set
    and returns a replay that runs it again; ``probe_ok``: what the probe computation answers."""

    def __init__(self, probe_ok: bool = True) -> None:
        self.stream, self.capture_stream = "default", "capture"
        self.now = self.stream
        self.is_capturing = False
        self.probe_ok = probe_ok
        self.calls: list[str] = []

    def current_stream(self):
        return self.now

    def set_stream(self, stream) -> None:
        self.calls.append(f"set_stream {stream}")
        self.now = stream

    def synchronize(self) -> None:
        self.calls.append("synchronize")

    def capturing(self) -> bool:
        return self.is_capturing

    def warm_up(self, forward, iters: int) -> None:
        self.calls.append(f"warm_up {iters}")
        for _ in range(iters):
            forward()

    def capture(self, forward):
        self.now, self.is_capturing = self.capture_stream, True  # torch.cuda.graph makes its stream current
        try:
            out = forward()
        finally:
            self.is_capturing = False  # the capture ends even where the forward raised ...
        self.now = self.stream  # ... but only a capture that held gives the stream back
        return (lambda: forward()), out

    def probe(self) -> bool:
        self.calls.append("probe")
        return self.probe_ok

    def release(self) -> None:
        self.calls.append("release")


class CannotBeCaptured(nn.Module):
    """A forward that does what a capture forbids (a host read of a device value), as ``.item()`` does."""

    def __init__(self, api: FakeGraphs) -> None:
        super().__init__()
        self.api, self.conv = api, nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        if self.api.is_capturing:
            raise RuntimeError("operation not permitted when stream is capturing")
        return y


class Drifting(nn.Module):
    """A forward whose output changes from call to call (a state updated on each forward)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return x * self.calls


def test_a_capture_that_raises_is_timed_eagerly_with_its_reason_after_a_verified_reset():
    api = FakeGraphs()
    replay, reason = capture_graph(CannotBeCaptured(api), torch.randn(1, 3, 8, 8), api=api)
    assert replay is None
    assert reason == "capture failed: RuntimeError: operation not permitted when stream is capturing"
    # the stream the capture left current is restored, then the device synchronized, emptied and probed
    assert api.calls == ["warm_up 3", "synchronize", "set_stream default", "synchronize", "release", "probe"]
    assert api.now == "default"


def test_a_reset_that_cannot_be_verified_stops_the_job():
    api = FakeGraphs()

    def capture_left_open(forward):
        api.is_capturing = True
        raise RuntimeError("operation failed in capture")

    api.capture = capture_left_open
    with pytest.raises(GraphResetError, match="a stream is still capturing.*rerun it"):
        capture_graph(CannotBeCaptured(api), torch.randn(1, 3, 8, 8), api=api)
    api = FakeGraphs(probe_ok=False)
    with pytest.raises(GraphResetError, match="a probe computation gave a wrong result"):
        reset_after_failed_capture(api, "default")
    api = FakeGraphs()
    api.current_stream = lambda: "other"
    with pytest.raises(GraphResetError, match="the current stream is not the one before the capture"):
        reset_after_failed_capture(api, "default")


def test_a_replay_that_differs_from_eager_is_not_timed():
    api = FakeGraphs()
    replay, reason = capture_graph(Drifting(), torch.ones(4), "float32", 1e-4, api=api)
    assert replay is None and reason.startswith("replay differs from eager: max|replay - eager| / max|eager| =")
    assert "exceeds the float32 tolerance 0.0001" in reason


def test_a_faithful_replay_is_used():
    api, model = FakeGraphs(), nn.Conv2d(3, 4, 3)
    with torch.inference_mode():
        replay, reason = capture_graph(model, torch.randn(1, 3, 8, 8), "float32", 1e-4, api=api)
    assert reason is None and callable(replay)


# -- the row and the job --------------------------------------------------------------------------------------


def test_the_reason_reaches_the_points_row():
    model, x = nn.Conv2d(3, 4, 3), torch.randn(1, 3, 8, 8)
    p = profile(model, x, ProfileSettings(SamplingPolicy(1, 0.0, 3, 3, 60.0, 0.5), layer_iters=1, energy_window_s=0))
    failed = replace(p, graph_error="capture failed: RuntimeError: no")
    row = PointResult(8, 1, "ok", on_gpu=True, profile=failed).row({})
    assert row["cuda_graph"] is False and row["graph_error"] == "capture failed: RuntimeError: no"
    used = PointResult(8, 1, "ok", on_gpu=True, profile=replace(p, cuda_graph=True)).row({})
    assert used["cuda_graph"] is True and used["graph_error"] is None


def test_a_failed_reset_ends_the_job_instead_of_becoming_a_row():
    def measure_point(size, batch, trace):
        raise GraphResetError("not verified")

    measurer = SimpleNamespace(measure_point=measure_point, settings=dict, device=torch.device("cpu"))
    with pytest.raises(GraphResetError):
        runner._measure_one(measurer, 32, 1, {}, None)

    def other(size, batch, trace):
        raise RuntimeError("something else")

    measurer.measure_point = other  # any other failure is the point's row, and the job goes on
    assert runner._measure_one(measurer, 32, 1, {}, None).status == "error"


# -- on a GPU: the real capture -------------------------------------------------------------------------------


class ReadsTheDevice(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return y * float(y.abs().max())  # a host read of a device value: refused in a capture


@pytest.mark.gpu
def test_a_real_failed_capture_is_reported_and_the_next_one_holds():
    cuda = torch.device("cuda")
    x = torch.randn(1, 3, 32, 32, device=cuda)
    with torch.inference_mode():
        replay, reason = capture_graph(ReadsTheDevice().to(cuda), x, "float32", 1e-4)
        assert replay is None and reason.startswith("capture failed:")
        assert not torch.cuda.is_current_stream_capturing()
        assert torch.cuda.current_stream(cuda) == torch.cuda.default_stream(cuda)
        model = nn.Conv2d(3, 4, 3).to(cuda)
        replay, reason = capture_graph(model, x, "float32", 1e-4)
        assert reason is None and replay is not None


@pytest.mark.gpu
def test_a_graph_point_records_why_it_was_timed_eagerly():
    cuda = torch.device("cuda")
    x = torch.randn(1, 3, 32, 32, device=cuda)
    settings = ProfileSettings(SamplingPolicy(1, 0.0, 3, 3, 60.0, 0.5), layer_iters=1, energy_window_s=0, graph=True)
    p = profile(ReadsTheDevice().to(cuda), x, settings)
    assert p.cuda_graph is False and p.graph_error.startswith("capture failed:")
    row = PointResult(32, 1, "ok", on_gpu=True, profile=p).row({})
    assert row["graph_error"] == p.graph_error and row["device_used_bytes"] >= row["peak_reserved_bytes"]


def test_the_point_holds_the_replay_to_its_dtypes_verification_tolerance(tmp_path: Path):
    spec = make_spec(tmp_path, *FAST, "model=resnet18", "algo=gemm", "tolerance.float32=0.004", "l2=cold")
    settings = PointMeasurer(spec, runner.validate(spec))._settings(None)
    assert (settings.replay_tolerance_key, settings.replay_tolerance, settings.l2) == ("float32", 0.004, "cold")
