"""One job: plan the points of a RunSpec, measure each, and write each to the store as soon as it is done.

Knows nothing of Hydra or SLURM: ``run(spec)`` can be called from plain Python.
"""

from __future__ import annotations

import gc
import logging
import math
import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from harness import algorithms, models
from harness.config.spec import RunSpec
from harness.errors import Cancelled, ConfigError
from harness.measure.device import DeviceInfo, check_build_has_kernels, resolve_device
from harness.measure.environment import provenance
from harness.measure.graphs import GraphResetError
from harness.measure.hardware import detect_hardware, log_peaks
from harness.measure.point import PointMeasurer, PointResult
from harness.measure.source import SourceStamp, job_source
from harness.measure.threads import job_threads
from harness.model_files import LoadedModel
from harness.references import Check, check
from harness.results.layout import LEAF_POINT_KEY, PointKey
from harness.results.manifest import RunManifest
from harness.results.schema import SCHEMA_VERSION
from harness.results.store import ResultStore

log = logging.getLogger(__name__)


def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def job_points(spec: RunSpec) -> list[PointKey]:
    """Every point of the job: per batch size, the input sizes from small to large."""
    return [(size, batch, spec.dtype) for batch in spec.batch_sizes for size in spec.stage.sizes]


def planned_key(spec: RunSpec, point: PointKey) -> list[Any]:
    """A point of the job as its run record lists it: every axis of the point within its leaf
    (harness.results.layout.LEAF_POINT_KEY), so runs of one leaf in two layouts or directions plan apart."""
    size, batch, dtype = point
    values = {"input_size": size, "batch_size": batch, "dtype": dtype}
    values |= {"layout": spec.layout, "l2": spec.l2, "direction": spec.direction}
    return [values[k] for k in LEAF_POINT_KEY]


def planned_keys(spec: RunSpec) -> list[list[Any]]:
    """Every point the job plans, as its run record and its sweep's manifest list them (``planned_key``)."""
    return [planned_key(spec, k) for k in job_points(spec)]


@dataclass
class RunResult:
    run_id: str
    spec: RunSpec
    device: DeviceInfo
    directory: Path
    points: list[dict[str, Any]] = field(default_factory=list)  # rows measured by this run
    skipped: list[PointKey] = field(default_factory=list)  # already in the store (resume)
    files: list[Path] = field(default_factory=list)
    outcome: str = "running"
    deviations: list[tuple[dict[str, Any], Check]] = field(default_factory=list)  # slower/faster than references

    def reference_counts(self) -> dict[str, int]:
        """Points of this run per reference_status (empty without references)."""
        statuses = [p.get("reference_status") for p in self.points if p.get("reference_status")]
        return {s: statuses.count(s) for s in sorted(set(statuses))}


def _is_oom(e: BaseException) -> bool:
    return isinstance(e, (torch.cuda.OutOfMemoryError, MemoryError))


def _now() -> datetime:
    return datetime.now(timezone.utc)


def validate(spec: RunSpec) -> DeviceInfo:
    """Every check that can fail before anything is measured; returns the device to measure on."""
    return checked_job(spec)[0]


def checked_job(spec: RunSpec) -> tuple[DeviceInfo, LoadedModel]:
    """``validate``, and the job's model, loaded once (a model file is read here, not per point)."""
    model = models.load_model(spec.model, spec.seed)
    models.check_model(model, spec.model, spec.algo, spec.stage.sizes, spec.batch_sizes)
    device = resolve_device(spec.device, spec.gpu)
    if device.device.type == "cuda":
        check_build_has_kernels(device.device.index, spec.gpu.name)
    if device.device.type == "cpu" and spec.dtype != "float32":
        raise ConfigError(f"dtype={spec.dtype} runs on a GPU only; on the CPU use dtype=float32")
    if device.device.type == "cpu" and spec.graph:
        raise ConfigError("graph=true captures CUDA graphs, which need a GPU; on the CPU use graph=auto or graph=false")
    backend = algorithms.resolve_backend(spec.backend, device.device)
    algorithms.check_settings_apply(device.device, backend, spec.fallback)  # whatever the algorithm, a plan's too
    if spec.plan is not None:
        _check_plan(spec, device, backend, model.module)
    else:
        algorithms.check_runnable(spec.algo, device.device, backend, spec.fallback)
    _check_training(spec, device, backend)
    _check_train_mode(spec, model)
    return device, model


