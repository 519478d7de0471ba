"""The predictor: honest splits, no measured features, and better than the roofline on a known law."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analysis import predictor as P
from analysis.load import load
from analysis.specs import gpu_specs
from tests.synthetic import Synthetic, default_models, generate, one_point


@pytest.fixture(scope="module")
def law_tree(tmp_path_factory):
    """Layer times from synthetic.roofline_law (algorithm x kernel efficiencies, launch overhead, a depthwise
    penalty: what a datasheet roofline cannot know), 5% multiplicative noise."""
    root = tmp_path_factory.mktemp("law") / "results"
    generate(
        root,
        Synthetic(
            models=default_models(4, 10, seed=1),
            sizes=(64, 96, 128, 160, 192),
            algos=("torch", "gemm", "winograd", "fft"),
            fallback={"winograd": "torch"},
            noise=0.05,
            remainder_fraction=0.1,
            seed=3,
        ),
    )
    return root


@pytest.fixture(scope="module")
def data(law_tree):
    res = load(law_tree)
    specs = gpu_specs(law_tree, res.points["gpu"].unique())
    return res, specs


@pytest.fixture(scope="module")
def latency(data):
    res, specs = data
    frame = P.layer_frame(res.layers, specs)
    return frame, P.evaluate(frame, res.points, res.layers, threads=1)


def _metric(ev, split, level, predictor):
    m = ev.metrics
    return m[(m["split"] == split) & (m["level"] == level) & (m["predictor"] == predictor)].iloc[0]


# With two GPU types, leaving one out extrapolates across datasheets from a single example: a weaker claim.
@pytest.mark.parametrize(
    "split,factor", [("leave-one-model-out", 0.5), ("extrapolation", 0.5), ("leave-one-gpu-out", 1.0)]
)
@pytest.mark.parametrize("level", ["layer", "model"])
def test_boosted_beats_the_roofline_baseline(latency, split, factor, level):
    _, ev = latency
    boosted, roofline = _metric(ev, split, level, "boosted"), _metric(ev, split, level, "roofline")
    assert boosted["n"] == roofline["n"] > 0
    assert boosted["median_ape"] < factor * roofline["median_ape"]
    assert boosted["mean_ape"] < roofline["mean_ape"]


def test_errors_near_the_noise_floor_where_the_law_is_learnable(latency):
    _, ev = latency
    # 5% lognormal noise: a median APE of ~3.4% is the floor; the roofline alone is far off
    assert _metric(ev, "leave-one-model-out", "layer", "boosted")["median_ape"] < 10
    assert _metric(ev, "extrapolation", "layer", "boosted")["median_ape"] < 12
    assert _metric(ev, "leave-one-model-out", "layer", "roofline")["median_ape"] > 20


def test_leave_one_model_out_never_shares_a_model(latency):
    frame, ev = latency
    lomo = [f for f in P.folds(frame.data) if f.split == "leave-one-model-out"]
    assert len(lomo) == 4
    for f in lomo:
        train, test = set(frame.data.loc[f.train, "model"]), set(frame.data.loc[f.test, "model"])
        assert test == {f.held_out} and not train & test
        assert (f.train ^ f.test).all()  # every row in exactly one side
    held = ev.predictions[ev.predictions["split"] == "leave-one-model-out"]
    assert (held["model"] == held["held_out"]).all()
    assert len(held) == len(frame.data)  # each row predicted once, by the fold that did not see it


def test_extrapolation_trains_on_smaller_sizes_only(latency):
    frame, _ = latency
    (f,) = [f for f in P.folds(frame.data) if f.split == "extrapolation"]
    assert frame.data.loc[f.train, "input_size"].max() < frame.data.loc[f.test, "input_size"].min()
    assert sorted(frame.data.loc[f.test, "input_size"].unique()) == [160, 192]


def test_features_ignore_everything_measured_on_the_point(data):
    res, specs = data
    layers = res.layers.copy()
    f1 = P.layer_features(layers, specs)
    rng = np.random.default_rng(0)
    for col in P.MEASURED & set(layers.columns):
        if pd.api.types.is_numeric_dtype(layers[col]):
            layers[col] = rng.random(len(layers)) * 1e3
    f2 = P.layer_features(layers, specs)
    pd.testing.assert_frame_equal(f1, f2)
    assert not (set(P.LAYER_NUMERIC) | set(P.POINT_NUMERIC) | set(P.CATEGORICAL)) & P.MEASURED
    points = res.points.copy()
    e1 = P.energy_frame(points, specs).data.drop(columns="y")
    for col in ("std_ms", "p95_ms", "cv", "mean_ms", "p50_ms", "power_mean_w"):
        points[col] = rng.random(len(points))
    pd.testing.assert_frame_equal(e1, P.energy_frame(points, specs).data.drop(columns="y"))


def test_remainder_comes_from_the_other_algorithms():
    key = one_point()
    points = pd.DataFrame(
        [key | {"algo": "a", "status": "ok", "p50_ms": 110.0}, key | {"algo": "b", "status": "ok", "p50_ms": 11.0}]
    )
    layers = pd.DataFrame(
        [key | {"algo": "a", "layer_index": 0, "p50_ms": 10.0}, key | {"algo": "b", "layer_index": 0, "p50_ms": 10.0}]
    )
    rem = P.remainders(points, layers).set_index("algo")["remainder_ms"]
    assert rem["a"] == pytest.approx(1.0)  # b's remainder, never a's own 100
    assert rem["b"] == pytest.approx(100.0)


def test_energy_predictor(data):
    res, specs = data
    frame = P.energy_frame(res.points, specs)
    assert len(frame.data) == int(res.points["energy_per_inference_j"].notna().sum())
    ev = P.evaluate(frame, threads=1)
    lomo_b = _metric(ev, "leave-one-model-out", "point", "boosted")
    lomo_r = _metric(ev, "leave-one-model-out", "point", "roofline")
    assert lomo_b["median_ape"] < lomo_r["median_ape"]


def test_saved_model_reloads_with_metrics_and_data(latency, tmp_path):
    frame, ev = latency
    files = P.fit_and_save(frame, ev, tmp_path, threads=1)
    names = {f.name for f in files}
    assert names == {
        "latency.pkl",
        "latency-training.parquet",
        "latency-metrics.json",
        "latency-test-predictions.parquet",
    }
    model = P.load_model(tmp_path / "latency.pkl")
    pred = model.predict(frame.data)
    assert np.isfinite(pred).all() and (pred > 0).all()
    meta = json.loads((tmp_path / "latency-metrics.json").read_text())
    assert meta["rows"] == len(frame.data)
    assert {m["split"] for m in meta["metrics"]} == {"leave-one-model-out", "extrapolation", "leave-one-gpu-out"}
    assert len(pd.read_parquet(tmp_path / "latency-training.parquet")) == len(frame.data)


def test_splits_that_the_data_cannot_support_are_skipped_with_a_reason(data):
    res, specs = data
    one = res.layers[(res.layers["model"] == "net0") & (res.layers["gpu"] == "h100")]
    ev = P.evaluate(P.layer_frame(one, specs), threads=1)
    assert set(ev.metrics["split"]) == {"extrapolation"}
    assert any("leave-one-model-out needs two models" in s for s in ev.skipped)
    assert any("leave-one-gpu-out needs two GPU types" in s for s in ev.skipped)


def _layer_rows(
    measured: dict[str, float],
    predicted: dict[str, float],
    layer_index=0,
    model="m",
    split="leave-one-model-out",
    status=None,
) -> list[dict]:
    key = one_point(model=model)
    return [
        key
        | {
            "split": split,
            "held_out": model,
            "layer_index": layer_index,
            "algo_requested": a,
            "measured": measured[a],
            "predicted": predicted[a],
            "status": (status or {}).get(a, "ok"),
        }
        for a in measured
    ]


def test_regret_is_zero_for_a_correct_ranking_and_known_for_a_swapped_one():
    right = _layer_rows({"a": 1.0, "b": 2.0, "c": 4.0}, {"a": 0.5, "b": 3.0, "c": 9.0}, layer_index=0)
    swapped = _layer_rows({"a": 1.0, "b": 1.25}, {"a": 2.0, "b": 1.0}, layer_index=1)  # picks b: 25% slower
    near = _layer_rows({"a": 1.0, "b": 1.04}, {"a": 2.0, "b": 1.0}, layer_index=2)  # picks b: 4%, within 5%
    alone = _layer_rows({"a": 1.0}, {"a": 1.0}, layer_index=3)  # one algorithm: no choice, no regret
    fell_back = _layer_rows({"a": 1.0, "b": 0.1}, {"a": 1.0, "b": 0.1}, layer_index=4, status={"b": "fallback"})
    c = P.choices(pd.DataFrame(right + swapped + near + alone + fell_back)).set_index("layer_index")
    assert sorted(c.index) == [0, 1, 2]  # a single algorithm, or one ok beside a fallback, is no choice
    assert c.loc[0, "regret"] == 0 and c.loc[0, "chosen"] == c.loc[0, "fastest"] == "a"
    assert c.loc[1, "regret"] == pytest.approx(0.25) and c.loc[1, "chosen"] == "b" and c.loc[1, "fastest"] == "a"
    assert c.loc[2, "regret"] == pytest.approx(0.04)
    assert c.loc[0, "algos"] == 3 and c.loc[1, "algos"] == 2
    assert c.loc[0, "random_regret"] == pytest.approx((0 + 1 + 3) / 3)  # a random pick: 1x, 2x, 4x the fastest
    assert c.loc[0, "random_within"] == pytest.approx(1 / 3)
    assert c.loc[2, "random_within"] == 1.0
    s = P.regret_summary(c.reset_index())
    pooled = s[s["held_out"] == "all folds"].iloc[0]
    assert pooled["layers"] == 3
    assert pooled["median_regret_pct"] == pytest.approx(4.0)
    assert pooled["mean_regret_pct"] == pytest.approx((0 + 25 + 4) / 3)
    assert pooled["within_5pct"] == pytest.approx(2 / 3)


def test_regret_per_fold_and_split_keeps_layers_apart():
    rows = (
        _layer_rows({"a": 1.0, "b": 2.0}, {"a": 2.0, "b": 1.0}, model="m1")  # 100% regret in fold m1
        + _layer_rows({"a": 1.0, "b": 2.0}, {"a": 1.0, "b": 2.0}, model="m2")  # right in fold m2
        + _layer_rows({"a": 1.0, "b": 2.0}, {"a": 2.0, "b": 1.0}, model="m2", split="extrapolation")
    )
    s = P.regret_summary(P.choices(pd.DataFrame(rows))).set_index(["split", "held_out"])
    assert s.loc[("leave-one-model-out", "m1"), "median_regret_pct"] == pytest.approx(100)
    assert s.loc[("leave-one-model-out", "m2"), "median_regret_pct"] == 0
    assert s.loc[("leave-one-model-out", "all folds"), "layers"] == 2
    assert s.loc[("leave-one-model-out", "all folds"), "mean_regret_pct"] == pytest.approx(50)
    assert s.loc[("extrapolation", "all folds"), "within_5pct"] == 0
    assert list(s.index.get_level_values(0)).index("extrapolation") == 3  # a split's pooled row, then its folds


def test_regret_of_the_fitted_predictor_beats_a_random_pick(latency):
    _, ev = latency
    r = ev.regret[ev.regret["held_out"] == "all folds"].set_index("split")
    assert set(r.index) == {"leave-one-model-out", "extrapolation", "leave-one-gpu-out"}
    assert (r["layers"] > 0).all()
    # four algorithms with distinct efficiencies: the learnt ranking is mostly right, a random one is not
    assert r.loc["leave-one-model-out", "median_regret_pct"] < r.loc["leave-one-model-out", "random_median_regret_pct"]
    assert r.loc["leave-one-model-out", "within_5pct"] > r.loc["leave-one-model-out", "random_within_5pct"]
    # every choice is among algorithms timed ok on one layer of one held-out point
    c = ev.choices
    assert (c["regret"] >= 0).all() and (c["algos"] >= 2).all()
    lomo = c[c["split"] == "leave-one-model-out"]
    assert (lomo["model"] == lomo["held_out"]).all()
    assert not lomo.duplicated(P.OCCURRENCE).any()


def test_worst_fold_beside_the_mean_and_weak_gpu_split_marked(latency):
    _, ev = latency
    fs = ev.fold_summary.set_index("split")
    lomo = ev.folds[ev.folds["split"] == "leave-one-model-out"]
    assert fs.loc["leave-one-model-out", "folds"] == 4
    assert fs.loc["leave-one-model-out", "boosted_worst_fold"] == lomo["boosted_median_ape"].max()
    assert fs.loc["leave-one-model-out", "boosted_mean_of_folds"] == pytest.approx(lomo["boosted_median_ape"].mean())
    worst = lomo.loc[lomo["boosted_median_ape"].idxmax(), "held_out"]
    assert fs.loc["leave-one-model-out", "worst_held_out"] == worst
    assert fs.loc["leave-one-gpu-out", "note"] == "weak: 2 GPU types < 4"
    assert fs.loc["leave-one-model-out", "note"] == ""
    m = ev.metrics
    assert set(m.loc[m["split"] == "leave-one-gpu-out", "note"]) == {"weak: 2 GPU types < 4"}
    assert set(m.loc[m["split"] != "leave-one-gpu-out", "note"]) == {""}
    assert P.weak_note("leave-one-gpu-out", 4) == ""


def test_model_rows_state_the_remainders_share_of_the_prediction(latency):
    _, ev = latency
    m = ev.metrics
    model = m[m["level"] == "model"]
    # synthetic remainder_fraction=0.1: the measured remainder is a small, non-zero part of each prediction
    assert model["remainder_share"].between(0.01, 0.5).all()
    assert m.loc[m["level"] == "layer", "remainder_share"].isna().all()


def test_layer_features_take_the_algorithm_that_ran_from_dictionary_encoded_columns(data):
    res, specs = data
    layers = res.layers.head(4).copy()
    layers["algo"] = pd.Categorical(["gemm", "fft", "gemm", "fft"])
    layers["algo_used"] = pd.Categorical(["torch", None, None, "winograd"])  # other categories, and missing
    assert list(P.layer_features(layers, specs)["algo"]) == ["torch", "fft", "gemm", "winograd"]


def test_energy_is_learned_above_idle_where_idle_was_measured_else_in_total(data):
    res, specs = data
    points = res.points.copy()
    has = points["energy_per_inference_j"].notna()
    # a device idling at 30 W: the dynamic energy is the stored column, below the total
    points.loc[has, "idle_power_w"] = 30.0
    points.loc[has, "dynamic_energy_per_inference_j"] = points.loc[has, "energy_per_inference_j"] * 0.4
    frame = P.energy_frame(points, specs)
    assert frame.kind == "dynamic energy per inference (J)"
    assert np.sort(frame.data["y"].to_numpy()) == pytest.approx(
        np.sort(points.loc[has, "energy_per_inference_j"].to_numpy() * 0.4)
    )
    # a point that never measured idle (an imported row) is left out, not mixed in as total energy
    points.loc[points.index[has][0], ["idle_power_w", "dynamic_energy_per_inference_j", "energy_windows"]] = np.nan
    assert len(P.energy_frame(points, specs).data) == int(has.sum()) - 1
    # a tree where no point knows its idle power learns the total, and says so
    legacy = res.points.drop(columns=["idle_power_w", "dynamic_energy_per_inference_j", "energy_windows"])
    frame = P.energy_frame(legacy, specs)
    assert frame.kind == "total energy per inference (J)" and len(frame.data) == int(has.sum())
