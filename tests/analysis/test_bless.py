"""python -m analysis.bless and the references file: the round trip (write, read, check every status),
tolerances, and files that are refused with a clear message."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from analysis.bless import main
from harness.references import ReferencesError, check, load, reference_status
from harness.references.format import parse
from tests.synthetic import point_row as row
from tests.synthetic import write_points


@pytest.fixture
def blessed(tmp_path: Path) -> Path:
    """A tree of two points (the later run of 224 wins), a point that failed, and an imported row; blessed."""
    write_points(
        tmp_path / "T",
        [
            row(224, 12.0, run="r1", at=0),
            row(224, 10.0, run="r2", at=1, ci=0.01),
            row(256, 20.0, run="r2", at=1),
            row(288, None, run="r2", at=1, status="oom", error="out of memory"),
        ],
    )
    out = tmp_path / "refs.yaml"
    assert main([str(tmp_path / "T"), "--out", str(out)]) == 0
    return out


def test_bless_round_trip_and_every_status(blessed: Path):
    refs = load(blessed)
    assert yaml.safe_load(blessed.read_text())["format"] == "conv-harness-references"
    assert blessed.read_text().startswith("# Performance references")  # human-readable, says what it is
    (entries,) = refs.gpus.values()
    assert [(e.input_size, e.p50_ms) for e in entries] == [(224, 10.0), (256, 20.0)]  # latest wins; oom left out
    e224 = entries[0]
    assert e224.settings == {
        "backend": "cudnn",
        "math_type": "fma",
        "fallback_policy": "none",
        "cudnn_benchmark": False,
        "cuda_graph": False,
    }
    assert e224.tolerance == pytest.approx(np.exp((np.log(1.01) - np.log(0.99)) / 2) - 1, rel=1e-4)  # its own CI
    assert e224.energy_per_inference_j == pytest.approx(3.0) and e224.measured["run_id"] == "r2"

    def status(size: int, p50: float | None, **changes) -> str | None:
        r = row(size, p50, **changes)
        return reference_status(r, refs.lookup("h100", r))

    assert status(224, 10.05) == "within"
    assert status(224, 12.0) == "slower"
    assert status(224, 8.0) == "faster"
    assert status(224, 11.0, ci=0.2) == "within"  # 10% slower, but in the noise
    assert status(320, 10.0) == "no_reference"
    assert status(224, 10.0, math_type="tensor_op") == "no_reference"  # another setting is another point
    assert status(224, None, status="error") is None  # nothing measured: nothing to check
    r = row(224, 12.0)
    assert check(r, refs.lookup("h100", r), tolerance=0.5).status == "within"  # the stage's tolerance wins
    assert "slower: x1.200 of the reference" in check(r, refs.lookup("h100", r)).describe()


def test_bless_with_a_fixed_tolerance_and_a_selection(tmp_path: Path, blessed: Path):
    out = tmp_path / "fixed.yaml"
    assert main([str(tmp_path / "T"), "--select", "run_id=r1", "--tolerance", "0.1", "--out", str(out)]) == 0
    (entries,) = load(out).gpus.values()
    assert [(e.input_size, e.p50_ms, e.tolerance) for e in entries] == [(224, 12.0, 0.1)]
    assert load(out).source["selection"] == ["run_id=r1"]


def test_bless_refuses_a_selection_with_nothing_ok(tmp_path: Path, blessed: Path, capsys):
    assert main([str(tmp_path / "T"), "--select", "run_id=r9", "--out", str(tmp_path / "x.yaml")]) == 2
    assert "run_id=r9: not in" in capsys.readouterr().err
    write_points(tmp_path / "F", [row(224, None, status="error")])
    assert main([str(tmp_path / "F"), "--out", str(tmp_path / "x.yaml")]) == 2
    assert "nothing to bless" in capsys.readouterr().err and not (tmp_path / "x.yaml").exists()


GOOD = {
    "stage": "quick",
    "model": "m",
    "algo": "gemm",
    "input_size": 224,
    "batch_size": 1,
    "dtype": "float32",
    "p50_ms": 1.0,
    "tolerance": 0.05,
}


def doc(*entries: dict, **top) -> dict:
    return {"format": "conv-harness-references", "version": 1, "gpus": {"h100": list(entries)}} | top


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([1, 2], "not a references file"),
        (doc(GOOD, format="reframe"), "format is 'reframe', expected 'conv-harness-references'"),
        (doc(GOOD, version=2), "version 2 is not one this harness reads (valid: 1)"),
        ({"format": "conv-harness-references", "version": 1, "gpus": {}}, "gpus must be a mapping"),
        (doc({k: v for k, v in GOOD.items() if k != "p50_ms"}), "gpus.h100[0]: missing p50_ms"),
        (doc(GOOD | {"p50_ms": "fast"}), "gpus.h100[0].p50_ms: expected a positive number, got 'fast'"),
        (doc(GOOD | {"tolerance": -0.1}), "gpus.h100[0].tolerance: expected a non-negative number"),
        (doc(GOOD | {"input_size": 2.5}), "gpus.h100[0].input_size: expected a positive integer"),
        (doc(GOOD | {"settings": {"colour": "red"}}), "unknown colour; valid: backend, math_type"),
        (doc(GOOD, GOOD), "gpus.h100[1] repeats the point of gpus.h100[0]"),
    ],
)
def test_a_bad_references_document_is_refused_saying_where(document, message: str):
    with pytest.raises(ReferencesError) as e:
        parse(document, "refs.yaml")
    assert message in str(e.value) and str(e.value).startswith("refs.yaml")


def test_a_file_that_is_missing_or_not_yaml_is_refused(tmp_path: Path):
    with pytest.raises(ReferencesError, match="does not exist; write one with python -m analysis.bless"):
        load(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("gpus: [unclosed\n")
    with pytest.raises(ReferencesError, match="cannot be read"):
        load(tmp_path / "bad.yaml")


def test_noise_between_runs_widens_each_references_own_tolerance(tmp_path: Path, capsys):
    swings = {224: 1.1, 256: 0.9, 288: 1.05}
    write_points(
        tmp_path / "N",
        [row(s, 10.0, run="r1", at=0) for s in swings] + [row(s, 10.0 * f, run="r2", at=1) for s, f in swings.items()],
    )
    assert main([str(tmp_path / "N"), "--out", str(tmp_path / "n.yaml")]) == 0
    (entries,) = load(tmp_path / "n.yaml").gpus.values()
    own = np.exp((np.log(1.005) - np.log(0.995)) / 2) - 1  # what the rows' CIs alone would give
    assert all(e.tolerance > 10 * own for e in entries)
    assert "3 run-to-run pairs over 3 points" in capsys.readouterr().out
