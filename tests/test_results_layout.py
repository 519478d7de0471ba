"""The results tree's layout and reading rules, owned by harness.results: folder and file names, leaves,
and "the latest row of a point wins"."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pytest

from harness.config import keys
from harness.results import layout
from harness.results.layout import Partition
from harness.results.read import latest, latest_leaf_points, leaf_points


def test_a_partition_is_a_path_and_back():
    part = Partition("quick", "h100", "vgg16", "gemm")
    leaf = part.path(Path("/r"))
    assert leaf == Path("/r/stage=quick/gpu=h100/model=vgg16/algo=gemm")
    assert Partition.of(leaf) == part and part.label() == "stage=quick gpu=h100 model=vgg16 algo=gemm"
    assert Partition.of(Path("/r/gpu=h100/stage=quick/model=vgg16/algo=gemm")) is None  # order matters
    assert Partition.of(Path("/r/stage=quick/gpu=h100/model=vgg16")) is None


def test_the_point_key_is_the_registrys():
    assert keys.point_key() == (
        *("stage", "gpu", "model", "algo", "input_size", "batch_size", "dtype", "layout", "l2", "direction"),
    )
    assert tuple(layout.POINT_KEY) == keys.point_key()
    assert tuple(layout.POINT_KEY[: len(layout.PARTITION_KEYS)]) == layout.PARTITION_KEYS  # the leaf, then the point
    point_columns = {k.column for k in keys.KEYS if k.role is keys.Role.POINT}
    assert point_columns == set(layout.POINT_KEY)


def test_leaves_are_found_and_filtered(tmp_path: Path):
    for p in (Partition("quick", "h100", "vgg16", "gemm"), Partition("full", "l40s", "vgg16", "fft")):
        p.path(tmp_path).mkdir(parents=True)
    (tmp_path / "stage=quick" / "gpu=h100" / "notes.txt").write_text("")
    assert [p for p, _ in layout.leaves(tmp_path)] == [
        Partition("full", "l40s", "vgg16", "fft"),
        Partition("quick", "h100", "vgg16", "gemm"),
    ]
    assert [p.gpu for p, _ in layout.leaves(tmp_path, gpu="h100")] == ["h100"]
    assert layout.stages_under(tmp_path) == ["full", "quick"]
    with pytest.raises(ValueError, match="not partition keys: \\['size'\\]"):
        list(layout.leaves(tmp_path, size="1"))


def test_file_names():
    key = (224, 8, "float16")
    assert layout.table_file("points", "R") == "points-R.parquet"
    assert layout.piece_file("layers", "R", key) == "layers-R.part-s224-b8-float16.parquet"
    assert layout.run_file("R") == "run-R.json" and layout.trace_file("R", key) == "trace-R.s224-b8-float16.json"
    assert set(layout.reader_ignore_prefixes("points")) >= {"run", "trace", "layers", "."}
    with pytest.raises(ValueError, match="unknown table 'point'"):
        layout.table_file("point", "R")


def _at(minute: int) -> datetime:
    return datetime(2026, 11, 25, 12, minute, tzinfo=timezone.utc)


def test_latest_row_of_a_point_wins():
    rows = pd.DataFrame(
        [
            {"input_size": 96, "batch_size": 1, "dtype": "f", "status": "error", "measured_at": _at(5), "run_id": "b"},
            {"input_size": 96, "batch_size": 1, "dtype": "f", "status": "ok", "measured_at": _at(9), "run_id": "a"},
            {"input_size": 96, "batch_size": 1, "dtype": "f", "status": "oom", "measured_at": pd.NaT, "run_id": "z"},
            {"input_size": 224, "batch_size": 1, "dtype": "f", "status": "ok", "measured_at": _at(1), "run_id": "a"},
            {"input_size": 224, "batch_size": 1, "dtype": "f", "status": "error", "measured_at": _at(1), "run_id": "c"},
        ]
    )
    won = latest(rows, ["input_size", "batch_size", "dtype"]).set_index("input_size")["status"].to_dict()
    assert won == {96: "ok", 224: "error"}  # latest time; a row without a time loses; equal times: larger run id


def test_a_leaf_with_an_unreadable_file_still_gives_the_others(tmp_path: Path):
    from harness.results.schema import SCHEMA_VERSION
    from harness.results.store import ResultStore

    part = Partition("sanity", "local", "resnet18", "torch")
    store = ResultStore(tmp_path, part, "r1")
    store.open()
    row = {
        "schema_version": SCHEMA_VERSION,
        "run_id": "r1",
        "input_size": 96,
        "batch_size": 1,
        "dtype": "float32",
        "status": "ok",
        "measured_at": _at(3),
    }
    store.write_point(row, [])
    store.compact()
    (part.path(tmp_path) / "points-broken.parquet").write_bytes(b"not parquet")
    rows, problems = latest_leaf_points(part.path(tmp_path), ["status"])
    assert rows["status"].tolist() == ["ok"] and len(problems) == 1 and "points-broken.parquet" in problems[0]
    empty, _ = leaf_points(tmp_path / "nowhere", ["status"])
    assert empty.empty and list(empty.columns) == ["status"]
