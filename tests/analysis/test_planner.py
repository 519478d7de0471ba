"""Plans made from measurements (analysis.planner) and the per_layer tables (analysis.perlayer), on small
frames with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import perlayer
from analysis.errors import AnalysisError
from analysis.planner import Where, choose
from harness.algorithms.geometry import ConvGeometry

POINT = {
    "stage": "sanity",
    "gpu": "local",
    "model": "tiny",
    "input_size": 32,
    "batch_size": 1,
    "dtype": "float32",
    "layout": "nchw",
    "l2": "warm",
    "direction": "forward",
}
MODULES = [
    ("a", ConvGeometry(3, 8, (3, 3), (1, 1), (1, 1))),
    ("b", ConvGeometry(8, 8, (3, 3), (1, 1), (1, 1))),
    ("c", ConvGeometry(8, 16, (1, 1), (2, 2), (0, 0))),
]
N = 100


def layer_rows(
    algo: str, times: dict[str, float | None], std: float = 0.05, used: dict[str, str] | None = None, **point: object
) -> list[dict]:
    rows = []
    for i, (name, g) in enumerate(MODULES):
        t = times.get(name)
        status = "ok" if t is not None else "fallback"
        rows.append(
            POINT
            | point
            | {
                "algo": algo,
                "layer_index": i,
                "layer_name": name,
                "in_channels": g.in_channels,
                "out_channels": g.out_channels,
                "kernel_h": g.kernel[0],
                "kernel_w": g.kernel[1],
                "stride_h": g.stride[0],
                "stride_w": g.stride[1],
                "pad_h": g.padding[0],
                "pad_w": g.padding[1],
                "dilation_h": 1,
                "dilation_w": 1,
                "groups": 1,
                "in_h": 32,
                "in_w": 32,
                "status": status,
                "algo_used": (used or {}).get(name, algo if t is not None else "torch"),
                "p50_ms": t if t is not None else 1.0,
                "std_ms": std,
                "n": N,
            }
        )
    return rows


def point_row(algo: str, p50: float, ci: float = 0.01, **extra: object) -> dict:
    return (
        POINT
        | {
            "algo": algo,
            "status": "ok",
            "p50_ms": p50,
            "ci95_low_ms": p50 * (1 - ci),
            "ci95_high_ms": p50 * (1 + ci),
            "std_ms": 0.01,
            "n": N,
            "energy_per_inference_j": None,
            "backend": "torch" if algo == "torch" else "reference",
            "device_name": "cpu",
            "cudnn_version": None,
            "plan_hash": None,
            "cudnn_benchmark": None,
        }
        | extra
    )


def three_layers() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Layer a: gemm clearly faster than torch; b: gemm faster by less than the noise (tie); c: winograd
    cannot run it."""
    layers = (
        layer_rows("torch", {"a": 1.0, "b": 1.0, "c": 0.5})
        + layer_rows("gemm", {"a": 0.5, "b": 0.995, "c": 0.6})
        + layer_rows("winograd", {"a": 0.7, "b": 1.2})
    )
    points = pd.DataFrame([point_row("torch", 3.0), point_row("gemm", 2.6), point_row("winograd", 2.9)])
    return points, pd.DataFrame(layers)


@pytest.fixture
def tree() -> tuple[pd.DataFrame, pd.DataFrame]:
    return three_layers()


def test_beyond_noise_switches_a_tie_keeps_the_baseline(tree):
    points, layers = tree
    plan = choose(points, layers, Where("tiny", 32), MODULES, "test")
    assert plan.baseline == "torch"
    assert [(x.name, x.algo, x.source) for x in plan.layers] == [
        ("a", "gemm", "measured"),
        ("b", "torch", "tie"),
        ("c", "torch", "measured"),
    ]
    b = plan.layers[1]
    assert b.winner.algo == "gemm" and b.runner_up.algo == "torch" and b.baseline.algo == "torch"
    assert b.winner.ci95_low_ms < b.winner.p50_ms < b.winner.ci95_high_ms
    assert plan.key.input_size == 32 and plan.key.gpu == "local" and plan.key.backend == "reference"
    # projection: torch's remainder (3.0 - 2.5) + the chosen layers (0.5 + 1.0 + 0.5)
    assert plan.extra["projected_ms"] == pytest.approx(2.5)


def test_noisy_layers_never_switch(tree):
    points, layers = tree
    noisy = layers.assign(std_ms=5.0)
    plan = choose(points, noisy, Where("tiny", 32), MODULES)
    assert [x.algo for x in plan.layers] == ["torch"] * 3
    assert [x.source for x in plan.layers] == ["tie", "tie", "measured"]


