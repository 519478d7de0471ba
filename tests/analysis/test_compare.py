"""python -m analysis.compare on constructed trees with known answers: regressions only beyond noise and
tolerance, unmatched points listed, sides made by tree, --by or selections, the noise floor, legacy rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.compare import noise
from analysis.compare.__main__ import main
from analysis.compare.verdicts import match_key
from tests.synthetic import point_row as row
from tests.synthetic import write_points

SIZES = (224, 256, 288)


def trees(tmp_path: Path, a: list[dict], b: list[dict]) -> tuple[str, str]:
    write_points(tmp_path / "A", a)
    write_points(tmp_path / "B", b)
    return str(tmp_path / "A"), str(tmp_path / "B")


def run(tmp_path: Path, *args: str) -> tuple[int, pd.DataFrame, pd.DataFrame, str]:
    out = tmp_path / "out"
    code = main([*args, "--out", str(out)])
    if code == 2:
        return code, pd.DataFrame(), pd.DataFrame(), ""
    return (
        code,
        pd.read_parquet(out / "points.parquet"),
        pd.read_parquet(out / "groups.parquet"),
        (out / "comparison.md").read_text(),
    )


def test_a_ten_percent_slowdown_with_tight_samples_is_a_regression(tmp_path: Path):
    a, b = trees(tmp_path, [row(s, 10.0) for s in SIZES], [row(s, 11.0, run="r2") for s in SIZES])
    code, points, groups, md = run(tmp_path, a, b)
    assert code == 1
    assert points["verdict"].tolist() == ["slower"] * 3
    assert points["ratio"].to_numpy() == pytest.approx(1.1)
    assert (points["ratio_low"] > 1.05).all() and (points["ratio_high"] < 1.15).all()
    (g,) = groups.itertuples()
    assert (g.verdict, g.slower, g.points) == ("slower", 3, 3) and g.geomean_ratio == pytest.approx(1.1)
    assert md.startswith("# Comparison") and "FAIL: 3 point(s) and 1 group(s)" in md
    assert (tmp_path / "out" / "comparison.html").read_text().startswith("<!doctype html>")


def test_the_same_slowdown_within_noise_is_same(tmp_path: Path):
    a, b = trees(tmp_path, [row(s, 10.0, ci=0.15) for s in SIZES], [row(s, 11.0, ci=0.15, run="r2") for s in SIZES])
    code, points, groups, md = run(tmp_path, a, b)
    assert code == 0
    assert points["verdict"].tolist() == ["same"] * 3
    assert points["why"].str.contains("within noise").all()
    assert groups["verdict"].tolist() == ["same"] and "PASS" in md


def test_a_change_inside_the_tolerance_is_same_until_the_tolerance_is_smaller(tmp_path: Path):
    a, b = trees(tmp_path, [row(s, 10.0) for s in SIZES], [row(s, 10.3, run="r2") for s in SIZES])
    code, points, _, _ = run(tmp_path, a, b)
    assert code == 0 and points["verdict"].eq("same").all()
    assert points["why"].str.startswith("within tolerance").all()  # the CI excludes 1, not 1.05
    code, points, _, _ = run(tmp_path, a, b, "--tolerance", "0.01")
    assert code == 1 and points["verdict"].eq("slower").all()


def test_faster_is_not_a_regression_and_a_point_that_broke_is(tmp_path: Path):
    b_rows = [
        row(224, 8.0, run="r2"),
        row(256, 8.0, run="r2"),
        row(288, None, run="r2", status="error", error="CUDNN_STATUS_EXECUTION_FAILED"),
    ]
    a, b = trees(tmp_path, [row(s, 10.0) for s in SIZES], b_rows)
    code, points, _, md = run(tmp_path, a, b)
    assert code == 1
    assert dict(zip(points["input_size"], points["verdict"])) == {224: "faster", 256: "faster", 288: "broke"}
    assert "status ok -> error" in md


def test_unmatched_points_are_listed_not_dropped(tmp_path: Path):
    b_rows = [
        row(256, 10.0, run="r2"),
        row(288, 10.0, run="r2"),
        row(320, 10.0, run="r2"),
        row(256, 10.0, run="r3", math_type="tensor_op"),
    ]  # another setting: another point
    a, b = trees(tmp_path, [row(s, 10.0) for s in SIZES[:2]], b_rows)
    code, points, groups, md = run(tmp_path, a, b)
    assert code == 0
    only = points[points["verdict"].isin(["only_a", "only_b"])]
    assert sorted(zip(only["input_size"], only["math_type"], only["verdict"])) == [
        (224, "fma", "only_a"),
        (256, "tensor_op", "only_b"),
        (288, "fma", "only_b"),
        (320, "fma", "only_b"),
    ]
    assert "1 point(s) only in A, 3 only in B" in md
    unmatched = md.split("## Unmatched points")[1].split("## ")[0]
    assert all(f"| {s} |" in unmatched for s in (224, 288, 320))
    assert groups["points"].sum() == 1  # only 256 (fma) was compared


def test_by_splits_one_tree_in_two_the_earlier_value_first(tmp_path: Path):
    rows = [row(s, 11.0, run="new", cudnn_version="91100", at=48) for s in SIZES] + [
        row(s, 10.0, run="old", cudnn_version="90300", at=0) for s in SIZES
    ]
    write_points(tmp_path / "T", rows)
    code, points, _, md = run(tmp_path, str(tmp_path / "T"), "--by", "cudnn_version")
    assert code == 1 and points["verdict"].eq("slower").all()
    assert "A: " + str(tmp_path / "T") + " cudnn_version=90300" in md
    assert "no point measured more than once with identical settings" in md  # other cuDNN: not noise


def test_selections_make_the_sides_of_one_tree(tmp_path: Path):
    rows = (
        [row(s, 10.0, run="r1", at=0) for s in SIZES]
        + [row(s, 10.0, run="r2", at=24) for s in SIZES]
        + [row(s, 12.0, run="r3", at=48, git_commit="def") for s in SIZES]
    )  # new code: not noise
    write_points(tmp_path / "T", rows)
    t = str(tmp_path / "T")
    code, points, _, _ = run(tmp_path, t, "--a", "run_id=r1", "--b", "run_id=r2")
    assert code == 0 and points["verdict"].eq("same").all()
    code, points, _, _ = run(
        tmp_path, t, "--a", "measured_at=..2026-11-02T12:00", "--b", "measured_at=2026-11-02T12:00.."
    )
    assert code == 1 and points["verdict"].eq("slower").all()  # B: r2 and r3, latest (r3) wins
    assert points["run_id_b"].eq("r3").all()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["{t}/missing", "{t}/T"], "argument TREE: {t}/missing is not valid: it does not exist"),
        (["{t}/T", "--by", "colour"], "cannot split by 'colour'; valid columns: run_id, git_commit"),
        (["{t}/T", "--by", "run_id"], "--by run_id needs exactly two values"),
        (["{t}/T", "--a", "run_id=r9", "--b", "run_id=r1"], "run_id=r9: not in"),
        (["{t}/T", "--a", "run_id=r1", "--b", "measured_at=2030-01-01.."], "no rows of"),
        (["{t}/T", "--a", "stage=quick", "--b", "run_id=r1"], "cannot select on 'stage'; valid columns"),
        (["{t}/T"], "one tree"),
        (["{t}/T", "{t}/T", "--by", "run_id"], "--by run_id splits one tree"),
        (["{t}/T", "--a", "run_id=r1", "--b", "run_id=r2", "--model", "vgg16"], "--model vgg16: not in"),
    ],
)
def test_usage_errors_exit_2_and_name_the_bad_value(tmp_path: Path, capsys, args: list[str], expected: str):
    write_points(tmp_path / "T", [row(224, 10.0, run=r, at=i) for i, r in enumerate(("r1", "r2", "r3"))])
    try:
        code = main([a.format(t=tmp_path) for a in args] + ["--out", str(tmp_path / "out")])
    except SystemExit as e:  # refused by the parser (harness.validate), before any tree is read
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and expected.format(t=tmp_path) in err
    if "r9" in expected:
        assert "present: r1, r2, r3" in err


def test_sides_that_share_no_point_are_an_error_that_says_why(tmp_path: Path, capsys):
    a, b = trees(tmp_path, [row(224, 10.0, stage="legacy")], [row(224, 10.0, run="r2")])
    assert main([a, b, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "stage is legacy in A but quick in B" in err and "--across-stages" in err


def test_the_noise_floor_is_the_run_to_run_ratio_of_identical_settings(tmp_path: Path):
    later = {224: 1.02, 256: 0.99, 288: 1.0, 320: 1.05}
    rows = [row(s, 10.0, run="r1", at=0) for s in later] + [row(s, 10.0 * f, run="r2", at=1) for s, f in later.items()]
    rows += [row(224, 10.0 * 1.02 * 0.975, run="r3", at=2)]  # a third run: paired with r2
    rows += [row(256, 20.0, run="r4", at=3, git_commit="def")]  # another commit: not noise
    rows += [row(288, 30.0, run="r5", at=4, git_diff_hash="0123456789abcdef")]  # uncommitted changes: not noise
    write_points(tmp_path / "T", rows)
    code, _, _, md = run(tmp_path, str(tmp_path / "T"), "--a", "run_id=r1", "--b", "run_id=r2")
    pairs = pd.read_parquet(tmp_path / "out" / "noise.parquet")
    assert code == 0  # r1 -> r2: 5% at 320 is not beyond the 5% tolerance with confidence
    assert sorted(np.round(pairs["ratio"], 4)) == [0.975, 0.99, 1.0, 1.02, 1.05]
    assert set(pairs["later_run"]) == {"r2", "r3"}
    summary = noise.summarize(pairs, "T", match_key(pd.DataFrame([row(1, 1.0)]), pd.DataFrame([row(1, 1.0)])))
    assert (summary.pairs, summary.points) == (5, 4)
    assert summary.ratio_median == pytest.approx(1.0)
    assert summary.abs_max_pct == pytest.approx(5.0) and summary.within_goal == pytest.approx(0.8)
    assert summary.ci_excludes_one == pytest.approx(0.8)  # +-0.5% CIs: all but the 1.0 pair exclude 1
    assert "5 run-to-run pairs over 4 points" in md
    lr, se_pair = np.log(pairs["ratio"]), np.hypot(*[np.log(1.005 / 0.995) / (2 * 1.959964)] * 2)
    assert summary.between_run_sd == pytest.approx(np.sqrt(np.mean(lr**2 - se_pair**2) / 2), rel=1e-3)
    assert f"between-run noise added to each side's standard error: {summary.between_run_sd:.3f}" in md


def test_noise_between_runs_of_identical_settings_is_not_called_a_regression(tmp_path: Path):
    """Runs of the same settings that differ by up to +-20% although each row's CI is +-0.5%: the next run,
    10% slower, is within that noise; only --noise-floor 0 (each row's CI alone) calls it slower."""
    swings = [1.0, 1.2, 0.85, 1.1, 0.9, 1.15]
    rows = [
        row(s, 10.0 * f ** (i % 2), run=f"r{i}", at=i) for i in range(4) for s, f in zip(range(200, 260, 10), swings)
    ]
    rows += [row(s, 11.0, run="next", at=10) for s in range(200, 260, 10)]
    write_points(tmp_path / "T", rows)
    t = str(tmp_path / "T")
    code, points, _, md = run(tmp_path, t, "--a", "run_id=r0", "--b", "run_id=next")
    assert code == 0 and points["verdict"].eq("same").all()
    assert "estimated from 24 run-to-run pairs" in md  # r0..r3 and next share every setting
    code, points, _, _ = run(tmp_path, t, "--a", "run_id=r0", "--b", "run_id=next", "--noise-floor", "0")
    assert code == 1 and points["verdict"].eq("slower").all()
    refused = main([t, "--a", "run_id=r0", "--b", "run_id=next", "--noise-floor", "lots", "--out", str(tmp_path / "o")])
    assert refused == 2 and not (tmp_path / "o").exists()  # by the parser, before any tree is read


def legacy_row(size: int, p50: float) -> dict:
    """An imported row as analysis.legacy writes it: stage legacy, settings unknown, std and n only."""
    return {
        "run_id": "legacy-resnet50-gemm-h100",
        "stage": "legacy",
        "gpu": "h100",
        "model": "resnet50",
        "algo": "gemm",
        "input_size": size,
        "batch_size": 1,
        "dtype": "float32",
        "status": "ok",
        "backend": "cudnn",
        "n": 20,
        "p50_ms": p50,
        "mean_ms": p50,
        "std_ms": p50 * 0.01,
        "config_hash": "legacy-ai3-2d2955f",
        "measured_at": None,
        "legacy_flags": ["timing_includes_host_copies", "energy_from_1s_averaged_power", "n_from_readme"],
    }


def test_legacy_rows_compare_with_new_rows_and_carry_their_flags(tmp_path: Path):
    a, b = trees(
        tmp_path, [legacy_row(224, 10.0), legacy_row(256, 30.0)], [row(224, 13.0, run="new"), row(256, 12.0, run="new")]
    )
    code, points, groups, md = run(tmp_path, a, b, "--across-stages")
    assert code == 1
    got = points.set_index("input_size")
    assert got.loc[224, "verdict"] == "slower" and got.loc[256, "verdict"] == "faster"
    assert got.loc[224, "caveats"] == "A: n_from_readme, A: timing_includes_host_copies"  # not the energy flag
    assert "math_type not compared: unknown (null on every row) on side A" in md
    assert "carry legacy flags that may explain the difference" in md
    assert "A: timing_includes_host_copies" in groups["caveats"].iloc[0]


def test_verdicts_are_corrected_for_their_number_and_the_output_says_how(tmp_path: Path, capsys):
    """40 points: one 7% slower is beyond the 5% tolerance at 95% on its own (z 2.6) but not after Holm over
    the family; one 30% slower is beyond it either way; a point without an interval is not tested, and
    counted. The console and the report say how many tests were made and how they were corrected."""
    sizes = range(200, 240)
    no_ci = {"ci95_low_ms": None, "ci95_high_ms": None, "std_ms": None}
    a_rows = [row(s, 10.0, ci=0.01, **(no_ci if s == 239 else {})) for s in sizes]
    b = {200: 10.7, 201: 13.0}
    b_rows = [row(s, b.get(s, 10.0), ci=0.01, run="r2", **(no_ci if s == 239 else {})) for s in sizes]
    a, bt = trees(tmp_path, a_rows, b_rows)
    code, points, groups, md = run(tmp_path, a, bt)
    assert code == 1
    got = points.set_index("input_size")
    assert got.loc[201, "verdict"] == "slower" and got.loc[201, "p_holm"] < 0.05
    assert got.loc[200, "verdict"] == "same" and got.loc[200, "ratio_low"] > 1.05  # the old rule said slower
    assert got.loc[200, "why"] == "beyond 5.0% at 95% on its own, not after Holm over 80 tests"
    assert got.loc[200, "p_value"] < 0.025 < got.loc[200, "p_holm"]
    assert got.loc[239, "verdict"] == "no_interval" and np.isnan(got.loc[239, "p_value"])
    (g,) = groups.itertuples()
    assert (g.points, g.slower, g.same, g.no_interval) == (40, 1, 38, 1)
    line = (
        "comparisons: 80 one-sided tests (slower and faster beyond the 5.0% tolerance, for each of 39 matched "
        "point(s) and 1 group(s) with an interval), corrected by Holm for a family-wise error of 5%; 1 "
        "comparison(s) with no interval (not enough samples) not tested"
    )
    assert line in md and line in " ".join(capsys.readouterr().out.split())
    assert "FAIL: 1 point(s)" in md and "Holm over 80 one-sided tests" in md


def test_a_comparison_prints_what_was_compared_and_its_verdict_counts(tmp_path: Path):
    from analysis.compare.pipeline import compare
    from analysis.compare.sides import load_sides

    a, b = trees(tmp_path, [row(s, 10.0) for s in SIZES], [row(s, 11.0, run="r2") for s in SIZES])
    c = compare(load_sides([Path(a), Path(b)]), 0.05)
    text = str(c)
    assert text.startswith(f"Comparison: B = {c.sides.b.label} against A = {c.sides.a.label}")
    assert "3 point(s), 1 group(s)" in text and "verdicts: 3 slower" in text and text.endswith("FAIL")
    assert repr(c) == f"<Comparison B={c.sides.b.label!r} vs A={c.sides.a.label!r}, 3 points>"


def test_energy_is_compared_in_total_and_above_idle(tmp_path: Path):
    # the same 2 J total, but B's idle share is larger: the change itself costs 1.5/0.5 = 3x above idle
    a_rows = [row(s, 10.0) | {"energy_per_inference_j": 2.0, "dynamic_energy_per_inference_j": 0.5} for s in SIZES]
    b_rows = [
        row(s, 10.0, run="r2") | {"energy_per_inference_j": 2.0, "dynamic_energy_per_inference_j": 1.5} for s in SIZES
    ]
    _, points, _, _ = run(tmp_path, *trees(tmp_path, a_rows, b_rows))
    assert points["energy_ratio"].to_numpy() == pytest.approx(1.0)
    assert points["dynamic_energy_ratio"].to_numpy() == pytest.approx(3.0)
