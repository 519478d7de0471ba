"""`python -m harness.status` on synthetic trees, with fake sacct commands (answering, failing, hanging)."""

from __future__ import annotations

import json
import os
import shlex
import stat
from pathlib import Path

import pytest

from harness import status
from harness.results.layout import Partition
from harness.results.schema import SCHEMA_VERSION
from harness.results.store import ResultStore, write_json_atomic


def _point(part: Partition, run_id: str, size: int, state: str = "ok", error: str | None = None) -> dict:
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "stage": part.stage,
        "model": part.model,
        "algo": part.algo,
        "gpu": part.gpu,
        "input_size": size,
        "batch_size": 1,
        "dtype": "float32",
        "status": state,
        "error": error,
        "config_hash": "h",
    }


def _combo(root: Path, part: Partition, run_id: str, statuses: list[str], outcome: str, planned: int) -> None:
    store = ResultStore(root, part, run_id)
    store.open()
    for i, s in enumerate(statuses):
        store.write_point(_point(part, run_id, 32 + i, s, None if s == "ok" else f"{s} at {32 + i}: boom"), [])
    store.compact()
    store.write_run(
        {
            "run_id": run_id,
            "outcome": outcome,
            "attempts": 2 if outcome == "completed" else 1,
            "started_at": "2026-11-23T10:00:00+00:00",
            "ended_at": "2026-11-23T10:10:00+00:00",
            "points_planned": planned,
        }
    )


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    results, jobs = tmp_path / "results", tmp_path / "jobs"
    _combo(results, Partition("quick", "l40s", "vgg16", "gemm"), "r1", ["ok"] * 4, "completed", 4)
    _combo(results, Partition("quick", "l40s", "vgg16", "fft"), "r2", ["ok", "ok"], "interrupted", 4)
    _combo(results, Partition("quick", "h100", "resnet50", "gemm"), "r3", ["ok", "error"], "completed", 2)
    _combo(results, Partition("quick", "h100", "resnet50", "fft"), "r4", ["ok"], "cancelled", 3)
    _combo(results, Partition("sanity", "l40s", "alexnet", "winograd"), "r5", ["ok"], "completed", 2)
    broken = Partition("sanity", "l40s", "alexnet", "winograd").path(results)
    (broken / "points-corrupt.parquet").write_bytes(b"not parquet")
    tasks = [
        {
            "job_id": "100_0",
            "run_id": "r1",
            "stage": "quick",
            "gpu": "l40s",
            "model": "vgg16",
            "algo": "gemm",
            "points_planned": 4,
        },
        {
            "job_id": "100_1",
            "run_id": "r2",
            "stage": "quick",
            "gpu": "l40s",
            "model": "vgg16",
            "algo": "fft",
            "points_planned": 4,
        },
        {
            "job_id": "101_0",
            "run_id": "r6",
            "stage": "quick",
            "gpu": "v100",
            "model": "vgg16",
            "algo": "gemm",
            "points_planned": 4,
        },
    ]
    (jobs / "sweep1").mkdir(parents=True)
    write_json_atomic({"groups": [{"tasks": tasks}]}, jobs / "sweep1" / "manifest.json")
    return results, jobs


