"""The acceptance command: its plan, its checks over constructed rows (good ones pass, bad ones fail), the JUnit
parser, the Markdown, the refusal without a GPU, and its whole flow with the GPU work faked. On a GPU, one
real quick run (``test_quick_acceptance_on_gpu``)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch
from rich.console import Console

from harness import acceptance as acc
from harness.acceptance import (
    BASE,
    CONFIGS,
    FAIL,
    INFO,
    PASS,
    Check,
    Config,
    Evidence,
    Job,
    JobResult,
    SuiteReport,
    as_rows,
    check_correctness,
    check_cv,
    check_energy,
    check_errors,
    check_gpu_tests,
    check_guess_choices,
    check_guess_vs_torch,
    check_jobs,
    check_launch_bound,
    check_oom,
    check_repeat,
    check_support,
    check_unsupported_layers,
    evaluate,
    parse_junit,
    render_markdown,
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
        "ci95_low_ms": 1.98,
        "ci95_high_ms": 2.02,
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
        energy_window_s=3.01,
        energy_inferences=1500,
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


# ---- plan -----------------------------------------------------------------------------------------------------


def test_the_plan_covers_every_algorithm_cudnn_runs_and_fits_the_budget():
    plan = acc.make_plan(quick=False)
    assert "direct" not in plan.algos and "torch" in plan.algos and len(plan.algos) == 9
    assert set(plan.models) == {"vgg16", "resnet50", "alexnet"} and len(plan.sizes) == 2
    assert len(plan.sweep_jobs()) == 3 * 9 * 4 and plan.points() == 216
    assert {c.label for c in plan.configs} == {
        "float32 fma fallback=none",
        "float32 fma fallback=torch",
        "float32 tensor_op fallback=none",
        "float16 tensor_op fallback=none",
    }
    assert acc.estimate_s(plan) < 600
    quick = acc.make_plan(quick=True)
    assert len(quick.models) == len(quick.sizes) == 1 and quick.points() == 36
    assert acc.estimate_s(quick) < acc.estimate_s(plan)
    # the "same point twice" run repeats a point that both sweeps measure
    repeat = next(j for j in acc.extra_jobs(acc.make_plan(False)) if j.phase == "repeat")
    for p in (plan, quick):
        assert any(
            j.model == repeat.model
            and j.algo == repeat.algo
            and j.config == repeat.config
            and set(repeat.sizes) <= set(j.sizes)
            for j in p.sweep_jobs()
        )


def test_each_job_sets_each_key_once_with_short_points(tmp_path: Path):
    for job in [*acc.make_plan(False).sweep_jobs(), *acc.extra_jobs(acc.make_plan(False))]:
        overrides = job.overrides(tmp_path / "results")
        keys = [o.split("=", 1)[0] for o in overrides]
        assert len(keys) == len(set(keys)), overrides
        assert {
            "stage=sanity",
            "stage.max_iters=30",
            "stage.verify_every_point=true",
            "gpu=local",
            "device=cuda",
        } <= set(overrides)
    energy, oom = (next(j for j in acc.extra_jobs(acc.make_plan(False)) if j.phase == p) for p in ("energy", "oom"))
    assert "stage.energy_window_s=3" in energy.overrides(tmp_path) and "remeasure=true" in energy.overrides(tmp_path)
    assert "batch_size=[1,16384]" in oom.overrides(tmp_path) and oom.points() == 2


@pytest.mark.parametrize("results", ["/tmp/acceptance-20250101T000000Z/results", "/tmp/a folder/it's here"])
def test_composition_without_hydra_equals_hydras(results: str):
    for job in [acc.make_plan(False).sweep_jobs()[-1], *acc.extra_jobs(acc.make_plan(False))]:
        overrides = job.overrides(Path(results))
        assert acc.compose_plain(overrides) == acc.compose_config(overrides)


def test_jobs_become_the_specs_they_describe(tmp_path: Path):
    oom = acc.prepare_job(next(j for j in acc.extra_jobs(acc.make_plan(False)) if j.phase == "oom"), tmp_path / "r")
    spec = oom.spec
    assert (spec.model.name, spec.algo, spec.stage.sizes, spec.batch_sizes) == ("vgg16", "torch", (224,), (1, 16384))
    assert (spec.device, spec.dtype, spec.math, spec.fallback, spec.remeasure) == (
        "cuda",
        "float32",
        "fma",
        "none",
        True,
    )
    assert (spec.stage.min_iters, spec.stage.max_iters, spec.stage.max_time_s, spec.stage.layer_iters) == (
        10,
        30,
        1.0,
        8,
    )
    assert spec.stage.energy_window_s == 0 and spec.stage.verify_every_point and spec.results_dir == tmp_path / "r"
    assert oom.record.command.startswith("python -m harness ") and "model=vgg16" in oom.record.command
    half = acc.prepare_job(Job("sweep", "alexnet", "winograd", (128, 224), CONFIGS[3]), tmp_path / "r").spec
    assert (half.dtype, half.math, half.stage.sizes, half.batch_sizes) == ("float16", "tensor_op", (128, 224), (1,))


# ---- the GPU test suite ------------------------------------------------------------------------------------------

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="1" failures="1" skipped="1" tests="5">
<testcase classname="tests.test_cudnn" name="test_ok[vgg16]" time="1.0"/>
<testcase classname="tests.test_cudnn" name="test_ok[resnet50]" time="1.0"/>
<testcase classname="tests.test_cudnn" name="test_bad" time="0.1"><failure message="AssertionError: 3 != 4">long trace</failure></testcase>
<testcase classname="tests.test_energy" name="test_nvml" time="0.0"><skipped type="pytest.skip" message="no NVML">skip</skipped></testcase>
<testcase classname="tests.test_x" name="test_fixture" time="0.0"><error message="fixture 'gpu' not found">e</error></testcase>
</testsuite></testsuites>"""


