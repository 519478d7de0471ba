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

from harness.measure import roofline
from harness.measure.energy import EnergyReading, measure_energy
from harness.measure.flops_directions import DirectionCosts, count_directions
from harness.measure.graphs import WARMUP_ITERS, CudaGraphs, capture_callable, reset_after_failed_capture
from harness.measure.profiler import Profile, energy_meter
from harness.measure.timing import chunk_timer, time_adaptively
from harness.measure.train_step import (
    BACKWARD,
    RunnerClock,
    TrainStep,
    call_costs,
    call_order,
    check_determinism,
    check_gradients,
    deterministic,
    first_output,
    fixed_labels,
    gradient_calls,
    gradient_pass,
    kept_buffers,
    kept_state,
    layer_rows,
    model_mode,
    plans_by_call,
    saved_operands,
    timed_directions,
    torch_layers,
)
from harness.stats import summarize

Row = dict[str, Any]

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
    with deterministic(train.deterministic), kept_state(model), model_mode(model, train.model_mode):
        with torch.no_grad(), kept_buffers(model):
            if m.swap is not None:
                with m.swap.planning():
                    out = first_output(model(x))
            else:
                out = first_output(model(x))
        labels = fixed_labels(out, train.loss, spec.seed)
        costs = direction_costs(m, x)
        # the direction's FLOPs on every points row of it, one that is not timed (unsupported, error) too
        result.extra["flops"] = point_flops(costs, spec.direction) if costs is not None else None
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
            _measure(m, result, layered, own, x, labels, directions, started, costs)
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
    costs: DirectionCosts | None,
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
    dtype = conv_dtype(spec.dtype, train.amp)
    per_call = call_costs(calls, costs.layers) if costs is not None else {}
    if spec.direction == "train_step":
        fn: Callable[[], object] = step
        timed_on = layered.original() if own else None  # torch's own autograd path, not its runners, is timed
    else:
        fn = gradient_pass(gradient_calls(calls, spec.direction, train.input_grad), spec.direction)
        timed_on = None
    with kept_buffers(m.model):  # a train-mode step updates batch norm's running statistics: given back
        if timed_on is not None:
            with timed_on:
                timing, memory, replay, graph_error, energy = _time(m, fn, step)
        else:
            timing, memory, replay, graph_error, energy = _time(m, fn, step)
    t1 = time.perf_counter()
    order = call_order(calls)
    with kept_buffers(m.model), RunnerClock(layered.swapped, device, order) as clock:
        for _ in range(spec.stage.layer_iters):
            clock.run(fn)
    t2 = time.perf_counter()
    nondeterministic: dict[tuple[int, str], bool] = {}
    if train.check_determinism:
        for d in (d for d in directions if d in BACKWARD):
            for index, differs in check_determinism(gradient_calls(calls, d, train.input_grad), d).items():
                nondeterministic[(index, d)] = differs
    plans = plans_by_call(layered.swapped, calls)
    result.layers = layer_rows(calls, clock.records, plans, per_call, nondeterministic, m.math, m.peaks, dtype)
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
    result.extra |= point_roofline(costs, spec.direction, stats["p50_ms"], result.layers, m.peaks, dtype, m.math) | {
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


def conv_dtype(dtype: str, amp: bool) -> str:
    """The dtype the convolutions run in: float16 under train.amp's autocast, else the job's."""
    return "float16" if amp else dtype


def direction_costs(m: PointMeasurer, x: torch.Tensor) -> DirectionCosts | None:
    """Each conv layer's FLOPs and least bytes in each direction, and the model's, for ``x``'s shape
    (harness.measure.flops_directions, on a meta copy of the unswapped model); None, and the rows' FLOPs null,
    where the model cannot run on the meta device (as some model files cannot)."""
    train = m.spec.train
    try:
        return count_directions(m.model, x, input_grad=train.input_grad, dtype=conv_dtype(m.spec.dtype, train.amp))
    except Exception as e:  # noqa: BLE001 - a program that does not run on meta: FLOPs unknown, the point measured
        log.warning("no FLOPs per direction (the model cannot run on the meta device: %s: %s)", type(e).__name__, e)
        return None


def point_flops(costs: DirectionCosts, direction: str) -> int:
    """The points row's FLOPs of ``direction``, for the whole batch. backward_data / backward_filter: the model's
    conv calls in that direction, all of what the timed iteration runs (nothing outside convolutions is in it);
    train_step: everything the flop counter sees in a forward and backward of the model, convolutions and the
    rest (linear layers' matmuls), as the forward's points count everything in a forward; the loss and the
    optimizer step are not counted."""
    model = costs.model
    if direction == "train_step":
        return model.train_step_flops + model.train_step_other_flops
    return model.flops[direction]


def point_roofline(
    costs: DirectionCosts | None,
    direction: str,
    p50_ms: float | None,
    layers: list[Row],
    peaks: dict[str, Any] | None,
    dtype: str,
    math: str | None,
) -> Row:
    """The points row's FLOPs and roofline columns of a training direction: ``flops`` (``point_flops``),
    ``achieved_tflops`` (at the median), the peak that applies and the fraction of it; for a backward direction
    the timed calls' least bytes (the sum of its layer rows') and their arithmetic intensity. A step's least
    traffic (activations kept, the optimizer's reads and writes) is not counted: its intensity is null."""
    peak = roofline.peak_tflops(peaks, dtype, math)
    row: Row = {
        "flops": None,
        "achieved_tflops": None,
        "achieved_fraction_of_peak": None,
        "arithmetic_intensity": None,
        "roofline_bound": None,
        "peak_tflops": peak,
        "peak_mem_bw_gbs": peaks.get("mem_bw_gbs") if peaks else None,
    }
    if costs is None:
        return row
    flops = point_flops(costs, direction)
    row["flops"] = flops
    if p50_ms:
        row["achieved_tflops"] = flops / (p50_ms / 1e3) / 1e12
        row["achieved_fraction_of_peak"] = row["achieved_tflops"] / peak if peak else None
    if direction in BACKWARD:
        nbytes = sum(r["bytes"] or 0 for r in layers if r["direction"] == direction)
        row["arithmetic_intensity"], row["roofline_bound"] = roofline.verdict(flops, nbytes, peaks, dtype, math)
    return row