def test_guess_is_the_baseline_where_measured(tree):
    points, layers = tree
    points = pd.concat([points, pd.DataFrame([point_row("guess", 2.8)])], ignore_index=True)
    layers = pd.concat([layers, pd.DataFrame(layer_rows("guess", {"a": 0.52, "b": 0.9, "c": 0.5}))], ignore_index=True)
    plan = choose(points, layers, Where("tiny", 32), MODULES)
    assert plan.baseline == "guess"
    assert [(x.algo, x.source) for x in plan.layers] == [("guess", "tie"), ("guess", "measured"), ("guess", "measured")]


def test_only_the_named_algorithms_compete(tree):
    points, layers = tree
    plan = choose(points, layers, Where("tiny", 32), MODULES, algos=("gemm", "winograd"))
    assert plan.baseline == "gemm" and [x.algo for x in plan.layers] == ["gemm", "gemm", "gemm"]
    assert plan.layers[2].source == "baseline"  # winograd did not run c itself: gemm alone
    with pytest.raises(AnalysisError, match="fft not measured"):
        choose(points, layers, Where("tiny", 32), MODULES, algos=("gemm", "fft"))


def test_refusals(tree):
    points, layers = tree
    with pytest.raises(
        AnalysisError,
        match="--size 64 is not valid: no point of tiny measured ok at it in the tree; " "held there: 32$",
    ):
        choose(points, layers, Where("tiny", 64), MODULES)
    with pytest.raises(AnalysisError, match="--gpu v100 is not valid: .*; held there: "):
        choose(points, layers, Where("tiny", 32, gpu="v100"), MODULES)
    with pytest.raises(AnalysisError, match="no baseline among"):
        choose(points[points["algo"] != "torch"], layers, Where("tiny", 32), MODULES)
    with pytest.raises(AnalysisError, match="layer d has no timed row"):
        choose(points, layers, Where("tiny", 32), [*MODULES, ("d", MODULES[0][1])])
    two = pd.concat([points, points.assign(stage="quick")], ignore_index=True)
    with pytest.raises(AnalysisError, match="choose one with --stage"):
        choose(two, layers, Where("tiny", 32), MODULES)


def test_plan_against_the_others_and_projected_against_measured(tree):
    points, layers = tree
    mixed = point_row("per_layer", 2.0, plan_hash="abc")
    points = pd.concat([points, pd.DataFrame([mixed, point_row("torch", 4.0, input_size=48)])], ignore_index=True)
    used = {"a": "gemm", "b": "torch", "c": "torch"}
    layers = pd.concat(
        [layers, pd.DataFrame(layer_rows("per_layer", {"a": 0.5, "b": 1.0, "c": 0.5}, used=used))], ignore_index=True
    )
    comp = perlayer.plan_vs_others(points)
    assert list(comp["other"]) == ["torch", "best single"]
    assert comp.set_index("other").loc["best single", "other_algo"] == "gemm"
    torch_row = comp.set_index("other").loc["torch"]
    assert torch_row["speedup"] == pytest.approx(1.5) and torch_row["verdict"] == "faster"
    assert torch_row["speedup_low"] < 1.5 < torch_row["speedup_high"]

    proj = perlayer.projection(points, layers)
    (row,) = proj.to_dict("records")
    # torch's remainder 3.0 - 2.5 = 0.5, + gemm's a 0.5 + torch's b 1.0 + torch's c 0.5 = 2.5; measured 2.0
    assert row["baseline"] == "torch" and row["unrun_layers"] == 0
    assert row["projected_ms"] == pytest.approx(2.5) and row["measured_over_projected"] == pytest.approx(0.8)
    assert row["error_low"] < 0.8 < row["error_high"] < 1  # beyond noise: the projection was pessimistic here
    assert row["projected_gain"] == pytest.approx(1.2) and row["measured_gain"] == pytest.approx(1.5)
    bias = perlayer.projection_bias(proj)
    assert bias["verdict"].tolist() == ["pessimistic"] and bias["points"].tolist() == [1]

    # a layer whose algorithm never ran on its own at this point: no projection rather than a made-up one
    odd = layers.copy()
    odd.loc[(odd["algo"] == "per_layer") & (odd["layer_name"] == "b"), "algo_used"] = "fft"
    (row,) = perlayer.projection(points, odd).to_dict("records")
    assert row["unrun_layers"] == 1 and np.isnan(row["projected_ms"])
    assert perlayer.projection_bias(perlayer.projection(points, odd)).empty


def test_no_per_layer_points_gives_empty_tables(tree):
    points, layers = tree
    assert perlayer.plan_vs_others(points).empty and perlayer.projection(points, layers).empty
    assert perlayer.singles(points.assign(algo="per_layer")).empty