def test_junit_counts_and_names():
    report = parse_junit(JUNIT)
    assert (report.passed, report.failed, report.skipped) == (2, 2, 1)
    assert report.names("failed") == [
        "tests.test_cudnn::test_bad: AssertionError: 3 != 4",
        "tests.test_x::test_fixture: fixture 'gpu' not found",
    ]
    assert report.names("skipped") == ["tests.test_energy::test_nvml: no NVML"]
    check = check_gpu_tests(report)
    assert check.verdict == FAIL and "2 passed, 2 failed, 1 skipped" in check.figure
    assert {d["test"] for d in check.details} >= {"tests.test_cudnn::test_bad", "tests.test_energy::test_nvml"}


def test_gpu_tests_pass_only_when_all_ran_and_passed():
    assert check_gpu_tests(SuiteReport(5, 0, 0, returncode=0)).verdict == PASS
    assert check_gpu_tests(SuiteReport(5, 0, 1, returncode=0)).verdict == FAIL  # a skip fails
    assert check_gpu_tests(SuiteReport(5, 1, 0, returncode=1)).verdict == FAIL
    assert check_gpu_tests(SuiteReport(0, 0, 0, returncode=5)).verdict == FAIL  # nothing ran
    timed_out = check_gpu_tests(SuiteReport(note="pytest did not finish within 300 s"))
    assert timed_out.verdict == FAIL and "did not finish" in timed_out.figure
    assert check_gpu_tests(SuiteReport(5, 0, 0, returncode=2)).verdict == FAIL  # interrupted


def test_the_gpu_test_command_leaves_out_this_modules_own_gpu_test(tmp_path: Path):
    cmd = acc.gpu_test_command(tmp_path / "j.xml")
    assert cmd[1:6] == ["-m", "pytest", "-m", "gpu", "-q"] and f"--junitxml={tmp_path / 'j.xml'}" in cmd
    assert cmd[cmd.index("--deselect") + 1] == acc.SELF_TEST
    assert f"tests/{Path(__file__).name}::{test_quick_acceptance_on_gpu.__name__}" == acc.SELF_TEST


