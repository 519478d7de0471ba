"""The profiler: everything measured about one model on one input, usable from plain Python.

    from harness.measure.profiler import profile
    result = profile(model, x)               # timing, per-layer pass, memory; energy where a meter is given
    result.stats["p50_ms"], result.layers[0].times_ms, result.energy

Passes, each on its own: peak memory of one forward (GPU), whole-model timing with no hooks attached,
the per-layer pass with hooks, the energy window (GPU with NVML; CPU with RAPL), and optionally a torch.profiler trace.
Knows nothing of Hydra, SLURM, files of results or the algorithms.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from harness.measure.energy import EnergyReading, NvmlGpu, measure_energy
from harness.measure.layers import LayerProbe, LayerRecord
from harness.measure.rapl import RaplMeter, measure_cpu_energy
from harness.measure.timing import SamplingPolicy, Timing, time_adaptively
from harness.stats import summarize


@dataclass(frozen=True)
class ProfileSettings:
    policy: SamplingPolicy = field(default_factory=SamplingPolicy)
    layer_iters: int = 10
    energy_window_s: float = 5.0  # 0: no energy window
    trace_path: Path | None = None  # write a Chrome/Perfetto trace of a few iterations here
    trace_iters: int = 5
    graph: bool = False  # GPU: time (and run the energy window on) replays of a CUDA graph of the forward


@dataclass
class Profile:
    timing: Timing
    stats: dict[str, Any]
    memory: dict[str, Any]
    layers: list[LayerRecord]
    energy: EnergyReading | None
    trace_path: Path | None
    cuda_graph: bool = False  # the timing and energy window replayed a CUDA graph
    graph_error: str | None = None  # why a graph was asked for and not used
    phase_s: dict[str, float] = field(default_factory=dict)  # wall seconds of each pass (``PHASES``)

    def __str__(self) -> str:
        """What was measured, one pass a line (the fields hold the numbers; this is for a reader)."""
        lines = [str(self.timing)]
        if self.cuda_graph:
            lines.append("timed as replays of a CUDA graph")
        elif self.graph_error:
            lines.append(f"timed eagerly: the forward could not be captured in a CUDA graph ({self.graph_error})")
        if self.layers:
            iters = max(len(r.times_ms) for r in self.layers)
            total = sum(float(np.median(r.times_ms)) for r in self.layers if r.times_ms)
            lines.append(f"{len(self.layers)} conv layers, {iters} iterations each; medians sum to {total:.3f} ms")
        if "peak_allocated_bytes" in self.memory:
            lines.append(f"peak memory {self.memory['peak_allocated_bytes'] / 2**20:.1f} MiB allocated")
        e = self.energy
        if e is not None and e.energy_per_inference_j is not None:
            lines.append(
                f"energy {e.energy_per_inference_j * 1e3:.3f} mJ per inference ({e.energy_method}, "
                f"{e.energy_inferences} inferences in {e.energy_window_s:.1f} s)"
            )
        if self.trace_path is not None:
            lines.append(f"trace {self.trace_path}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        body = "\n".join("  " + line for line in str(self).splitlines())
        return f"<{type(self).__module__}.{type(self).__name__}>\n{body}"


# The passes whose wall time a profile records (the cost model's phases, harness.campaign.cost): warmup is
# the memory pass, the graph's capture and the timer's warmup; timing the timed loop; then the layer pass and
# the energy window (a trace's iterations are in none of them).
PHASES = ("warmup", "timing", "layers", "energy")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory(model: nn.Module, x: torch.Tensor) -> dict[str, Any]:
    """Peak allocated/reserved bytes of one forward, after resetting the peak counters (GPU only)."""
    device = x.device
    if device.type != "cuda":
        return {}
    _sync(device)
    torch.cuda.reset_peak_memory_stats(device)
    model(x)
    _sync(device)
    return {
        "peak_allocated_bytes": torch.cuda.max_memory_allocated(device),
        "peak_reserved_bytes": torch.cuda.max_memory_reserved(device),
    }


def layer_pass(model: nn.Module, x: torch.Tensor, iters: int) -> list[LayerRecord]:
    with LayerProbe(model, x.device) as probe:
        for _ in range(iters):
            probe.run(lambda: model(x))
    return probe.records


def write_trace(model: nn.Module, x: torch.Tensor, path: Path, iters: int) -> Path:
    activities = [torch.profiler.ProfilerActivity.CPU]
    if x.device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities, record_shapes=True) as prof:
        for _ in range(iters):
            model(x)
        _sync(x.device)
    path.parent.mkdir(parents=True, exist_ok=True)
    prof.export_chrome_trace(str(path))
    return path


def capture_graph(model: nn.Module, x: torch.Tensor) -> tuple[Callable[[], object] | None, str | None]:
    """A function that replays a CUDA graph of ``model(x)``, or None and the reason it cannot be captured.

    Warmed up on a side stream first, as PyTorch's CUDA-graph notes ask, so that lazy initialisation
    (cuDNN plans, workspaces, allocator blocks) happens outside the capture.
    """
    current = torch.cuda.current_stream(x.device)
    side = torch.cuda.Stream(x.device)
    side.wait_stream(current)
    with torch.cuda.stream(side):
        for _ in range(3):
            model(x)
    current.wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    try:
        with torch.cuda.graph(graph):
            model(x)
    except Exception as e:  # noqa: BLE001 - a forward that cannot be captured is timed eagerly instead
        torch.cuda.set_stream(current)  # a failed capture can leave the capture stream current
        torch.cuda.synchronize(x.device)
        return None, f"{type(e).__name__}: {e}"[:500]
    return graph.replay, None


def profile(
    model: nn.Module,
    x: torch.Tensor,
    settings: ProfileSettings = ProfileSettings(),
    gpu: NvmlGpu | None = None,
    cpu_meter: RaplMeter | None = None,
) -> Profile:
    """Measure ``model`` on ``x`` (already on its device); ``gpu`` (NVML) or, on the CPU, ``cpu_meter``
    (RAPL) enables the energy window."""
    device = x.device
    if settings.graph and device.type != "cuda":
        raise ValueError("CUDA graphs (graph=True) need a CUDA device; this input is on the CPU")
    clock = time.perf_counter
    with torch.inference_mode():
        t0 = clock()
        memory = peak_memory(model, x)
        forward: Callable[[], object] = lambda: model(x)  # noqa: E731
        graph_error = None
        if settings.graph:
            replay, graph_error = capture_graph(model, x)
            forward = replay or forward
        before_timing = clock() - t0
        timing = time_adaptively(forward, device, settings.policy)
        t0 = clock()
        if settings.graph:
            model(x)  # capturing emptied the allocator's cache: refill it outside the layer pass's events
        layers = layer_pass(model, x, settings.layer_iters)
        t1 = clock()
        energy = None
        if gpu is not None and settings.energy_window_s > 0:
            energy = measure_energy(forward, gpu, settings.energy_window_s, lambda: _sync(device))
        elif cpu_meter is not None and device.type == "cpu" and settings.energy_window_s > 0:
            energy = measure_cpu_energy(forward, cpu_meter, settings.energy_window_s)
        t2 = clock()
        trace = write_trace(model, x, settings.trace_path, settings.trace_iters) if settings.trace_path else None
    stats = summarize(timing.samples_ms, x.shape[0])
    phases = {
        "warmup": before_timing + (timing.warmup_wall_s or 0.0),
        "timing": timing.timing_wall_s or 0.0,
        "layers": t1 - t0,
        "energy": t2 - t1,
    }
    return Profile(
        timing, stats, memory, layers, energy, trace, settings.graph and graph_error is None, graph_error, phases
    )
