"""The profiler: everything measured about one model on one input, usable from plain Python.

    from harness.measure.profiler import profile
    result = profile(model, x)               # timing, per-layer pass, memory; energy where a meter is given
    result.stats["p50_ms"], result.layers[0].times_ms, result.energy

Passes, each on its own: peak memory of one forward (GPU), whole-model timing with no hooks attached
(with l2=cold the last cache level flushed before each iteration, harness.measure.cache), the per-layer pass
with hooks (flushed before each layer where cold), the energy window (GPU with NVML; CPU with RAPL; never
flushed: back-to-back forwards), and optionally a torch.profiler trace and the kernel pass (what ran each
conv layer: harness.measure.kernels), both after everything timed.
Knows nothing of Hydra, SLURM, files of results or the algorithms.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from harness.measure.cache import flush_for
from harness.measure.energy import EnergyMeter, EnergyReading, EnergySettings, NvmlMeter, measure_energy
from harness.measure.graphs import capture_graph
from harness.measure.kernels import LayerKernels, kernel_pass
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
    l2: str = "warm"  # cold: flush the last cache level before each timed iteration and layer (measure.cache)
    replay_tolerance_key: str = "float32"  # graph: the replay must match the eager forward within this
    replay_tolerance: float | None = None  # ... tolerance (the point's verification tolerance for its dtype)
    kernels: bool = False  # record what ran each conv layer (harness.measure.kernels), after the timed passes
    kernel_iters: int = 2
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
    kernels: list[LayerKernels] | None = None  # what ran each conv layer call, where the kernel pass ran
    cache_flush_bytes: int | None = None  # l2=cold: bytes written by each flush (None: warm, no flush)
    phase_s: dict[str, float] = field(default_factory=dict)  # wall seconds of each pass (``PHASES``)

    def __str__(self) -> str:
        """What was measured, one pass a line (the fields hold the numbers; this is for a reader)."""
        lines = [str(self.timing)]
        if self.cuda_graph:
            lines.append("timed as replays of a CUDA graph")
        elif self.graph_error:
            lines.append(f"timed eagerly, no CUDA graph: {self.graph_error}")
        if self.cache_flush_bytes is not None:
            mib = self.cache_flush_bytes / 2**20
            lines.append(f"cold cache: {mib:.1f} MiB written before each iteration and layer")
        if self.layers:
            iters = max(len(r.times_ms) for r in self.layers)
            total = sum(float(np.median(r.times_ms)) for r in self.layers if r.times_ms)
            lines.append(f"{len(self.layers)} conv layers, {iters} iterations each; medians sum to {total:.3f} ms")
        if "peak_allocated_bytes" in self.memory:
            m = self.memory
            lines.append(
                f"peak memory {m['peak_allocated_bytes'] / 2**20:.1f} MiB allocated, "
                f"{m['peak_reserved_bytes'] / 2**20:.1f} MiB reserved (PyTorch's allocator; "
                f"{m['device_used_bytes'] / 2**20:.1f} MiB used on the device, cuDNN's own included)"
            )
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
        if self.kernels:
            families = ", ".join(dict.fromkeys(k.family for k in self.kernels))
            known = [k.tensor_cores for k in self.kernels if k.tensor_cores is not None]
            tc = f"{sum(known)} of {len(self.kernels)} layers on tensor cores" if known else "tensor cores: unknown"
            lines.append(f"kernels: {families}; {tc}")
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
    """Peak allocated and reserved bytes of one forward (GPU only), and the device's used memory after it.

    Both peaks start from what is allocated when the forward starts, so they include the model, the input
    and our cuDNN workspace buffer (harness.algorithms.cudnn.WORKSPACES, allocated through PyTorch while the
    layers were planned). The allocator's cache is emptied first, so that reserved is this point's and not
    blocks left cached by earlier points (or by Find's larger workspace, given back after the search).
    What PyTorch's allocator cannot see (the CUDA context, cuDNN's and cuBLAS's own cudaMalloc) is only in
    ``device_used_bytes``: cudaMemGetInfo's total - free, the whole device's, other processes included.
    """
    device = x.device
    if device.type != "cuda":
        return {}
    _sync(device)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    model(x)
    _sync(device)
    free, total = torch.cuda.mem_get_info(device)
    return {
        "peak_allocated_bytes": torch.cuda.max_memory_allocated(device),
        "peak_reserved_bytes": torch.cuda.max_memory_reserved(device),
        "device_used_bytes": total - free,
    }


def layer_pass(
    model: nn.Module, x: torch.Tensor, iters: int, before_layer: Callable[[], object] | None = None
) -> list[LayerRecord]:
    with LayerProbe(model, x.device, before_layer=before_layer) as probe:
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
    clock = time.perf_counter
    meter = energy_meter(device, gpu, cpu_meter) if settings.energy_window_s > 0 else None
    telemetry = Telemetry(gpu)
    with torch.inference_mode(), telemetry:
        t_idle = clock()
        if meter is not None and idle_w is None:
            with telemetry.phase("idle"):
                idle_w = meter.idle_power_w(settings.energy.idle_s)
        t_idle = clock() - t_idle  # part of the energy procedure's cost
        t0 = clock()
        with telemetry.phase("memory"):
            memory = peak_memory(model, x)
        forward: Callable[[], object] = lambda: model(x)  # noqa: E731
        graph_error = None
        if settings.graph:
            replay, graph_error = capture_graph(model, x, settings.replay_tolerance_key, settings.replay_tolerance)
            forward = replay or forward
        before_timing = clock() - t0
        flush = flush_for(settings.l2, device)  # after peak memory: its buffer is not the model's memory
        with telemetry.phase("timing"):
            timing = time_adaptively(forward, device, settings.policy, before=flush)
        t0 = clock()
        if settings.graph:
            model(x)  # capturing emptied the allocator's cache: refill it outside the layer pass's events
        with telemetry.phase("layers"):
            layers = layer_pass(model, x, settings.layer_iters, flush)
        t1 = clock()
        energy = None
        if meter is not None:  # the same forward and pacing as the timing (harness.measure.energy)
            energy = measure_energy(
                forward, chunk_timer(device), meter, settings.energy_settings(), idle_w=idle_w, telemetry=telemetry
            )
        t2 = clock()
        trace = write_trace(model, x, settings.trace_path, settings.trace_iters) if settings.trace_path else None
        kernels = kernel_pass(model, x, settings.kernel_iters) if settings.kernels else None
    stats = summarize(timing.samples_ms, x.shape[0])
    phases = {
        "warmup": before_timing + (timing.warmup_wall_s or 0.0),
        "timing": timing.timing_wall_s or 0.0,
        "layers": t1 - t0,
        "energy": t2 - t1 + t_idle,
    }
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
        kernels,
        flush.nbytes if flush is not None else None,
        phases,
    )