# ---- checks: good rows pass, bad rows fail ---------------------------------------------------------------------


def test_good_evidence_passes_every_check():
    checks = evaluate(good_evidence())
    assert all(c.verdict in (PASS, INFO) for c in checks), [(c.name, c.figure) for c in checks if c.verdict == FAIL]
    assert acc.passed(checks)
    assert {c.name for c in checks if c.verdict == INFO} == {
        "support matrix",
        "guess: cuDNN's choices",
        "layers not run as asked",
        "launch-bound points",
        "guess / torch (eager)",
        "cv per point (eager)",
    }


def test_errors_fail_and_are_listed():
    rows = sweep_rows()
    assert check_errors(rows).verdict == PASS
    rows[3] |= {"status": "error", "error": "CudnnError: CUDNN_STATUS_EXECUTION_FAILED"}
    check = check_errors(rows)
    assert check.verdict == FAIL and "1 of 36" in check.figure
    assert (
        "CUDNN_STATUS_EXECUTION_FAILED" in check.details[0]["error"]
        and "[float32 fma fallback=none]" in check.details[0]["point"]
    )


def test_correctness_fails_on_an_unverified_point_and_reports_the_worst_error_per_config():
    rows = sweep_rows()
    rows[0]["max_rel_err"] = 4e-4
    check = check_correctness(rows)
    assert check.verdict == PASS and "float32 fma fallback=none: 0.0004" in check.figure
    assert "float16 tensor_op fallback=none: 2e-06" in check.figure
    assert all(d["algo"] != "torch" for d in check.details)
    not_checked = [dict(r) for r in rows]
    not_checked[1]["verified"] = None  # an ok point nobody compared with the baseline
    assert check_correctness(not_checked).verdict == FAIL
    beyond = rows + [
        point(algo="fft", size=128, status="error", verified=False, max_rel_err=0.5, error="verification failed: ...")
    ]
    check = check_correctness(beyond)
    assert check.verdict == FAIL and "1 point(s) not verified" in check.figure
    fft = next(d for d in check.details if d["algo"] == "fft")
    assert (
        fft["float32 fma fallback=none"] == "2e-06 (NOT VERIFIED: 1 of 2)"
        and fft["float16 tensor_op fallback=none"] == "2e-06"
    )
    assert [d["algo"] for d in check.details][:2] == ["implicit_gemm", "implicit_precomp_gemm"]  # cuDNN's order


def test_support_matrix_says_what_ran_per_config():
    rows = sweep_rows()
    for r in rows:
        if r["algo"] == "fft_tiling" and r["fallback_policy"] == "none":
            r |= {"status": "unsupported", "error": "3 of 53 conv layers cannot run fft_tiling"}
        if r["algo"] == "fft_tiling" and r["fallback_policy"] == "torch":
            r["algo_fallback_layers"] = 3
    check = check_support(rows)
    assert check.verdict == INFO and check.figure == "ok 33, unsupported 3 of 36 points"
    row = next(d for d in check.details if d["algo"] == "fft_tiling")
    assert row["float32 fma fallback=none"] == "unsupported"
    assert row["float32 fma fallback=torch"] == "ok (fallback layers 3)"
    assert list(row)[:3] == ["model", "algo", "float32 fma fallback=none"]


def test_cv_of_3_percent_fails():
    rows = sweep_rows()
    assert check_cv(rows).verdict == PASS and "36 of 36" in check_cv(rows).figure
    rows[5]["cv"] = 0.03
    check = check_cv(rows)
    assert check.verdict == FAIL and "35 of 36" in check.figure and "worst 3.00%" in check.figure
    assert len(check.details) == 1 and check.details[0]["cv"] == "3.00%"
    assert check_cv([point(status="unsupported", cv=None)]).verdict == FAIL  # nothing measured


