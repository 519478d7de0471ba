"""repeats=K: each point measured in K separate processes, one task (run) per repeat, each resuming only its
own points; repeats are not part of how a point is measured (the config hash)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harness.errors import ConfigError
from harness.launch.submit import make_tasks
from harness.results.layout import Partition
from harness.results.read import read
from harness.results.store import ResultStore
from tests.conftest import FAST, run_cli
from tests.helpers import compose_config, make_spec


def test_repeats_become_one_task_each_with_its_own_run(tmp_path: Path):
    tasks = make_tasks(compose_config(f"results_dir={tmp_path}", "device=cpu", "repeats=3"))
    assert [t.spec.repeat for t in tasks] == [0, 1, 2] and {t.spec.repeats for t in tasks} == {3}
    assert len({t.run_id for t in tasks}) == 3 and tasks[2].label.endswith("(repeat 3 of 3)")
    assert len(make_tasks(compose_config(f"results_dir={tmp_path}", "device=cpu"))) == 1


def test_repeats_do_not_change_how_a_point_is_measured(tmp_path: Path):
    assert make_spec(tmp_path, "repeats=3").config_hash() == make_spec(tmp_path).config_hash()


@pytest.mark.parametrize(
    "override, words",
    [("repeats=0", "repeats=0 is not valid"), ("repeats=two", "repeats"), ("+repeat=3", "repeat=3 is not valid")],
)
def test_bad_repeats_are_refused_with_the_valid_values(tmp_path: Path, override: str, words: str):
    with pytest.raises(ConfigError, match=words):
        make_spec(tmp_path, override)


def test_a_repeat_resumes_only_its_own_points(tmp_path: Path):
    store = ResultStore(tmp_path, Partition("sanity", "local", "resnet18", "torch"), "run-b")
    store.open()
    row = {"input_size": 32, "batch_size": 1, "dtype": "float32", "status": "ok", "config_hash": "h", "run_id": "run-a"}
    old = pa.Table.from_pylist([row])  # a file written before the repeat column existed: repeat 0
    pq.write_table(old, store.dir / "points-run-a.parquet")
    pq.write_table(
        pa.Table.from_pylist([row | {"input_size": 48, "run_id": "run-c", "repeat": 1}]),
        store.dir / "points-run-c.parquet",
    )
    assert store.measured("h") == {(32, 1, "float32")}
    assert store.measured("h", repeat=1) == {(48, 1, "float32")}
    assert store.measured("h", repeat=2) == set()


def test_each_repeat_runs_in_a_process_of_its_own(tmp_path: Path):
    results = tmp_path / "results"
    done = run_cli(*FAST, "stage.layer_iters=8", "repeats=2", "launcher=local", f"results_dir={results}")
    assert done.returncode == 0, done.stderr[-3000:]
    runs = [json.loads(p.read_text()) for p in results.rglob("run-*.json")]
    assert sorted(r["repeat"] for r in runs) == [0, 1] and all(r["outcome"] == "completed" for r in runs)
    pids = {r["pid"] for r in runs}
    assert len(pids) == 2 and os.getpid() not in pids  # two interpreters, neither this one (nor the driver's)
    points = read(results, "points")
    assert sorted(points["repeat"]) == [0, 1] and set(points["repeats"]) == {2}
    assert sorted(read(results, "layers").groupby("repeat").size().index) == [0, 1]
    again = run_cli(*FAST, "stage.layer_iters=8", "repeats=3", "launcher=local", f"results_dir={results}")
    assert again.returncode == 0, again.stderr[-3000:]
    assert sorted(read(results, "points")["repeat"]) == [0, 1, 2]  # only the third repeat was measured
