"""The training step's analysis (analysis.tables.training, the training tables, training plans) against a known truth:
synthetic train_step points and layer rows in the rows' contract (tests/synthetic.py: training_frames)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from torch import nn

from analysis.plans.training import choose_training
from analysis.plans.where import Where
from analysis.tables import registry, training
from analysis.tables.catalog.training_projection import training_projection
from analysis.tree import directions
from analysis.tree.records import LoadReport
from analysis.tree.resolve import resolve_layers
from harness.algorithms import plan as plans
from harness.algorithms.geometry import ConvGeometry
from tests.synthetic import TRAIN_CALLS, TrainingTruth, training_frames, true_oracle_speedup

T = TrainingTruth()


def _calls(ms: dict) -> list[tuple[int, str]]:
    return sorted({(i, d) for i, d, _ in ms})


def test_best_per_layer_names_the_true_best_beyond_noise_and_tied_within_it():
    pts, lay, (ms,) = training_frames(T, points=1)
    best = training.best_per_layer(lay).set_index(["layer_index", "direction"])
    assert len(best) == len(_calls(ms)) == T.layers * 3 - 1  # layer 0 computes no input gradient
    kinds = {"clear": 0, "tie": 0, "guess": 0}
    for i, d in _calls(ms):
        times = {a: ms[(i, d, a)] for a in T.algos}
        fastest = min(times.values())
        winners = sorted(a for a, v in times.items() if v == fastest)
        row = best.loc[(i, d)]
        assert row["point_direction"] == "train_step"
        if len(winners) == 1 and winners[0] != "guess":
            kinds["clear"] += 1
            assert row["winner"] == winners[0], (i, d)
        elif len(winners) == 1:
            kinds["guess"] += 1
            assert row["winner"] == "guess", (i, d)
        else:  # two algorithms with the same true time: within noise
            kinds["tie"] += 1
            assert row["winner"] == "tied", (i, d)
            assert set(winners) <= set(row["tied_with_best"].split(", "))
        assert row["best_low_ms"] <= row["best_p50_ms"] <= row["best_high_ms"]
    assert all(kinds.values()), kinds  # every case was exercised


@pytest.mark.parametrize("n", [6, 10])  # 6: the fewest iterations a row has an interval at
def test_the_oracle_interval_covers_the_true_speedup_and_its_switches_control_false_discoveries(n: int):
    """200 steps of known truth: the speedup's 95% interval covers the true one in at least 93% of them
    (measured: 95.5-98%), and over the whole family of switch decisions (every call of every step), the share of
    switches to an algorithm not truly faster than guess stays within Benjamini-Hochberg's 5% (measured: <1%)."""
    pts, lay, truths = training_frames(TrainingTruth(seed=3, n=n), points=200)
    o = training.oracle(pts, lay).sort_values("input_size")
    assert len(o) == 200 and (o["baseline"] == "guess").all()
    true = np.array([true_oracle_speedup(T, ms) for ms in truths])
    covered = (o["speedup_low"].to_numpy() <= true) & (true <= o["speedup_high"].to_numpy())
    assert covered.mean() >= 0.93, covered.mean()
    ch = training.choices(pts, lay)
    switched = ch[ch["switch"]]
    false = [
        truths[int(r.input_size) - 32][(int(r.layer_index), str(r.direction), str(r.chosen))]
        >= truths[int(r.input_size) - 32][(int(r.layer_index), str(r.direction), "guess")]
        for r in switched.itertuples()
    ]
    assert len(switched) > 500 and np.mean(false) <= 0.05, (len(switched), np.mean(false))
    assert np.median(o["speedup"] / true) == pytest.approx(1.0, abs=0.01)
    # a third of the calls are truly faster than guess: switched (all but a few), the ties kept
    assert o["switched_forward"].sum() + o["switched_backward_data"].sum() + o["switched_backward_filter"].sum() > 0
    assert (o["calls"] == T.layers * 3 - 1).all()


def test_gains_larger_than_the_step_give_no_projection_and_say_how_far_the_calls_add_up():
    """The baseline's step measured far faster than its calls timed alone (a loaded layer pass): P - D <= 0 is
    no time at all; the projection is null, never negative, and calls_over_step shows the mismatch."""
    pts, lay, _ = training_frames(T, points=2)
    o = training.oracle(pts, lay).set_index("input_size")
    assert (o["projected_ms"] > 0).all() and (o["calls_over_step"] > 0).all()
    first = o.index[0]
    squeezed = pts.copy()
    at = (squeezed["input_size"] == first) & (squeezed["algo"].astype(str) == o.loc[first, "baseline"])
    squeezed.loc[at, "p50_ms"] = o.loc[first, "gain_ms"] / 2  # the step: half what the switches claim to gain
    again = training.oracle(squeezed, lay).set_index("input_size")
    assert again.loc[first, ["projected_ms", "projected_low_ms", "speedup", "speedup_high"]].isna().all()
    assert not bool(again.loc[first, "beyond_noise"]) and again.loc[first, "calls_over_step"] > 2
    other = o.index[1]
    assert again.loc[other, "projected_ms"] == pytest.approx(o.loc[other, "projected_ms"])  # the others as before