def test_same_point_twice_within_3_percent():
    first = sweep_rows()
    assert check_repeat(first, [point(p50_ms=2.05)]).verdict == PASS  # ratio 1.025
    check = check_repeat(first, [point(p50_ms=2.1)])  # ratio 1.05
    assert check.verdict == FAIL and "ratio 1.05" in check.figure
    assert check_repeat(first, [point(p50_ms=1.9)]).verdict == FAIL  # 0.95
    assert check_repeat(first, []).verdict == FAIL
    assert check_repeat(first, [point(status="error", p50_ms=None)]).verdict == FAIL


def test_the_point_again_in_three_processes_reports_their_spread(tmp_path: Path):
    job = next(j for j in acc.extra_jobs(acc.make_plan(False)) if j.phase == "repeat")
    assert "repeats=3" in job.overrides(tmp_path) and job.points() == 3
    assert acc.prepare_job(job, tmp_path / "r").spec.repeats == 3
    first = sweep_rows()
    again = [point(p50_ms=v, repeat=i) for i, v in enumerate((2.00, 2.02, 2.04))]
    check = check_repeat(first, again)
    assert check.verdict == PASS and len(check.details) == 3
    assert "in 3 process(es) 2 / 2.02 / 2.04 ms" in check.figure and "spread between processes 2.00%" in check.figure
    assert "between-process sd" in check.figure
    assert check_repeat(first, again + [point(p50_ms=2.2, repeat=3)]).verdict == FAIL  # one process 10% off


def test_guess_over_torch_above_1_05_fails():
    rows = sweep_rows(models=("resnet50", "vgg16"), sizes=(128, 224))
    for r in rows:
        if r["algo"] == "guess" and r["math_type"] == "tensor_op":
            r["p50_ms"] = 9.0  # other configurations do not count
    assert check_guess_vs_torch(rows).verdict == PASS
    slow = next(
        r
        for r in rows
        if r["algo"] == "guess"
        and r["model"] == "vgg16"
        and r["input_size"] == 128
        and r["math_type"] == "fma"
        and r["fallback_policy"] == "none"
    )
    slow["p50_ms"] = 2.14  # 1.07
    check = check_guess_vs_torch(rows)
    assert check.verdict == FAIL and "worst 1.070" in check.figure and len(check.details) == 4
    assert [d["verdict"] for d in check.details].count(FAIL) == 1
    assert [(d["model"], d["input size"]) for d in check.details] == [
        ("vgg16", 128),
        ("vgg16", 224),
        ("resnet50", 128),
        ("resnet50", 224),
    ]
    slow |= {"p50_ms": 2.0, "status": "error"}
    missing = check_guess_vs_torch(rows)
    assert missing.verdict == FAIL and "1 pair(s) without" in missing.figure


def test_guess_over_torch_is_judged_as_cuda_graphs_and_shown_eagerly():
    """The H100's first verdict: eager guess was 3.9x torch (the host issuing cuDNN's legacy calls), which says
    nothing of the GPU's time; the graph replays say that, and neither set of rows leaks into the other's check."""
    eager = [point("resnet50", a, p50_ms=10.6 if a == "guess" else 2.7, cuda_graph=False) for a in ("guess", "torch")]
    graphs = [point("resnet50", a, p50_ms=2.0 if a == "guess" else 1.95) for a in ("guess", "torch")]
    rows = eager + graphs
    slow, fast = check_guess_vs_torch(rows, graph=False), check_guess_vs_torch(rows)
    assert (slow.name, slow.verdict) == ("guess / torch (eager)", INFO) and "worst 3.926" in slow.figure
    assert (fast.name, fast.verdict) == ("guess / torch (CUDA graph)", PASS) and "worst 1.026" in fast.figure
    assert check_guess_vs_torch(eager).figure == "no pair" and check_guess_vs_torch(eager).verdict == FAIL
    graphs[0]["p50_ms"] = 2.2  # 1.128 as graphs: the goal is judged there
    assert check_guess_vs_torch(rows).verdict == FAIL


