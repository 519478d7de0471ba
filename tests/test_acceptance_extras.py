"""The checks of the extra runs, of timing and of layers rows, over constructed rows."""

from __future__ import annotations

from pathlib import Path

from harness import acceptance as acc
from harness.acceptance import (
    FAIL,
    INFO,
    PASS,
    check_energy,
    check_guess_choices,
    check_guess_vs_torch,
    check_launch_bound,
    check_oom,
    check_repeat,
    check_unsupported_layers,
)
from tests.acceptance_rows import (
    energy_point,
    layer,
    point,
    sweep_rows,
)

# ---- checks of the extra runs and of layers ---------------------------------------------------------------


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
    assert check.verdict == INFO and f"1 of {len(rows)}" in check.figure
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
