"""Point-key columns added after rows were written (layout, l2): an old row is the point measured at the
earlier value, so it and a new row of that point are one point (latest wins), a new value is a point of its
own, and the config hash of an earlier config does not change."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harness.errors import ConfigError
from harness.results import layout
from harness.results.read import fill_point_axes, fill_point_axes_table, latest, latest_leaf_points, read
from harness.run import runner
from tests.conftest import FAST
from tests.helpers import make_spec


def _row(measured: str, run: str, **axes: str | None) -> dict:
    return {
        "stage": "quick",
        "gpu": "local",
        "model": "resnet18",
        "algo": "gemm",
        "input_size": 64,
        "batch_size": 1,
        "dtype": "float32",
        "measured_at": datetime.fromisoformat(measured).replace(tzinfo=timezone.utc),
        "run_id": run,
        "p50_ms": float(len(run)),
        **axes,
    }


def test_an_old_row_and_a_new_row_of_the_same_point_are_one_point():
    old = _row("2026-01-01T00:00:00", "old")  # written before the columns existed
    new = _row("2026-02-01T00:00:00", "newer", layout="nchw", l2="warm")
    rows = pd.DataFrame([old, new])
    won = latest(rows)
    assert list(won["run_id"]) == ["newer"]


def test_a_new_value_is_a_point_of_its_own():
    rows = pd.DataFrame(
        [
            _row("2026-01-01T00:00:00", "old", layout=None, l2=None),
            _row("2026-02-01T00:00:00", "nhwc", layout="nhwc", l2="warm"),
            _row("2026-03-01T00:00:00", "cold", layout="nchw", l2="cold"),
        ]
    )
    won = latest(rows).sort_values("run_id")
    assert list(won["run_id"]) == ["cold", "nhwc", "old"]
    assert list(won.set_index("run_id").loc[["old", "nhwc", "cold"], "layout"]) == ["nchw", "nhwc", "nchw"]


def test_fill_leaves_recorded_values_and_fills_nulls_in_pandas_and_arrow():
    frame = fill_point_axes(pd.DataFrame({"layout": ["nhwc", None], "x": [1, 2]}))
    assert list(frame["layout"]) == ["nhwc", "nchw"] and list(frame["l2"]) == ["warm", "warm"]
    table = fill_point_axes_table(pa.table({"layout": pa.array(["nhwc", None], pa.string())}))
    assert table.column("layout").to_pylist() == ["nhwc", "nchw"]
    assert table.column("l2").to_pylist() == ["warm", "warm"]


def test_fill_of_an_all_null_column_keeps_its_type_dictionary_or_string():
    encoded = pa.dictionary(pa.int32(), pa.string())
    columns = {
        "layout": pa.nulls(3, encoded),
        "l2": pa.nulls(3, pa.string()),
        "direction": pa.array(["backward", None, None], encoded),
    }
    table = fill_point_axes_table(pa.table(columns))
    assert table.schema.field("layout").type == encoded and table.column("layout").to_pylist() == ["nchw"] * 3
    assert table.schema.field("l2").type == pa.string() and table.column("l2").to_pylist() == ["warm"] * 3
    assert table.column("direction").to_pylist() == ["backward", "forward", "forward"]


def test_a_leaf_with_files_from_before_the_columns_reads(tmp_path: Path):
    old = {k: v for k, v in _row("2026-01-01T00:00:00", "old").items() if k not in layout.PARTITION_KEYS}
    new = {k: v for k, v in _row("2026-02-01T00:00:00", "new", layout="nhwc", l2="warm").items()}
    new = {k: v for k, v in new.items() if k not in layout.PARTITION_KEYS}
    pq.write_table(pa.Table.from_pylist([old]), tmp_path / "points-old.parquet")
    pq.write_table(pa.Table.from_pylist([new]), tmp_path / "points-new.parquet")
    rows, problems = latest_leaf_points(tmp_path, ["p50_ms"])
    assert problems == []
    assert sorted(zip(rows["run_id"], rows["layout"])) == [("new", "nhwc"), ("old", "nchw")]


def test_the_hash_of_an_earlier_config_is_kept_and_a_new_value_changes_it(tmp_path: Path):
    spec = make_spec(tmp_path, "stage=sanity")
    assert spec.layout == "nchw" and spec.l2 == "warm"
    assert "layout" not in spec.measurement_config() and "l2" not in spec.measurement_config()
    hashes = {spec.config_hash(), replace(spec, layout="nhwc").config_hash(), replace(spec, l2="cold").config_hash()}
    assert len(hashes) == 3


@pytest.mark.parametrize("override", ["layout=nwhc", "l2=lukewarm"])
def test_an_unknown_value_is_refused_with_the_choices(tmp_path: Path, override: str):
    with pytest.raises(ConfigError) as e:
        make_spec(tmp_path, override)
    key, value = override.split("=")
    assert value in str(e.value) and {"nchw": "nhwc", "l2": "cold"}.get(key, "nhwc") in str(e.value)


def test_a_run_writes_its_layout_and_l2_on_every_row(tmp_path: Path):
    runner.run(make_spec(tmp_path, *FAST, "model=resnet18", "algo=gemm"))
    for table in ("points", "layers"):
        rows = read(tmp_path, table)
        assert len(rows) and set(rows["layout"]) == {"nchw"} and set(rows["l2"]) == {"warm"}