def test_energy_counter_and_integral_15_percent_apart_fails():
    good = check_energy([energy_point(1.0, 1.04)])
    assert good.verdict == PASS and "4.00% apart" in good.figure
    assert good.details[0]["idle_power_w"] == "70" and good.details[0]["throttle_reasons"] == "none"
    assert check_energy([energy_point(1.0, 1.15)]).verdict == FAIL
    assert check_energy([energy_point(1.0, 0.85)]).verdict == FAIL
    no_counter = check_energy([energy_point(1.0, 1.0, method="nvml_power_integral")])
    assert no_counter.verdict == FAIL and "no NVML energy counter" in no_counter.figure
    assert check_energy([point(algo="torch", energy_method="none")]).verdict == FAIL
    assert check_energy([]).verdict == FAIL


def test_oom_check_needs_the_oom_row_the_ok_row_and_a_completed_job():
    ok, oom = (
        point("vgg16", "torch", batch=1),
        point("vgg16", "torch", batch=16384, status="oom", error="CUDA out of memory"),
    )
    assert check_oom([ok, oom], completed=True).verdict == PASS
    missing = check_oom([ok], completed=True)
    assert missing.verdict == FAIL and "batch 16384: missing" in missing.figure
    assert check_oom([ok, oom | {"status": "error"}], completed=True).verdict == FAIL
    assert check_oom([ok | {"status": "oom"}, oom], completed=True).verdict == FAIL
    assert check_oom([ok, oom], completed=False).verdict == FAIL


def test_launch_bound_points_are_listed():
    rows = sweep_rows()
    rows[2] |= {"launch_bound": True, "host_p50_ms": 1.9, "host_issue_ms": 1.7}
    check = check_launch_bound(rows)
    assert check.verdict == INFO and "1 of 36" in check.figure
    assert check.details[0]["host_issue ms"] == "1.7" and "resnet50" in check.details[0]["point"]


def test_layer_rows_give_guess_choices_and_why_layers_did_not_run():
    by_run = {"r1": "float32 fma fallback=none", "r2": "float16 tensor_op fallback=none"}
    layers = [
        layer(
            "guess",
            "implicit_precomp_gemm",
            layer_index=1,
            layer_name="layer1.0.conv1",
            in_channels=64,
            out_channels=64,
            kernel_h=1,
            kernel_w=1,
            stride_h=1,
            groups=1,
            in_h=56,
            in_w=56,
        ),
        layer("guess", "implicit_precomp_gemm", layer_index=0, layer_name="conv1"),
        layer("guess", "winograd", layer_index=2, layer_name="layer1.0.conv2"),
        layer("guess", "implicit_gemm", layer_index=0, layer_name="conv1", run_id="r2"),
        layer("fft", "fft", "unsupported", detail="CUDNN_STATUS_NOT_SUPPORTED: stride 2"),
        layer("fft", "fft", "unsupported", detail="CUDNN_STATUS_NOT_SUPPORTED: stride 2"),
        layer("gemm", "torch", "fallback", detail="workspace query failed"),
    ]
    choices = check_guess_choices(layers, by_run)
    assert choices.verdict == INFO and choices.figure == "layers: implicit_precomp_gemm 2, winograd 1, implicit_gemm 1"
    assert [d["layer"] for d in choices.details] == ["conv1", "layer1.0.conv1", "layer1.0.conv2"]  # in model order
    assert choices.details[0] == {
        "model": "resnet50",
        "input size": 224,
        "layer": "conv1",
        "geometry": "-",
        "float32 fma fallback=none": "implicit_precomp_gemm",
        "float16 tensor_op fallback=none": "implicit_gemm",
    }
    assert choices.details[1]["geometry"] == "64->64 k1x1 s1 g1 in 56x56"
    assert choices.details[2]["float16 tensor_op fallback=none"] == "-"
    why = check_unsupported_layers(layers, by_run)
    assert why.verdict == INFO and why.figure == "3 layer rows in 2 group(s)"
    assert {(d["algo"], d["layers"]) for d in why.details} == {("fft", 2), ("gemm", 1)}


