"""The run manifest (run-<run>.json): one record, read tolerantly, written atomically and losslessly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.results.layout import Partition
from harness.results.manifest import RunManifest, read_manifest
from harness.results.read import run_records
from harness.results.store import ResultStore

# What `python -m harness` wrote before the manifest had a class (hostname, pid and results_dir anonymised).
OLD = Path(__file__).parent / "fixtures" / "run-manifest-before-class.json"


def test_an_old_manifest_reads_field_by_field_and_writes_back_the_same_document(tmp_path: Path):
    doc = json.loads(OLD.read_text())
    m = RunManifest.read(OLD)
    assert m.run_id == "20261205T064810Z-4dce9e" and m.outcome == "completed" and m.attempts == 1
    assert m.config["model"]["name"] == "resnet18" and m.config["stage"]["sizes"] == [32]
    assert m.points_planned_keys == [[32, 1, "float32"]] and m.points_by_status == {"ok": 1}
    assert m.config_hash == doc["config_hash"] and m.environment == doc["environment"]
    assert m.extra == {} and m.error is None and m.recovered_by is None
    assert json.loads(m.write(tmp_path / "run.json").read_text()) == doc


def test_missing_fields_get_defaults_and_unknown_fields_are_kept(tmp_path: Path):
    m = RunManifest.from_dict({"run_id": "r", "outcome": "running", "from_the_future": {"a": 1}})
    assert m.attempts is None and m.attempt_count == 1 and m.config is None and m.points_planned is None
    assert m.extra == {"from_the_future": {"a": 1}} and m.get("from_the_future") == {"a": 1}
    m.outcome = "killed"
    written = json.loads(m.write(tmp_path / "run.json").read_text())
    assert written == {
        "run_id": "r",
        "outcome": "killed",
        "from_the_future": {"a": 1},
        "ended_at": None,
        "config": None,
    }


@pytest.mark.parametrize("text", ["not json", "[1, 2]", '{"outcome": "running"}'])
def test_what_is_not_a_manifest_is_refused_and_read_manifest_says_none(tmp_path: Path, text: str):
    path = tmp_path / "run-x.json"
    path.write_text(text)
    with pytest.raises(ValueError):
        RunManifest.read(path)
    assert read_manifest(path) is None and read_manifest(tmp_path / "absent.json") is None


def test_store_and_leaf_readers_go_through_the_record(tmp_path: Path):
    store = ResultStore(tmp_path, Partition("sanity", "local", "resnet18", "torch"), "20261205T064810Z-4dce9e")
    store.open()
    store.write_run(RunManifest.read(OLD))
    (store.dir / "run-broken.json").write_text("{")
    again = store.read_run()
    assert again == RunManifest.read(OLD)
    runs, problems = run_records(store.dir)
    assert runs == [again] and len(problems) == 1 and problems[0].startswith("unreadable run-broken.json")