def _fake(folder: Path, name: str, script: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.fixture
def sacct(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return bin_dir


def _by_key(combos):
    return {(c.stage, c.gpu, c.model, c.algo): c for c in combos}


def test_states_from_points_runs_and_slurm(tree, sacct: Path):
    _fake(sacct, "sacct", "printf '100_0|COMPLETED\\n100_1|RUNNING\\n101_0|PENDING\\n'")
    combos, reason = status.collect(*tree)
    by = _by_key(combos)
    assert reason is None
    assert by[("quick", "l40s", "vgg16", "gemm")].state == "done"
    fft = by[("quick", "l40s", "vgg16", "fft")]
    assert fft.state == "running" and fft.counts == {"ok": 2} and fft.eta_s == pytest.approx(600.0)
    assert by[("quick", "v100", "vgg16", "gemm")].state == "queued"
    failed = by[("quick", "h100", "resnet50", "gemm")]
    assert failed.state == "failed" and "error at 33: boom" in failed.last_error
    assert by[("quick", "h100", "resnet50", "fft")].state == "cancelled"
    corrupt = by[("sanity", "l40s", "alexnet", "winograd")]
    assert corrupt.problems and "points-corrupt.parquet" in corrupt.problems[0] and corrupt.counts == {"ok": 1}
    s = status.summary(combos)
    assert s["points_ok"] == 4 + 2 + 1 + 1 + 1 and s["points_planned"] == 4 + 4 + 4 + 2 + 3 + 2


def test_slurm_failing_or_hanging_makes_unknown_not_a_crash(tree, sacct: Path):
    _fake(sacct, "sacct", "echo 'slurm_load_jobs error: Unable to contact slurm controller' >&2; exit 1")
    combos, reason = status.collect(*tree)
    assert "Unable to contact" in reason
    assert _by_key(combos)[("quick", "v100", "vgg16", "gemm")].state.startswith("unknown (sacct failed")
    assert _by_key(combos)[("quick", "l40s", "vgg16", "gemm")].state == "done"  # the results still say so
    _fake(sacct, "sacct", "sleep 30")
    combos, reason = status.collect(*tree, timeout_s=1)
    assert reason == "sacct timed out after 1 s"


def test_json_and_filters(tree, sacct: Path, capsys: pytest.CaptureFixture):
    _fake(sacct, "sacct", "exit 0")
    results, jobs = tree
    assert status.main(["--results", str(results), "--jobs", str(jobs), "--json", "--gpu", "h100"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {c["gpu"] for c in doc["combinations"]} == {"h100"}
    assert set(doc["combinations"][0]) >= {
        "stage",
        "gpu",
        "model",
        "algo",
        "state",
        "counts",
        "planned",
        "jobs",
        "last_error",
        "eta_s",
    }
    assert set(doc["summary"]) == {"points_ok", "points_planned", "gpu_hours_used", "hours_left_estimate"}
    status.main(["--results", str(results), "--jobs", str(jobs), "--failed", "--json"])
    failed = {
        (c["model"], c["algo"], c["gpu"], c["state"]) for c in json.loads(capsys.readouterr().out)["combinations"]
    }
    assert ("vgg16", "gemm", "l40s", "done") not in failed
    assert ("resnet50", "gemm", "h100", "failed") in failed and ("alexnet", "winograd", "l40s", "partial") in failed
    status.main(["--results", str(results), "--jobs", str(jobs)])
    out = capsys.readouterr().out
    assert "stage=quick" in out and "stage=sanity" in out and "points ok 9 of 19 planned" in out


def test_rerun_failed_prints_the_exact_commands(tree, sacct: Path, capsys: pytest.CaptureFixture):
    _fake(sacct, "sacct", "printf '100_0|COMPLETED\\n100_1|FAILED\\n101_0|CANCELLED by 0\\n'")
    results, jobs = tree
    assert status.main(["--results", str(results), "--jobs", str(jobs), "--rerun-failed"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("python -m harness")]
    assert lines == [
        "python -m harness -m stage=quick gpu=h100 algo=fft model=resnet50",
        "python -m harness -m stage=quick gpu=h100 algo=gemm model=resnet50",
        "python -m harness -m stage=quick gpu=l40s algo=fft model=vgg16",
        "python -m harness -m stage=quick gpu=v100 algo=gemm model=vgg16",
        "python -m harness -m stage=sanity gpu=l40s algo=winograd model=alexnet",  # partial: 1 of 2 points
    ]


@pytest.mark.parametrize("flag", ["--json", "--failed", "--rerun-failed"])
def test_a_filter_value_nothing_holds_is_refused_with_the_ones_held(tree, sacct: Path, capsys, flag: str):
    """Not an empty dashboard and exit 0, which would read as "nothing failed"."""
    _fake(sacct, "sacct", "exit 0")
    results, jobs = tree
    assert status.main(["--results", str(results), "--jobs", str(jobs), "--gpu", "a100", flag]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("error: argument --gpu: a100 is not valid: valid choices here: h100, l40s, v100 ")


def test_nothing_here_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture):
    assert status.main(["--results", str(tmp_path / "none"), "--jobs", str(tmp_path / "nojobs")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --results ") and "nothing has run here" in err and err.count("\n") == 1


def test_planned_is_the_union_of_what_every_run_of_a_leaf_planned(tmp_path: Path, capsys: pytest.CaptureFixture):
    """Run with sizes [96, 224], then [96, 96]: the leaf planned two points, not the latest run's one."""
    from harness.run import runner
    from tests.conftest import FAST
    from tests.helpers import make_spec

    results = tmp_path / "results"
    for sizes in ("[96,224]", "[96,96]"):
        runner.run(make_spec(results, *FAST, f"stage.sizes={sizes}", "remeasure=true"))
    (combo,) = status.collect(results, tmp_path / "jobs")[0]
    assert combo.planned == 2 and combo.counts == {"ok": 2} and combo.state == "done"
    assert status.main(["--results", str(results), "--jobs", str(tmp_path / "jobs")]) == 0
    out = capsys.readouterr().out
    assert "2/0/0/0 of 2" in out and "points ok 2 of 2 planned" in out


def test_a_leaf_measured_forward_and_as_a_training_step_plans_and_counts_each_direction(
    tmp_path: Path, capsys: pytest.CaptureFixture
):
    """One leaf (stage, gpu, model, algo), two directions at the same sizes: four points planned and measured,
    not two planned and four measured."""
    from harness.run import runner
    from tests.conftest import FAST
    from tests.helpers import make_spec

    results = tmp_path / "results"
    for direction in ("forward", "backward_filter"):
        runner.run(make_spec(results, *FAST, "stage.sizes=[32,40]", f"direction={direction}", "algo=gemm"))
    (combo,) = status.collect(results, tmp_path / "jobs")[0]
    assert combo.planned == 4 and combo.counts == {"ok": 4} and combo.state == "done"


def test_planned_points_reads_old_records_as_a_lower_bound():
    from harness.results.read import planned_points

    assert planned_points([]) is None
    assert (
        planned_points(
            [
                {"points_planned_keys": [[96, 1, "float32"], [224, 1, "float32"]]},
                {"points_planned_keys": [[96, 1, "float32"]]},
            ]
        )
        == 2
    )
    assert planned_points([{"points_planned": 5}, {"points_planned_keys": [[96, 1, "float32"]]}]) == 5
    # a record from before the layout, l2 and direction axes: its points are the forward NCHW warm ones
    old, new = [96, 1, "float32"], [96, 1, "float32", "nchw", "warm", "forward"]
    assert planned_points([{"points_planned_keys": [old]}, {"points_planned_keys": [new]}]) == 1
    step = [96, 1, "float32", "nchw", "warm", "train_step"]
    assert planned_points([{"points_planned_keys": [old]}, {"points_planned_keys": [step]}]) == 2


def test_rerun_failed_rebuilds_a_run_with_a_model_file_and_a_plan_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
):
    """The command --rerun-failed prints composes the config the failed run recorded: same config hash,
    the model file and the plan file by their absolute paths, from another folder."""
    import shlex

    import torch
    import torchvision

    from harness.algorithms.plan import write as write_plan
    from harness.launch.submit import make_task
    from harness.results.manifest import RunManifest
    from tests.helpers import compose_config
    from tests.test_plan import mixed_plan

    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir()
    elsewhere.mkdir()
    torch.save(torchvision.models.resnet18(weights=None).eval(), work / "mynet.pt")
    write_plan(mixed_plan(), work / "plan.json")
    monkeypatch.chdir(work)
    original = [
        "device=cpu",
        "stage=quick",
        "stage.sizes=[32,64]",
        "batch_size=[1,2]",
        "model.path=mynet.pt",
        "algo=per_layer",
        "plan=plan.json",
        "seed=7",
        "results_dir=results",
    ]
    task = make_task(compose_config(*original))
    store = ResultStore(task.spec.results_dir, task.spec.partition(), task.run_id)
    store.open()
    store.write_run(
        RunManifest(task.run_id, outcome="failed", started_at="2026-11-23T10:00:00+00:00", config=task.config)
    )

    monkeypatch.chdir(elsewhere)
    assert status.main(["--results", str(work / "results"), "--jobs", str(work / "jobs"), "--rerun-failed"]) == 0
    (line,) = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("python -m harness")]
    args = shlex.split(line)
    assert args[:4] == ["python", "-m", "harness", "-m"]
    assert f"model.path='{work / 'mynet.pt'}'" in args and f"plan='{work / 'plan.json'}'" in args
    assert "algo=per_layer" in args and "stage=quick" in args
    again = make_task(compose_config(*args[4:]))
    assert again.config == task.config
    assert again.spec.config_hash() == task.spec.config_hash()
    assert again.spec.model.content_hash == task.spec.model.content_hash and again.spec.plan == task.spec.plan


def test_rerun_failed_rebuilds_a_task_that_never_started_from_the_sweep_manifest(
    tmp_path: Path, sacct: Path, capsys: pytest.CaptureFixture
):
    """No run manifest (cancelled while queued): the sweep manifest's task records the config."""
    from harness.config.compose import compose_config

    _fake(sacct, "sacct", "printf '7_0|CANCELLED by 0\\n'")
    config = compose_config(["stage=quick", "gpu=v100", "model=vgg16", "algo=gemm", "stage.sizes=[64]", "seed=3"])
    task = {"job_id": "7_0", "run_id": "r9", "stage": "quick", "gpu": "v100", "model": "vgg16", "algo": "gemm"}
    (tmp_path / "jobs" / "s").mkdir(parents=True)
    write_json_atomic({"groups": [{"tasks": [task | {"config": config}]}]}, tmp_path / "jobs" / "s" / "manifest.json")
    results = tmp_path / "results"
    assert status.main(["--results", str(results), "--jobs", str(tmp_path / "jobs"), "--rerun-failed"]) == 0
    (line,) = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("python -m harness")]
    argv = shlex.split(line)
    assert argv[:8] == ["python", "-m", "harness", "-m", "stage=quick", "model=vgg16", "algo=gemm", "gpu=v100"]
    assert "seed=3" in argv and "stage.sizes=[64]" in argv
    assert compose_config(argv[4:]) == config


class _Job:
    """What write_manifest reads of a submitit job: its id and its log."""

    def __init__(self, job_id: str, folder: Path) -> None:
        self.job_id = job_id
        self.paths = type("Paths", (), {"stdout": folder / f"{job_id}.out"})()


def _sweep(jobs: Path, sweep_id: str, array: int, tasks: list) -> list[dict]:
    """A sweep manifest written by the launcher's own code (harness.launch.submit.write_manifest) for ``tasks``
    submitted as the job array ``array``; its tasks' records."""
    from harness.launch.submit import LauncherSpec, SubmittedGroup, Sweep, write_manifest

    folder = jobs / sweep_id
    group = SubmittedGroup({}, tasks, [_Job(f"{array}_{i}", folder) for i in range(len(tasks))])
    path = write_manifest(Sweep(sweep_id, folder, [group]), LauncherSpec())
    return json.loads(path.read_text())["groups"][0]["tasks"]


def _tasks(results: Path, *overrides: str) -> list:
    from harness.launch.submit import make_tasks
    from tests.conftest import FAST
    from tests.helpers import compose_config

    return make_tasks(compose_config(f"results_dir={results}", *FAST, "algo=gemm", *overrides), None)


def test_a_sweep_of_two_dtypes_of_one_leaf_plans_both_before_and_after_one_has_run(
    tmp_path: Path, sacct: Path, capsys: pytest.CaptureFixture
):
    """dtype=float32,bfloat16 at two sizes: one leaf, two tasks, four points planned. The manifest lists each
    task's points as the runner plans them and its run record lists them; the float32 run's record joins the
    manifest's plan instead of replacing it, so its leaf is not done while the bfloat16 task failed unrun."""
    from harness.run import runner

    results, jobs = tmp_path / "results", tmp_path / "jobs"
    tasks = [t for d in ("float32", "bfloat16") for t in _tasks(results, "stage.sizes=[32,40]", f"dtype={d}")]
    recorded = _sweep(jobs, "s1", 5, tasks)
    assert [t["points_planned"] for t in recorded] == [2, 2]
    assert [{k[2] for k in t["points_planned_keys"]} for t in recorded] == [{"float32"}, {"bfloat16"}]

    _fake(sacct, "sacct", "printf '5_0|PENDING\\n5_1|PENDING\\n'")
    (combo,) = status.collect(results, jobs)[0]
    assert combo.planned == 4 and combo.state == "queued"

    first = runner.run(tasks[0].spec, config=tasks[0].config, run_id=tasks[0].run_id)
    run_doc = json.loads(next(first.directory.glob("run-*.json")).read_text())
    assert run_doc["points_planned_keys"] == recorded[0]["points_planned_keys"]  # one planning, two records
    _fake(sacct, "sacct", "printf '5_0|COMPLETED\\n5_1|FAILED\\n'")
    (combo,) = status.collect(results, jobs)[0]
    assert combo.planned == 4 and combo.counts == {"ok": 2} and combo.state == "failed"
    assert status.main(["--results", str(results), "--jobs", str(jobs)]) == 0
    assert "2/0/0/0 of 4" in capsys.readouterr().out


def test_tasks_of_one_combination_join_their_plans_across_sweeps(tmp_path: Path, sacct: Path):
    """Two repeats of a leaf plan the same points (counted once); a second sweep of the same leaf in another
    direction adds its own, instead of overwriting the first sweep's count."""
    _fake(sacct, "sacct", "exit 0")  # SLURM knows none of the jobs
    results, jobs = tmp_path / "results", tmp_path / "jobs"
    _sweep(jobs, "s1", 5, _tasks(results, "stage.sizes=[32,40,48]", "repeats=2"))
    (combo,) = status.collect(results, jobs)[0]
    assert combo.planned == 3
    _sweep(jobs, "s2", 6, _tasks(results, "stage.sizes=[32,40,48]", "direction=backward_filter"))
    (combo,) = status.collect(results, jobs)[0]
    assert combo.planned == 6 and set(combo.jobs) == {"5_0", "5_1", "6_0"}
    assert status.summary([combo])["points_planned"] == 6


def test_a_manifest_from_before_the_planned_keys_counts_as_a_lower_bound(tmp_path: Path, sacct: Path):
    """A sweep manifest of an earlier version gives each task's count only: alone it is the plan; with a newer
    sweep's keys of the same leaf, the larger of the two (as planned_points reads old run records)."""
    _fake(sacct, "sacct", "exit 0")
    results, jobs = tmp_path / "results", tmp_path / "jobs"
    (new,) = _tasks(results, "stage.sizes=[32,40]")
    s = new.spec
    old = {"job_id": "3_0", "run_id": "r0", "stage": s.stage.name, "gpu": s.gpu.name, "model": s.model.name}
    old |= {"algo": s.algo, "results_dir": str(results), "points_planned": 5}
    (jobs / "1-old").mkdir(parents=True)
    write_json_atomic({"sweep_id": "1-old", "groups": [{"tasks": [old]}]}, jobs / "1-old" / "manifest.json")
    (combo,) = status.collect(results, jobs)[0]
    assert combo.planned == 5
    _sweep(jobs, "2-new", 4, [new])  # read after the old one: two points planned, the old five still stand
    (combo,) = status.collect(results, jobs)[0]
    assert combo.planned == 5 and set(combo.jobs) == {"3_0", "4_0"}
    write_json_atomic({"groups": [{"tasks": [old | {"points_planned": 1}]}]}, jobs / "1-old" / "manifest.json")
    (combo,) = status.collect(results, jobs)[0]
    assert combo.planned == 2
