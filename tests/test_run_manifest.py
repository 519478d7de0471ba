"""The run manifest (run-<run id>.json): one dataclass, written and read by harness.results.manifest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.results import layout
from harness.results.manifest import RunManifest, read_manifest, write_manifest
from harness.results.read import planned_points, run_records
from harness.results.store import ResultStore
from tests.conftest import FAST
from tests.helpers import make_spec

# A manifest as written before points_planned_keys, attempts and slurm_job_ids existed.
OLD = {
    "run_id": "old1",
    "schema_version": 3,
    "started_at": "2026-01-01T10:00:00+00:00",
    "ended_at": "2026-01-01T10:05:00+00:00",
    "outcome": "completed",
    "config": {"stage": {"name": "quick"}},
    "config_hash": "abc",
    "points_planned": 6,
    "hostname": "node1",
    "pid": 42,
    "a_key_of_long_ago": [1, 2],
}


def test_an_old_manifest_reads_with_defaults_and_keeps_what_it_does_not_know(tmp_path: Path):
    path = tmp_path / "run-old1.json"
    path.write_text(json.dumps(OLD))
    run = read_manifest(path)
    assert (run.run_id, run.outcome, run.points_planned, run.config_hash) == ("old1", "completed", 6, "abc")
    assert run.attempts == 1 and run.points_planned_keys is None and run.slurm_job_ids is None
    assert run.extra == {"a_key_of_long_ago": [1, 2]}
    assert planned_points([run]) == 6
    write_manifest(run, tmp_path / "again.json")
    assert json.loads((tmp_path / "again.json").read_text()) == OLD | {"attempts": 1}


def test_a_running_manifest_says_it_has_not_ended(tmp_path: Path):
    write_manifest(RunManifest("r1", outcome="running"), tmp_path / "run-r1.json")
    doc = json.loads((tmp_path / "run-r1.json").read_text())
    assert doc == {"run_id": "r1", "outcome": "running", "ended_at": None, "attempts": 1}


@pytest.mark.parametrize("text", ["[1, 2]", '{"outcome": "running"}', "{not json"])
def test_what_is_not_a_manifest_is_refused(tmp_path: Path, text: str):
    (tmp_path / "run-x.json").write_text(text)
    with pytest.raises(ValueError):
        read_manifest(tmp_path / "run-x.json")
    runs, problems = run_records(tmp_path)
    assert runs == [] and len(problems) == 1 and problems[0].startswith("unreadable run-x.json")


def test_a_run_writes_its_manifest_and_the_store_reads_it_back(tmp_path: Path):
    from harness.run import runner

    spec = make_spec(tmp_path, *FAST)
    result = runner.run(spec)
    (path,) = layout.run_files(result.directory)
    run = read_manifest(path)
    assert run.run_id == result.run_id and run.outcome == "completed" and run.attempts == 1
    assert run.config_hash == result.spec.config_hash() and run.device == "cpu"
    assert run.points_planned == len(run.points_planned_keys or []) > 0
    store = ResultStore(spec.results_dir, spec.partition(), result.run_id)
    assert store.read_run() == run
