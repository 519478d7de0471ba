"""Measuring one point of a direction other than forward: plan every direction, check the gradients, time the
step (or the gradient calls), then time each conv call per direction. What each direction times, how the layers
are timed and how the gradients are checked: harness.measure.train_step.

Sanity before performance, as for the forward (harness.measure.point): a point with a layer nothing can run in a
timed direction is "unsupported", a point whose gradients are beyond the dtype's tolerance is "error", and
neither is timed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch

from harness.measure.energy import EnergyReading, measure_energy
from harness.measure.graphs import WARMUP_ITERS, CudaGraphs, capture_callable, reset_after_failed_capture
from harness.measure.profiler import Profile, energy_meter
from harness.measure.timing import chunk_timer, time_adaptively
from harness.measure.train_step import (
    BACKWARD,
    ConvCall,
    RunnerClock,
    TrainStep,
    call_order,
    check_determinism,
    check_gradients,
    deterministic,
    first_output,
    fixed_labels,
    gradient_calls,
    gradient_pass,
    kept_state,
    layer_rows,
    plans_by_call,
    saved_operands,
    timed_directions,
    torch_layers,
)
from harness.stats import summarize

if TYPE_CHECKING:
    from harness.measure.point import PointMeasurer, PointResult

log = logging.getLogger(__name__)

AMP_NOT_CAPTURABLE = (
    "train.amp: the GradScaler's inf check synchronizes with the host, which a CUDA graph cannot hold; timed eagerly"
)


def measure_training(m: PointMeasurer, result: PointResult) -> PointResult:
    """One point of ``m.spec.direction`` (backward_data, backward_filter or train_step): ``result``, a fresh
    PointResult of the point's size and batch, filled in."""
    spec, train = m.spec, m.spec.train
    started = time.perf_counter()
    if m.swap is not None:
        m.swap.release()
    x = m.input(result.input_size, result.batch_size)
    result.work = m._work(tuple(x.shape))
    result.settings = m.settings()
    directions = timed_directions(spec.direction)
    model = m.model
    with deterministic(train.deterministic), kept_state(model):
        with torch.no_grad():
            if m.swap is not None:
                with m.swap.planning():
                    out = first_output(model(x))
            else:
                out = first_output(model(x))
        labels = fixed_labels(out, train.loss, spec.seed)
        plans = m.swap.plan_step(x, input_grad=train.input_grad) if m.swap is not None else {}
        unsupported = [
            f"{name} ({d})"
            for name, by in plans.items()
            for d, p in by.items()
            if d in directions and p.status == "unsupported"
        ]
        if unsupported:
            result.status = "unsupported"
            result.error = (
                f"{len(unsupported)} conv layer calls cannot run {spec.algo} (fallback={spec.fallback}; why: "
                f"the layers rows' detail): {', '.join(unsupported)}"
            )
            result.plan_s = time.perf_counter() - started
            return result
        own = m.swap is None  # algo=torch: torch's layers behind runners, for the layer pass (and backward-only timing)
        layered = m.swap or torch_layers(model, spec.layout)
        try:
            _measure(m, result, layered, own, x, labels, directions, started)
        finally:
            if own:
                layered.undo()
    return result


def _measure(
    m: PointMeasurer,
    result: PointResult,
    layered: Any,
    own: bool,
    x: torch.Tensor,
    labels: torch.Tensor,
    directions: tuple[str, ...],
    started: float,
) -> None:
    spec, train, device = m.spec, m.spec.train, m.device
    check = check_gradients(layered, x, labels, train, m.tolerance_key)
    result.extra = {"grad_max_rel_err": check.max_rel_err, "grad_ok": check.ok}
    step = TrainStep(m.model, x, labels, train)
    calls = saved_operands(m.model, step)  # one real step: each conv call's operands (and a warm-up)
    result.plan_s = time.perf_counter() - started
    problem = check.problem()
    if problem:
        result.status, result.error = "error", problem
        result.layers = layer_rows(calls, {}, plans_by_call(layered.swapped, calls), {}, {}, m.math)
        return
    if spec.direction == "train_step":
        fn: Callable[[], object] = step
        timed_on = layered.original() if own else None  # torch's own autograd path, not its runners, is timed
    else:
        fn = gradient_pass(gradient_calls(calls, spec.direction, train.input_grad), spec.direction)
        timed_on = None
    if timed_on is not None:
        with timed_on:
            timing, memory, replay, graph_error, energy = _time(m, fn, step)
    else:
        timing, memory, replay, graph_error, energy = _time(m, fn, step)
    t1 = time.perf_counter()
    order = call_order(calls)
    with RunnerClock(layered.swapped, device, order) as clock:
        for _ in range(spec.stage.layer_iters):
            clock.run(fn)
    t2 = time.perf_counter()
    nondeterministic: dict[tuple[int, str], bool] = {}
    if train.check_determinism:
        for d in (d for d in directions if d in BACKWARD):
            for index, differs in check_determinism(gradient_calls(calls, d, train.input_grad), d).items():
                nondeterministic[(index, d)] = differs
    flops = _forward_flops(calls, work_flops=result.work.module_flops if result.work else {})
    plans = plans_by_call(layered.swapped, calls)
    result.layers = layer_rows(calls, clock.records, plans, flops, nondeterministic, m.math)
    if result.on_gpu:
        from harness import algorithms

        result.workspace_bytes = algorithms.workspace_bytes(device)
    stats = summarize(timing.samples_ms, x.shape[0])
    result.profile = Profile(
        timing,
        stats,
        memory,
        [],
        energy,
        None,
        replay is not None,
        graph_error,
        None,
        None,
        None,
        {"warmup": timing.warmup_wall_s or 0.0, "timing": timing.timing_wall_s or 0.0, "layers": t2 - t1},
    )
    result.idle_power_w = m.idle_power_w
    if energy is not None and energy.idle_power_after_w is not None:
        m.idle_power_w = energy.idle_power_after_w
    # a step's (or the gradients') FLOPs are not the forward's: the forward's achieved figures would mislead
    result.extra |= {
        "achieved_tflops": None,
        "achieved_fraction_of_peak": None,
        "conv_layers": len(calls),
        "algo_fallback_layers": sum(r["status"] == "fallback" for r in result.layers),
    }