def test_jobs_not_run_or_failed_fail():
    jobs = good_evidence().jobs
    assert check_jobs(jobs).verdict == PASS
    jobs[0] = JobResult(jobs[0].job, "cmd", "failed", "ConfigError: algo=x needs cuDNN")
    jobs[1] = JobResult(jobs[1].job, "cmd")  # not run: the time budget was spent
    check = check_jobs(jobs)
    assert check.verdict == FAIL and "1 not run (time budget)" in check.figure
    assert {d["outcome"] for d in check.details} == {"failed", "not run"}


def test_rows_read_back_from_the_store_give_the_same_checks(tmp_path: Path):
    """Rows written with the results schema and read back (pyarrow, hive) evaluate like the runner's dicts."""
    from harness.results import read
    from harness.results.layout import Partition
    from harness.results.store import ResultStore

    rows = sweep_rows()
    rows[4]["cv"] = 0.015  # one worst point, whatever order the rows come back in
    runs: dict[str, list[dict]] = {}
    for r in rows:  # a run per model x algo x configuration, as the sweep makes them
        r["run_id"] = f"run{list(runs).index(r['run_id']) if r['run_id'] in runs else len(runs)}"
        runs.setdefault(r["run_id"], []).append(r)
    for run_id, group in runs.items():
        store = ResultStore(tmp_path, Partition("sanity", "local", group[0]["model"], group[0]["algo"]), run_id)
        store.open()
        for r in group:
            store.write_point(r, [])
        store.compact()
    back = as_rows(read(tmp_path, "points"))
    assert len(back) == len(rows) and all(isinstance(r["verified"], (bool, type(None))) for r in back)
    for check in (check_cv, check_correctness, check_guess_vs_torch, check_errors):
        assert check(back).figure == check(rows).figure and check(back).verdict == check(rows).verdict
    assert check_support(back).details == check_support(rows).details
    nan = as_rows(pd.DataFrame([point(cv=float("nan"))]))
    assert nan[0]["cv"] is None


# ---- Markdown -------------------------------------------------------------------------------------------------


def test_markdown_has_environment_commands_checks_and_details():
    checks = evaluate(good_evidence())
    checks[8] = Check("cv per point", "cv <= 2.00%", "35 of 36 | worst 3.00%", FAIL, ({"point": "p", "cv": "3.00%"},))
    env = acc.environment_from_rows(good_evidence().rows()) | {
        "date": "2025-06-01",
        "commands": ["python -m harness.acceptance", "python -m pytest -m gpu", "python -m harness a=b"],
    }
    text = render_markdown(checks, env)
    assert text.startswith(f"# GPU acceptance: {H100}, 2025-06-01")
    assert "Verdict: **FAIL: cv per point**" in text
    for fact in ("570.86.15", "2.14.1", "| CUDA | 12.8 |", "91000", "python -m pytest -m gpu", "python -m harness a=b"):
        assert fact in text, fact
    assert "| check | goal | figure | verdict |" in text
    assert "| cv per point | cv <= 2.00% | 35 of 36 \\| worst 3.00% | FAIL |" in text
    assert "| errors | no point with status error | 0 of " in text and "| PASS |" in text
    for c in checks:
        assert f"### {c.name}: {c.verdict}" in text
    assert "| model | algo | float32 fma fallback=none |" in text  # the support matrix
    assert "| torch p50 ms | guess p50 ms | ratio |" in text.replace("| model | input size | batch ", "")


