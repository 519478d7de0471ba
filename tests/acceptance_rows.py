"""Constructed rows for the acceptance tests: point and layer rows as the runner writes them on a GPU, the
evidence of a healthy run, and the helpers the acceptance test modules share."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness import acceptance as acc
from harness.acceptance import (
    BASE,
    CONFIGS,
    Check,
    Config,
    Evidence,
    Job,
    JobResult,
    SuiteReport,
)

REPO = Path(__file__).resolve().parent.parent
H100 = "NVIDIA H100 80GB HBM3"


# ---- constructed rows -----------------------------------------------------------------------------------------


def point(
    model: str = "resnet50", algo: str = "guess", size: int = 224, batch: int = 1, config: Config = BASE, **columns: Any
) -> dict[str, Any]:
    """A point row as the runner writes it on a GPU: ok, verified, steady."""
    row = {
        "run_id": f"run-{model}-{algo}-{config.label}",
        "stage": "sanity",
        "gpu": "local",
        "model": model,
        "algo": algo,
        "device": "cuda",
        "device_name": H100,
        "input_size": size,
        "batch_size": batch,
        "dtype": config.dtype,
        "layout": config.layout,
        "math_type": config.math,
        "fallback_policy": config.fallback,
        "status": "ok",
        "error": None,
        "backend": "torch" if algo == "torch" else "cudnn",
        "verified": None if algo == "torch" else True,
        "max_abs_err": None if algo == "torch" else 1e-5,
        "max_rel_err": None if algo == "torch" else 2e-6,
        "n": 30,
        "p50_ms": 2.0,
        "cv": 0.01,
        "ci95_low_ms": 1.99,
        "ci95_high_ms": 2.01,
        "algo_fallback_layers": 0,
        "launch_bound": False,
        "host_p50_ms": 0.3,
        "host_issue_ms": 0.2,
        "cuda_graph": True,
        "workspace_bytes": 0,
        "energy_method": "none",
        "torch_version": "2.14.1",
        "cuda_version": "12.8",
        "cudnn_version": "91000",
        "driver_version": "570.86.15",
        "hostname": "gpu01",
        "git_commit": "abc123",
    }
    return row | columns


def energy_point(counter: float = 1.0, integral: float = 1.04, method: str = "nvml_counter") -> dict[str, Any]:
    return point(
        algo="torch",
        energy_per_inference_j=counter,
        energy_integral_per_inference_j=integral,
        energy_method=method,
        energy_window_s=5.01,
        energy_windows=3,
        energy_inferences=7500,
        dynamic_energy_per_inference_j=counter * 0.6,
        dynamic_energy_ci95_low_j=counter * 0.58,
        dynamic_energy_ci95_high_j=counter * 0.62,
        idle_power_after_w=71.0,
        steady_state_s=12.0,
        steady_state_reached=True,
        cooldown_s=4.0,
        cooldown_reached=True,
        sm_clock_min_mhz=1755.0,
        sm_clock_p50_mhz=1980.0,
        temperature_max_c=61.0,
        throttled=False,
        reasons_by_pass="none",
        telemetry_samples=400,
        idle_power_w=70.0,
        power_mean_w=350.0,
        sm_clock_mhz=1980.0,
        temperature_c=55.0,
        throttle_reasons="none",
    )


def sweep_rows(models=("resnet50",), sizes=(224,), configs=CONFIGS) -> list[dict[str, Any]]:
    return [point(m, a, s, config=c) for c in configs for m in models for s in sizes for a in acc.ALGOS]


def layer(algo: str, used: str, status: str = "ok", run_id: str = "r1", detail: str | None = None, **kw: Any) -> dict:
    return {
        "run_id": run_id,
        "model": "resnet50",
        "algo": algo,
        "input_size": 224,
        "dtype": "float32",
        "math_type": "fma",
        "layer_name": "conv1",
        "algo_requested": algo,
        "algo_used": used,
        "backend": "cudnn",
        "status": status,
        "detail": detail,
    } | kw


def job_result(phase: str, rows: list[dict], outcome: str = "completed", **job: Any) -> JobResult:
    j = Job(phase, job.get("model", "resnet50"), job.get("algo", "guess"), (224,), job.get("config", BASE))
    return JobResult(j, "python -m harness ...", outcome, None, rows[0]["run_id"] if rows else None, rows)


def good_evidence() -> Evidence:
    tests = SuiteReport(3, 0, 0, [("tests.test_cudnn::test_a", "passed", "")] * 3, returncode=0)
    sweep = sweep_rows(models=("resnet50", "vgg16"))
    jobs = [job_result("sweep", [r]) for r in sweep]
    jobs += [
        job_result("eager", [point(m, a, cuda_graph=False, p50_ms=6.0 if a == "guess" else 2.0)])
        for m in ("resnet50", "vgg16")
        for a in ("guess", "torch")
    ]  # 3x eagerly: information, not a failure
    jobs.append(job_result("repeat", [point(p50_ms=2.02)]))
    jobs.append(job_result("energy", [energy_point()]))
    jobs.append(
        job_result(
            "oom",
            [
                point("vgg16", "torch", batch=1),
                point("vgg16", "torch", batch=16384, status="oom", error="CUDA out of memory"),
            ],
        )
    )
    layers = [
        layer("guess", "implicit_precomp_gemm", run_id=sweep[7]["run_id"]),
        layer("fft", "fft", status="unsupported", run_id="x", detail="CUDNN_STATUS_NOT_SUPPORTED: stride 2"),
    ]
    return Evidence(tests, jobs, layers)


def verdicts(checks: list[Check]) -> dict[str, str]:
    return {c.name: c.verdict for c in checks}
