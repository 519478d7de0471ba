"""Every table against the known law of the synthetic tree (tests/analysis/conftest.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import tables
from tests.analysis.conftest import (
    FACTORS,
    MODELS,
    POWER,
    SIZES,
    base_ms,
    known_law,
    winograd_ok,
)
from tests.synthetic import geometry, one_point


@pytest.fixture(scope="module")
def algos(res):
    return tables.algorithms(res.points)


def expected_point_ms(model: str, algo: str, gpu: str) -> dict[int, float]:
    """Latency per input size from the law (remainder 0; winograd falls back to torch; None: unsupported)."""
    geo = geometry(MODELS[model], list(SIZES), 1)
    t = known_law(geo, algo, gpu)
    if algo == "winograd":
        t = np.where(np.isnan(t), known_law(geo, "torch", gpu), t)
    per = t.reshape(len(SIZES), -1)
    return {s: (None if np.isnan(row).any() else float(row.sum())) for s, row in zip(SIZES, per)}


def test_gemm_is_exactly_twice_as_fast_as_torch_everywhere(algos):
    gemm = algos[algos["algo"] == "gemm"]
    assert len(gemm) == len(MODELS) * 2 * len(SIZES)
    np.testing.assert_allclose(gemm["speedup_vs_torch"], 2.0, rtol=1e-12)
    np.testing.assert_allclose(gemm["speedup_vs_guess"], FACTORS["guess"] / FACTORS["gemm"], rtol=1e-12)
    torch = algos[algos["algo"] == "torch"]
    np.testing.assert_allclose(torch["speedup_vs_torch"], 1.0)


def test_latencies_and_best_algorithm_match_the_law(algos):
    best = tables.best(algos).set_index(["gpu", "model", "input_size"])
    for model in MODELS:
        for gpu in ("h100", "v100"):
            expected = {a: expected_point_ms(model, a, gpu) for a in FACTORS}
            for size in SIZES:
                measured = algos[(algos["model"] == model) & (algos["gpu"] == gpu) & (algos["input_size"] == size)]
                for algo in FACTORS:
                    got = measured.loc[measured["algo"] == algo, "p50_ms"].iloc[0]
                    want = expected[algo][size]
                    assert (pd.isna(got) and want is None) or got == pytest.approx(want, rel=1e-12)
                ranked = sorted((v[size], a) for a, v in expected.items() if v[size] is not None)
                row = best.loc[(gpu, model, size)]
                assert row["best_algo"] == ranked[0][1]
                assert row["runner_up"] == ranked[1][1]
                assert row["margin"] == pytest.approx(ranked[1][0] / ranked[0][0] - 1, rel=1e-9)
                assert row["speedup_vs_torch"] == pytest.approx(expected["torch"][size] / ranked[0][0], rel=1e-9)
                assert row[f"p50_ms[{ranked[0][1]}]"] == pytest.approx(ranked[0][0], rel=1e-12)


def test_unsupported_points_never_compete(algos):
    fft_v100 = algos[(algos["algo"] == "fft") & (algos["gpu"] == "v100")]
    assert (fft_v100["status"] == "unsupported").all() and fft_v100["p50_ms"].isna().all()
    assert fft_v100["rank"].isna().all()
    fft_h100 = algos[(algos["algo"] == "fft") & (algos["gpu"] == "h100")]
    assert (fft_h100["status"] == "ok").all()
    best = tables.best(algos)
    assert best["algos_ok"].tolist() == [len(FACTORS) - (g == "v100") for g in best["gpu"]]


def test_energy_delay_product(algos):
    e = tables.edp(algos)
    assert len(e) == int((algos["status"] == "ok").sum())
    power = e["gpu"].astype(str).map(POWER)
    np.testing.assert_allclose(e["energy_j"], e["p50_ms"] / 1e3 * power, rtol=1e-12)
    np.testing.assert_allclose(e["edp_js"], e["energy_j"] * e["p50_ms"] / 1e3, rtol=1e-12)
    best = tables.best(algos)
    # energy = power x latency with one power per gpu: the least energy and EDP go to the fastest
    assert (best["best_energy_algo"] == best["best_algo"]).all()
    assert (best["best_edp_algo"] == best["best_algo"]).all()


def test_layer_shapes_best_and_margin(res):
    shapes = tables.layer_shapes(res.layers)
    assert len(shapes)
    wino = winograd_ok(shapes)
    # 3x3 stride 1: winograd (0.4) beats gemm (0.5): margin 0.25; elsewhere gemm (0.5) beats guess (0.8)
    assert (shapes.loc[wino, "best_algo"] == "winograd").all()
    assert (shapes.loc[wino, "runner_up"] == "gemm").all()
    np.testing.assert_allclose(shapes.loc[wino, "margin"], 0.5 / 0.4 - 1, rtol=1e-9)
    assert (shapes.loc[~wino, "best_algo"] == "gemm").all()
    np.testing.assert_allclose(shapes.loc[~wino, "margin"], 0.8 / 0.5 - 1, rtol=1e-9)
    assert shapes["shape"].str.contains(r"^\d+->\d+ \dx\d s\d p\d @\d+x\d+$").all()


def test_support_matrix_entries(res):
    sup = tables.support(res.layers)
    one_by_one = sup["kernel_h"] == 1
    fft = sup["algo"] == "fft"
    assert (sup.loc[fft & one_by_one & (sup["gpu"] == "v100"), "status"] == "unsupported").all()
    assert (sup.loc[fft & one_by_one & (sup["gpu"] == "h100"), "status"] == "ok").all()
    assert (sup.loc[fft & ~one_by_one, "status"] == "ok").all()
    wino = sup["algo"] == "winograd"
    ok = (sup["kernel_h"] == 3) & (sup["stride_h"] == 1)
    assert (sup.loc[wino & ok, "status"] == "ok").all()
    assert (sup.loc[wino & ~ok, "status"] == "fallback").all()
    assert (sup.loc[sup["algo"].isin(["torch", "gemm", "guess", "direct"]), "status"] == "ok").all()
    assert sup.loc[fft & one_by_one & (sup["gpu"] == "v100")].shape[0] > 0


def test_oracle_projects_the_per_layer_best(res):
    orc = tables.oracle(res.points, res.layers).set_index(["gpu", "model", "input_size"])
    for model, layers in MODELS.items():
        geo = geometry(layers, list(SIZES), 1)
        base = base_ms(geo).reshape(len(SIZES), -1)
        wino = winograd_ok(geo).reshape(len(SIZES), -1)
        for gpu in ("h100", "v100"):
            for i, size in enumerate(SIZES):
                a, b = base[i][wino[i]].sum(), base[i][~wino[i]].sum()
                oracle = 0.4 * a + 0.5 * b  # winograd where it runs, gemm elsewhere
                single = min(0.5 * (a + b), 0.4 * a + b)  # gemm, or winograd with torch fallbacks
                row = orc.loc[(gpu, model, size)]
                assert row["oracle_conv_ms"] == pytest.approx(oracle, rel=1e-9)
                assert row["best_p50_ms"] == pytest.approx(single, rel=1e-9)
                assert row["remainder_ms"] == pytest.approx(0.0, abs=1e-12)
                assert row["projected_speedup"] == pytest.approx(single / oracle, rel=1e-9)
                assert row["layers"] == len(layers)
                assert row["layers_switched"] == (wino[i].sum() if row["best_algo"] == "gemm" else (~wino[i]).sum())


def test_oracle_with_a_remainder():
    """remainder = best p50 - its layer sum; projected = remainder + oracle layer sum."""
    key = one_point()
    points = pd.DataFrame(
        [key | {"algo": "a", "status": "ok", "p50_ms": 10.0}, key | {"algo": "b", "status": "ok", "p50_ms": 12.0}]
    )
    layers = pd.DataFrame(
        [
            key | {"algo": a, "layer_index": i, "status": "ok", "p50_ms": t, "std_ms": 0.01, "n": 100}
            for a, i, t in [("a", 0, 2.0), ("a", 1, 6.0), ("b", 0, 1.0), ("b", 1, 9.0)]
        ]
    )
    row = tables.oracle(points, layers).iloc[0]
    assert row["best_algo"] == "a"
    assert row["remainder_ms"] == pytest.approx(2.0)  # 10 - (2 + 6)
    assert row["oracle_conv_ms"] == pytest.approx(7.0)  # b's layer 0 (1) + a's layer 1 (6)
    assert row["projected_ms"] == pytest.approx(9.0)
    assert row["projected_speedup"] == pytest.approx(10 / 9)
    assert row["layers_switched"] == 1 and row["oracle_mix"] in ("a:1, b:1", "b:1, a:1")


def _two_algo_point(points_algo_dtype: str = "object"):
    key = one_point()
    points = pd.DataFrame(
        [key | {"algo": "a", "status": "ok", "p50_ms": 10.0}, key | {"algo": "b", "status": "ok", "p50_ms": 12.0}]
    )
    layers = pd.DataFrame(
        [
            key | {"algo": a, "layer_index": i, "status": "ok", "p50_ms": t, "std_ms": 0.01, "n": 100}
            for a, i, t in [("a", 0, 2.0), ("a", 1, 6.0), ("b", 0, 1.0), ("b", 1, 9.0)]
        ]
    )
    return points, layers


def test_oracle_without_an_ok_point_is_empty_not_an_error():
    points, layers = _two_algo_point()
    points["status"] = "error"
    out = tables.oracle(points, layers)
    assert out.empty and {"best_algo", "oracle_conv_ms", "projected_ms"} <= set(out.columns)


def test_oracle_joins_by_value_when_points_and_layers_have_their_own_categories():
    """Frames categorised apart (not by the load): the same names under other codes still meet."""
    points, layers = _two_algo_point()
    points["model"] = pd.Categorical(points["model"], categories=["m", "other"])
    layers["model"] = pd.Categorical(layers["model"], categories=["zzz", "m"])
    layers["layer_index"] = layers["layer_index"] - 1  # -1 and 0: a negative index is still its own layer
    row = tables.oracle(points, layers).iloc[0]
    assert row["oracle_conv_ms"] == pytest.approx(7.0) and row["layers"] == 2 and row["layers_switched"] == 1


@pytest.mark.parametrize("seed", range(6))
def test_oracle_mix_labels_are_the_grouped_join_of_each_points_layers(seed):
    """mix_labels (counted on codes) gives what joining each point's "name:k" parts gave (most layers first, ties
    by name; NaN where a point has no layer): names not in name order, ties in counts, points without layers."""
    from analysis.tables.catalog.oracle import mix_labels

    rng = np.random.default_rng(seed)
    names = np.array(["winograd", "fft", "gemm", "direct", "torch"], dtype=object)[: 2 + seed % 4]
    n = 40
    point = rng.integers(0, n, 300)
    point = point[point % 7 != 3]  # some points with no layer
    chosen = rng.integers(0, len(names), len(point))
    mix = pd.DataFrame({"_point": point, "chosen": names[chosen]}).groupby(["_point", "chosen"]).size()
    mix = mix.reset_index(name="k").sort_values(["_point", "k", "chosen"], ascending=[True, False, True])
    mix["part"] = mix["chosen"].astype(str) + ":" + mix["k"].astype(str)
    want = mix.groupby("_point")["part"].agg(", ".join).reindex(range(n)).to_numpy()
    got = mix_labels(point, chosen, names, n)
    assert pd.isna(got[3]) and pd.isna(got).tolist() == pd.isna(want).tolist()
    assert got[~pd.isna(got)].tolist() == want[~pd.isna(want)].tolist()
    assert pd.isna(mix_labels(point[:0], chosen[:0], names, 3)).all()
    unnamed = chosen.copy()
    unnamed[::4] = -1  # layer rows without their algorithm: counted for none, not for a neighbour
    named = unnamed >= 0
    assert mix_labels(point, unnamed, names, n).tolist() == mix_labels(point[named], chosen[named], names, n).tolist()


def test_oracle_switches_a_layer_only_beyond_noise():
    """b is 5% faster on layer 0 but with 20% noise: a tie keeps a's layer; on layer 1 b is 3x faster with
    tight intervals: switched. The projected gain has an interval around it."""
    key = one_point()
    points = pd.DataFrame(
        [
            key | {"algo": "a", "status": "ok", "p50_ms": 10.0, "std_ms": 0.1, "n": 100},
            key | {"algo": "b", "status": "ok", "p50_ms": 12.0, "std_ms": 0.1, "n": 100},
        ]
    )
    rows = [("a", 0, 2.0, 0.4), ("a", 1, 6.0, 0.01), ("b", 0, 1.9, 0.4), ("b", 1, 2.0, 0.01)]
    layers = pd.DataFrame(
        [
            key | {"algo": a, "layer_index": i, "status": "ok", "p50_ms": t, "std_ms": sd, "n": 100}
            for a, i, t, sd in rows
        ]
    )
    row = tables.oracle(points, layers).iloc[0]
    assert row["layers_switched"] == 1 and row["layers_kept_tied"] == 1
    assert row["oracle_conv_ms"] == pytest.approx(2.0 + 2.0)  # a's layer 0 kept, b's layer 1
    assert row["projected_low"] < row["projected_speedup"] < row["projected_high"]
    assert row["oracle_mix"] in ("a:1, b:1", "b:1, a:1")


def test_coverage_and_failures(res):
    cov = tables.coverage(res.points)
    fft_v100 = cov[(cov["algo"] == "fft") & (cov["gpu"] == "v100")]
    assert fft_v100["unsupported"].tolist() == [len(SIZES)] * len(MODELS)
    assert fft_v100["ok"].tolist() == [0] * len(MODELS)
    assert cov["points"].sum() == len(res.points)
    fails = tables.failures(res.points)
    assert set(fails["algo"]) == {"fft"} and set(fails["gpu"]) == {"v100"}
    assert fails["points"].sum() == len(SIZES) * len(MODELS)


def _point(
    gpu: str, model: str, algo: str, size: int, p50: float, energy: float | None = None, status: str = "ok"
) -> dict:
    return {
        "stage": "s",
        "gpu": gpu,
        "model": model,
        "input_size": size,
        "batch_size": 1,
        "dtype": "float32",
        "layout": "nchw",
        "l2": "warm",
        "direction": "forward",
        "algo": algo,
        "status": status,
        "p50_ms": p50,
        "energy_per_inference_j": energy,
        "dynamic_energy_per_inference_j": energy,  # a GPU that draws nothing idle: total = dynamic
        "energy_windows": 3 if energy is not None else None,
    }


def test_gpu_pairs_compares_matched_points_only():
    rows = [
        # m1 gemm: a is 2x slower at 32, 0.5x at 64 -> geomean 1, one of two slower
        _point("a", "m1", "gemm", 32, 2.0, 4.0),
        _point("b", "m1", "gemm", 32, 1.0, 1.0),
        _point("a", "m1", "gemm", 64, 1.0, 1.0),
        _point("b", "m1", "gemm", 64, 2.0, 1.0),
        # m2 fft: a 4x slower; a point only a measured, and one b failed: neither is matched
        _point("a", "m2", "fft", 32, 4.0),
        _point("b", "m2", "fft", 32, 1.0),
        _point("a", "m2", "fft", 48, 1.0),
        _point("a", "m2", "fft", 64, 1.0),
        _point("b", "m2", "fft", 64, 9.0, status="error"),
        # the same model and size on another algorithm is a different point
        _point("b", "m2", "gemm", 48, 1.0),
    ]
    out = tables.gpu_pairs(tables.algorithms(pd.DataFrame(rows))).set_index("model")
    assert list(out.index) == ["m1", "m2", "(all)"] and set(out["gpu_a"]) == {"a"} and set(out["gpu_b"]) == {"b"}
    assert out.loc["m1", ["matched", "a_slower"]].tolist() == [2, 1]
    assert out.loc["m1", "geomean_p50_ratio"] == pytest.approx(1.0)
    assert (out.loc["m1", "min_p50_ratio"], out.loc["m1", "max_p50_ratio"]) == pytest.approx((0.5, 2.0))
    assert out.loc["m1", "geomean_energy_ratio"] == pytest.approx(2.0)  # 4/1 and 1/1
    assert out.loc["m2", ["matched", "a_slower", "energy_matched"]].tolist() == [1, 1, 0]
    assert out.loc["m2", "geomean_p50_ratio"] == pytest.approx(4.0)
    assert out.loc["(all)", ["matched", "a_slower"]].tolist() == [3, 2]
    assert out.loc["(all)", "a_slower_share"] == pytest.approx(2 / 3)
    assert out.loc["(all)", "geomean_p50_ratio"] == pytest.approx(4.0 ** (1 / 3))


def test_gpu_pairs_needs_two_gpus(algos):
    one = algos[algos["gpu"] == "h100"]
    assert tables.gpu_pairs(one).empty
    both = tables.gpu_pairs(algos)  # the law gives both GPUs the same times
    assert set(both["geomean_p50_ratio"].round(12)) == {1.0} and both["a_slower"].eq(0).all()


def test_oracle_switches_are_corrected_over_the_point_s_layers():
    """20 layers at one point; b is slower than a on 19 of them. On layer 0 b is faster by 3.5 standard errors
    (one-sided p 0.0011 under Student's t with 20 df, multiplicity.TAIL_DF): Benjamini-Hochberg over the 20
    tests gives q 0.022, a switch; at 2.5 (p 0.011, beyond 95% on its own) q is 0.21: kept.
    A layer whose b row has no interval is not tested, however fast, and counted."""
    key = one_point()
    points = pd.DataFrame(
        [
            key | {"algo": "a", "status": "ok", "p50_ms": 30.0, "std_ms": 0.1, "n": 100},
            key | {"algo": "b", "status": "ok", "p50_ms": 40.0, "std_ms": 0.1, "n": 100},
        ]
    )
    se = np.sqrt(np.pi / 2) * 0.01 / np.sqrt(100)  # each row's log se: std 1% of a p50 of 1, n 100

    def oracle_at(z: float, blind: bool = False) -> pd.Series:
        rows = [
            key | {"algo": "a", "layer_index": i, "status": "ok", "p50_ms": 1.0, "std_ms": 0.01, "n": 100}
            for i in range(21)
        ]
        b = [np.exp(-z * np.hypot(se, se))] + [1.2] * 19 + [0.3]
        rows += [
            key
            | {
                "algo": "b",
                "layer_index": i,
                "status": "ok",
                "p50_ms": t,
                "n": 100,
                "std_ms": np.nan if (blind and i == 20) else 0.01 * t,
            }
            for i, t in enumerate(b)
        ]
        return tables.oracle(points, pd.DataFrame(rows)).iloc[0]

    row = oracle_at(3.5, blind=True)
    assert (row["layers_switched"], row["switch_tests"], row["switch_no_interval"]) == (1, 20, 1)
    assert row["layers_kept_tied"] == 1  # the blind layer: b looks 3x faster, and is not taken
    row = oracle_at(2.5, blind=True)
    assert (row["layers_switched"], row["layers_kept_tied"]) == (0, 2)
    row = oracle_at(2.5)
    # with its interval, the 3x layer is tested and switches; layer 0's q is 0.0106 x 21 / 2 = 0.11: kept
    assert (row["layers_switched"], row["switch_tests"], row["switch_no_interval"]) == (1, 21, 0)


@pytest.mark.parametrize("n", [6, 10])  # 6: the fewest iterations a row has an interval at
def test_the_forward_oracle_interval_covers_the_truth_and_its_switches_are_not_false(n: int):
    """200 forward points of known truth (tests.synthetic.TrainingTruth: per layer, the lead algorithm clearly
    faster than guess, tied with it or slower, one third each; the others slower), every row the median of n
    simulated iterations: the projected speedup's 95% interval covers the true speedup of the per-layer best
    over the point's best single algorithm in at least 93% of points (measured: 100% at n 6 and 10), and the
    switches to an algorithm not truly faster than the best single one stay within Benjamini-Hochberg's 5% of
    all switches over the whole family (measured: 0 of 377 at n 6, at most 1 of 389 at n 10). The table gives
    per point how many layers each algorithm took (``oracle_mix``), not which: the false count is the part of
    an algorithm's layers beyond those where it is truly faster, a lower bound."""
    from tests.synthetic import TrainingTruth, training_frames

    t = TrainingTruth(seed=3, n=n)
    pts, lay, truths = training_frames(t, points=200, forward=True)
    points = pts[pts["direction"].astype(str) == "forward"].reset_index(drop=True)
    layers = lay[lay["point_direction"].astype(str) == "forward"].reset_index(drop=True)
    o = tables.oracle(points, layers)
    assert len(o) == 200
    covered, switches, false = [], 0, 0
    for r in o.itertuples():
        ms = truths[int(r.input_size) - 32]
        forward = sorted({i for i, d, _ in ms if d == "forward"})
        rest = 0.3 * t.remainder_ms  # the forward point's non-conv time (training_frames)
        best = rest + sum(ms[(i, "forward", r.best_algo)] for i in forward)
        oracle = rest + sum(min(ms[(i, "forward", a)] for a in t.algos) for i in forward)
        covered.append(r.projected_low <= best / oracle <= r.projected_high)
        for part in r.oracle_mix.split(", "):
            algo, k = part.split(":")
            if algo == r.best_algo:
                continue
            truly = sum(ms[(i, "forward", algo)] < ms[(i, "forward", r.best_algo)] for i in forward)
            switches += int(k)
            false += max(0, int(k) - truly)
    assert np.mean(covered) >= 0.93, np.mean(covered)
    assert switches > 300 and false / switches <= 0.05, (switches, false)
    assert o["layers_switched"].sum() == switches