def test_environment_slug_and_paths(tmp_path: Path):
    env = acc.environment_from_rows([point(), point(driver_version=None), {"status": "oom"}])
    assert env["device_name"] == H100 and env["driver_version"] == "570.86.15" and env["cudnn_version"] == "91000"
    assert acc.device_slug(H100) == "nvidia-h100-80gb-hbm3"
    assert acc.device_slug("NVIDIA H200 NVL (MIG 1g.18gb)") == "nvidia-h200-nvl-mig-1g-18gb"
    first = acc.verdict_path(tmp_path, H100, "2025-06-01")
    assert first.name == "nvidia-h100-80gb-hbm3-2025-06-01.md"
    first.write_text("x")
    assert acc.verdict_path(tmp_path, H100, "2025-06-01").name == "nvidia-h100-80gb-hbm3-2025-06-01-2.md"


# ---- the command ----------------------------------------------------------------------------------------------


def _snapshot() -> set[Path]:
    return (
        set((REPO / "docs").rglob("*"))
        | set(REPO.glob("jobs/acceptance-*"))
        | set(Path.cwd().glob("jobs/acceptance-*"))
    )


@pytest.mark.parametrize("args", [[], ["--quick"]])
def test_without_cuda_it_refuses_with_what_this_machine_has(args, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    before = _snapshot()
    out = tmp_path / "out"
    argv = args + (["--out", str(out), "--jobs-dir", str(tmp_path / "jobs")] if args else [])
    assert acc.main(argv) == 2
    err = capsys.readouterr().err
    assert "needs a CUDA GPU" in err and "no CUDA GPU, only the CPU" in err and "Nothing was run or written" in err
    assert not out.exists() and not (tmp_path / "jobs").exists() and _snapshot() == before


def _fake_run_job(prepared: acc.PreparedJob, on_point) -> JobResult:
    """What the runner gives on a healthy GPU, without one: a good row per planned point."""
    record, job = prepared.record, prepared.record.job
    rows = []
    for batch in job.batches:
        for size in job.sizes:
            row = point(job.model, job.algo, size, batch, job.config, run_id=f"run-{len(rows)}-{job.label}")
            if job.phase == "eager":
                row["cuda_graph"] = False
            if job.phase == "energy":
                row |= {
                    k: v
                    for k, v in energy_point().items()
                    if k.startswith(("energy", "idle", "power", "sm_", "temp", "thr"))
                }
            if batch > 1:
                row |= {"status": "oom", "error": "CUDA out of memory"}
            rows.append(row)
            on_point((size, batch, job.config.dtype), row)
    record.outcome, record.run_id, record.rows = "completed", rows[0]["run_id"], rows
    return record


def test_the_whole_command_with_the_gpu_work_faked(tmp_path, monkeypatch, capsys):
    """Everything but the GPU: plan, specs, progress, evaluation, the file, the exit code, logging restored."""
    monkeypatch.setattr(acc, "cuda_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: H100)
    monkeypatch.setattr(acc, "run_gpu_tests", lambda junit, output, timeout: SuiteReport(4, 0, 0, returncode=0))
    monkeypatch.setattr(acc, "run_job", _fake_run_job)
    handlers = list(logging.getLogger().handlers)
    out = tmp_path / "out"
    code = acc.main(["--quick", "--out", str(out), "--jobs-dir", str(tmp_path / "jobs")])
    captured = capsys.readouterr()
    assert code == 0, captured.out
    (written,) = out.glob("*.md")
    assert written.name.startswith("nvidia-h100-80gb-hbm3-") and written.name.endswith(".md")
    text = written.read_text()
    assert "Verdict: **PASS** (quick run: one model, one size)" in text
    assert "python -m harness.acceptance --quick --out" in text and "-m pytest -m gpu -q -rs --junitxml=" in text
    assert text.count("python -m harness stage=sanity") == 36 + 2 + 3 and "'stage.sizes=[224]'" in text
    (folder,) = (tmp_path / "jobs").glob("acceptance-*")
    assert str(folder / "results") in text and (folder / "acceptance.log").is_file()
    assert "verdict: PASS" in captured.out and str(written) in captured.out.replace("\n", "")
    assert f"about {acc.estimate_s(acc.make_plan(True)) / 60:.0f} min" in captured.out  # the estimate
    assert logging.getLogger().handlers == handlers


def test_a_sweep_past_its_budget_starts_no_more_jobs(tmp_path, monkeypatch):
    monkeypatch.setattr(acc, "run_job", _fake_run_job)
    prepared = [acc.prepare_job(j, tmp_path) for j in acc.make_plan(True).sweep_jobs()[:3]]
    from rich.progress import Progress

    with Progress(console=Console(file=open(os.devnull, "w"))) as bar:
        late = acc._run_jobs(prepared, bar, "sweep", deadline=0.0)
        on_time = acc._run_jobs(
            [acc.prepare_job(j, tmp_path) for j in acc.make_plan(True).sweep_jobs()[:3]], bar, "sweep", deadline=None
        )
    assert [j.outcome for j in late] == ["not run"] * 3 and [j.outcome for j in on_time] == ["completed"] * 3


def test_a_job_that_raises_is_recorded_and_the_rest_goes_on(tmp_path, monkeypatch):
    from harness.errors import ConfigError
    from harness.run import runner

    def boom(spec, **kw):
        raise ConfigError("algo=gemm needs cuDNN: libcudnn.so.9 not found")

    monkeypatch.setattr(runner, "run", boom)
    record = acc.run_job(acc.prepare_job(acc.make_plan(True).sweep_jobs()[2], tmp_path), lambda k, p: None)
    assert record.outcome == "failed" and "libcudnn.so.9 not found" in record.error and record.rows == []


# ---- on a GPU -------------------------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.slow
def test_quick_acceptance_on_gpu(tmp_path: Path):
    if os.environ.get(acc.INSIDE_ENV):  # the acceptance command's own test run deselects this test; never recurse
        pytest.skip("inside python -m harness.acceptance")
    out = tmp_path / "out"
    code = acc.main(["--quick", "--out", str(out), "--jobs-dir", str(tmp_path / "jobs")])
    (written,) = out.glob("*.md")
    text = written.read_text()
    assert code in (0, 1) and "| check | goal | figure | verdict |" in text
    assert torch.cuda.get_device_name() in text


def test_rows_of_a_real_cpu_run_go_through_the_checks(tmp_path: Path):
    """The columns the checks read are the ones the runner writes: a real (CPU, reference backend) run."""
    from harness.config.spec import run_spec_from_dict
    from harness.run import runner

    overrides = [
        "model=resnet18",
        "algo=gemm",
        "device=cpu",
        "stage.sizes=[32]",
        "stage.warmup_iters=1",
        "stage.min_iters=3",
        "stage.max_iters=5",
        "stage.layer_iters=2",
        "stage.verify_every_point=true",
        f"results_dir={tmp_path}",
    ]
    result = runner.run(run_spec_from_dict(acc.compose_config(overrides)))
    rows = as_rows(result.points)
    assert [r["status"] for r in rows] == ["ok"]
    correctness = check_correctness(rows)
    assert correctness.verdict == PASS and correctness.details[0]["algo"] == "gemm"
    assert check_errors(rows).verdict == PASS and check_support(rows).details[0]["model"] == "resnet18"
    assert check_cv(rows).figure.startswith(("1 of 1", "0 of 1"))
    layers = acc.read_layers(tmp_path, {result.run_id})
    assert len(layers) == 20 and {r["algo_requested"] for r in layers} == {"gemm"}
    assert (
        acc.read_layers(tmp_path, {"another-run"}) == [] and acc.read_layers(tmp_path / "none", {result.run_id}) == []
    )
    env = acc.environment_from_rows(rows)
    assert env["torch_version"] == torch.__version__ and env["device_name"]
