"""The store: atomic per-point writes, compaction, resume without duplicates, nothing overwritten."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from harness.results import read
from harness.results.layout import Partition
from harness.results.schema import SCHEMA_VERSION
from harness.results.store import ResultStore
from harness.run import runner
from tests.conftest import FAST
from tests.helpers import make_spec

PART = Partition("sanity", "local", "resnet18", "torch")


def _point(size: int, status: str = "ok", run_id: str = "r1") -> dict:
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "stage": "sanity",
        "model": "resnet18",
        "algo": "torch",
        "gpu": "local",
        "input_size": size,
        "batch_size": 1,
        "dtype": "float32",
        "status": status,
        "p50_ms": float(size),
        "config_hash": "h1",
    }


def _layer(size: int, index: int, run_id: str = "r1") -> dict:
    return {"run_id": run_id, "input_size": size, "batch_size": 1, "dtype": "float32", "layer_index": index}


def test_write_point_then_compact_round_trip(tmp_path: Path):
    store = ResultStore(tmp_path, PART, "r1")
    store.open()
    for size in (64, 32, 48):
        store.write_point(_point(size), [_layer(size, 0), _layer(size, 1)])
    assert len(list(store.dir.glob("points-r1.part-*.parquet"))) == 3
    assert store.measured("h1") == {(32, 1, "float32"), (48, 1, "float32"), (64, 1, "float32")}
    written = store.compact()
    assert sorted(p.name for p in store.dir.iterdir()) == ["layers-r1.parquet", "points-r1.parquet"]
    assert [p.name for p in written] == ["layers-r1.parquet", "points-r1.parquet"]
    points = read(tmp_path)
    assert points["input_size"].tolist() == [32, 48, 64]  # sorted, each once
    assert points["p50_ms"].tolist() == [32.0, 48.0, 64.0]
    assert len(read(tmp_path, "layers")) == 6
    assert store.compact() == []  # nothing left to do


def test_compaction_is_safe_to_repeat_after_a_crash(tmp_path: Path):
    store = ResultStore(tmp_path, PART, "r1")
    store.open()
    store.write_point(_point(32), [_layer(32, 0)])
    store.compact()
    # A crash after the merged files were written but before the pieces were removed leaves both:
    store.write_point(_point(32), [_layer(32, 0)])
    store.write_point(_point(48), [_layer(48, 0)])
    store.compact()
    assert read(tmp_path)["input_size"].tolist() == [32, 48]
    assert read(tmp_path, "layers")["input_size"].tolist() == [32, 48]


def test_uncommitted_layers_piece_is_dropped(tmp_path: Path):
    store = ResultStore(tmp_path, PART, "r1")
    store.open()
    store.write_point(_point(32), [_layer(32, 0)])
    store.write_point(_point(48), [_layer(48, 0)])
    next(store.dir.glob("points-r1.part-s48-*.parquet")).unlink()  # crashed between the two renames
    store.compact()
    assert read(tmp_path, "layers")["input_size"].tolist() == [32]


def test_error_rows_are_retried_final_statuses_are_not(tmp_path: Path):
    store = ResultStore(tmp_path, PART, "r1")
    store.open()
    for size, status in ((32, "ok"), (48, "oom"), (64, "unsupported"), (80, "error")):
        store.write_point(_point(size, status), [])
    assert {k[0] for k in store.measured("h1")} == {32, 48, 64}


def test_unreadable_file_does_not_hide_the_others(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    store = ResultStore(tmp_path, PART, "r1")
    store.open()
    store.write_point(_point(32), [])
    (store.dir / "points-broken.parquet").write_bytes(b"not parquet")
    assert store.measured("h1") == {(32, 1, "float32")}
    assert "points-broken.parquet" in caplog.text


def test_no_temporary_files_are_left(tmp_path: Path):
    store = ResultStore(tmp_path, PART, "r1")
    store.open()
    store.write_point(_point(32), [_layer(32, 0)])
    store.write_run({"run_id": "r1"})
    assert not [p for p in store.dir.iterdir() if p.name.startswith(".")]


def test_interrupted_run_resumes_each_point_exactly_once(results: Path):
    """A job killed after 2 of 4 points; run again: the 2 others are measured, none twice."""
    spec = make_spec(results, *FAST, "stage.sizes=[32,40,48,56]")

    def die_after_two(key, point):
        if point is not None and point["input_size"] == 40:
            raise KeyboardInterrupt  # what Ctrl-C or a SLURM kill looks like to the loop

    with pytest.raises(KeyboardInterrupt):
        runner.run(spec, on_point=die_after_two)
    first = read(results)
    assert first["input_size"].tolist() == [32, 40]  # both kept, compacted on the way out
    leaf = PART.path(results)
    assert "interrupted" in next(leaf.glob("run-*.json")).read_text()

    second = runner.run(spec)
    assert second.skipped == [(32, 1, "float32"), (40, 1, "float32")]
    points = read(results)
    assert sorted(points["input_size"].tolist()) == [32, 40, 48, 56]
    assert points.groupby("input_size").size().max() == 1
    layers = read(results, "layers")
    assert layers.groupby(["input_size", "layer_index"]).size().max() == 1
    assert len(layers) == 4 * 20


def test_a_failing_point_is_a_row_and_the_sweep_goes_on(results: Path, monkeypatch: pytest.MonkeyPatch):
    spec = make_spec(results, *FAST, "stage.sizes=[32,40,48]")
    real = runner.PointMeasurer.measure_point

    def flaky(self, size, batch, trace=None):
        if size == 40:
            raise RuntimeError("CUDNN_STATUS_EXECUTION_FAILED (simulated)")
        if size == 48:
            raise MemoryError("out of memory (simulated)")
        return real(self, size, batch, trace)

    monkeypatch.setattr(runner.PointMeasurer, "measure_point", flaky)
    result = runner.run(spec)
    statuses = {p["input_size"]: (p["status"], p["error"]) for p in result.points}
    assert statuses[32] == ("ok", None)
    assert statuses[40][0] == "error" and "CUDNN_STATUS_EXECUTION_FAILED" in statuses[40][1]
    assert statuses[48][0] == "oom"
    assert result.outcome == "completed"


def test_sizes_after_an_oom_are_recorded_as_skipped(results: Path, monkeypatch: pytest.MonkeyPatch):
    spec = make_spec(results, *FAST, "stage.sizes=[32,40,48]")
    real = runner.PointMeasurer.measure_point
    tried = []

    def measure(self, size, batch, trace=None):
        tried.append(size)
        if size >= 40:
            raise MemoryError("out of memory (simulated)")
        return real(self, size, batch, trace)

    monkeypatch.setattr(runner.PointMeasurer, "measure_point", measure)
    result = runner.run(spec)
    by_size = {p["input_size"]: p for p in result.points}
    assert by_size[32]["status"] == "ok"
    assert by_size[40]["status"] == "oom" and by_size[48]["status"] == "oom"
    assert "skipped" in by_size[48]["error"] and "40" in by_size[48]["error"]
    assert tried == [32, 40]  # 48 was recorded, not tried


def test_compacted_files_are_valid_parquet_with_the_schema(results: Path):
    runner.run(make_spec(results, *FAST))
    for path in results.rglob("*.parquet"):
        assert pq.read_schema(path).field("schema_version") is not None


def test_recover_merges_runs_whose_process_died_and_leaves_other_hosts_alone(tmp_path: Path):
    import socket

    dead = subprocess.Popen(["true"])
    dead.wait()
    for run_id, host, pid in (
        ("dead", socket.gethostname(), dead.pid),
        ("remote", "another-node", dead.pid),
        ("alive", socket.gethostname(), os.getpid()),
    ):
        store = ResultStore(tmp_path, PART, run_id)
        store.open()
        store.write_run({"run_id": run_id, "outcome": "running", "hostname": host, "pid": pid})
        store.write_point(_point(32, run_id=run_id), [_layer(32, 0, run_id=run_id)])
    (store.dir / f".tmp-{socket.gethostname()}-{dead.pid}-abc-points-x.parquet").write_bytes(b"half")
    assert ResultStore(tmp_path, PART, "new").recover() == ["dead"]
    names = {p.name for p in store.dir.iterdir()}
    assert {"points-dead.parquet", "layers-dead.parquet"} <= names
    assert "points-remote.part-s32-b1-float32.parquet" in names  # another host's run may still be running
    assert "points-alive.part-s32-b1-float32.parquet" in names
    assert not [n for n in names if n.startswith(".tmp-")]
    assert json.loads((store.dir / "run-dead.json").read_text())["outcome"] == "killed"
    assert json.loads((store.dir / "run-remote.json").read_text())["outcome"] == "running"
