"""The launcher against a REAL one-node SLURM cluster on localhost (scripts/slurm-test-cluster.sh).

Skipped where no cluster is reachable, except in CI (CI=true), where a missing cluster is a failure.
The jobs measure the CPU (device=cpu, also on a node with a real GPU; gpu.nvml_name=null lets a gpu type run
on any device), under the node's fake GPUs and features, so --gres and --constraint are exercised as on a
real site.

The jobs that must be interrupted (time limit, preemption, scancel) measure points paced in wall time
(stage.warmup_s: no point is shorter than its floor, on any machine), so that "the job outlives the
interruption" holds however fast the machine; every wait on SLURM has a generous bound that only catches
a hang.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest

from harness import status
from harness.results import read
from tests.conftest import run_cli

# One cluster for all of them: on one xdist worker, one after the other (pyproject: --dist loadgroup).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("slurm")]

TERMINAL = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL", "DEADLINE")
ON_TEST_CLUSTER = [
    "launcher=slurm",
    "gpu.nvml_name=null",
    "stage.slurm.cpus_per_task=1",
    "stage.slurm.mem_gb=2",
    "stage.warmup_iters=1",
    "stage.min_iters=3",
    "stage.max_iters=3",
    "stage.layer_iters=1",
    "device=cpu",  # also where the node has a real GPU: the timeout/preemption tests need the CPU's slow points
]


def _cluster_reachable() -> bool:
    if shutil.which("sinfo") is None:
        return False
    try:
        return subprocess.run(["sinfo", "-h"], capture_output=True, timeout=10).returncode == 0
    except subprocess.TimeoutExpired:
        return False


@pytest.fixture(scope="module", autouse=True)
def cluster() -> None:
    if not _cluster_reachable():
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but no SLURM cluster is reachable: run scripts/slurm-test-cluster.sh first")
        pytest.skip("no SLURM cluster reachable (scripts/slurm-test-cluster.sh starts one)")


@pytest.fixture(autouse=True)
def one_thread_per_job(monkeypatch: pytest.MonkeyPatch) -> None:
    """The jobs inherit this environment (sbatch --export=ALL): torch in a job uses one thread, the CPU it asked
    for. The test cluster has no cgroups to hold a job to its CPUs, and a job's two threads on a node whose
    other core is busy made each paced point take 7 s instead of 3.3."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def _state(job_id: str) -> str:
    out = subprocess.run(
        ["sacct", "-n", "-X", "-P", "-j", job_id, "-o", "State"], capture_output=True, text=True
    ).stdout
    states = [line.split()[0] for line in out.splitlines() if line.strip()]
    return states[-1] if states else "UNKNOWN"


def _wait(job_ids: list[str], timeout_s: float = 600) -> dict[str, str]:  # bounds catch hangs, not slowness
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        states = {j: _state(j) for j in job_ids}
        if all(s in TERMINAL for s in states.values()):
            return states
        time.sleep(2)
    raise AssertionError(f"jobs did not end in {timeout_s} s: {states}")


def _manifest(cwd: Path) -> dict:
    (path,) = cwd.glob("jobs/*/manifest.json")
    return json.loads(path.read_text())


def _task_ids(manifest: dict) -> list[str]:
    return [t["job_id"] for g in manifest["groups"] for t in g["tasks"]]


def _run_doc(leaf: Path) -> dict:
    (path,) = leaf.glob("run-*.json")
    return json.loads(path.read_text())


def _submit(cwd: Path, *args: str) -> tuple[subprocess.CompletedProcess, float]:
    t0 = time.monotonic()
    proc = run_cli(*ON_TEST_CLUSTER, *args, cwd=cwd)
    return proc, time.monotonic() - t0


