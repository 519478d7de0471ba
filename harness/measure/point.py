"""Measuring one point: plan the layers, check the output, time the model, then time its layers.

Sanity before performance: every point first runs one planning forward (what runs each layer, decided
before any timing); a point with a layer nothing can run is "unsupported" and not timed; the output is
compared with the framework's own on the same input (the first point of a job, or every point) and a point
beyond tolerance is an "error" and not timed. Knows nothing of files or config files.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness import algorithms, models
from harness.algorithms import LayerPlan, memory_layout
from harness.algorithms.swap import AlgoConv2d
from harness.config.spec import RunSpec
from harness.measure import cudnn_log, rapl, roofline
from harness.measure.device import DeviceInfo
from harness.measure.energy import EnergySettings, NvmlGpu, idle_power_w, pci_bus_id
from harness.measure.flops import Work, count_work, count_work_of
from harness.measure.hardware import Hardware, detect_hardware
from harness.measure.kernels import LayerKernels, point_columns
from harness.measure.layers import LayerProbe, LayerRecord, conv_geometry, with_share_of_model
from harness.measure.profiler import Profile, ProfileSettings, profile
from harness.measure.timing import SamplingPolicy, Timing, launch_bound
from harness.measure.train_step import direction_columns, timed_directions
from harness.model_files import LoadedModel
from harness.results.hostbound import HOST_BOUND

log = logging.getLogger(__name__)

TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
_BASELINE = LayerPlan("torch", "torch", "torch", "ok")

Row = dict[str, Any]


def launch_columns(timing: Timing) -> Row:
    """Host time per forward next to the device time, and the launch-bound flag (timing.launch_bound)."""
    host = timing.host_ms
    if host is None or host.size == 0:
        return {"host_p50_ms": None, "host_issue_ms": None, "launch_bound": None}
    return {
        "host_p50_ms": float(np.median(host)),
        "host_issue_ms": float(np.min(host)),
        "launch_bound": launch_bound(host, timing.samples_ms),
    }


@dataclass(frozen=True)
class Verification:
    """The output against the framework's own on the same input."""

    max_abs_err: float
    max_rel_err: float  # max_abs_err / max |y_torch|
    tolerance_key: str  # float32, tf32, float16 or bfloat16
    tolerance: float | None

    @property
    def verified(self) -> bool:
        return self.tolerance is None or self.max_rel_err <= self.tolerance

    def problem(self) -> str | None:
        if self.verified:
            return None
        return (
            f"verification failed: max|y - y_torch| / max|y_torch| = {self.max_rel_err:.3g} exceeds the "
            f"{self.tolerance_key} tolerance {self.tolerance:g} (max abs error {self.max_abs_err:.3g})"
        )