def _check_train_mode(spec: RunSpec, model: LoadedModel) -> None:
    """train.model_mode=train: refuse a point where a batch norm would normalise fewer than BATCH_NORM_VALUES
    values per channel (batch 1 or 2 at a 1x1 feature map: harness.measure.train_step.thin_batch_norm), naming
    the layer, the size and the ways out. A model with no meta copy (shapes unknown before running it) is not
    checked: torch then refuses a point of one value per channel, the gradient check one of two."""
    from harness.measure.train_step import BATCH_NORM_VALUES, WELL_CONDITIONED_VALUES, thin_batch_norm

    if spec.direction == "forward" or spec.train.model_mode != "train":
        return
    meta = model.meta()
    if meta is None:
        return
    batch = min(spec.batch_sizes)
    for size in spec.stage.sizes:
        found = thin_batch_norm(meta, torch.empty(batch, model.input_channels, size, size, device="meta"))
        if found is None:
            continue
        name, shape = found
        values = math.prod(shape) // shape[1]
        pixels = values // shape[0]
        why = (
            "which torch cannot normalise in train mode"
            if values == 1
            else "which normalise to -1 and +1 whatever they are: its gradient is rounding noise no check can pass"
        )
        raise ConfigError(
            f"train.model_mode=train: batch norm {name} sees {values} value(s) per channel at input size {size} "
            f"with batch_size={batch} (its input is {'x'.join(map(str, shape))}), {why}; use a larger batch_size "
            f"(at least {-(-BATCH_NORM_VALUES // pixels)}; {-(-WELL_CONDITIONED_VALUES // pixels)} or more keeps "
            "the gradients well-conditioned) or input size, or train.model_mode=eval"
        )


def _check_training(spec: RunSpec, device: DeviceInfo, backend: str) -> None:
    """A direction other than forward: each algorithm runs in the directions the point times, and the step's
    settings can run here (train.amp: a GPU, the framework's own layers, float32 master weights)."""
    from harness.measure.train_step import timed_directions

    if spec.direction == "forward":
        return
    for key, value, why in (
        ("l2", spec.l2 == "cold", "its layer pass flushes no cache"),
        ("kernels", spec.kernels, "its kernel pass profiles the forward"),
        ("trace", spec.trace, "its trace records the forward"),
    ):
        if value:
            raise ConfigError(
                f"{key}={getattr(spec, key)} measures the forward only ({why}); direction={spec.direction} runs "
                f"with {key}={'warm' if key == 'l2' else 'false'}, or use direction=forward"
            )
    for direction in timed_directions(spec.direction):
        choices = {layer.algos()[direction] for layer in spec.plan.layers} if spec.plan else {spec.algo}
        for algo in sorted(choices):
            algorithms.check_runnable_in(algo, direction, device.device, backend)
    if spec.train.amp:
        if device.device.type != "cuda":
            raise ConfigError(
                "train.amp=true runs torch.autocast with a GradScaler, which needs a GPU; on the CPU use "
                "train.amp=false"
            )
        if spec.algo != "torch":
            raise ConfigError(
                f"train.amp=true runs the step under torch.autocast, under which swapped layers (algo={spec.algo}) "
                "cannot run (they compute in the model's dtype); use algo=torch, or train.amp=false with dtype=float16"
            )
        if spec.dtype != "float32":
            raise ConfigError(
                f"train.amp=true keeps float32 weights and autocasts to float16; dtype={spec.dtype} is not valid "
                "with it (valid: float32), or use train.amp=false"
            )


def _check_plan(spec: RunSpec, device: DeviceInfo, backend: str, module: torch.nn.Module) -> None:
    """algo=per_layer: the plan fits the model (else refused, naming the first layer that differs), each of
    its algorithms runs here, and where it was made for another context, a warning says what differs."""
    from harness.algorithms.plan import PlanMismatch, check_model, mismatched_context

    plan = spec.plan
    try:
        check_model(plan, module)
    except PlanMismatch as e:
        raise ConfigError(f"plan refused for model={spec.model.name}: {e}") from None
    for algo in plan.algorithms():
        try:
            algorithms.check_runnable(algo, device.device, backend, spec.fallback)
        except ConfigError as e:
            raise ConfigError(f"plan: {sum(layer.algo == algo for layer in plan.layers)} layers use {e}") from None
    on_gpu = device.device.type == "cuda"
    here = {
        "model": spec.model.name,
        "gpu": spec.gpu.name,
        "dtype": spec.dtype,
        "backend": backend,
        "cudnn_version": str(torch.backends.cudnn.version()) if on_gpu else None,
    }
    problems = mismatched_context(plan, **here)
    problems += [
        f"the plan was made at input size {plan.key.input_size}, this run measures {s}"
        for s in spec.stage.sizes
        if plan.key.input_size is not None and s != plan.key.input_size
    ]
    problems += [
        f"the plan was made at batch size {plan.key.batch_size}, this run measures {b}"
        for b in spec.batch_sizes
        if plan.key.batch_size is not None and b != plan.key.batch_size
    ]
    for problem in problems:
        log.warning("plan %s: %s (its evidence does not hold here; it runs anyway)", plan.digest(), problem)