def _wait_for_points(leaf: Path, n: int, timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if leaf.exists() and len(list(leaf.glob("points-*.parquet"))) >= n:
            return
        time.sleep(1)
    raise AssertionError(f"fewer than {n} points written under {leaf} in {timeout_s} s")


def test_repeats_are_array_tasks_of_their_own(tmp_path: Path):
    """repeats=2: one array of two tasks, each its own run and process (the array's tasks), rows repeat 0 and 1."""
    proc, _ = _submit(tmp_path, "gpu=l40s", "stage.sizes=[32]", "repeats=2", "launcher.wait=true")
    assert proc.returncode == 0, proc.stderr
    manifest = _manifest(tmp_path)
    ids = _task_ids(manifest)
    assert len(ids) == 2 and len({i.split("_")[0] for i in ids}) == 1  # one array
    assert sorted(t["repeat"] for g in manifest["groups"] for t in g["tasks"]) == [0, 1]
    assert set(_wait(ids).values()) == {"COMPLETED"}
    points = read(tmp_path / "results")
    assert sorted(points["repeat"]) == [0, 1] and sorted(points["slurm_job_id"]) == sorted(ids)
    assert points["run_id"].nunique() == 2


def test_one_job_end_to_end(tmp_path: Path):
    proc, seconds = _submit(tmp_path, "gpu=l40s", "stage.sizes=[32,40]", "launcher.wait=true")
    assert proc.returncode == 0, proc.stderr
    assert "submitted 1 job(s) to SLURM in 1 sbatch call(s)" in proc.stdout and "squeue -j" in proc.stdout
    (job_id,) = _task_ids(_manifest(tmp_path))
    assert _wait([job_id]) == {job_id: "COMPLETED"}
    leaf = tmp_path / "results/stage=sanity/gpu=l40s/model=resnet18/algo=torch"
    points = read(tmp_path / "results")
    assert sorted(points["input_size"]) == [32, 40] and set(points["slurm_job_id"]) == {job_id}
    doc = _run_doc(leaf)
    assert doc["outcome"] == "completed" and doc["attempts"] == 1 and doc["slurm_job_ids"] == [job_id]
    (combo,), reason = status.collect(tmp_path / "results", tmp_path / "jobs")  # the dashboard, on real sacct
    assert (
        reason is None and combo.state == "done" and combo.jobs == {job_id: "COMPLETED"} and combo.counts == {"ok": 2}
    )


def _block_the_node() -> str:
    """A job in the default partition holding every CPU of the node until cancelled: what is submitted next
    stays PENDING."""
    cpus = subprocess.run(["sinfo", "-h", "-o", "%c"], capture_output=True, text=True, check=True).stdout.split()[0]
    return subprocess.run(
        ["sbatch", "--parsable", "-c", cpus.rstrip("+"), "--mem=100M", "-o", "/dev/null", "--wrap", "sleep 600"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def test_multirun_is_one_array_per_resource_group(tmp_path: Path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "sbatch.calls"
    wrapper = bin_dir / "sbatch"
    wrapper.write_text(f"#!/bin/sh\necho \"$@\" >> {log}\nexec {shutil.which('sbatch')} \"$@\"\n")
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    env_path = f"{bin_dir}:{os.environ['PATH']}"
    blocker = _block_the_node()
    try:
        proc = subprocess.run(
            [
                os.sys.executable,
                "-m",
                "harness",
                "-m",
                "gpu=l40s,h100",
                "algo=torch,gemm",
                *ON_TEST_CLUSTER,
                "stage.sizes=[32]",
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
            env=os.environ | {"PATH": env_path, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
        )
        assert proc.returncode == 0, proc.stderr
        manifest = _manifest(tmp_path)
        # submission returned while none of its jobs could start: it never waits for them (sacct has no
        # row yet for an array task that has not started: squeue lists them)
        arrays = ",".join(g["array_job_id"] for g in manifest["groups"])
        queued = subprocess.run(
            ["squeue", "-h", "-r", "-j", arrays, "-o", "%T"], capture_output=True, text=True, check=True
        )
        assert queued.stdout.split() == ["PENDING"] * 4, queued.stdout
    finally:
        subprocess.run(["scancel", blocker], check=True)
    assert "sweep of 4 jobs: 0 here, 4 on SLURM" in proc.stdout
    assert len(log.read_text().splitlines()) == 2  # one sbatch call per gpu type
    assert sorted(g["parameters"]["slurm_constraint"] for g in manifest["groups"]) == ["gpu2h100", "gpul40s"]
    states = _wait(_task_ids(manifest))
    assert set(states.values()) == {"COMPLETED"}, states
    points = read(tmp_path / "results")
    assert sorted(zip(points["gpu"], points["algo"])) == [
        ("h100", "gemm"),
        ("h100", "torch"),
        ("l40s", "gemm"),
        ("l40s", "torch"),
    ]


def _paced(n: int, floor_s: float) -> list[str]:
    """n small points, none shorter than floor_s (warmup_s of warmup), however fast the machine; only the
    first point of each attempt is checked against the baseline (a second per point on a busy 2-core node)."""
    sizes = ",".join(str(32 + 2 * i) for i in range(n))
    return [f"stage.sizes=[{sizes}]", f"stage.warmup_s={floor_s}", "stage.verify_every_point=false"]


PACED = _paced(8, 2.5)  # 20 s at least: more than what is left of it when it is preempted or cancelled


def _exactly_once(results: Path, expected: int) -> None:
    points = read(results)
    assert len(points) == expected and points["input_size"].is_unique
    layers = read(results, "layers")
    assert layers.groupby(["input_size", "layer_index"]).size().max() == 1


# 20 points of at least 3 s: 60 s, more than one attempt under a 1-minute limit can hold on any machine.
TIMED_OUT = _paced(20, 3.0)


def test_timeouts_requeue_and_resume_every_point_exactly_once(tmp_path: Path):
    """SLURM's smallest time limit, 1 minute. SLURM looks at time limits every 30 s and signals a job when
    less than signal_delay_s + 30 s are left: with a 1 s delay each attempt is signalled 29-59 s after it
    starts (time for Python to start and install submitit's handler: a longer delay could signal it before,
    which kills the job unrequeued), submitit requeues it (it starts again cred_expire=10 s later), and the
    last attempt resumes: it skips what the earlier ones wrote."""
    proc, _ = _submit(
        tmp_path,
        "gpu=l40s",
        *TIMED_OUT,
        "stage.slurm.timeout_min=1",
        "launcher.signal_delay_s=1",
        "launcher.max_requeues=30",
    )  # a slow machine may need several attempts: never the bound
    assert proc.returncode == 0, proc.stderr
    (job_id,) = _task_ids(_manifest(tmp_path))
    assert _wait([job_id], timeout_s=1500) == {job_id: "COMPLETED"}
    _exactly_once(tmp_path / "results", 20)
    doc = _run_doc(tmp_path / "results/stage=sanity/gpu=l40s/model=resnet18/algo=torch")
    assert doc["outcome"] == "completed" and doc["attempts"] >= 2
    assert 0 < doc["points_skipped"] < 20 and doc["points_skipped"] + sum(doc["points_by_status"].values()) == 20


def test_a_jobs_time_limit_is_its_prediction_and_grows_at_each_requeue(tmp_path: Path):
    """The --time sbatch got is the prediction's (x 2, held to the bounds), as the manifest records it with the
    limits of the requeues after it (docs/clusters.md, Time limits)."""
    proc, _ = _submit(tmp_path, "gpu=l40s", "stage.sizes=[32]", "launcher.time_min_minutes=3")
    assert proc.returncode == 0, proc.stderr
    (group,) = _manifest(tmp_path)["groups"]
    limits = group["time_limits_min"]
    assert limits[0] == group["parameters"]["timeout_min"] and len(limits) == 4  # max_requeues = 3
    assert limits == sorted(limits) and limits[-1] == 20  # growing, the last the sanity stage's bound
    (job_id,) = _task_ids(_manifest(tmp_path))
    assert _wait([job_id]) == {job_id: "COMPLETED"}
    out = subprocess.run(["sacct", "-n", "-X", "-P", "-j", job_id, "-o", "Timelimit"], capture_output=True, text=True)
    days, _, clock = out.stdout.split()[0].rpartition("-")  # [D-]HH:MM:SS
    hours, minutes, _ = clock.split(":")
    assert int(days or 0) * 1440 + int(hours) * 60 + int(minutes) == limits[0], out.stdout


def test_preempted_job_resumes_every_point_exactly_once(tmp_path: Path):
    proc, _ = _submit(tmp_path, "gpu=l40s", *PACED, "stage.slurm.cpus_per_task=2")
    assert proc.returncode == 0, proc.stderr
    (job_id,) = _task_ids(_manifest(tmp_path))
    leaf = tmp_path / "results/stage=sanity/gpu=l40s/model=resnet18/algo=torch"
    _wait_for_points(leaf, 1)
    high = subprocess.run(
        ["sbatch", "--parsable", "-p", "gpu-high", "-c", "2", "--mem=1G", "-o", "/dev/null", "--wrap", "sleep 5"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert _wait([high]) == {high: "COMPLETED"}
    assert _wait([job_id]) == {job_id: "COMPLETED"}
    _exactly_once(tmp_path / "results", 8)
    doc = _run_doc(leaf)
    assert doc["outcome"] == "completed" and doc["attempts"] >= 2
    assert 0 < doc["points_skipped"] < 8  # the attempt after the preemption resumed


def test_cancelled_job_keeps_its_points_and_says_so(tmp_path: Path):
    proc, _ = _submit(tmp_path, "gpu=l40s", *PACED)
    assert proc.returncode == 0, proc.stderr
    (job_id,) = _task_ids(_manifest(tmp_path))
    leaf = tmp_path / "results/stage=sanity/gpu=l40s/model=resnet18/algo=torch"
    _wait_for_points(leaf, 2)
    subprocess.run(["scancel", job_id], check=True)
    assert _wait([job_id]) == {job_id: "CANCELLED"}
    deadline = time.monotonic() + 60  # SLURM kills the job KillWait=5 s after its SIGTERM; the bound catches a hang
    while (doc := _run_doc(leaf))["outcome"] == "running" and time.monotonic() < deadline:
        time.sleep(0.5)  # sacct may say CANCELLED while the job is still writing what it has
    assert doc["outcome"] == "cancelled"
    points = read(tmp_path / "results")
    assert len(points) >= 2 and points["input_size"].is_unique
    assert not list(leaf.glob("*.part-*"))  # compacted on the way out


def test_a_gpu_types_interpreter_and_container_run_the_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """gpu.python and gpu.container reach the job on the real cluster: one multirun of a gpu type with its own
    interpreter (a wrapper that says it ran, then runs this venv's python), without and with a container (a
    fake `apptainer` on PATH: it checks `exec --nv IMAGE`, says so, and runs the rest), as two arrays."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "cu126-python"
    wrapper.write_text(f'#!/bin/sh\necho "interpreter: $0" >&2\nexec {os.sys.executable} "$@"\n')
    apptainer = bin_dir / "apptainer"
    apptainer.write_text(
        '#!/bin/sh\n[ "$1" = exec ] && [ "$2" = --nv ] && [ -f "$3" ] || { echo "bad call: $*" >&2; exit 64; }\n'
        'echo "apptainer: exec --nv $3" >&2\nshift 3\nexec "$@"\n'
    )
    for script in (wrapper, apptainer):
        script.chmod(0o755)
    (tmp_path / "harness-cu126.sif").write_text("an image, as far as the fake apptainer can tell")
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")  # the jobs inherit it (sbatch --export=ALL)
    proc = run_cli(
        "-m",
        *ON_TEST_CLUSTER,
        "gpu=l40s",
        f"gpu.python={wrapper}",
        "gpu.container=null,harness-cu126.sif",
        "stage.sizes=[32]",
        "remeasure=true",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    manifest = _manifest(tmp_path)
    assert len(manifest["groups"]) == 2  # same SLURM resources, two interpreters: two arrays
    image = tmp_path / "harness-cu126.sif"
    assert sorted(g["parameters"]["python"] for g in manifest["groups"]) == sorted(
        [str(wrapper), f"apptainer exec --nv {image} {wrapper}"]
    )
    states = _wait(_task_ids(manifest))
    assert set(states.values()) == {"COMPLETED"}, states
    for group in manifest["groups"]:
        (task,) = group["tasks"]
        log = Path(task["stdout"]).with_suffix(".err").read_text()
        (script,) = Path(task["stdout"]).parent.glob("*_submission.sh")
        assert f"{group['parameters']['python']} -u -m submitit.core._submit" in script.read_text()
        assert f"interpreter: {wrapper}" in log and f"job interpreter: {os.sys.executable}" in log
        assert (f"apptainer: exec --nv {image}" in log) == ("apptainer" in group["parameters"]["python"])
    docs = [json.loads(p.read_text()) for p in (tmp_path / "results").rglob("run-*.json")]
    assert [d["outcome"] for d in docs] == ["completed", "completed"]
    points = read(tmp_path / "results")  # the same point, measured once by each job
    assert sorted(points["run_id"]) == sorted(d["run_id"] for d in docs) and set(points["status"]) == {"ok"}


def test_adaptive_grid_rounds_chain_and_resume_a_cancelled_round(tmp_path: Path):
    """stage.sizes=adaptive on the cluster: a small model, 2 algorithms, 2 rounds. Round 1 (32, 48, 64) goes as
    one array with a decider job after it (afterany); the round is cancelled once a point is written; the
    decider finds points missing and submits the round again (the jobs skip what was written), then decides
    round 2 and its decider records the end. Three iterations per point give no interval (fewer than 6), so
    every curve counts and any bend beyond 0.1% asks for a size: round 2 is never empty. Every point of both
    rounds measured exactly once, and nothing waited on this side."""
    args = [
        "gpu=l40s", "algo=gemm,torch", "stage.sizes=adaptive", "stage.adaptive.start=32",
        "stage.adaptive.stop=64", "stage.adaptive.coarse=3", "stage.adaptive.resolution=4",
        "stage.adaptive.tolerance=0.001", "stage.adaptive.max_rounds=2", "stage.warmup_s=2.0",
        "stage.verify_every_point=false",
    ]  # fmt: skip
    proc = run_cli("-m", *ON_TEST_CLUSTER, *args, cwd=tmp_path)  # -m first, as Hydra wants it
    assert proc.returncode == 0, proc.stderr
    results = tmp_path / "results"
    (journal,) = results.glob("stage=sanity/_rounds/adaptive-*.json")
    first = json.loads(journal.read_text())["rounds"][0]
    assert first["state"] == "submitted" and first["decider"] and first["jobs"]
    _wait_for_points(results / "stage=sanity/gpu=l40s/model=resnet18/algo=gemm", 1)
    subprocess.run(["scancel", *{j.split("_")[0] for j in first["jobs"]}], check=True)
    deadline = time.monotonic() + 1500  # three deciders and two more arrays: the bound catches a hang
    while (doc := json.loads(journal.read_text()))["stopped"] is None and time.monotonic() < deadline:
        time.sleep(2)
    assert doc["stopped"]["reasons"] == {"resnet18/l40s": "max_rounds"}, doc
    assert [r["state"] for r in doc["rounds"]] == ["done", "done"] and doc["rounds"][0]["attempts"] == 2
    added = [s for s, *_ in doc["rounds"][1]["sizes"]["resnet18/l40s"]]
    assert added and not {32, 48, 64} & set(added)
    points = read(results)
    expected = sorted([32, 48, 64, *added])
    assert sorted(points.groupby("algo")["input_size"].apply(sorted).to_dict().items()) == [
        ("gemm", expected),
        ("torch", expected),
    ]
    assert not points.duplicated(["algo", "input_size"]).any()