def _time(
    m: PointMeasurer, fn: Callable[[], object], step: TrainStep
) -> tuple[Any, dict[str, Any], Callable[[], object] | None, str | None, EnergyReading | None]:
    """Peak memory (GPU), the timed iterations (a CUDA graph's replays where one was captured) and the energy."""
    device = m.device
    memory = step_memory(fn, device)
    replay, graph_error = None, None
    if m.spec.graph:
        if isinstance(fn, TrainStep):
            replay, graph_error = capture_step(fn, device)
        else:
            replay, graph_error = capture_callable(fn, device, m.tolerance_key, m.spec.tolerance.get(m.tolerance_key))
        if graph_error:
            log.warning("no CUDA graph of the %s (timed eagerly): %s", m.spec.direction, graph_error)
    timed = replay or fn
    timing = time_adaptively(timed, device, m.policy)
    energy = None
    meter = energy_meter(device, m.gpu, m.cpu_meter) if m.spec.stage.energy_window_s > 0 else None
    if meter is not None:
        settings = m._settings(None).energy_settings()
        energy = measure_energy(timed, chunk_timer(device), meter, settings, idle_w=m.idle_power_w)
    return timing, memory, replay, graph_error, energy


def step_memory(fn: Callable[[], object], device: torch.device) -> dict[str, Any]:
    """Peak allocated and reserved bytes of one iteration (GPU only): a step's includes the activations kept for
    the backward and the gradients (as harness.measure.profiler.peak_memory for the forward)."""
    if device.type != "cuda":
        return {}
    torch.cuda.synchronize(device)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    torch.cuda.synchronize(device)
    free, total = torch.cuda.mem_get_info(device)
    return {
        "peak_allocated_bytes": torch.cuda.max_memory_allocated(device),
        "peak_reserved_bytes": torch.cuda.max_memory_reserved(device),
        "device_used_bytes": total - free,
    }


def capture_step(step: TrainStep, device: torch.device, api: CudaGraphs | None = None) -> tuple[Any, str | None]:
    """A CUDA graph of the step's body (forward, loss, backward, optimizer step), captured with the gradients
    unset, so that each replay assigns them as a step after ``zero_grad`` does; or None and why not (amp, a
    capture that raised: the device then reset and verified, or a replay whose loss is not finite)."""
    if step.scaler is not None:
        return None, AMP_NOT_CAPTURABLE
    api = api or CudaGraphs(device)
    stream = api.current_stream()
    api.warm_up(step, WARMUP_ITERS)
    api.synchronize()
    step.zero_grad()
    reason = None
    try:
        replay, _ = api.capture(step.body)
    except Exception as e:  # noqa: BLE001 - a step that cannot be captured is timed eagerly instead
        reason = f"capture failed: {type(e).__name__}: {e}"[:500]
    if reason is not None:
        reset_after_failed_capture(api, stream)
        return None, reason
    replay()
    api.synchronize()
    if step.last_loss is None or not bool(torch.isfinite(step.last_loss).all()):
        return None, "the graph's replay gave a non-finite loss"
    return replay, None


def _forward_flops(calls: list[ConvCall], work_flops: dict[str, int]) -> dict[tuple[int, str], int | None]:
    """The forward calls' FLOPs (the model's count per module, split over its calls); the backward directions'
    are left null until harness.measure.flops_directions counts them."""
    per_name: dict[str, int] = {}
    for c in calls:
        per_name[c.name] = per_name.get(c.name, 0) + 1
    return {
        (c.index, "forward"): (work_flops[c.name] // per_name[c.name] if c.name in work_flops else None) for c in calls
    }
