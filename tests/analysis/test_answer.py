"""The answer tables: speedups over guess and torch with intervals, ties as ties, merged code paths."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import answer
from tests.analysis.conftest import FACTORS, MODELS, SIZES

KEY = dict(stage="s", gpu="g", model="m", batch_size=1, dtype="float32", layout="nchw", l2="warm", direction="forward")


@pytest.fixture(scope="module")
def comp(res):
    return answer.competitors(res.points)


def test_speedups_follow_the_law_with_intervals(comp):
    sp = answer.speedups(comp)
    gemm = sp[(sp["algo"] == "gemm") & (sp["reference"] == "torch")]
    assert len(gemm) == len(MODELS) * 2 * len(SIZES)
    np.testing.assert_allclose(gemm["speedup"], 2.0, rtol=1e-12)
    assert ((gemm["speedup_low"] < 2.0) & (gemm["speedup_high"] > 2.0)).all()
    assert (gemm["verdict"] == "faster").all()
    vs_guess = sp[(sp["algo"] == "direct") & (sp["reference"] == "guess")]
    np.testing.assert_allclose(vs_guess["speedup"], FACTORS["guess"] / FACTORS["direct"], rtol=1e-12)
    assert (vs_guess["verdict"] == "slower").all()
    assert not ((sp["algo"] == sp["reference"]).any())


def test_summary_geomean_and_headline(comp):
    sp = answer.speedups(comp)
    summary = answer.speedup_summary(sp)
    g = summary[(summary["algo"] == "gemm") & (summary["reference"] == "torch")]
    assert len(g) == len(MODELS) * 2
    np.testing.assert_allclose(g["geomean_speedup"], 2.0, rtol=1e-9)
    assert (g["low"] <= 2.0).all() and (g["high"] >= 2.0).all() and g["beyond_noise"].all()
    assert (g["faster"] == len(SIZES)).all()
    head = answer.headline(summary, answer.winners(comp))
    assert len(head) == len(MODELS) * 2
    for row in head.itertuples(index=False):
        s = summary[(summary["gpu"] == row.gpu) & (summary["model"] == row.model) & (summary["reference"] == "guess")]
        assert row.speedup_vs_guess == pytest.approx(s.loc[s["low"] > 1, "geomean_speedup"].max())
        assert row.guess_fastest_or_tied_share == 0.0  # gemm (0.5) always beats guess (0.8) beyond noise


def _points(rows) -> pd.DataFrame:
    return pd.DataFrame(
        [
            KEY
            | {
                "input_size": size,
                "algo": algo,
                "status": "ok",
                "p50_ms": p50,
                "ci95_low_ms": p50 * (1 - w),
                "ci95_high_ms": p50 * (1 + w),
                "std_ms": None,
                "n": 50,
                "legacy_flags": flags,
            }
            for size, algo, p50, w, flags in rows
        ]
    )


def test_a_difference_inside_the_noise_is_a_tie_not_a_winner():
    comp = answer.competitors(
        _points(
            [
                (32, "a", 1.00, 0.05, None),
                (32, "b", 1.02, 0.05, None),
                (32, "c", 2.0, 0.01, None),  # a ~ b
                (64, "a", 1.00, 0.01, None),
                (64, "b", 1.20, 0.01, None),
                (64, "guess", 1.5, 0.01, None),
            ]
        )
    )
    w = answer.winners(comp).set_index("input_size")
    assert w.loc[32, "winner"] == "tie" and w.loc[32, "tied_with_fastest"] == "a, b"
    assert w.loc[32, "runner_up_beyond_noise"] == "c" and w.loc[32, "margin_beyond_noise"] == pytest.approx(1.0)
    assert w.loc[64, "winner"] == "a" and bool(w.loc[64, "sole_winner"])
    assert not bool(w.loc[64, "guess_is_fastest_or_tied"])
    sp = answer.speedups(comp, ("guess",))
    assert set(sp["verdict"]) == {"faster"}


def test_same_code_path_is_merged_not_two_winners():
    flag = ["algo_is_heuristic_choice"]
    comp = answer.competitors(
        _points(
            [
                (32, "guess", 1.00, 0.01, None),
                (32, "implicit_gemm", 0.99, 0.01, flag),
                (32, "gemm", 3.0, 0.01, None),
                (64, "implicit_gemm", 1.0, 0.01, flag),
                (64, "gemm", 3.0, 0.01, None),
            ]
        )
    )
    at32 = comp[comp["input_size"] == 32].set_index("algo")
    assert sorted(at32.index) == ["gemm", "guess"]
    assert at32.loc["guess", "same_path"] == "implicit_gemm" and at32.loc["guess", "p50_ms"] == 1.0
    at64 = comp[comp["input_size"] == 64].set_index("algo")
    assert sorted(at64.index) == ["gemm", "guess"] and at64.loc["guess", "same_path"] == "implicit_gemm"
    w = answer.winners(comp)
    assert (w["winner"] == "guess").all()


def test_layer_speedups_and_their_summary():
    rows = []
    for i, (t_guess, t_a, sd) in enumerate([(2.0, 1.0, 0.01), (2.0, 1.98, 0.5), (1.0, 3.0, 0.01)]):
        rows += [
            KEY | {"input_size": 32, "layer_index": i, "algo": "guess", "p50_ms": t_guess, "std_ms": sd, "n": 100},
            KEY | {"input_size": 32, "layer_index": i, "algo": "a", "p50_ms": t_a, "std_ms": sd, "n": 100},
        ]
    ls = answer.layer_speedups(pd.DataFrame(rows))
    assert ls.sort_values("layer_index")["verdict"].tolist() == ["faster", "tied", "slower"]
    s = answer.layer_summary(ls).iloc[0]
    assert (s["layers"], s["faster"], s["tied"], s["slower"]) == (3, 1, 1, 1)
    assert s["geomean_gain_when_faster"] == pytest.approx(2.0)


def test_pareto_front_per_point():
    from analysis.plots import pareto_front

    rows = pd.DataFrame(
        {
            "p": [1, 1, 1, 1, 2, 2],
            "p50_ms": [1.0, 2.0, 3.0, 2.0, 1.0, 1.0],
            "energy_per_inference_j": [5.0, 4.0, 4.5, 6.0, 2.0, 3.0],
        }
    )
    # point 1: fastest (1, 5) and (2, 4) are on the front; (3, 4.5) and (2, 6) are dominated.
    # point 2: equal latency, the lesser energy only.
    assert pareto_front(rows, ["p"]).tolist() == [True, True, False, False, True, False]


def test_support_grids_show_never_run_apart_from_unsupported_sorted_numerically_and_aligned():
    from analysis.plots import support_grids

    geo = dict(
        kernel_h=3,
        kernel_w=3,
        stride_h=1,
        stride_w=1,
        pad_h=1,
        pad_w=1,
        dilation_h=1,
        dilation_w=1,
        groups=1,
        dtype="float32",
        layout="nchw",
        l2="warm",
        direction="forward",
    )
    rows = [
        ("a", 64, "gemm", "ok"),
        ("a", 64, "fft", "unsupported"),
        ("a", 128, "gemm", "ok"),
        ("b", 128, "gemm", "fallback"),
        ("a", 8, "gemm", "ok"),
    ]
    support = pd.DataFrame(
        [geo | {"gpu": g, "in_channels": c, "out_channels": c, "algo": algo, "status": st} for g, c, algo, st in rows]
    )
    grids = support_grids(support)
    assert list(grids["a"].columns) == list(grids["b"].columns) == ["fft", "gemm"]
    a = grids["a"]
    assert list(a.index.get_level_values("in_channels")) == [8, 64, 128]  # not "128" < "64" < "8"
    assert a.loc[64].iloc[0].tolist() == ["unsupported", "ok"]
    assert a.loc[128].iloc[0].tolist() == ["not run", "ok"]
    assert grids["b"].iloc[0].tolist() == ["not run", "fallback"]


def test_gpu_comparison_draws_several_stages_apart(tmp_path):
    from analysis import plots, tables

    rows = [
        KEY
        | {
            "stage": st,
            "gpu": g,
            "input_size": 32,
            "algo": "gemm",
            "status": "ok",
            "p50_ms": t,
            "energy_per_inference_j": None,
            "std_ms": 0.01,
            "n": 50,
        }
        for st, g, t in [("legacy", "a", 2.0), ("legacy", "b", 1.0), ("quick", "a", 3.0), ("quick", "b", 1.0)]
    ]
    pairs = tables.gpu_pairs(tables.algorithms(pd.DataFrame(rows)))
    assert len(pairs) == 4  # per stage: the model and "(all)"
    assert (pairs["p50_ratio_low"] <= pairs["geomean_p50_ratio"]).all()
    path = plots.gpu_comparison(pairs, tmp_path / "gpus.png")
    assert path.read_bytes()[:4] == b"\x89PNG" and path.with_suffix(".svg").is_file()
