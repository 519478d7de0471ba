"""Host-bound layer rows (their time is the host's issuing, not the GPU's: harness.results.hostbound) reach no
answer: no plan or oracle switch rests on one, the layer tables leave them out, a projection that needs one is
empty and counted, trees written before the host_bound column get the same answers from their detail text,
and the report says how many there were."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analysis import answer, findings, perlayer, pipeline, predictor, tables
from analysis.load import load
from analysis.planner import Where, choose
from analysis.specs import gpu_specs
from harness.results.hostbound import HOST_BOUND
from harness.results.schema import LAYERS
from tests.analysis.test_planner import MODULES, layer_rows, point_row, three_layers
from tests.synthetic import one_point

KEY = one_point()


# -- the oracle --------------------------------------------------------------------------------------------
def _oracle_frames(rows: list[tuple[str, int, float, bool]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """a is the best single algorithm (10 ms against 12); layer rows (algo, index, p50, host_bound), tight."""
    points = pd.DataFrame(
        [
            KEY | {"algo": "a", "status": "ok", "p50_ms": 10.0, "std_ms": 0.01, "n": 100},
            KEY | {"algo": "b", "status": "ok", "p50_ms": 12.0, "std_ms": 0.01, "n": 100},
        ]
    )
    layers = pd.DataFrame(
        [
            KEY
            | {"algo": a, "layer_index": i, "status": "ok", "p50_ms": t, "std_ms": t / 1000, "n": 100, "host_bound": hb}
            for a, i, t, hb in rows
        ]
    )
    return points, layers


def test_a_host_bound_candidate_switches_no_oracle_layer():
    """b's layer 0 looks 20x faster, but its time is the host's: a keeps layer 0, as if the row were not there;
    b's layer 1 is 3x faster at the GPU's pace: switched."""
    rows = [("a", 0, 2.0, False), ("a", 1, 6.0, False), ("b", 0, 0.1, True), ("b", 1, 2.0, False)]
    points, layers = _oracle_frames(rows)
    row = tables.oracle(points, layers).iloc[0]
    assert row["layers_switched"] == 1 and row["oracle_mix"] in ("a:1, b:1", "b:1, a:1")
    assert row["oracle_conv_ms"] == pytest.approx(2.0 + 2.0) and row["host_bound_layers"] == 0
    without = tables.oracle(points, layers[~layers["host_bound"]]).iloc[0]
    assert row.drop("host_bound_layers").equals(without.drop("host_bound_layers"))


def test_a_host_bound_layer_of_the_best_algorithm_leaves_its_projection_empty_and_counted():
    """a's own time of layer 1 is the host's (60 ms): no switch rests on it (b is faster there), and the
    projection, which needs it, is NaN with the layer counted; the other layer still switches."""
    rows = [("a", 0, 2.0, False), ("a", 1, 60.0, True), ("b", 0, 1.0, False), ("b", 1, 2.0, False)]
    points, layers = _oracle_frames(rows)
    row = tables.oracle(points, layers).iloc[0]
    assert row["host_bound_layers"] == 1 and row["unrun_layers"] == 0
    assert row["layers_switched"] == 1 and row["oracle_mix"] == "b:1"  # layer 0 only; layer 1 is no evidence
    for col in ("projected_ms", "projected_speedup", "oracle_conv_ms", "best_conv_ms", "conv_speedup"):
        assert np.isnan(row[col]), col


# -- plans -------------------------------------------------------------------------------------------------
@pytest.fixture
def planned() -> tuple[pd.DataFrame, pd.DataFrame]:
    """test_planner's point: a -> gemm (beyond noise), b -> torch (tie), c -> torch (gemm slower)."""
    points, layers = three_layers()
    return points, layers.assign(host_bound=False)


def _marked(layers: pd.DataFrame, algo: str, name: str, p50: float) -> tuple[pd.DataFrame, pd.Series]:
    at = (layers["algo"] == algo) & (layers["layer_name"] == name)
    out = layers.copy()
    out.loc[at, ["p50_ms", "host_bound"]] = [p50, True]
    return out, at


def test_a_host_bound_candidate_changes_no_plan(planned):
    points, layers = planned
    marked, at = _marked(layers, "gemm", "c", 0.05)  # gemm's c would win by 10x, but the time is the host's
    plan = choose(points, marked, Where("tiny", 32), MODULES)
    assert [(x.algo, x.source) for x in plan.layers] == [("gemm", "measured"), ("torch", "tie"), ("torch", "baseline")]
    assert plan.layers == choose(points, layers[~at], Where("tiny", 32), MODULES).layers  # as if never measured
    assert plan.extra["projected_ms"] == pytest.approx(3.0 - 2.5 + 0.5 + 1.0 + 0.5)  # torch's c, not gemm's


