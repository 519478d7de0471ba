"""references=PATH: checked at the config border, and through a real (tiny, CPU) run of the harness each
point row gets reference_status and the run's summary lists the deviations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from analysis.bless import main as bless
from harness.errors import ConfigError
from harness.results import read
from tests.conftest import FAST, run_cli
from tests.helpers import make_spec

REFS = {
    "format": "conv-harness-references",
    "version": 1,
    "gpus": {
        "local": [
            {
                "stage": "sanity",
                "model": "resnet18",
                "algo": "torch",
                "input_size": 32,
                "batch_size": 1,
                "dtype": "float32",
                "p50_ms": 1.0,
                "tolerance": 0.05,
            }
        ]
    },
}


def write(path: Path, document) -> Path:
    path.write_text(yaml.safe_dump(document))
    return path


def test_references_are_read_at_the_config_border(tmp_path: Path):
    spec = make_spec(tmp_path / "results", f"references={write(tmp_path / 'refs.yaml', REFS)}")
    assert spec.references.entries() == 1 and spec.references.lookup("local", REFS["gpus"]["local"][0])
    assert make_spec(tmp_path / "results").references is None  # default: no check


def test_the_stage_tolerance_is_checked_and_stays_out_of_the_config_hash(tmp_path: Path):
    plain = make_spec(tmp_path / "results")
    tolerant = make_spec(
        tmp_path / "results", "stage.reference_tolerance=0.1", f"references={write(tmp_path / 'refs.yaml', REFS)}"
    )
    assert tolerant.stage.reference_tolerance == 0.1 and plain.stage.reference_tolerance is None
    assert tolerant.config_hash() == plain.config_hash()  # a check is not a way of measuring
    with pytest.raises(ConfigError, match=r"stage.reference_tolerance=-1 must be >= 0"):
        make_spec(tmp_path / "results", "stage.reference_tolerance=-1")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist; write one with python -m analysis.bless"),
        ({"format": "conv-harness-references", "version": 7, "gpus": {}}, "version 7 is not one this harness reads"),
        (REFS | {"gpus": {"local": [{"stage": "sanity"}]}}, "gpus.local[0]: missing model, algo"),
    ],
)
def test_a_bad_references_file_is_refused_at_the_border(tmp_path: Path, content, message: str):
    path = tmp_path / "refs.yaml"
    if content is not None:
        write(path, content)
    with pytest.raises(ConfigError) as e:
        make_spec(tmp_path / "results", f"references={path}")
    assert f"references={path} refused" in str(e.value) and message in str(e.value)


def test_a_bad_references_file_stops_the_cli_before_measuring(tmp_path: Path):
    proc = run_cli(*FAST, f"results_dir={tmp_path / 'results'}", f"references={write(tmp_path / 'r.yaml', [1])}")
    assert proc.returncode == 2 and "error: references=" in proc.stderr and "not a references file" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "results").exists()


def test_a_real_run_checks_its_points_against_blessed_references(tmp_path: Path):
    """Bless a tiny CPU run, make one reference absurdly fast and one absurdly slow (so the verdicts cannot
    depend on this machine's speed), and run again with references=: 32 is slower, 40 faster, 48 has none."""
    results = tmp_path / "results"
    first = run_cli(*FAST, "stage.sizes=[32,40]", f"results_dir={results}")
    assert first.returncode == 0, first.stderr
    refs = tmp_path / "refs.yaml"
    assert bless([str(results), "--out", str(refs)]) == 0
    document = yaml.safe_load(refs.read_text())
    by_size = {e["input_size"]: e for e in document["gpus"]["local"]}
    assert set(by_size) == {32, 40} and by_size[32]["settings"]["backend"] == "torch"
    by_size[32] |= {"p50_ms": 1e-6, "ci95_low_ms": 0.9e-6, "ci95_high_ms": 1.1e-6}
    by_size[40] |= {"p50_ms": 1e6, "ci95_low_ms": 0.9e6, "ci95_high_ms": 1.1e6}
    refs.write_text(yaml.safe_dump(document))

    again = run_cli(*FAST, "stage.sizes=[32,40,48]", "remeasure=true", f"results_dir={results}", f"references={refs}")
    assert again.returncode == 0, again.stderr
    rows = read(results)
    latest = rows[rows["run_id"] == rows.sort_values("measured_at")["run_id"].iloc[-1]]
    assert dict(zip(latest["input_size"], latest["reference_status"])) == {
        32: "slower",
        40: "faster",
        48: "no_reference",
    }
    assert rows.loc[rows["run_id"] != latest["run_id"].iloc[0], "reference_status"].isna().all()  # first run: none
    out = " ".join(again.stdout.split())
    assert f"references {refs}: 1 faster, 1 no_reference, 1 slower" in out
    assert "2 point(s) deviate from the references" in out and "input size 32, batch 1: slower: x" in out
    run_doc = json.loads(next(results.rglob(f"run-{latest['run_id'].iloc[0]}.json")).read_text())
    assert run_doc["references"] == {"path": str(refs), "by_status": {"faster": 1, "no_reference": 1, "slower": 1}}


def test_a_task_holds_the_references_by_absolute_path(tmp_path: Path, monkeypatch):
    """A SLURM job validates its config again, maybe in another folder: the path must not depend on it."""
    from harness.launch.submit import make_task
    from tests.helpers import compose_config

    write(tmp_path / "refs.yaml", REFS)
    monkeypatch.chdir(tmp_path)
    task = make_task(compose_config("device=cpu", f"results_dir={tmp_path / 'results'}", "references=refs.yaml"))
    assert task.config["references"] == str(tmp_path / "refs.yaml") and task.spec.references.path == str(
        tmp_path / "refs.yaml"
    )


def test_a_read_error_without_a_message_is_still_a_clear_refusal(tmp_path: Path, monkeypatch):
    """An exception whose message is empty (yaml raises some) used to end in an IndexError, not a refusal."""
    from harness.references import files

    path = tmp_path / "refs.yaml"
    path.write_text("points: []\n")

    def fail(text):
        raise yaml.YAMLError()

    monkeypatch.setattr(files.yaml, "safe_load", fail)
    with pytest.raises(files.ReferencesError, match=r"refs.yaml cannot be read: YAMLError: $"):
        files.load(path)
