"""Measuring one point: plan the layers, check the output, time the model, then time its layers.

Sanity before performance: every point first runs one planning forward (what runs each layer, decided
before any timing); a point with a layer nothing can run is "unsupported" and not timed; the output is
compared with the framework's own on the same input (the first point of a job, or every point) and a point
beyond tolerance is an "error" and not timed. Knows nothing of files or config files.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from harness import algorithms, models
from harness.algorithms import LayerPlan
from harness.algorithms.swap import AlgoConv2d
from harness.config.spec import RunSpec
from harness.measure import roofline
from harness.measure.device import DeviceInfo
from harness.measure.energy import NvmlGpu, idle_power_w, pci_bus_id
from harness.measure.flops import count_work
from harness.measure.layers import LayerProbe, LayerRecord, conv_geometry
from harness.measure.profiler import ProfileSettings, profile
from harness.measure.timing import SamplingPolicy, Timing, launch_bound

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


class PointMeasurer:
    """Measures points of one model with one algorithm on one device."""

    def __init__(self, spec: RunSpec, device: DeviceInfo) -> None:
        self.spec = spec
        self.device = device.device
        self.dtype = TORCH_DTYPES[spec.dtype]
        self.backend = algorithms.resolve_backend(spec.backend, self.device) if spec.algo != "torch" else "torch"
        # spec.math is resolved; the job's runner sets it (and cudnn.benchmark) with algorithms.backend_flags
        self.math = spec.math if self.device.type == "cuda" else None
        torch.manual_seed(spec.seed)
        self.model = models.build_model(spec.model.name, spec.model.kwargs).to(self.device, self.dtype)
        self.swap = algorithms.prepare(
            self.model, spec.algo, backend=self.backend, fallback=spec.fallback, math=self.math or "fma"
        )
        s = spec.stage
        self.policy = SamplingPolicy(s.warmup_iters, s.warmup_s, s.min_iters, s.max_iters, s.max_time_s, s.target_ci_rel)
        self.tolerance_key = "tf32" if self.dtype == torch.float32 and self.math == "tensor_op" else spec.dtype
        self._verified_once = False
        self.gpu: NvmlGpu | None = None
        self.idle_power_w: float | None = None
        if self.device.type == "cuda" and s.energy_window_s > 0:
            self.gpu = NvmlGpu.open(pci_bus_id(self.device))
            if self.gpu is not None:
                self.idle_power_w = idle_power_w(self.gpu)  # once per job, before any work
        elif self.device.type != "cuda":
            log.info("energy is not measured on the CPU (no NVML): energy columns are null, energy_method 'none'")

    def input(self, size: int, batch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.spec.seed)
        return torch.randn(batch, 3, size, size, generator=g).to(self.device, self.dtype)

    def measure(self, size: int, batch: int, trace_path: Path | None = None) -> tuple[Row, list[Row]]:
        """The point's row (with its status) and its layers' rows; ``trace_path``: also write a trace."""
        if self.swap is not None:
            self.swap.release()  # plans and workspace of earlier shapes: not this point's memory
        x = self.input(size, batch)
        model = self.model

        def forward() -> torch.Tensor:
            return model(x)

        work = count_work(self.spec.model.name, self.spec.model.kwargs, tuple(x.shape))
        on_gpu = self.device.type == "cuda"
        point: Row = {
            "backend": self.backend, "math_type": self.math, "fallback_policy": self.spec.fallback,
            "cudnn_benchmark": self.spec.cudnn_benchmark if on_gpu else None,
            "flops": work.flops, "params": work.params, "energy_method": "none",
        }
        with torch.inference_mode():
            records = self._plan(forward)
            plans = [self._plan_of(r) for r in records]
            point["conv_layers"] = len(records)
            point["algo_fallback_layers"] = sum(p.status == "fallback" for p in plans)
            point["workspace_bytes"] = max((p.workspace_bytes or 0 for p in plans), default=0) if on_gpu else None
            unsupported = [r.name for r, p in zip(records, plans) if p.status == "unsupported"]
            if unsupported:
                point |= {"status": "unsupported", "error": (
                    f"{len(unsupported)} of {len(records)} conv layers cannot run {self.spec.algo} "
                    f"(fallback={self.spec.fallback}; why: the layers rows' detail): {', '.join(unsupported)}"
                )}
                return point, self._layer_rows(records, plans, work.module_flops)
            problem = self._check_output(x, point)
            if problem:
                point |= {"status": "error", "error": problem}
                return point, self._layer_rows(records, plans, work.module_flops)
            result = profile(model, x, self._settings(trace_path), self.gpu)
        stats = result.stats
        point |= stats | result.memory | {
            "status": "ok", "error": None, "target_met": result.timing.target_met,
            "achieved_tflops": work.flops / (stats["p50_ms"] / 1e3) / 1e12,
        }
        if on_gpu:
            point |= launch_columns(result.timing) | {"cuda_graph": result.cuda_graph}
            if result.graph_error:
                log.warning("input size %d: the forward cannot be captured in a CUDA graph, timed eagerly: %s",
                            size, result.graph_error)
        if result.energy is not None:
            point |= result.energy.columns() | {"idle_power_w": self.idle_power_w}
        layers = self._layer_rows(result.layers, plans, work.module_flops)
        point["conv_coverage"] = sum(r["mean_ms"] for r in layers) / stats["p50_ms"] if layers else None
        point |= self._model_roofline(x, work.flops, layers, result.memory)
        return point, layers

    def _settings(self, trace_path: Path | None) -> ProfileSettings:
        s = self.spec.stage
        return ProfileSettings(self.policy, s.layer_iters, s.energy_window_s, trace_path, graph=self.spec.graph)

    def _model_roofline(self, x: torch.Tensor, flops: int, layers: list[Row], memory: Row) -> Row:
        """Model-level traffic estimate: weights once, the input, and each conv layer's output once."""
        param_bytes = sum(p.numel() * p.element_size() for p in self.model.parameters())
        activations = sum(r["out_channels"] * r["out_h"] * r["out_w"] for r in layers) * x.shape[0] * x.element_size()
        intensity, bound = roofline.verdict(flops, param_bytes + x.numel() * x.element_size() + activations,
                                            self.spec.gpu.spec, self.spec.dtype, self.math)
        peak = memory.get("peak_allocated_bytes")
        return {
            "param_bytes": param_bytes,
            "activation_bytes": peak - param_bytes if peak is not None else None,
            "arithmetic_intensity": intensity,
            "roofline_bound": bound,
        }

    # -- before timing ----------------------------------------------------------------------------------
    def _plan(self, forward: Callable[[], torch.Tensor]) -> list[LayerRecord]:
        """One forward that decides what runs each layer at this shape; returns the layers it saw."""
        with LayerProbe(self.model, self.device) as probe:
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

    def _check_output(self, x: torch.Tensor, point: Row) -> str | None:
        """Finite output, and (where due) within tolerance of the baseline's; fills the error columns."""
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
        tolerance = self.spec.tolerance.get(self.tolerance_key)
        point |= {"max_abs_err": abs_err, "max_rel_err": rel_err, "verified": tolerance is None or rel_err <= tolerance}
        if not point["verified"]:
            return (
                f"verification failed: max|y - y_torch| / max|y_torch| = {rel_err:.3g} exceeds the "
                f"{self.tolerance_key} tolerance {tolerance:g} (max abs error {abs_err:.3g})"
            )
        return None

    # -- rows ---------------------------------------------------------------------------------------------
    def _layer_rows(self, records: list[LayerRecord], plans: list[LayerPlan], module_flops: dict[str, int]) -> list[Row]:
        calls: dict[str, int] = {}
        for rec in records:
            calls[rec.name] = calls.get(rec.name, 0) + 1
        rows = []
        for rec, plan in zip(records, plans):
            flops = module_flops.get(rec.name)
            flops = flops // calls[rec.name] if flops is not None else None
            nbytes = roofline.conv_bytes(rec.in_shape, rec.out_shape, rec.module.weight.numel(), self.spec.dtype)
            intensity, bound = roofline.verdict(flops, nbytes, self.spec.gpu.spec, self.spec.dtype, plan.math or self.math)
            rows.append(
                {
                    "layer_index": rec.index, "layer_name": rec.name, **conv_geometry(rec.module),
                    "in_h": rec.in_shape[2], "in_w": rec.in_shape[3],
                    "out_h": rec.out_shape[2], "out_w": rec.out_shape[3],
                    "algo_requested": plan.algo_requested, "algo_used": plan.algo_used,
                    "backend": plan.backend, "status": plan.status, "workspace_bytes": plan.workspace_bytes,
                    "math_type": plan.math or self.math, "compute_type": plan.compute_type, "detail": plan.detail,
                    **(rec.summary() if rec.times_ms else {}),
                    "flops": flops, "bytes": nbytes, "arithmetic_intensity": intensity, "roofline_bound": bound,
                }
            )
        total = sum(r.get("mean_ms") or 0.0 for r in rows)
        for r in rows:
            r["share_of_model"] = r["mean_ms"] / total if r.get("mean_ms") is not None and total > 0 else None
        return rows