def test_a_host_bound_baseline_keeps_its_layer_and_the_plan_projects_nothing(planned):
    points, layers = planned
    marked, _ = _marked(layers, "torch", "a", 1.0)  # gemm's a (0.5) beats it, but torch's 1.0 is the host's
    plan = choose(points, marked, Where("tiny", 32), MODULES)
    a = plan.layers[0]
    assert (a.algo, a.source) == ("torch", "baseline") and "host-bound" in a.note and a.baseline is None
    assert a.winner.algo == "gemm"  # the GPU-paced evidence is still shown
    assert [x.algo for x in plan.layers[1:]] == ["torch", "torch"]
    assert "projected_ms" not in plan.extra  # the baseline's sum would hold the host's time


def test_a_plan_from_find_keeps_finds_choice_but_shows_no_host_bound_time(planned):
    from analysis.planner import from_find

    points, layers = planned
    points = pd.concat([points, pd.DataFrame([point_row("find", 2.4, backend="cudnn")])], ignore_index=True)
    used = {"a": "implicit_precomp_gemm", "b": "winograd", "c": "gemm"}
    find = pd.DataFrame(layer_rows("find", {"a": 0.4, "b": 0.9, "c": 0.5}, used=used))
    find = find.assign(host_bound=find["layer_name"] == "b")
    plan = from_find(points, pd.concat([layers, find], ignore_index=True), Where("tiny", 32), MODULES)
    assert [x.algo for x in plan.layers] == list(used.values())  # cuDNN's choice, not a time, decides
    b = plan.layers[1]
    assert b.winner is None and "host-bound" in b.note and plan.layers[0].winner.p50_ms == 0.4


def test_a_measured_plan_projection_needing_a_host_bound_time_is_empty_and_counted(planned):
    points, layers = planned
    points = pd.concat([points, pd.DataFrame([point_row("per_layer", 2.0, plan_hash="abc")])], ignore_index=True)
    used = {"a": "gemm", "b": "torch", "c": "torch"}
    mix = pd.DataFrame(layer_rows("per_layer", {"a": 0.5, "b": 1.0, "c": 0.5}, used=used)).assign(host_bound=False)
    (row,) = perlayer.projection(points, pd.concat([layers, mix], ignore_index=True)).to_dict("records")
    assert row["projected_ms"] == pytest.approx(2.5) and row["host_bound_layers"] == 0
    marked, _ = _marked(layers, "gemm", "a", 0.5)  # the mix's layer a is looked up in gemm's own run
    (row,) = perlayer.projection(points, pd.concat([marked, mix], ignore_index=True)).to_dict("records")
    assert row["host_bound_layers"] == 1 and row["unrun_layers"] == 0 and np.isnan(row["projected_ms"])
    marked, _ = _marked(layers, "torch", "c", 0.5)  # the baseline's c: its remainder would hold the host's time
    (row,) = perlayer.projection(points, pd.concat([marked, mix], ignore_index=True)).to_dict("records")
    assert row["host_bound_layers"] == 2 and np.isnan(row["projected_ms"])  # the mix's c and the baseline's c


def test_layer_speedups_leave_out_host_bound_rows_on_either_side():
    rows = []
    for i, (t_guess, t_a) in enumerate([(2.0, 1.0), (2.0, 1.0), (2.0, 1.0)]):
        rows += [
            KEY
            | {"layer_index": i, "algo": "guess", "p50_ms": t_guess, "std_ms": 0.01, "n": 100, "host_bound": i == 1},
            KEY | {"layer_index": i, "algo": "a", "p50_ms": t_a, "std_ms": 0.01, "n": 100, "host_bound": i == 2},
        ]
    ls = answer.layer_speedups(pd.DataFrame(rows))
    assert ls["layer_index"].tolist() == [0] and answer.layer_summary(ls)["layers"].tolist() == [1]


# -- a results tree with host-bound rows, in the new format and in the format before the column -----------
# Every algorithm's layer 1 of alpha at input 32 on the h100 was issued slower than the head start: 40x.
POINT_AT = {"gpu": "h100", "model": "alpha", "input_size": 32}
LAYER_AT = 1


def _at_point(df: pd.DataFrame) -> np.ndarray:
    return np.logical_and.reduce([(df[k].astype(type(v)) == v).to_numpy() for k, v in POINT_AT.items()])


def _where(df: pd.DataFrame) -> np.ndarray:
    return _at_point(df) & (df["layer_index"] == LAYER_AT).to_numpy()


def _rewrite(tree: Path, old_format: bool) -> None:
    """Each layers file with the host-bound rows slowed 40x and marked: in the host_bound column (False on
    every other row, as a GPU writes them), or, as before the column existed, only in ``detail``."""
    schema = LAYERS.remove(LAYERS.get_field_index("host_bound")) if old_format else LAYERS
    for path in tree.rglob("layers-*.parquet"):
        df = pq.ParquetFile(path).read().to_pandas()
        hb = _where(df)
        df.loc[hb, ["p50_ms", "mean_ms"]] *= 40
        df["host_bound"] = hb
        df["detail"] = np.where(hb, HOST_BOUND, None)
        pq.write_table(pa.Table.from_pandas(df[schema.names], schema=schema, preserve_index=False), path)