def test_below_six_iterations_nothing_switches_and_there_is_no_interval():
    pts, lay, _ = training_frames(TrainingTruth(n=5), points=3)
    o = training.oracle(pts, lay)
    assert (o["switch_tests"] == 0).all()
    assert (o["speedup"] == 1.0).all()
    assert o["speedup_low"].isna().all() and o["speedup_high"].isna().all()


def test_the_baseline_is_torch_where_guess_measured_no_step():
    pts, lay, _ = training_frames(TrainingTruth(algos=("torch", "gemm", "fft")), points=2)
    assert (training.oracle(pts, lay)["baseline"] == "torch").all()


MODULES = [(str(i), ConvGeometry(8, 8, (3, 3), (1, 1), (1, 1), (1, 1), 1)) for i in range(T.layers)]


def test_a_training_plan_round_trips_through_the_plan_reader_and_fits_its_model(tmp_path):
    pts, lay, (ms,) = training_frames(T, points=1)
    plan = choose_training(pts, lay, Where("net", 32, 8), MODULES, made_by="test")
    path = plans.write(plan, tmp_path / "train.json")
    assert json.loads(path.read_text())["version"] == plans.TRAINING_VERSION
    back = plans.read(path)
    assert back.is_training and back.choice() == plan.choice()
    plans.check_model(back, nn.Sequential(*(nn.Conv2d(8, 8, 3, padding=1) for _ in range(T.layers))))
    # its choices are the oracle's: every truly clearly faster call switched, ties and slower ones kept on guess
    for i, d in _calls(ms):
        times = {a: ms[(i, d, a)] for a in T.algos}
        best = min(times, key=times.get)
        want = best if times[best] < times["guess"] else "guess"
        assert back.choice()[str(i)][d] == want, (i, d)
    assert back.choice()["0"]["backward_data"] == "guess"  # no call timed: the baseline kept, and said
    assert "no timed backward_data call" in back.layers[0].note
    o = training.oracle(pts, lay).iloc[0]
    assert back.extra["projected_ms"] == pytest.approx(o["projected_ms"])
    assert back.extra["baseline_p50_ms"] == pytest.approx(o["baseline_p50_ms"])


def test_a_measured_training_plan_is_projected_against_its_step():
    pts, lay, (ms,) = training_frames(T, points=1)
    plan = choose_training(pts, lay, Where("net", 32, 8), MODULES)
    choice = {(int(name), d): a for name, by in plan.choice().items() for d, a in by.items()}
    pts, lay, _ = training_frames(T, points=1, plan=choice)
    o = training.oracle(pts, lay)
    proj = training_projection(pts, lay, o)
    assert len(proj) == 1
    row = proj.iloc[0]
    assert row["baseline"] == "guess" and row["layers"] == T.layers * 3 - 1 and row["unrun_layers"] == 0
    assert row["error_low"] <= 1.0 <= row["error_high"]  # the synthetic step is the sum of its calls
    truth = T.remainder_ms + sum(ms[(i, d, choice[(i, d)])] for i, d in _calls(ms))
    assert row["projected_ms"] == pytest.approx(truth, rel=0.05)
    assert row["oracle_projected_ms"] == pytest.approx(o["projected_ms"].iloc[0])


def test_the_forward_tables_ignore_training_rows_and_the_training_tables_read_them():
    pts, lay, _ = training_frames(T, points=2, forward=True)
    both = registry.compute_all(pts, lay)
    fwd_pts = pts[pts["direction"] == "forward"].reset_index(drop=True)
    fwd_lay = lay[lay["point_direction"] == "forward"].reset_index(drop=True)
    alone = registry.compute_all(fwd_pts, fwd_lay)  # the same tree measured forward only
    for t in registry.tables():
        if t.name.startswith("training"):
            assert alone[t.name].empty, t.name  # no training rows: nothing
            continue
        got, want = both[t.name].reset_index(drop=True), alone[t.name].reset_index(drop=True)
        pd.testing.assert_frame_equal(got, want, obj=t.name)
    assert len(both["training_oracle"]) == 2
    assert set(both["training_layers"]["point_direction"]) == {"train_step"}
    assert set(both["training_layers"]["direction"]) == set(TRAIN_CALLS)


def test_rows_without_direction_columns_are_forward():
    pts, lay, _ = training_frames(T, points=1, forward=True)
    old_pts, old_lay = pts.drop(columns="direction"), lay.drop(columns=["direction", "point_direction"])
    assert (directions.point_direction(old_pts) == "forward").all()
    assert directions.forward_points(old_pts) is old_pts and directions.forward_layers(old_lay) is old_lay
    assert directions.training_points(old_pts).empty and directions.training_layers(old_lay).empty
    nulls = pts.assign(direction=None)
    assert (directions.point_direction(nulls) == "forward").all()