def test_a_plan_from_find_takes_what_find_picked(tree):
    from analysis.planner import from_find

    points, layers = tree
    with pytest.raises(AnalysisError, match="no algo=find point"):
        from_find(points, layers, Where("tiny", 32), MODULES)
    used = {"a": "implicit_precomp_gemm", "b": "winograd", "c": "gemm"}
    points = pd.concat([points, pd.DataFrame([point_row("find", 2.4, backend="cudnn")])], ignore_index=True)
    layers = pd.concat(
        [layers, pd.DataFrame(layer_rows("find", {"a": 0.4, "b": 0.9, "c": 0.5}, used=used))], ignore_index=True
    )
    plan = from_find(points, layers, Where("tiny", 32), MODULES)
    assert [(x.algo, x.source) for x in plan.layers] == [(used[n], "find") for n, _ in MODULES]
    assert plan.layers[0].winner.p50_ms == 0.4 and plan.key.backend == "cudnn"
    # measured from find, a mix's layer whose algorithm never ran alone is projected from the find run's timing
    mixed = point_row("per_layer", 2.3, plan_hash=plan.digest())
    points = pd.concat([points, pd.DataFrame([mixed])], ignore_index=True)
    layers = pd.concat(
        [layers, pd.DataFrame(layer_rows("per_layer", {"a": 0.4, "b": 0.9, "c": 0.5}, used=used))], ignore_index=True
    )
    (row,) = perlayer.projection(points, layers).to_dict("records")
    assert row["unrun_layers"] == 0 and row["projected_ms"] == pytest.approx(0.5 + 0.4 + 1.2 + 0.6)
    comp = perlayer.plan_vs_others(points)
    assert list(comp["other"]) == ["torch", "find", "best single"]


def test_a_predicted_plan_switches_only_beyond_the_margin_and_offers_only_what_runs():
    from analysis.planner import predicted
    from harness.algorithms import plan as plans
    from harness.models import meta_model

    modules = [(n, ConvGeometry.of(m)) for n, m in plans.conv_layers(meta_model("resnet18", {}))]
    where = Where("resnet18", 48, gpu="local")
    seen = []

    def predict(factor: float):
        def fn(frame: pd.DataFrame) -> np.ndarray:
            seen.append(frame)
            assert frame["log_flops"].notna().all() and (frame["in_h"] > 0).all()  # the predictor's own features
            return np.where(frame["algo"] == "winograd", factor, 1.0) * frame["log_flops"].to_numpy()

        return fn

    plan = predicted(where, modules, predict(0.5), {"local": None}, ("gemm", "winograd"), backend="reference")
    wino = {n for n, g in modules if g.kernel == (3, 3) and g.stride == (1, 1)}
    assert {x.name for x in plan.layers if x.algo == "winograd"} == wino and len(wino) == 13
    assert {x.source for x in plan.layers} == {"predicted"} and plan.baseline == "gemm"
    assert plan.layers[0].winner.ci95_low_ms is None and plan.key.input_size == 48
    assert set(seen[0].loc[seen[0]["layer_name"] == "conv1", "algo"]) == {"gemm"}  # winograd cannot run a 7x7
    assert (seen[0]["in_h"].iloc[0], seen[0]["out_h"].iloc[0]) == (48, 24)
    close = predicted(where, modules, predict(0.95), {"local": None}, ("gemm", "winograd"), backend="reference")
    assert {x.algo for x in close.layers} == {"gemm"}  # 5% faster: within the 10% margin
    with pytest.raises(AnalysisError, match="needs the algorithms"):
        predicted(where, modules, predict(0.5), {}, ())


def test_torch_with_and_without_cudnn_benchmark_both_compete(tree):
    points, _ = tree
    bench = point_row("torch", 2.2, cudnn_benchmark=True, measured_at=2)
    heur = point_row("torch", 3.0, cudnn_benchmark=False, measured_at=1)
    older = point_row("torch", 9.0, cudnn_benchmark=False, measured_at=0)
    rows = pd.DataFrame([bench, heur, older, point_row("gemm", 2.6, measured_at=1)]).assign(run_id="r")
    both = perlayer.torch_settings(rows)
    assert sorted(both["p50_ms"]) == [2.2, 3.0]
    points = pd.concat(
        [points[points["algo"] != "torch"], pd.DataFrame([bench, point_row("per_layer", 2.0)])], ignore_index=True
    )
    comp = perlayer.plan_vs_others(points, both).set_index("other")
    assert list(comp.index) == ["torch", "torch (cudnn.benchmark)", "best single"]
    assert comp.loc["torch", "other_p50_ms"] == 3.0 and comp.loc["torch (cudnn.benchmark)", "other_p50_ms"] == 2.2


