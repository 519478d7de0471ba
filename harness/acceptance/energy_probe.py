"""The energy suite's probe (GPU work, thin): the NVML energy counter's update period as observed, and the
linearity of dynamic energy (2N forwards against N, after idle subtraction) on CUDA-graph replays paced as the
timing paces them. The measuring and the statistics are harness.measure.energy's; ``probe_energy`` is the pure
sequence of them (tested on the CPU with a fake meter), ``run_probe`` builds the model and the meter on a GPU."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from harness.measure.energy import (
    CounterPeriod,
    EnergyMeter,
    Linearity,
    counter_update_period,
    energy_linearity,
)
from harness.measure.timing import CHUNK, ChunkTimer

log = logging.getLogger(__name__)

PROBE_WINDOW_S = 5.0  # the N-forward window lasts about this long (the 2N one twice as long)
PROBE_REPEATS = 3  # windows of N and of 2N, alternated
PERIOD_S = 2.0  # how long the counter is polled for its update period
IDLE_S = 2.0


@dataclass(frozen=True)
class EnergyProbe:
    """What the probe observed, or why it could not run (``error``)."""

    what: str  # the work measured, e.g. "resnet50 224 px batch 1 (CUDA graph)"
    period: CounterPeriod | None = None
    linearity: Linearity | None = None
    idle_w: float | None = None
    forward_ms: float | None = None
    error: str | None = None


def forwards_for(seconds: float, forward_ms: float) -> int:
    """N: whole chunks of forwards that last about ``seconds`` (at least one chunk)."""
    return max(CHUNK, int(round(seconds * 1000.0 / forward_ms / CHUNK)) * CHUNK)


def probe_energy(
    fn: Callable[[], object],
    timer: ChunkTimer,
    meter: EnergyMeter,
    read_counter: Callable[[], float | int | None],
    what: str,
    *,
    window_s: float = PROBE_WINDOW_S,
    repeats: int = PROBE_REPEATS,
    clock: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], None] = time.sleep,
) -> EnergyProbe:
    """The counter's period (polled while the device idles), the idle power, the forward's time from a few
    chunks, then the linearity check with N chosen so that a window of N lasts about ``window_s``."""
    period = counter_update_period(read_counter, PERIOD_S, clock=clock, sleep=sleep)
    idle = meter.idle_power_w(IDLE_S)
    timer(fn, CHUNK)  # warm: the first chunk may include lazy initialisation
    forward_ms = float(np.median([t for _ in range(3) for t in timer(fn, CHUNK)]))
    n = forwards_for(window_s, forward_ms)
    linearity = energy_linearity(fn, timer, meter, n, idle, repeats, clock=clock)
    return EnergyProbe(what, period, linearity, idle, forward_ms)


def run_probe(model_name: str = "resnet50", size: int = 224, batch: int = 1) -> EnergyProbe:
    """``probe_energy`` on this machine's first CUDA GPU: the model (random weights) replayed as a CUDA graph;
    an ``EnergyProbe`` with ``error`` where NVML, the graph or the model cannot be used (never raises)."""
    what = f"{model_name} {size} px batch {batch} (CUDA graph)"
    try:
        import torch
        import torchvision

        from harness.measure.energy import NvmlMeter, pci_bus_id
        from harness.measure.graphs import capture_graph
        from harness.measure.telemetry import NvmlGpu
        from harness.measure.timing import chunk_timer

        device = torch.device("cuda", torch.cuda.current_device())
        gpu = NvmlGpu.open(pci_bus_id(device))
        if gpu is None:
            return EnergyProbe(what, error="NVML is not usable here (see the log)")
        model = getattr(torchvision.models, model_name)(weights=None).to(device).eval()
        x = torch.randn(batch, 3, size, size, device=device)
        with torch.inference_mode():
            replay, why = capture_graph(model, x)
            if replay is None:
                return EnergyProbe(what, error=f"the forward could not be captured: {why}")
            return probe_energy(replay, chunk_timer(device), NvmlMeter(gpu), gpu.energy_mj, what)
    except Exception as e:  # noqa: BLE001 - the probe's failure is a finding of the suite, not its end
        log.error("energy probe failed: %s: %s", type(e).__name__, e)
        return EnergyProbe(what, error=f"{type(e).__name__}: {e}"[:500])