def run(
    spec: RunSpec,
    *,
    config: dict[str, Any] | None = None,
    run_id: str | None = None,
    on_point: Callable[[PointKey, dict[str, Any] | None], None] | None = None,
    source: SourceStamp | None = None,
) -> RunResult:
    """Measure every point of ``spec`` not yet in the store; write each as soon as it is measured.

    ``config`` is the resolved config to keep in run.json; ``on_point`` is called after each point
    (with None for a point skipped because it was already measured), e.g. to advance a progress bar;
    ``source`` is the code's stamp taken at submission (harness.measure.source), else read here.
    """
    entered = time.perf_counter()
    device, model = checked_job(spec)
    spec = spec.resolved_for(device.device.type)  # graph=auto: a CUDA graph on a GPU
    run_id = run_id or new_run_id()
    store = ResultStore(spec.results_dir, spec.partition(), run_id)
    store.open()
    result = RunResult(run_id, spec, device, store.dir)
    source = job_source(source)
    hardware = detect_hardware(device.device, spec.gpu.spec)  # once per job: the rows' gpu_* columns, the peaks
    log_peaks(hardware, device.device.type == "cuda")
    env = provenance(device.device, source) | hardware.columns()
    started = _now()
    planned = job_points(spec)
    run_doc = RunManifest(
        run_id=run_id,
        schema_version=SCHEMA_VERSION,
        started_at=started,
        ended_at=None,
        outcome="running",
        config=config,
        measurement_config=spec.measurement_config(),
        config_hash=spec.config_hash(),
        device=device.device.type,
        device_name=device.name,
        repeat=spec.repeat,
        repeats=spec.repeats,
        environment=env | {"torch_cuda_build": torch.version.cuda},
        hostname=socket.gethostname(),
        pid=os.getpid(),
        points_planned=len(planned),
        points_planned_keys=planned_keys(spec),
        source=source.to_dict() if source is not None else None,
        hardware=hardware.to_dict(),
    )
    previous = store.read_run()
    if previous is not None:  # the same run resumed: a requeued SLURM job
        run_doc.started_at = previous.started_at if previous.started_at is not None else started
        run_doc.attempts = previous.attempts + 1
        run_doc.slurm_job_ids = [*(previous.slurm_job_ids or []), env["slurm_job_id"]]
    else:
        run_doc.attempts, run_doc.slurm_job_ids = 1, [env["slurm_job_id"]]
    store.write_run(run_doc)
    store.recover()

    # remeasure: measure again what earlier runs measured, but still resume this run (a requeued job)
    done = store.measured(spec.config_hash(), run_id=run_id if spec.remeasure else None, repeat=spec.repeat)
    identity = {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "stage": spec.stage.name,
        "model": spec.model.name,
        "model_source": spec.model.source,
        "model_hash": spec.model.content_hash,
        "algo": spec.algo,
        "gpu": spec.gpu.name,
        "device_name": device.name,
        "repeat": spec.repeat,
    }
    traces: list[Path] = []
    try:
        # restored when the job ends
        with job_threads(spec.cpu_threads) as threads, algorithms.backend_flags(spec.math, spec.cudnn_benchmark):
            run_doc.cpu_threads = threads
            measurer = PointMeasurer(spec, device, model, hardware)
            run_doc.startup_s = time.perf_counter() - entered  # the cost model's job start-up (harness.campaign)
            oom_at: dict[int, int] = {}  # batch size -> smallest input size that ran out of memory
            for key in planned:
                size, batch, dtype = key
                if key in done:
                    result.skipped.append(key)
                    if on_point:
                        on_point(key, None)
                    continue
                trace = store.trace_path(key) if spec.trace else None
                point_started = time.perf_counter()
                measured = _measure_one(measurer, size, batch, oom_at, trace)
                point_wall_s = time.perf_counter() - point_started
                if measured.status == "oom":
                    oom_at.setdefault(batch, size)
                context = identity | {
                    "dtype": dtype,
                    "layout": spec.layout,
                    "l2": spec.l2,
                    "direction": spec.direction,
                    "measured_at": _now(),
                }
                point = measured.row(
                    context
                    | {
                        "device": device.device.type,
                        "config_hash": spec.config_hash(),
                        "repeats": spec.repeats,
                        "cpu_threads": threads,
                        "point_wall_s": point_wall_s,
                    }
                    | env
                )
                _check_reference(spec, point, result)
                store.write_point(point, measured.layer_rows(context))
                if trace is not None and trace.exists():
                    traces.append(trace)
                result.points.append(point)
                if on_point:
                    on_point(key, point)
        result.outcome = "completed"
    except BaseException as e:
        result.outcome = _outcome_of(e)
        run_doc.error = f"{type(e).__name__}: {e}"
        raise
    finally:
        algorithms.release_workspaces()  # not carried into the next job of this process
        result.files = store.compact() + traces
        statuses = [p["status"] for p in result.points]
        run_doc.ended_at, run_doc.outcome = _now(), result.outcome
        run_doc.points_planned, run_doc.points_skipped = len(planned), len(result.skipped)
        run_doc.points_by_status = {s: statuses.count(s) for s in sorted(set(statuses))}
        run_doc.files = [p.name for p in result.files]
        if spec.references is not None:
            run_doc.references = {"path": spec.references.path, "by_status": result.reference_counts()}
            _log_deviations(spec, result)
        result.files.append(store.write_run(run_doc))
    return result