@pytest.mark.parametrize("calls", [["forward", None, "forward"], ["backward_filter", "forward", None]])
def test_a_layer_rows_place_in_its_point_is_its_index_and_its_call_read_as_text_or_as_categories(calls):
    lay = pd.DataFrame({"layer_index": np.array([4, 4, 7], np.int16), "direction": calls})
    expected = [i * 3 + (plans.DIRECTIONS.index(c) if c else 0) for i, c in zip([4, 4, 7], calls)]
    cats = lay.assign(direction=pd.Categorical(calls, ["backward_data", "backward_filter", "forward"]))
    for frame in (lay, cats):
        key = directions.within_point(frame)
        assert key.dtype == np.int64 and key.tolist() == expected
    assert lay["layer_index"].tolist() == [4, 4, 7]  # the key is made in place, not in the frame's column


@pytest.mark.parametrize("categorical", [False, True])
def test_a_direction_that_is_no_call_is_an_error_naming_it_and_the_valid_ones(categorical):
    lay = pd.DataFrame({"layer_index": [0, 1], "direction": ["forward", "sideways"]})
    if categorical:  # an unused unknown category is no error: only the rows' values are checked
        lay["direction"] = pd.Categorical(lay["direction"], ["forward", "sideways", "unused"])
        assert directions.within_point(lay.iloc[:1]).tolist() == [0]
    with pytest.raises(ValueError, match="direction sideways; valid: forward, backward_data, backward_filter"):
        directions.within_point(lay)


@pytest.mark.parametrize("categorical", [False, True])
def test_resolving_keeps_each_call_of_a_step_with_its_point(categorical):
    pts, lay, _ = training_frames(T, points=1, forward=True)
    if categorical:  # the load's dictionary-encoded columns (the fast path), one category list for both
        for c in ("stage", "gpu", "model", "algo", "dtype", "run_id", "layout", "l2", "direction"):
            cats = sorted(set(pts[c].astype(str)) | set(lay[c].astype(str)) | set(lay["point_direction"]))
            pts[c] = pd.Categorical(pts[c].astype(str), cats)
            lay[c] = pd.Categorical(lay[c].astype(str), cats)
    copies = pd.concat([lay, lay.iloc[:5]], ignore_index=True)  # a crash between compaction steps: copies
    report = LoadReport("synthetic")
    kept = resolve_layers(copies, pts, report)
    assert len(kept) == len(lay) and report.duplicate_copies["layers"] == 5 and report.orphan_layers == 0
    step = kept[kept["point_direction"].astype(str) == "train_step"]
    per_layer = step.groupby([step["algo"].astype(str), "layer_index"]).size()
    assert per_layer.max() == 3 and per_layer.min() == 2  # layer 0 has no backward_data call


def _schema_has_directions() -> bool:
    from harness.results.layout import POINT_KEY
    from harness.results.schema import LAYERS, POINTS

    return "direction" in POINT_KEY and "direction" in POINTS.names and "point_direction" in LAYERS.names


@pytest.mark.skipif(
    not _schema_has_directions(),
    reason="the store's point key and schema have no direction columns yet (issue 31: branch s32-measure adds them)",
)
def test_a_tree_with_training_steps_loads_and_makes_a_training_plan_from_the_command_line(tmp_path, capsys):
    from analysis.plans.cli import main
    from analysis.report.frames import compute_tables
    from analysis.tree import load
    from harness.models import meta_model
    from tests.synthetic import write_rows

    model = meta_model("resnet18", {})
    names = [name for name, _ in plans.conv_layers(model)]
    truth = TrainingTruth(layers=len(names))
    pts, lay, _ = training_frames(truth, points=1, forward=True, model="resnet18", names=names)
    write_rows(tmp_path / "results", pts, lay)
    res = load(tmp_path / "results")
    assert res.report.orphan_layers == 0 and sum(res.report.duplicate_copies.values()) == 0
    assert len(res.points) == len(pts) and len(res.layers) == len(lay)  # forward and train_step side by side
    frames = compute_tables(res)
    assert len(frames["training_oracle"]) == 1
    assert set(frames["oracle"]["direction"]) == {"forward"}  # the forward oracle: forward points only
    out = tmp_path / "train.json"
    argv = ["make", str(tmp_path / "results"), "--model", "resnet18", "--size", "32", "--batch", "8"]
    assert main([*argv, "--direction", "train_step", "--out", str(out)]) == 0
    plan = plans.read(out)
    assert plan.is_training and json.loads(out.read_text())["version"] == plans.TRAINING_VERSION
    plans.check_model(plan, model)
    assert "forward/backward_data/backward_filter" in capsys.readouterr().out
    assert main([*argv, "--out", str(tmp_path / "fwd.json")]) == 0  # the forward plan from the same tree
    assert not plans.read(tmp_path / "fwd.json").is_training


def test_the_report_has_a_training_step_section_only_where_training_rows_are(tmp_path):
    from analysis.report.render import render_markdown
    from analysis.report.sections import training_section

    pts, lay, _ = training_frames(T, points=1, forward=True)
    fwd = registry.compute_all(pts[pts["direction"] == "forward"], lay[lay["point_direction"] == "forward"])
    assert training_section(fwd) is None
    section = training_section(registry.compute_all(pts, lay))
    assert section is not None and section.title == "Training step"
    md = render_markdown("t", [section], tmp_path)
    assert "training_oracle" in md and "train_step" in md