def test_the_summary_says_how_plans_fared_and_how_wrong_the_projection_was(tree):
    from analysis.findings import _plan_findings

    points, layers = tree
    points = pd.concat([points, pd.DataFrame([point_row("per_layer", 2.0, plan_hash="abc")])], ignore_index=True)
    used = {"a": "gemm", "b": "torch", "c": "torch"}
    layers = pd.concat(
        [layers, pd.DataFrame(layer_rows("per_layer", {"a": 0.5, "b": 1.0, "c": 0.5}, used=used))], ignore_index=True
    )
    proj = perlayer.projection(points, layers)
    lines = _plan_findings(
        {"plan_comparison": perlayer.plan_vs_others(points), "plan_bias": perlayer.projection_bias(proj)}
    )
    assert lines[0].startswith(
        "Measured per-layer plans (algo=per_layer) beat the best single algorithm beyond " "noise at 1 of 1 points"
    )
    assert "0.80x its sum-of-layers projection" in lines[1] and "pessimistic" in lines[1]
    assert _plan_findings({"plan_comparison": pd.DataFrame(), "plan_bias": pd.DataFrame()}) == []


def test_switches_are_corrected_over_the_plan_s_layers_and_the_plan_says_how():
    """Every layer has gemm faster than torch at 2.25 standard errors (one-sided p 0.018 under Student's t
    with 20 df, multiplicity.TAIL_DF): Benjamini-Hochberg over the three layers switches all three (q 0.018).
    The fastest of several challengers is picked by its estimate, so its p is multiplied by their number:
    with winograd too, 2 x 0.018, still a switch; with five, 0.09: ties.
    A layer without an interval is not tested and keeps the baseline; the plan says how many layers
    were tested and how they were corrected."""
    from harness.results import multiplicity as mt

    std = 0.05
    se = np.sqrt(np.pi / 2) * std / np.sqrt(N)  # per row, relative to a p50 of 1
    t_gemm = float(np.exp(-2.25 * np.hypot(se, se)))
    points = pd.DataFrame([point_row("torch", 3.0), point_row("gemm", 2.6), point_row("winograd", 2.9)])
    layers = pd.DataFrame(
        layer_rows("torch", {"a": 1.0, "b": 1.0, "c": 1.0}, std=std)
        + layer_rows("gemm", {"a": t_gemm, "b": t_gemm, "c": t_gemm}, std=std)
    )
    plan = choose(points, layers, Where("tiny", 32), MODULES)
    p_one = float(mt.p_faster(np.log(t_gemm), np.hypot(se, se)))
    assert p_one == pytest.approx(0.0179, abs=1e-4)
    assert [x.algo for x in plan.layers] == ["gemm"] * 3
    assert plan.extra["switch_tests"] == 3 and plan.extra["switch_no_interval"] == 0
    assert "Benjamini-Hochberg" in plan.extra["switch_correction"]
    # winograd competes too (slower): the fastest is now picked from 2, p doubles; still a switch at q 0.036
    both = pd.concat([layers, pd.DataFrame(layer_rows("winograd", {"a": 1.1, "b": 1.1, "c": 1.1}, std=std))])
    assert [x.algo for x in choose(points, both, Where("tiny", 32), MODULES).layers] == ["gemm"] * 3
    # five slower competitors: 5 x 0.0179 = 0.09 > 5%: kept as ties (the fastest of many is not evidence)
    slower = ("winograd", "fft", "direct", "implicit_gemm")
    many = pd.concat([layers, *[pd.DataFrame(layer_rows(a, {"a": 1.1, "b": 1.1, "c": 1.1}, std=std)) for a in slower]])
    plan = choose(
        pd.concat([points, pd.DataFrame([point_row(a, 3.1) for a in slower[1:]])]), many, Where("tiny", 32), MODULES
    )
    assert [(x.algo, x.source) for x in plan.layers] == [("torch", "tie")] * 3
    # a gemm row without an interval (no std): that layer is not tested and keeps the baseline
    blind = layers.copy()
    blind.loc[(blind["algo"] == "gemm") & (blind["layer_name"] == "a"), "std_ms"] = np.nan
    plan = choose(points, blind, Where("tiny", 32), MODULES)
    assert [x.algo for x in plan.layers] == ["torch", "gemm", "gemm"]
    assert (
        plan.layers[0].note.startswith("no interval (not enough samples)") and plan.layers[0].winner.ci95_low_ms is None
    )
    assert (plan.extra["switch_tests"], plan.extra["switch_no_interval"]) == (2, 1)