@dataclass
class PointResult:
    """Everything known about one measured point; ``row`` and ``layer_rows`` are the only place its rows
    are built. A point that was not timed (unsupported, failed verification, out of memory) has no profile."""

    input_size: int
    batch_size: int
    status: str  # ok, unsupported, error, oom
    error: str | None = None
    on_gpu: bool = False
    settings: Row = field(default_factory=dict)  # the job's backend, math, fallback, cudnn.benchmark
    work: Work | None = None
    layers: list[Row] = field(default_factory=list)  # each conv layer: geometry, plan, timing, roofline
    workspace_bytes: int | None = None
    verification: Verification | None = None
    profile: Profile | None = None
    idle_power_w: float | None = None
    model_roofline: Row = field(default_factory=dict)
    plan_s: float | None = None  # wall seconds of planning, counting FLOPs and verifying (before any timing)
    extra: Row = field(default_factory=dict)  # columns of a direction other than forward (harness.measure.train_point)

    def __str__(self) -> str:
        head = f"input {self.input_size}, batch {self.batch_size}: {self.status}"
        if self.profile is None:
            return head + (f" ({self.error})" if self.error else "")
        return f"{head}\n  {self.profile.timing}"

    def __repr__(self) -> str:
        """A summary a reader can use, as torch.utils.benchmark's Measurement prints (the fields: ``vars()``)."""
        s = self.settings
        head = f"input {self.input_size}, batch {self.batch_size}, backend {s.get('backend')}: {self.status}"
        lines = [head + (f" ({self.error})" if self.error else "")]
        if self.work is not None:
            lines.append(f"{self.work.flops / 1e9:.3f} GFLOP, {self.work.params / 1e6:.2f} M parameters")
        if self.verification is not None:
            v = self.verification
            lines.append(f"verified against torch: {v.verified} (max relative error {v.max_rel_err:.2e})")
        if self.profile is not None:
            lines += str(self.profile).splitlines()
        body = "\n".join("  " + line for line in lines)
        return f"<{type(self).__module__}.{type(self).__name__}>\n{body}"

    def row(self, context: Row) -> Row:
        """The points row: ``context`` (the run's identity and provenance) and what was measured."""
        row: Row = (
            context
            | self.settings
            | {
                "input_size": self.input_size,
                "batch_size": self.batch_size,
                "status": self.status,
                "error": self.error,
                "energy_method": "none",
                "workspace_bytes": self.workspace_bytes,
                "phase_plan_s": self.plan_s,
            }
        )
        if self.work is not None:
            row |= {
                "flops": self.work.flops,
                "params": self.work.params,
                "conv_layers": len(self.layers),
                "algo_fallback_layers": sum(r["status"] == "fallback" for r in self.layers),
            }
        if self.verification is not None:
            v = self.verification
            row |= {"max_abs_err": v.max_abs_err, "max_rel_err": v.max_rel_err, "verified": v.verified}
        if self.profile is None:
            return row | self.extra
        p = self.profile
        row |= (
            p.stats
            | p.memory
            | self.model_roofline
            | {f"phase_{name}_s": seconds for name, seconds in p.phase_s.items()}
            | {
                "target_met": p.timing.target_met,
                "cache_flush_bytes": p.cache_flush_bytes,
                "achieved_tflops": self.work.flops / (p.stats["p50_ms"] / 1e3) / 1e12 if self.work else None,
                "achieved_fraction_of_peak": roofline.fraction(self.work, p.stats["p50_ms"], self.model_roofline),
                "conv_coverage": sum(r["mean_ms"] for r in self.layers) / p.stats["p50_ms"] if self.layers else None,
            }
        )
        if self.on_gpu:
            row |= launch_columns(p.timing) | {"cuda_graph": p.cuda_graph, "graph_error": p.graph_error}
        if p.energy is not None:
            row |= p.energy.columns()  # idle_power_w: before this point's work; idle_power_after_w: after
        if p.telemetry is not None:
            row |= p.telemetry.columns()
        return row | point_columns(p.kernels) | self.extra

    def layer_rows(self, context: Row) -> list[Row]:
        """The layers rows: ``context`` (the point's, whose ``direction`` is the point's: each row's
        ``point_direction``) and each conv call's own row (its ``direction``: forward where it does not say)."""
        point = {
            "input_size": self.input_size,
            "batch_size": self.batch_size,
            "point_direction": context.get("direction", "forward"),
        }
        return [context | point | {"direction": "forward"} | layer for layer in self.layers]


