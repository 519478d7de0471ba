"""The profiler: everything measured about one model on one input, usable from plain Python.

    from harness.measure.profiler import profile
    result = profile(model, x)               # timing, per-layer pass, memory; energy where a meter is given
    result.stats["p50_ms"], result.layers[0].times_ms, result.energy

Passes, each on its own: peak memory of one forward (GPU), whole-model timing with no hooks attached,
the per-layer pass with hooks, the energy window (GPU with NVML; CPU with RAPL), and optionally a torch.profiler trace.
Knows nothing of Hydra, SLURM, files of results or the algorithms.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from harness.measure.energy import EnergyMeter, EnergyReading, EnergySettings, NvmlMeter, measure_energy
from harness.measure.layers import LayerProbe, LayerRecord
from harness.measure.rapl import RaplEnergy, RaplMeter
from harness.measure.telemetry import NvmlGpu, Telemetry, TelemetrySummary
from harness.measure.timing import SamplingPolicy, Timing, chunk_timer, time_adaptively
from harness.stats import summarize


@dataclass(frozen=True)
class ProfileSettings:
    policy: SamplingPolicy = field(default_factory=SamplingPolicy)
    layer_iters: int = 10
    energy_window_s: float = 5.0  # 0: no energy window
    trace_path: Path | None = None  # write a Chrome/Perfetto trace of a few iterations here
    trace_iters: int = 5
    graph: bool = False  # GPU: time (and run the energy window on) replays of a CUDA graph of the forward
    energy: EnergySettings = field(default_factory=EnergySettings)  # its window_s: energy_window_s above

    def energy_settings(self) -> EnergySettings:
        return replace(self.energy, window_s=self.energy_window_s)


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
    telemetry: TelemetrySummary | None = None  # clocks, temperature, throttle reasons through every pass (NVML)

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
            dynamic = e.dynamic_energy_per_inference_j
            lines.append(
                f"energy {e.energy_per_inference_j * 1e3:.3f} mJ per inference in total"
                + (f", {dynamic * 1e3:.3f} mJ above idle" if dynamic is not None else "")
                + f" ({e.energy_method}, mean of {e.energy_windows} windows of >= {e.energy_window_s:.1f} s, "
                f"{e.energy_inferences} inferences)"
            )
        t = self.telemetry
        if t is not None and t.sm_clock_min_mhz is not None:
            lines.append(
                f"SM clock {t.sm_clock_min_mhz:.0f}-{t.sm_clock_p50_mhz:.0f} MHz (min-median), "
                + (f"up to {t.temperature_max_c:.0f} C, " if t.temperature_max_c is not None else "")
                + f"throttle reasons: {t.reasons_by_pass}"
            )
        if self.trace_path is not None:
            lines.append(f"trace {self.trace_path}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        body = "\n".join("  " + line for line in str(self).splitlines())
        return f"<{type(self).__module__}.{type(self).__name__}>\n{body}"


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


def energy_meter(device: torch.device, gpu: NvmlGpu | None, cpu_meter: RaplMeter | None) -> EnergyMeter | None:
    """The meter of the energy procedure: NVML on a GPU, RAPL on the CPU, or None."""
    if gpu is not None:
        return NvmlMeter(gpu)
    if cpu_meter is not None and device.type == "cpu":
        return RaplEnergy(cpu_meter)
    return None


def profile(
    model: nn.Module,
    x: torch.Tensor,
    settings: ProfileSettings = ProfileSettings(),
    gpu: NvmlGpu | None = None,
    cpu_meter: RaplMeter | None = None,
    idle_w: float | None = None,
) -> Profile:
    """Measure ``model`` on ``x`` (already on its device); ``gpu`` (NVML) or, on the CPU, ``cpu_meter``
    (RAPL) enables the energy procedure (harness.measure.energy), ``idle_w`` its idle power before the work
    (measured here, before any pass, when None). With ``gpu``, one sampler records clocks, temperature and
    throttle reasons through every pass (``Profile.telemetry``)."""
    device = x.device
    if settings.graph and device.type != "cuda":
        raise ValueError("CUDA graphs (graph=True) need a CUDA device; this input is on the CPU")
    meter = energy_meter(device, gpu, cpu_meter) if settings.energy_window_s > 0 else None
    telemetry = Telemetry(gpu)
    with torch.inference_mode(), telemetry:
        if meter is not None and idle_w is None:
            with telemetry.phase("idle"):
                idle_w = meter.idle_power_w(settings.energy.idle_s)
        with telemetry.phase("memory"):
            memory = peak_memory(model, x)
        forward: Callable[[], object] = lambda: model(x)  # noqa: E731
        graph_error = None
        if settings.graph:
            replay, graph_error = capture_graph(model, x)
            forward = replay or forward
        with telemetry.phase("timing"):
            timing = time_adaptively(forward, device, settings.policy)
        if settings.graph:
            model(x)  # capturing emptied the allocator's cache: refill it outside the layer pass's events
        with telemetry.phase("layers"):
            layers = layer_pass(model, x, settings.layer_iters)
        energy = None
        if meter is not None:  # the same forward and pacing as the timing (harness.measure.energy)
            energy = measure_energy(
                forward, chunk_timer(device), meter, settings.energy_settings(), idle_w=idle_w, telemetry=telemetry
            )
        trace = write_trace(model, x, settings.trace_path, settings.trace_iters) if settings.trace_path else None
    stats = summarize(timing.samples_ms, x.shape[0])
    return Profile(
        timing,
        stats,
        memory,
        layers,
        energy,
        trace,
        settings.graph and graph_error is None,
        graph_error,
        telemetry.summary(),
    )
