"""The training suite of the acceptance command: its plan and budget, its checks' logic on constructed rows, and
the whole suite run on the CPU for real (``--cpu-smoke``: resnet18 at 32 px on the reference backend, the
training plan made with analysis.plans and run, the verdict written)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import acceptance as acc
from harness.acceptance import budget
from harness.acceptance.plan import (
    PROJECTION_GOAL,
    SUITES,
    TRAIN_TESTS,
    direction_algos,
    step_algos,
    training_extras,
    training_plan,
    training_plan_job,
)
from harness.acceptance.rows import FAIL, INFO, PASS
from harness.acceptance.suite import gpu_test_command
from harness.acceptance.training import TrainingPlanStep, make_arguments, setting_filters
from harness.acceptance.training_checks import (
    check_direction_support,
    check_plan_projection,
    check_training_capture,
    check_training_gradients,
    training_tests,
)
from tests.acceptance_rows import point

# ---- the plan and its budget ------------------------------------------------------------------------------------


def test_the_training_sweep_covers_every_algorithm_of_each_backward_direction_on_both_models():
    plan = training_plan(False)
    assert plan.models == ("resnet50", "vgg16") and plan.sizes == (224,) and plan.batches == (8,)
    data, filt = direction_algos("backward_data"), direction_algos("backward_filter")
    assert {"gemm", "implicit_gemm", "fft", "fft_tiling", "winograd", "winograd_nonfused"} <= set(data)
    assert "implicit_precomp_gemm" not in data and "winograd" not in filt  # no enum / documented not implemented
    assert {"implicit_precomp_gemm", "gemm", "implicit_gemm"} <= set(filt)
    assert data[-3:] == filt[-3:] == ("guess", "find", "torch")
    jobs = plan.sweep_jobs()
    assert plan.points() == len(jobs) == 2 * (len(data) + len(filt))
    directions = [dict(j.extra)["direction"] for j in jobs]
    assert directions == ["backward_data"] * (2 * len(data)) + ["backward_filter"] * (2 * len(filt))
    overrides = jobs[0].overrides(Path("r"))
    assert "direction=backward_data" in overrides and "fallback=guess" in overrides and "batch_size=8" in overrides


def test_the_training_steps_are_the_algorithms_every_direction_has_and_the_plan_runs_at_their_point(tmp_path):
    plan = training_plan(False)
    steps = training_extras(plan, False)
    assert [j.algo for j in steps] == list(step_algos()) and "find" not in step_algos()
    assert {j.model for j in steps} == {"resnet50"} and all(dict(j.extra)["direction"] == "train_step" for j in steps)
    run = training_plan_job(steps, tmp_path / "plan file.json")
    overrides = run.overrides(tmp_path / "r")
    assert run.algo == "per_layer" and "direction=train_step" in overrides
    assert f"plan='{tmp_path / 'plan file.json'}'" in overrides
    made = make_arguments(tmp_path, steps[0], tmp_path / "p.json")
    assert made[-6:] == ["--direction", "train_step", "--out", str(tmp_path / "p.json"), "--graph", "true"]
    smoke = training_extras(training_plan(False, cpu=True), False)
    assert [j.algo for j in smoke] == ["gemm", "torch"] and {j.model for j in smoke} == {"resnet18"}
    assert make_arguments(tmp_path, smoke[0], tmp_path / "p.json")[-2:] == ["--out", str(tmp_path / "p.json")]
    assert setting_filters(run) == ["--graph", "true"] and setting_filters(smoke[0]) == []  # a CPU row: no graph


def test_the_training_suite_fits_its_lease_and_runs_its_own_gpu_tests(tmp_path):
    suite = SUITES["training"]
    for quick in (False, True):
        plan = suite.sweep(quick)
        estimate = budget.estimate_s(plan, suite, quick)
        assert estimate < acc.DEFAULT_BUDGET_S, estimate
        extras = suite.extras(plan, quick)
        assert budget.plan_s(suite, extras) > budget.SECONDS_TRAINING_PLAN  # the plan's run counted too
    assert suite.tests == TRAIN_TESTS and all((Path(__file__).parent.parent / t).is_file() for t in TRAIN_TESTS)
    command = gpu_test_command(tmp_path / "j.xml", suite.tests)
    assert command[command.index("-m", 2) + 1] == "gpu" and command[-len(TRAIN_TESTS) :] == list(TRAIN_TESTS)
    assert gpu_test_command(tmp_path / "j.xml")[-1] == acc.SELF_TEST  # core: every GPU test


# ---- the checks on constructed rows -----------------------------------------------------------------------------


def _train(model: str, algo: str, direction: str, **columns) -> dict:
    row = point(model, algo, 224, 8, acc.Config("float32", "fma", "guess"))
    return row | {"direction": direction, "grad_ok": True, "grad_max_rel_err": 2e-6, "cuda_graph": True} | columns


def _layer(algo: str, direction: str, status: str = "ok", detail: str | None = None) -> dict:
    return {"algo": algo, "point_direction": direction, "direction": direction, "status": status, "detail": detail}


def test_support_per_direction_counts_calls_and_reasons_and_fails_a_missing_direction():
    points = [_train(m, a, "backward_data") for m in ("resnet50", "vgg16") for a in ("fft", "guess")]
    layers = [
        _layer("fft", "backward_data"),
        _layer("fft", "backward_data", "fallback", "CUDNN_STATUS_NOT_SUPPORTED: stride 2\nmore"),
        _layer("fft", "backward_data", "fallback", "CUDNN_STATUS_NOT_SUPPORTED: stride 2"),
        _layer("guess", "backward_data"),
    ]
    check = check_direction_support(points, layers)
    assert check.verdict == FAIL and "NO ok point in backward_filter" in check.figure
    fft = next(d for d in check.details if d["algo"] == "fft")
    assert (fft["calls ok"], fft["calls fallback"], fft["calls unsupported"]) == (1, 2, 0)
    assert fft["fallback reasons"] == "CUDNN_STATUS_NOT_SUPPORTED: stride 2 (2)"
    assert fft["resnet50"] == fft["vgg16"] == "ok"
    points += [_train("resnet50", "gemm", "backward_filter")]
    assert check_direction_support(points, [*layers, _layer("gemm", "backward_filter")]).verdict == PASS
    unsupported = [_train("resnet50", "gemm", "backward_filter", status="unsupported")]
    assert check_direction_support(points[:4] + unsupported, layers).verdict == FAIL


def test_gradients_fail_a_point_beyond_tolerance_or_unchecked_and_report_the_worst_per_direction():
    rows = [_train("resnet50", "gemm", d) for d in ("backward_data", "backward_filter", "train_step")]
    good = check_training_gradients(rows)
    assert good.verdict == PASS and "train_step: 2e-06" in good.figure
    bad = [*rows, _train("vgg16", "fft", "backward_filter", status="error", grad_ok=False, grad_max_rel_err=0.5)]
    check = check_training_gradients(bad)
    assert check.verdict == FAIL and "backward_filter: 0.5" in check.figure
    assert next(d for d in check.details if d["algo"] == "fft")["vgg16"] == "0.5 (NOT WITHIN TOLERANCE: 1 of 1)"
    assert check_training_gradients([*rows, _train("vgg16", "fft", "train_step", grad_ok=None)]).verdict == FAIL
    assert check_training_gradients([point()]).verdict == FAIL  # a forward row is no training point


def test_capture_is_judged_on_a_gpu_and_information_on_the_cpu():
    rows = [_train("resnet50", a, "train_step") for a in ("guess", "torch")]
    assert check_training_capture(rows).verdict == PASS
    eager = [*rows, _train("resnet50", "gemm", "train_step", cuda_graph=False, graph_error="capture failed: X")]
    check = check_training_capture(eager)
    assert check.verdict == FAIL and "2 of 3 ok points captured" in check.figure
    assert next(d for d in check.details if d["algo"] == "gemm")["resnet50"] == "eager 1/1: capture failed: X"
    assert check_training_capture(eager, judged=False).verdict == INFO
    calls = [*rows, _train("vgg16", "fft", "backward_data", cuda_graph=False, graph_error="capture failed: Y")]
    assert check_training_capture(calls).verdict == PASS  # the steps are judged; the calls' capture is shown
    assert "eager 1/1: capture failed: Y" in str(check_training_capture(calls).details)
    assert check_training_capture([_train("resnet50", "gemm", "backward_data")]).verdict == FAIL  # no step


def _projection(ratio: float) -> dict:
    return {
        "model": "resnet50",
        "input_size": 224,
        "batch_size": 8,
        "dtype": "float32",
        "baseline": "guess",
        "baseline_p50_ms": 40.0,
        "projected_ms": 36.0,
        "measured_ms": 36.0 * ratio,
        "measured_over_projected": ratio,
        "error_low": ratio * 0.99,
        "error_high": ratio * 1.01,
        "layers": 159,
        "unrun_layers": 0,
        "oracle_projected_ms": 36.0,
    }


def test_a_projection_outside_its_tolerance_fails_and_a_missing_plan_or_row_fails_with_why():
    made = TrainingPlanStep("python -m analysis.plans make ...", Path("p.json"), switched=12, calls=159)
    made.plan_extra = {"projected_ms": 36.0, "projected_speedup": 1.11}
    made.projection = [_projection(1 + PROJECTION_GOAL / 2)]
    within = check_plan_projection(made)
    assert within.verdict == PASS and "12 of 159 calls off the baseline" in within.figure
    assert "measured / projected 1.050" in within.figure and within.details[0]["verdict"] == PASS
    made.projection = [_projection(1 + 2 * PROJECTION_GOAL)]
    assert check_plan_projection(made).verdict == FAIL
    made.projection = [_projection(1 - 2 * PROJECTION_GOAL)]
    assert check_plan_projection(made).verdict == FAIL
    made.projection, made.projection_error = [], "the plan's run wrote no rows"
    assert check_plan_projection(made).verdict == FAIL and "wrote no rows" in check_plan_projection(made).figure
    refused = TrainingPlanStep("...", error="python -m analysis.plans make failed (exit code 2): no baseline")
    assert check_plan_projection(refused).verdict == FAIL and "no baseline" in check_plan_projection(refused).figure
    assert check_plan_projection(None).verdict == FAIL


def test_the_gpu_tests_are_information_on_the_cpu_only():
    assert training_tests(None, cpu=True).verdict == INFO
    assert training_tests(None, cpu=False).verdict == FAIL
    assert training_tests(acc.SuiteReport(5, 0, 0, returncode=0), cpu=True).verdict == PASS


def test_cpu_smoke_is_refused_for_a_suite_without_a_cpu_run(capsys):
    assert acc.main(["--suite", "core", "--cpu-smoke"]) == 2
    assert "suite core has no CPU run; valid choices: training" in capsys.readouterr().err


# ---- the whole suite on the CPU ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_training_suite_runs_on_the_cpu_and_writes_its_verdict(tmp_path: Path):
    """For real, on the reference backend: the per-direction sweep, the training steps, the plan made by
    analysis.plans and run with algo=per_layer, its projection from the report's table, the verdict."""
    out = tmp_path / "val"
    code = acc.main(["--suite", "training", "--cpu-smoke", "--out", str(out), "--jobs-dir", str(tmp_path / "jobs")])
    assert code in (0, 1)  # the projection is judged, but CPU timings of contending processes need not add up
    (written,) = out.glob("cpu-smoke-*.md")
    text = written.read_text()
    assert "## Suite training:" in text
    checks = text.split("### Checks (training)")[1].split("### Details")[0]
    for name in (
        "GPU test suite",
        "runs completed",
        "errors",
        "support per direction",
        "gradients vs torch",
        "CUDA-graph capture (training)",
        "training plan: projected vs measured step",
    ):
        assert f"| {name} |" in checks, name
    for line in checks.splitlines():
        if line.startswith(("| runs completed", "| errors", "| support per direction", "| gradients vs torch")):
            assert line.endswith("| PASS |"), line
    assert "7 of 7 jobs completed, 7 points" in checks
    # the support table from real layer rows: resnet18's 20 conv layers, 19 backward_data calls (none for layer 0)
    assert "| backward_data | gemm | ok | 19 | 0 | 0 | - |" in text
    assert "| backward_filter | torch | ok | 20 | 0 | 0 | - |" in text
    assert "| train_step | per_layer |" in text  # the plan's run: its gradients checked too
    projection = next(line for line in checks.splitlines() if line.startswith("| training plan"))
    assert "calls off the baseline" in projection and "measured / projected" in projection
    (folder,) = (tmp_path / "jobs").glob("acceptance-*")
    assert (folder / "training-plan.json").is_file()
    assert (folder / "analysis" / "tables" / "training_projection.csv").is_file()
    assert "python -m analysis.plans make " in text and "--direction train_step" in text


