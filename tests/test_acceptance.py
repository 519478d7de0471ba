"""The acceptance command: the JUnit report of the GPU tests and the command with the GPU work faked (the
other test_acceptance_* modules test its plan, checks and verdict); on a GPU, a real quick run
(``test_quick_acceptance_on_gpu``)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
import torch
from rich.console import Console

from harness import acceptance as acc
from harness.acceptance import (
    FAIL,
    PASS,
    JobResult,
    SuiteReport,
    as_rows,
    check_correctness,
    check_cv,
    check_errors,
    check_gpu_tests,
    check_support,
    cli,
    parse_junit,
)
from harness.acceptance.verdict import sections
from tests.acceptance_rows import (
    H100,
    REPO,
    energy_point,
    point,
)
from tests.test_acceptance_energy import SimulatedGpu, probe

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
                row |= {k: v for k, v in energy_point().items() if k not in point() or k.startswith("energy")}
            if job.phase == "oom" and batch > 1:
                row |= {"status": "oom", "error": "CUDA out of memory"}
            rows.append(row)
            on_point((size, batch, job.config.dtype), row)
    record.outcome, record.run_id, record.rows = "completed", rows[0]["run_id"], rows
    return record


def test_the_whole_command_with_the_gpu_work_faked(tmp_path, monkeypatch, capsys):
    """Everything but the GPU: plan, specs, progress, evaluation, the file, the exit code, logging restored."""
    monkeypatch.setattr(cli, "cuda_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: H100)
    monkeypatch.setattr(
        cli, "run_gpu_tests", lambda junit, output, timeout, tests=(): SuiteReport(4, 0, 0, returncode=0)
    )
    monkeypatch.setattr(cli, "run_job", _fake_run_job)
    handlers = list(logging.getLogger().handlers)
    out = tmp_path / "out"
    code = acc.main(["--quick", "--out", str(out), "--jobs-dir", str(tmp_path / "jobs")])
    captured = capsys.readouterr()
    assert code == 0, captured.out
    (written,) = out.glob("*.md")
    assert written.name.startswith("nvidia-h100-80gb-hbm3-") and written.name.endswith(".md")
    text = written.read_text()
    assert "Verdict: **PASS** (quick run)" in text and "## Suite core: PASS" in text
    assert "python -m harness.acceptance --quick --out" in text and "-m pytest -m gpu -q -rs --junitxml=" in text
    assert text.count("python -m harness stage=sanity") == 30 + 2 + 2 and "'stage.sizes=[224]'" in text
    (folder,) = (tmp_path / "jobs").glob("acceptance-*")
    assert str(folder / "results") in text and (folder / "acceptance.log").is_file()
    assert "suite core: PASS" in captured.out and str(written) in captured.out.replace("\n", "")
    core = acc.SUITES["core"]
    assert f"about {acc.estimate_s(core.sweep(True), core, True) / 60:.0f} min" in captured.out  # the estimate
    assert logging.getLogger().handlers == handlers
    # the energy suite, the same day on the same device: its section added to the same file, core's kept
    monkeypatch.setattr(cli, "run_probe", lambda: probe(SimulatedGpu()))
    code = acc.main(["--suite", "energy", "--quick", "--out", str(out), "--jobs-dir", str(tmp_path / "jobs")])
    assert code == 0 and [p.name for p in out.glob("*.md")] == [written.name]
    both = written.read_text()
    assert (
        "## Suite core: PASS" in both
        and "## Suite energy: PASS" in both
        and "GPU tests" not in both.split("<!-- suite:energy -->")[1]
    )
    assert "E(2N)/E(N) = 2.000" in both
    # the regimes suite: batch x dtype x layout, every job composed (layout=nhwc included) and ranked
    code = acc.main(["--suite", "regimes", "--quick", "--out", str(out), "--jobs-dir", str(tmp_path / "jobs")])
    assert code == 0
    three = written.read_text()
    assert list(sections(three)) == ["core", "regimes", "energy"]
    regimes = sections(three)["regimes"]
    assert "layout=nhwc" in regimes and "'batch_size=[1,32,256]'" in regimes
    assert "#### ranking per regime: INFO" in regimes
    assert "| resnet50 | 256 | float16 tensor_op fallback=none nhwc |" in regimes


def test_a_sweep_past_its_budget_starts_no_more_jobs(tmp_path, monkeypatch):
    monkeypatch.setattr(cli, "run_job", _fake_run_job)
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