def _check_reference(spec: RunSpec, point: dict[str, Any], result: RunResult) -> None:
    """With references: the point's reference_status (and a deviation kept for the run's summary)."""
    if spec.references is None:
        return
    entry = spec.references.lookup(spec.gpu.name, point)
    verdict = check(point, entry, spec.stage.reference_tolerance)
    point["reference_status"] = None if verdict is None else verdict.status
    if verdict is not None and verdict.status in ("slower", "faster"):
        result.deviations.append((point, verdict))


def _log_deviations(spec: RunSpec, result: RunResult) -> None:
    counts = ", ".join(f"{n} {s}" for s, n in result.reference_counts().items()) or "no point measured"
    log.info("references %s: %s", spec.references.path, counts)
    for point, verdict in result.deviations:
        log.warning("input size %s, batch %s: %s", point["input_size"], point["batch_size"], verdict.describe())


def _outcome_of(e: BaseException) -> str:
    if isinstance(e, Cancelled):
        return "cancelled"
    if isinstance(e, (KeyboardInterrupt, SystemExit)):  # Ctrl-C; a SLURM job checkpointed and requeued
        return "interrupted"
    return "failed"


def _measure_one(
    measurer: PointMeasurer, size: int, batch: int, oom_at: dict[int, int], trace: Path | None
) -> PointResult:
    """Measure one point; an error in it becomes a result with a status, never the end of the job."""

    def failed(status: str, error: str) -> PointResult:
        return PointResult(size, batch, status, error[:2000], settings=measurer.settings())

    if batch in oom_at and size > oom_at[batch]:
        return failed("oom", f"skipped: input size {oom_at[batch]} already ran out of memory at batch size {batch}")
    try:
        return measurer.measure_point(size, batch, trace)
    except GraphResetError:  # the device may be polluted: no later point of this process may be measured
        raise
    except Exception as e:  # noqa: BLE001 - every failure of a point is recorded, then the sweep goes on
        if not _is_oom(e):
            log.warning("input size %d, batch %d failed: %s: %s", size, batch, type(e).__name__, e)
            log.debug("traceback", exc_info=True)
            return failed("error", f"{type(e).__name__}: {e}")
        row = failed("oom", str(e))
    # Out of memory. Only here, with the exception gone (its traceback held the failed forward's frames and
    # so its tensors), can the allocator give their memory back.
    log.warning("input size %d, batch %d: out of memory", size, batch)
    release_memory(measurer.device)
    return row


def release_memory(device: torch.device) -> None:
    """Collect what the failed point left (reference cycles included) and empty the CUDA cache."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