def test_the_whole_training_suite_with_the_gpu_work_faked(tmp_path, monkeypatch):
    """The GPU path without a GPU: its own GPU tests, every job with its direction, the plan step after the
    training steps (its commands faked: tests above and the CPU run cover them), the verdict and the exit code."""
    import torch

    from harness.acceptance import cli
    from tests.acceptance_rows import H100

    seen_tests, ran = [], []

    def run_job(prepared, on_point):
        record, job = prepared.record, prepared.record.job
        direction = dict(job.extra).get("direction")
        row = _train(job.model, job.algo, direction, run_id=f"run-{len(ran)}")
        ran.append((job.phase, direction, job.algo))
        on_point(None, row)
        record.outcome, record.run_id, record.rows = "completed", row["run_id"], [row]
        return record

    def make_training_plan(results, steps, out):
        """A real training plan of resnet50 (guess everywhere), as analysis.plans would write one."""
        from harness.algorithms import plan as plans
        from harness.algorithms.geometry import ConvGeometry
        from harness.models import meta_model

        assert [j.algo for j in steps] == list(step_algos()) and not any(p == "plan" for p, _, _ in ran)
        layers = tuple(
            plans.PlanLayer(n, ConvGeometry.of(m), "guess", "baseline", None, None, None, None, None, "guess", "guess")
            for n, m in plans.conv_layers(meta_model("resnet50", {}))
        )
        plans.write(plans.Plan(plans.PlanKey("resnet50", "local", None, "float32", 224, 8), layers, "guess"), out)
        return TrainingPlanStep("python -m analysis.plans make ...", out, switched=3, calls=159)

    def read_projection(results, step, job, run_id, out):
        assert job.algo == "per_layer" and run_id == f"run-{len(ran) - 1}"
        step.projection = [_projection(1.02)]

    def read_layers(results, run_ids):
        return [_layer(a, d) for p, d, a in ran if p == "sweep"]

    monkeypatch.setattr(cli, "cuda_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: H100)
    monkeypatch.setattr(
        cli, "run_gpu_tests", lambda junit, output, timeout, tests=(): seen_tests.append(tests) or acc.SuiteReport(9)
    )
    monkeypatch.setattr(cli, "run_job", run_job)
    monkeypatch.setattr(cli, "make_training_plan", make_training_plan)
    monkeypatch.setattr(cli, "read_projection", read_projection)
    monkeypatch.setattr(cli, "read_layers", read_layers)
    out = tmp_path / "out"
    code = acc.main(["--suite", "training", "--quick", "--out", str(out), "--jobs-dir", str(tmp_path / "jobs")])
    (written,) = out.glob("nvidia-h100-*.md")
    text = written.read_text()
    assert code == 0, text
    assert seen_tests == [TRAIN_TESTS] and " ".join(TRAIN_TESTS) in text
    sweep = [(d, a) for p, d, a in ran if p == "sweep"]
    assert sweep == [(d, a) for d in ("backward_data", "backward_filter") for a in direction_algos(d)]
    assert [p for p, _, _ in ran][-len(step_algos()) - 1 :] == ["train_step"] * len(step_algos()) + ["plan"]
    assert "## Suite training: PASS" in text and "3 of 159 calls off the baseline" in text
    assert "| CUDA-graph capture (training) | every ok training step timed as a CUDA graph's replays |" in text