@pytest.fixture(scope="module")
def trees(known_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = {}
    for name in ("new", "old"):
        out[name] = tmp_path_factory.mktemp(name) / "results"
        shutil.copytree(known_tree, out[name])
        _rewrite(out[name], old_format=name == "old")
    return out


@pytest.fixture(scope="module")
def loaded(trees, known_tree):
    return {"new": load(trees["new"]), "old": load(trees["old"]), "truth": load(known_tree), "dir": known_tree}


def test_the_column_is_read_and_an_old_tree_gets_it_from_detail(loaded):
    for name in ("new", "old"):
        layers = loaded[name].layers
        assert layers["host_bound"].eq(True).fillna(False).tolist() == _where(layers).tolist(), name
        assert loaded[name].report.host_bound_layers == 6 and "detail" not in layers  # 6 algorithms
    assert loaded["old"].layers["host_bound"].isna().sum() == len(loaded["old"].layers) - 6  # unknown, not False


def test_the_layer_tables_are_those_of_the_tree_without_the_host_bound_rows(loaded):
    truth = loaded["truth"].layers
    without = truth[~_where(truth)].reset_index(drop=True)
    for name in ("new", "old"):
        layers = loaded[name].layers
        pd.testing.assert_frame_equal(tables.layer_shapes(layers), tables.layer_shapes(without))
        pd.testing.assert_frame_equal(answer.layer_speedups(layers), answer.layer_speedups(without))
        specs = gpu_specs([loaded["dir"]], ["h100", "v100"])
        frame = predictor.layer_frame(layers, specs).data
        pd.testing.assert_frame_equal(frame, predictor.layer_frame(without, specs).data)
        assert len(frame) == len(predictor.layer_frame(truth, specs).data) - 6
    # the shape of the host-bound layer occurs nowhere else: its row is gone, not 40x slower
    shapes = tables.layer_shapes(loaded["new"].layers)
    assert len(shapes) == len(tables.layer_shapes(truth)) - 1


def test_an_old_tree_gets_the_same_answers_as_the_new_one(loaded):
    new, old = pipeline.compute_tables(loaded["new"]), pipeline.compute_tables(loaded["old"])
    for name in ("oracle", "layer_shapes", "layer_speedups", "layer_speedup_summary", "support", "summary"):
        pd.testing.assert_frame_equal(new[name], old[name], obj=name)
    orc = new["oracle"]
    hb = _at_point(orc)
    assert orc.loc[hb, "host_bound_layers"].tolist() == [1] and orc.loc[hb, "projected_ms"].isna().all()
    assert (orc.loc[~hb, "host_bound_layers"] == 0).all() and orc.loc[~hb, "projected_ms"].notna().all()


def test_the_report_says_how_many_layer_rows_were_left_out_and_why(trees, loaded, tmp_path):
    for name, tree in trees.items():
        outcome = pipeline.run(tree, tmp_path / name, pipeline.Options(plots=False))
        text = outcome.report_md.read_text()
        assert "6 layer rows are host-bound (no head start covered them" in text, name
        assert "CPU's pace, not the GPU's" in text
    # none: no sentence
    assert not any(
        "host-bound (" in c for c in findings.caveats(loaded["truth"].points, 1.0, 0.05, host_bound_layers=0)
    )


def test_the_predictor_takes_no_remainder_from_a_sum_holding_a_host_bound_layer(loaded):
    new, truth = loaded["new"], loaded["truth"]
    rem, truth_rem = predictor.remainders(new.points, new.layers), predictor.remainders(truth.points, truth.layers)
    assert not _at_point(rem).any() and _at_point(truth_rem).sum() == 6  # every algorithm there has one
    pd.testing.assert_frame_equal(rem.reset_index(drop=True), truth_rem[~_at_point(truth_rem)].reset_index(drop=True))


def test_the_layer_figure_leaves_out_an_algorithm_whose_point_has_a_host_bound_layer():
    from analysis import plots

    geo = {"kernel_h": 3, "kernel_w": 3, "groups": 1, "in_channels": 8}
    layers = pd.DataFrame(
        [
            KEY | geo | {"algo": a, "layer_index": i, "p50_ms": 1.0, "host_bound": a == "b" and i == 1}
            for a in ("a", "b")
            for i in range(2)
        ]
    )
    rows = plots.breakdown_rows(layers)
    assert rows["algo"].tolist() == ["a", "a"] and rows["kind"].tolist() == ["3x3", "3x3"]
