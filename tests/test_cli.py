"""The command line end to end, on the CPU, with tiny inputs: what a user types and what they get."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from harness.results.schema import LAYERS, POINTS
from tests.conftest import FAST, has_cuda_device_named, run_cli

REQUIRED_POINTS = [
    "schema_version",
    "run_id",
    "stage",
    "model",
    "algo",
    "gpu",
    "device",
    "device_name",
    "input_size",
    "batch_size",
    "dtype",
    "status",
    "error",
    "n",
    "mean_ms",
    "std_ms",
    "cv",
    "min_ms",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "max_ms",
    "ci95_low_ms",
    "ci95_high_ms",
    "throughput_ips",
    "flops",
    "params",
    "achieved_tflops",
    "peak_allocated_bytes",
    "peak_reserved_bytes",
    "energy_per_inference_j",
    "energy_method",
    "energy_window_s",
    "power_mean_w",
    "idle_power_w",
    "sm_clock_mhz",
    "temperature_c",
    "throttle_reasons",
    "max_abs_err",
    "max_rel_err",
    "algo_fallback_layers",
    "torch_version",
    "cuda_version",
    "cudnn_version",
    "driver_version",
    "hostname",
    "slurm_job_id",
    "git_commit",
    "config_hash",
    "measured_at",
]
REQUIRED_LAYERS = [
    "run_id",
    "stage",
    "model",
    "algo",
    "gpu",
    "device_name",
    "input_size",
    "batch_size",
    "dtype",
    "layer_index",
    "layer_name",
    "in_channels",
    "out_channels",
    "kernel_h",
    "kernel_w",
    "stride_h",
    "stride_w",
    "pad_h",
    "pad_w",
    "dilation_h",
    "dilation_w",
    "groups",
    "in_h",
    "in_w",
    "out_h",
    "out_w",
    "algo_requested",
    "algo_used",
    "backend",
    "status",
    "workspace_bytes",
    "n",
    "mean_ms",
    "p50_ms",
    "std_ms",
    "flops",
    "share_of_model",
]


def test_schemas_hold_every_required_column():
    assert set(REQUIRED_POINTS) <= set(POINTS.names)
    assert set(REQUIRED_LAYERS) <= set(LAYERS.names)


def test_default_run_writes_points_layers_and_run_json(results: Path):
    proc = run_cli(*FAST, "stage.sizes=[32,48]", f"results_dir={results}")
    assert proc.returncode == 0, proc.stderr
    leaf = results / "stage=sanity" / "gpu=local" / "model=resnet18" / "algo=torch"
    names = sorted(p.name for p in leaf.iterdir())
    assert [n.split("-")[0] for n in names] == ["layers", "points", "run"], names  # compacted: 3 files
    assert str(leaf) in proc.stdout.replace("\n", "")  # the user is told where the files are
    assert "p50 ms" in proc.stdout and "throughput" in proc.stdout

    points = ds.dataset(results, partitioning="hive", ignore_prefixes=["layers", "run"]).to_table()
    assert set(REQUIRED_POINTS) <= set(points.column_names)
    rows = points.to_pylist()
    assert [r["input_size"] for r in rows] == [32, 48]
    for r in rows:
        assert r["status"] == "ok" and r["device"] == "cpu" and r["stage"] == "sanity"
        assert 3 <= r["n"] <= 5 and r["min_ms"] <= r["p50_ms"] <= r["max_ms"]
        assert r["flops"] > 0 and r["params"] == 11_689_512  # resnet18
        assert r["peak_allocated_bytes"] is None and r["energy_per_inference_j"] is None  # not measured on CPU
        assert r["cuda_version"] is None and r["config_hash"] and r["measured_at"] is not None

    layers = ds.dataset(results, partitioning="hive", ignore_prefixes=["points", "run"]).to_table().to_pylist()
    assert len(layers) == 2 * 20  # resnet18 has 20 conv layers
    first = [r for r in layers if r["input_size"] == 48 and r["layer_index"] == 0][0]
    assert (first["layer_name"], first["in_h"], first["out_h"], first["kernel_h"]) == ("conv1", 48, 24, 7)
    last = [r for r in layers if r["input_size"] == 48 and r["layer_index"] == 19][0]
    assert (last["in_h"], last["out_h"]) == (2, 2)  # its OWN input: 48 / 16 / ... after the stem and stages

    run_doc = json.loads(next(leaf.glob("run-*.json")).read_text())
    assert run_doc["outcome"] == "completed" and run_doc["points_by_status"] == {"ok": 2}
    assert run_doc["config"]["stage"]["sizes"] == [32, 48]


def test_rerun_skips_measured_points_and_remeasure_adds_rows(results: Path):
    assert run_cli(*FAST, f"results_dir={results}").returncode == 0
    again = run_cli(*FAST, "stage.sizes=[32,40]", f"results_dir={results}")
    assert again.returncode == 0, again.stderr
    assert "1 point(s) already measured" in again.stdout
    forced = run_cli(*FAST, "remeasure=true", f"results_dir={results}")
    assert forced.returncode == 0, forced.stderr
    points = ds.dataset(results, partitioning="hive", ignore_prefixes=["layers", "run"]).to_table().to_pylist()
    assert sorted(r["input_size"] for r in points) == [32, 32, 40]
    assert len({r["run_id"] for r in points}) == 3


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["model=nosuchnet"], ["nosuchnet", "vgg16", "resnet18"]),  # Hydra lists the group's options
        (["model.name=resnet19"], ["resnet19", "resnet18", "regnet_y_400mf"]),  # any torchvision name is valid
        (["algo=nosuch"], ["nosuch", "winograd", "torch"]),
        (["gpu=a100"], ["a100", "l40s", "local"]),
        (["stage=nosuch"], ["nosuch", "sanity", "quick", "full"]),
        (["stage.name=nosuch"], ["nosuch", "sanity", "quick", "full"]),
        (["stage.sizes=[0]"], ["input size 0", "positive"]),
        (["stage.sizes=[-5,224]"], ["input size -5", "positive"]),
        (["model=vgg16", "stage.sizes=[16]"], ["input size 16", "vgg16", "32"]),
        (["batch_size=0"], ["batch_size=0"]),
        (["dtype=float64"], ["float64", "float32", "bfloat16"]),
        (["dtype=float16"], ["dtype=float16", "GPU", "float32"]),
        (["algo=implicit_gemm"], ["algo=implicit_gemm", "only in cuDNN", "direct, gemm, fft, winograd, torch"]),
        (["algo.name=implicit precomp gemm"], ["algo=implicit_precomp_gemm", "only in cuDNN"]),  # the old spelling
        (["algo.name=magic"], ["'magic'", "implicit_precomp_gemm", "winograd_nonfused"]),
        (["algo=gemm", "fallback=guess"], ["fallback=guess", "fallback=torch"]),
        (["algo=gemm", "fallback=maybe"], ["'maybe'", "none, guess, torch"]),
        (["algo=gemm", "backend=cudnn"], ["backend=cudnn needs a CUDA GPU", "backend=reference"]),
        (["math=tf64"], ["'tf64'", "auto, fma, tensor_op"]),
        pytest.param(  # on a login node it would be submitted; device=auto: FAST's device=cpu would be refused first
            ["gpu=l40s", "launcher=local", "device=auto"],
            ["gpu=l40s", "gpu=local", "this machine has", "SLURM"],
            marks=pytest.mark.skipif(
                has_cuda_device_named("L40S"), reason="this machine has an L40S: gpu=l40s runs here"
            ),
        ),
        (["stage.sizes={start:300,stop:200,num:3}"], ["stage.sizes={start:300,stop:200,num:3}", "stop >= start"]),
        (
            ["stage.sizes=224:512:10"],
            ["'224:512:10'", "stage.sizes=[224,256]", "stage.sizes={start:224,stop:512,num:10}"],
        ),
        (["stage.sizes=null"], ["stage.sizes is null", "stage.sizes={start:224,stop:512,num:10}"]),
        (["stage.size_range={start:224,stop:512}"], ["stage.size_range", "start, stop, num", "stage.sizes={start:"]),
    ],
)
def test_bad_config_is_refused_with_the_valid_choices(results: Path, args: list[str], expected: list[str]):
    own_sizes = any(a.startswith("stage.sizes=") for a in args)  # then FAST's list is left out: Hydra cannot
    proc = run_cli(*(FAST[1:] if own_sizes else FAST), *args, f"results_dir={results}")  # merge a range into it
    assert proc.returncode != 0
    for word in expected:
        assert word in proc.stderr, (word, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert not list(results.rglob("points*.parquet"))  # nothing was measured


def test_a_refusal_in_a_fresh_interpreter_exits_2_with_one_line_and_no_traceback(results: Path):
    """The cases above run in the test worker's CLI driver (tests/cli_driver.py); this one in a new
    interpreter, as a user's shell starts it: the exit code and stderr come from the process itself."""
    proc = run_cli(*FAST, "math=tf64", f"results_dir={results}", fresh=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == "error: unknown math 'tf64'; valid choices: auto, fma, tensor_op"
    assert "Traceback" not in proc.stderr and not results.exists()


def _points(results: Path) -> list[dict]:
    return ds.dataset(results, partitioning="hive", ignore_prefixes=["layers", "run"]).to_table().to_pylist()


def _layers(results: Path) -> list[dict]:
    return ds.dataset(results, partitioning="hive", ignore_prefixes=["points", "run"]).to_table().to_pylist()


def test_vgg16_with_the_winograd_reference_is_verified_and_measured(results: Path):
    proc = run_cli(*FAST, "model=vgg16", "algo=winograd", f"results_dir={results}")
    assert proc.returncode == 0, proc.stderr
    (point,) = _points(results)
    assert point["status"] == "ok" and point["algo"] == "winograd" and point["backend"] == "reference"
    assert point["verified"] is True and point["max_rel_err"] < 1e-4 and point["algo_fallback_layers"] == 0
    layers = _layers(results)
    assert len(layers) == 13 and {(r["algo_used"], r["backend"], r["status"]) for r in layers} == {
        ("winograd", "reference", "ok")
    }
    assert all(r["host_bound"] is None for r in layers)  # the CPU times no layer behind a head start: unknown


def test_resnet50_winograd_without_fallback_is_unsupported_naming_the_layers(results: Path):
    proc = run_cli(*FAST, "model=resnet50", "algo=winograd", "fallback=none", f"results_dir={results}")
    assert proc.returncode == 0, proc.stderr
    (point,) = _points(results)
    assert point["status"] == "unsupported" and point["n"] is None and point["p50_ms"] is None
    assert "40 of 53 conv layers cannot run winograd" in point["error"] and "conv1, layer1.0.conv1" in point["error"]
    layers = _layers(results)
    unsupported = [r for r in layers if r["status"] == "unsupported"]
    assert len(layers) == 53 and len(unsupported) == 40 and all(r["mean_ms"] is None for r in layers)
    assert "kernel 1x1" in unsupported[1]["detail"]

    # the same job with fallback=torch is another measurement (another config hash): it runs
    proc = run_cli(*FAST, "model=resnet50", "algo=winograd", "fallback=torch", f"results_dir={results}")
    assert proc.returncode == 0, proc.stderr
    ok = [p for p in _points(results) if p["status"] == "ok"]
    assert len(ok) == 1 and ok[0]["algo_fallback_layers"] == 40 and ok[0]["verified"] is True
    ran = {(r["algo_used"], r["backend"], r["status"]) for r in _layers(results) if r["run_id"] == ok[0]["run_id"]}
    assert ran == {("winograd", "reference", "ok"), ("torch", "torch", "fallback")}


def test_a_point_beyond_tolerance_is_an_error_and_not_timed(results: Path):
    proc = run_cli(*FAST, "algo=fft", "tolerance.float32=1e-12", f"results_dir={results}")
    assert proc.returncode == 0, proc.stderr
    (point,) = _points(results)
    assert point["status"] == "error" and point["error"].startswith("verification failed")
    assert point["verified"] is False and point["max_abs_err"] > 0 and point["n"] is None


def test_unwritable_results_dir_is_refused(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    proc = run_cli(*FAST, f"results_dir={blocker}/results")
    assert proc.returncode == 2
    assert "cannot write results" in proc.stderr and "results_dir=" in proc.stderr


def test_any_torchvision_model_by_name(results: Path):
    proc = run_cli(*FAST, "model.name=squeezenet1_0", f"results_dir={results}")
    assert proc.returncode == 0, proc.stderr
    assert list((results / "stage=sanity/gpu=local/model=squeezenet1_0/algo=torch").glob("points-*.parquet"))


def test_cfg_job_shows_the_resolved_stage():
    proc = run_cli("--cfg", "job", "stage=full")
    assert proc.returncode == 0, proc.stderr
    assert "name: full" in proc.stdout and "num: 100" in proc.stdout and "timeout_min" in proc.stdout


def test_help_lists_the_config_groups():
    proc = run_cli("--help")
    assert proc.returncode == 0
    for group in ("stage:", "model:", "algo:", "gpu:"):
        assert group in proc.stdout
    assert "winograd_nonfused" in proc.stdout and "densenet121" in proc.stdout