class PointMeasurer:
    """Measures points of one model with one algorithm on one device."""

    def __init__(
        self, spec: RunSpec, device: DeviceInfo, model: LoadedModel | None = None, hardware: Hardware | None = None
    ) -> None:
        """``model``: the job's model as ``harness.models.load_model`` gave it (loaded here when None);
        ``hardware``: the job's device and peaks (detected here when None)."""
        self.spec = spec = spec.resolved_for(device.device.type)  # graph=auto, where runner.run has not
        self.device = device.device
        self.dtype = TORCH_DTYPES[spec.dtype]
        self.backend = algorithms.resolve_backend(spec.backend, self.device) if spec.algo != "torch" else "torch"
        # spec.math is resolved; the job's runner sets it (and cudnn.benchmark) with algorithms.backend_flags
        self.math = spec.math if self.device.type == "cuda" else None
        self.loaded = model or models.load_model(spec.model, spec.seed)
        self.peaks = (hardware or detect_hardware(self.device, spec.gpu.spec)).peaks.spec  # the detected SKU's
        # layout=nhwc: weights (and then, by torch's propagation and the swapped layers' own outputs, every
        # activation) in torch.channels_last, for every backend: torch's, the references', cuDNN's
        self.model = memory_layout.model_to_layout(self.loaded.module.to(self.device, self.dtype), spec.layout)
        self.swap = algorithms.prepare(
            self.model,
            spec.algo,
            backend=self.backend,
            fallback=spec.fallback,
            math=self.math or "fma",
            plan=spec.plan,
            layout=spec.layout,
            directions=None if spec.direction in ("forward", "train_step") else timed_directions(spec.direction),
        )
        if spec.direction != "forward":
            self.model.requires_grad_(True)  # a step computes every parameter's gradient
        s = spec.stage
        self.policy = SamplingPolicy(
            s.warmup_iters, s.warmup_s, s.min_iters, s.max_iters, s.max_time_s, s.target_ci_rel
        )
        self.tolerance_key = "tf32" if self.dtype == torch.float32 and self.math == "tensor_op" else spec.dtype
        self._verified_once = False
        self.gpu: NvmlGpu | None = None
        self.cpu_meter: rapl.RaplMeter | None = None
        self.idle_power_w: float | None = None
        if self.device.type == "cuda":  # NVML: clocks, temperature, throttle reasons through every pass,
            self.gpu = NvmlGpu.open(pci_bus_id(self.device))  # and energy where energy_window_s > 0
            if self.gpu is not None and s.energy_window_s > 0:
                self.idle_power_w = idle_power_w(self.gpu)  # before the job's first point (each point's
                # cooldown measures it again: the next point's idle before)
        elif self.device.type == "cpu" and s.energy_window_s > 0:
            self.cpu_meter = rapl.RaplMeter.open()  # None (and a log line why) where RAPL cannot be read
            if self.cpu_meter is not None:
                self.idle_power_w = rapl.idle_power_w(self.cpu_meter)

    def input(self, size: int, batch: int) -> torch.Tensor:
        """The point's input: seeded, on the device, in the job's dtype and memory layout (the same values in
        either layout)."""
        g = torch.Generator().manual_seed(self.spec.seed)
        x = torch.randn(batch, self.loaded.input_channels, size, size, generator=g).to(self.device, self.dtype)
        return memory_layout.to_layout(x, self.spec.layout)

    def _work(self, shape: tuple[int, ...]) -> Work:
        """FLOPs and parameters, counted on the model's meta copy (shapes only); a model that cannot run on the
        meta device is counted by one forward of zeros on its own device."""
        if self.loaded.source == "torchvision":
            return count_work(self.spec.model.name, self.spec.model.kwargs, shape)
        meta = self.loaded.meta()
        if meta is None:
            with torch.inference_mode():
                return count_work_of(self.model, shape, self.device, self.dtype)
        return count_work_of(meta, shape)

    def settings(self) -> Row:
        """The job's settings every row of it carries (GPU-only ones null on the CPU)."""
        on_gpu = self.device.type == "cuda"
        return {
            "backend": self.backend,
            "math_type": self.math,
            "fallback_policy": self.spec.fallback,
            "cudnn_benchmark": self.spec.cudnn_benchmark if on_gpu else None,
            "plan_hash": self.spec.plan.digest() if self.spec.plan is not None else None,
        } | direction_columns(self.spec.direction, self.spec.algo, self.spec.train)

    def measure_point(self, size: int, batch: int, trace_path: Path | None = None) -> PointResult:
        """Plan, verify, then time one point; ``trace_path``: also write a trace. A direction other than forward:
        harness.measure.train_point."""
        if self.spec.direction != "forward":
            from harness.measure.train_point import measure_training

            # the result built here: train_point uses this module's types without importing it back
            return measure_training(self, PointResult(size, batch, "ok", on_gpu=self.device.type == "cuda"))
        started = time.perf_counter()
        if self.swap is not None:
            self.swap.release()  # plans and workspace of earlier shapes: not this point's memory
        x = self.input(size, batch)
        model = self.model
        work = self._work(tuple(x.shape))
        result = PointResult(size, batch, "ok", on_gpu=self.device.type == "cuda", settings=self.settings(), work=work)
        with torch.inference_mode():
            records = self._plan(lambda: model(x))
            plans = [self._plan_of(r) for r in records]
            result.layers = self._layer_rows(records, plans, work.module_flops)
            if result.on_gpu:  # the shared buffer as planning left it: what this point holds in memory
                result.workspace_bytes = algorithms.workspace_bytes(self.device)
            unsupported = [r.name for r, p in zip(records, plans) if p.status == "unsupported"]
            if unsupported:
                result.status, result.error = (
                    "unsupported",
                    (
                        f"{len(unsupported)} of {len(records)} conv layers cannot run {self.spec.algo} "
                        f"(fallback={self.spec.fallback}; why: the layers rows' detail): {', '.join(unsupported)}"
                    ),
                )
                result.plan_s = time.perf_counter() - started
                return result
            problem = self._check_output(x, result)
            result.plan_s = time.perf_counter() - started
            if problem:
                result.status, result.error = "error", problem
                return result
            result.profile = profile(model, x, self._settings(trace_path), self.gpu, self.cpu_meter, self.idle_power_w)
        if result.profile.graph_error:
            log.warning(
                "input size %d: no CUDA graph (timed eagerly): %s",
                size,
                result.profile.graph_error,
            )
        result.layers = self._layer_rows(result.profile.layers, plans, work.module_flops)
        if result.profile.kernels is not None:
            result.profile.kernels = self._torch_engines(result.profile)
            _add_kernels(result.layers, result.profile.kernels)
        result.idle_power_w = self.idle_power_w
        energy = result.profile.energy
        if energy is not None and energy.idle_power_after_w is not None:
            self.idle_power_w = energy.idle_power_after_w  # after this point's cooldown: the next point's before
        result.model_roofline = self._model_roofline(x, work.flops, result.layers, result.profile.memory)
        return result

    def _settings(self, trace_path: Path | None) -> ProfileSettings:
        s = self.spec.stage
        energy = EnergySettings(
            windows=s.energy_windows,
            steady_power_slope=s.steady_power_slope,
            steady_temp_slope_c_s=s.steady_temp_slope_c_s,
            steady_span_s=s.steady_span_s,
            steady_cap_s=s.steady_cap_s,
            cooldown_margin=s.cooldown_margin,
            cooldown_cap_s=s.cooldown_cap_s,
        )
        return ProfileSettings(
            self.policy,
            s.layer_iters,
            s.energy_window_s,
            trace_path,
            graph=self.spec.graph,
            energy=energy,
            kernels=self.spec.kernels,
            l2=self.spec.l2,
            replay_tolerance_key=self.tolerance_key,
            replay_tolerance=self.spec.tolerance.get(self.tolerance_key),
        )

    def _torch_engines(self, p: Profile) -> list[LayerKernels] | None:
        """The torch baseline on a GPU: each layer's cuDNN engine, from cuDNN's API log (harness.measure.cudnn_log,
        a process of its own); the kernel pass's records as they are otherwise."""
        if p.kernels is None or self.spec.algo != "torch" or self.device.type != "cuda":
            return p.kernels
        index = self.device.index if self.device.index is not None else torch.cuda.current_device()
        replay = cudnn_log.replay_of(p.layers, self.spec.dtype, self.math or "fma", self.spec.cudnn_benchmark, index)
        engines = cudnn_log.torch_engines(replay)
        return (
            [replace(k, cudnn_engine=e) for k, e in zip(p.kernels, engines)]
            if len(engines) == len(p.kernels)
            else p.kernels
        )

    def _model_roofline(self, x: torch.Tensor, flops: int, layers: list[Row], memory: Row) -> Row:
        """Model-level traffic estimate: weights once, the input, and each conv layer's output once."""
        param_bytes = sum(p.numel() * p.element_size() for p in self.model.parameters())
        activations = sum(r["out_channels"] * r["out_h"] * r["out_w"] for r in layers) * x.shape[0] * x.element_size()
        intensity, bound = roofline.verdict(
            flops,
            param_bytes + x.numel() * x.element_size() + activations,
            self.peaks,
            self.spec.dtype,
            self.math,
        )
        peak = memory.get("peak_allocated_bytes")
        return {
            "param_bytes": param_bytes,
            "activation_bytes": peak - param_bytes if peak is not None else None,
            "arithmetic_intensity": intensity,
            "roofline_bound": bound,
            "peak_tflops": roofline.peak_tflops(self.peaks, self.spec.dtype, self.math),
            "peak_mem_bw_gbs": self.peaks.get("mem_bw_gbs") if self.peaks else None,
        }

    # -- before timing ----------------------------------------------------------------------------------
    def _plan(self, forward: Callable[[], torch.Tensor]) -> list[LayerRecord]:
        """One forward that decides what runs each layer at this shape; returns the layers it saw."""
        with LayerProbe(self.model, self.device, head_start=False) as probe:  # planning synchronizes
            if self.swap is None:
                probe.run(forward)
            else:
                with self.swap.planning():
                    probe.run(forward)
        for record in probe.records:
            record.times_ms.clear()  # the planning forward is not a measurement
        return probe.records

    def _plan_of(self, record: LayerRecord) -> LayerPlan:
        if isinstance(record.module, AlgoConv2d):
            return record.module.plans[(record.in_shape, self.dtype, self.device)]
        return _BASELINE

    def _check_output(self, x: torch.Tensor, result: PointResult) -> str | None:
        """Finite output, and (where due) within tolerance of the baseline's (``result.verification``)."""
        y = self.model(x)
        if not torch.isfinite(y).all():
            return "verification failed: the output has NaN or Inf values"
        if self.swap is None or (self._verified_once and not self.spec.stage.verify_every_point):
            return None
        with self.swap.original() as baseline:
            reference = baseline(x)
        self._verified_once = True
        abs_err = float((y.float() - reference.float()).abs().max())
        scale = float(reference.float().abs().max())
        rel_err = abs_err / scale if scale > 0 else (0.0 if abs_err == 0 else math.inf)
        result.verification = Verification(
            abs_err, rel_err, self.tolerance_key, self.spec.tolerance.get(self.tolerance_key)
        )
        return result.verification.problem()

    # -- rows ---------------------------------------------------------------------------------------------
    def _layer_rows(
        self, records: list[LayerRecord], plans: list[LayerPlan], module_flops: dict[str, int]
    ) -> list[Row]:
        calls: dict[str, int] = {}
        for rec in records:
            calls[rec.name] = calls.get(rec.name, 0) + 1
        rows = []
        for rec, plan in zip(records, plans):
            flops = module_flops.get(rec.name)
            flops = flops // calls[rec.name] if flops is not None else None
            nbytes = roofline.conv_bytes(rec.in_shape, rec.out_shape, rec.module.weight.numel(), self.spec.dtype)
            intensity, bound = roofline.verdict(flops, nbytes, self.peaks, self.spec.dtype, plan.math or self.math)
            rows.append(
                {
                    "layer_index": rec.index,
                    "layer_name": rec.name,
                    **conv_geometry(rec.module),
                    "in_h": rec.in_shape[2],
                    "in_w": rec.in_shape[3],
                    "out_h": rec.out_shape[2],
                    "out_w": rec.out_shape[3],
                    "algo_requested": plan.algo_requested,
                    "algo_used": plan.algo_used,
                    "backend": plan.backend,
                    "status": plan.status,
                    "workspace_bytes": plan.workspace_bytes,
                    "math_type": plan.math or self.math,
                    "compute_type": plan.compute_type,
                    "detail": "; ".join(d for d in (plan.detail, HOST_BOUND if rec.host_bound else None) if d) or None,
                    "host_bound": rec.host_bound,
                    **(rec.summary() if rec.times_ms else {}),
                    "flops": flops,
                    "bytes": nbytes,
                    "arithmetic_intensity": intensity,
                    "roofline_bound": bound,
                }
            )
        return with_share_of_model(rows)


def _add_kernels(rows: list[Row], kernels: list[LayerKernels]) -> None:
    """Each layer row's kernel columns, from the kernel pass's record of the same call (index and name)."""
    by_call = {k.index: k for k in kernels}
    for r in rows:
        k = by_call.get(r["layer_index"])
        if k is not None and k.name == r["layer_name"]:
            r |= k.columns()
