"""The adaptive size grid's policy (harness.campaign.adaptive) on curves of known truth: crossovers located
within the resolution, ties recognised as ties, curvature followed, the budget and the round limit kept,
the same rows giving the same sizes; and the grid's parameters refused with the value named."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harness.campaign.adaptive import AdaptiveGrid, answers, candidates, coarse_sizes, decide
from harness.campaign.replay import replay, score, uniform_sizes
from harness.errors import ConfigError


def measure(curves: dict, sizes, rel_ci: float = 0.01, noise: float = 0.0, seed: int = 0) -> pd.DataFrame:
    """Rows as the store writes them at ``sizes``: p50 from each known curve (times a lognormal noise of
    sd ``noise``), with a 95% interval of +-``rel_ci``."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in sizes:
        for algo, f in curves.items():
            p50 = f(s) * float(np.exp(rng.normal(0, noise))) if noise else f(s)
            rows.append(
                {"model": "m", "gpu": "g", "batch_size": 1, "input_size": int(s), "algo": algo, "status": "ok",
                 "p50_ms": p50, "ci95_low_ms": p50 * (1 - rel_ci), "ci95_high_ms": p50 * (1 + rel_ci), "n": 50}
            )  # fmt: skip
    return pd.DataFrame(rows)


def run_rounds(curves: dict, g: AdaptiveGrid, **kw) -> tuple[list[int], str, int]:
    measured: list[int] = []
    rounds = 0
    while True:
        d = decide(measure(curves, measured, **kw) if measured else measure(curves, []), g, rounds)
        if d.stop:
            return sorted(measured), d.stop, rounds
        measured += [c.size for c in d.sizes]
        rounds += 1


# A is fast at small sizes, B at large ones: they cross at 1 + 0.01 x = 2 + 0.002 x, x = 125 (size 349);
# C is slower everywhere.
CROSSING = {
    "A": lambda s: 1 + 0.01 * (s - 224),
    "B": lambda s: 2 + 0.002 * (s - 224),
    "C": lambda s: 5 + 0.02 * (s - 224),
}


def test_a_crossover_is_located_within_the_resolution():
    g = AdaptiveGrid(start=224, stop=512, coarse=5, resolution=4, max_rounds=20)
    sizes, stop, rounds = run_rounds(CROSSING, g, rel_ci=0.0005)
    assert stop == "converged"
    below = max(s for s in sizes if s < 349)
    above = min(s for s in sizes if s > 349)
    assert above - below <= 4
    # bisection: a handful of sizes beyond the coarse grid, not the whole range
    assert len(sizes) <= 5 + 8


def test_with_noise_the_change_of_the_fastest_is_located_in_the_tied_band():
    # +-1% intervals: A and B are tied where they differ by less than ~2%, sizes 343..355; the fastest
    # changes at 349 inside that band, located within the tie resolution
    g = AdaptiveGrid(start=224, stop=512, coarse=5, resolution=4, tie_resolution=6, max_rounds=20)
    sizes, stop, _ = run_rounds(CROSSING, g)
    ans = answers(measure(CROSSING, sizes))
    last_a = max(s for s in sizes if ans[s].fastest == "A")
    first_b = min(s for s in sizes if ans[s].fastest == "B")
    assert stop == "converged" and last_a < 349 < first_b and first_b - last_a <= 6
    assert any(len(ans[s].tied) == 2 for s in sizes)  # the band was seen as a tie


def test_two_crossovers_are_both_located():
    curves = {"A": lambda s: 1 + 1e-4 * (s - 300) ** 2, "B": lambda s: 1.5 + 0 * s}  # A wins in 230..370
    g = AdaptiveGrid(start=200, stop=500, coarse=7, resolution=8, max_rounds=20)
    sizes, stop, _ = run_rounds(curves, g)
    assert stop == "converged"
    for x in (300 - np.sqrt(5e3), 300 + np.sqrt(5e3)):
        below, above = max(s for s in sizes if s < x), min(s for s in sizes if s > x)
        assert above - below <= 8, (x, below, above)


def test_identical_algorithms_are_a_tie_not_a_crossover():
    # the old system's "implicit gemm" ran the same kernel as "guess": the fastest flips within noise
    curves = {"guess": lambda s: 1 + 0.01 * s, "implicit_gemm": lambda s: 1 + 0.01 * s, "fft": lambda s: 9 + 0 * s}
    g = AdaptiveGrid(start=224, stop=512, coarse=9, resolution=4, tie_resolution=64, max_rounds=10)
    sizes, stop, _ = run_rounds(curves, g, noise=0.003, seed=3)
    ans = answers(measure(curves, sizes, noise=0.003, seed=3))
    assert all(a.tied == {"guess", "implicit_gemm"} for a in ans.values())
    assert stop == "converged" and sizes == list(coarse_sizes(g))  # coarse gaps (36 px) are below 64


def test_a_tie_is_refined_to_the_tie_resolution_only():
    # X and Y are the same code (tied everywhere); W closes in on them and is tied with both at 512
    curves = {
        "X": lambda s: 1 + 0.01 * s,
        "Y": lambda s: 1 + 0.01 * s,
        "W": lambda s: (1 + 0.01 * s) * (1 + 0.1 * (512 - s) / 288),
    }
    rows = measure(curves, [224, 512])
    assert answers(rows)[224].tied == {"X", "Y"} and answers(rows)[512].tied == {"W", "X", "Y"}
    wide = candidates(rows, AdaptiveGrid(start=224, stop=512, coarse=2, tie_resolution=64))
    assert [(c.size, c.kind) for c in wide] == [(368, "tie")] and "to a tie of W/X/Y at 512" in wide[0].why
    assert candidates(rows, AdaptiveGrid(start=224, stop=512, coarse=2, tie_resolution=288)) == []


def test_a_bend_the_grid_misses_is_followed_until_the_tolerance():
    # A's latency jumps by 30% at 305 (a tile boundary): no crossover, A stays fastest
    curves = {"A": lambda s: (1.0 if s < 305 else 1.3) + 0.001 * s, "B": lambda s: 2.0 + 0.001 * s}
    g = AdaptiveGrid(start=224, stop=512, coarse=9, resolution=8, tolerance=0.05, max_rounds=20)
    first = candidates(measure(curves, coarse_sizes(g)), g)
    assert first and {c.kind for c in first} == {"curve"} and all("A's latency" in c.why for c in first)
    sizes, stop, _ = run_rounds(curves, g)
    assert stop == "converged"
    below, above = max(s for s in sizes if s < 305), min(s for s in sizes if s >= 305)
    assert above - below <= 8


def test_a_curve_far_from_the_fastest_asks_for_nothing():
    curves = {"A": lambda s: 1.0 + 0 * s, "B": lambda s: (10 if s < 305 else 20) + 0 * s}
    g = AdaptiveGrid(start=224, stop=512, coarse=9)
    assert candidates(measure(curves, coarse_sizes(g)), g) == []


def test_bends_within_noise_ask_for_nothing():
    curves = {"A": lambda s: 1 + 0.002 * s, "B": lambda s: 3 + 0.002 * s}
    g = AdaptiveGrid(start=224, stop=512, coarse=9, tolerance=0.01)
    rows = measure(curves, coarse_sizes(g), rel_ci=0.05, noise=0.01, seed=5)
    assert [c for c in candidates(rows, g) if c.kind == "curve"] == []


def test_the_same_rows_give_the_same_sizes_in_any_order():
    g = AdaptiveGrid(start=224, stop=512, coarse=5, resolution=4)
    rows = measure(CROSSING, [224, 296, 368, 440, 512], noise=0.01, seed=7)
    first = decide(rows, g, rounds_done=1)
    shuffled = rows.sample(frac=1.0, random_state=11).reset_index(drop=True)
    assert decide(shuffled, g, rounds_done=1) == first
    urgent = candidates(rows, g)[0]
    assert (urgent.size, urgent.kind) == (332, "crossover") and urgent in first.sizes
    assert "from A at 296 to a tie of A/B at 368" in urgent.why


def test_the_first_round_is_the_coarse_grid_on_the_allowed_sizes():
    g = AdaptiveGrid(start=224, stop=512, coarse=5, step=8)
    assert coarse_sizes(g) == (224, 296, 368, 440, 512)
    assert [c.size for c in decide(pd.DataFrame(), g, 0).sizes] == [224, 296, 368, 440, 512]
    odd = AdaptiveGrid(start=225, stop=510, coarse=3, step=16)
    assert coarse_sizes(odd) == (225, 368, 510)  # ends kept, the middle a multiple of the step


def test_failed_points_count_as_measured_and_add_no_answer():
    rows = measure(CROSSING, [224, 512])
    oom = pd.DataFrame([{"input_size": 368, "algo": a, "status": "oom", "p50_ms": np.nan} for a in CROSSING])
    got = candidates(pd.concat([rows, oom]), AdaptiveGrid(start=224, stop=512, coarse=2, resolution=4))
    assert 368 not in [c.size for c in got] and got


def test_the_budget_and_the_round_limit_stop_the_rounds():
    g = AdaptiveGrid(start=224, stop=512, coarse=5, resolution=1, budget_gpu_h=1.0, max_rounds=3)
    rows = measure(CROSSING, [224, 296, 368, 440, 512])
    assert decide(rows, g, 1, spent_gpu_h=1.0).stop == "budget"
    assert decide(rows, g, 3, spent_gpu_h=0.1).stop == "max_rounds"
    # room for 2 sizes at 0.4 GPU-h each: the round asks for no more than the budget pays for
    d = decide(rows, AdaptiveGrid(start=224, stop=512, coarse=5, tolerance=0.001, budget_gpu_h=1.0), 1, 0.1, 0.4)
    assert d.stop is None and len(d.sizes) == 2 and d.left_out >= 0
    assert decide(rows, g, 1, spent_gpu_h=0.9, size_cost_gpu_h=0.4).stop == "budget"


def test_the_round_keeps_the_most_urgent_sizes():
    g = AdaptiveGrid(start=224, stop=512, coarse=5, resolution=4, tolerance=0.001, per_round=1)
    rows = measure(CROSSING, [224, 296, 368, 440, 512])
    d = decide(rows, g, 1)
    assert [c.kind for c in d.sizes] == ["crossover"] and d.left_out >= 1


@pytest.mark.parametrize(
    ("kw", "named"),
    [
        ({"resolution": 400}, "stage.adaptive.resolution=400"),
        ({"stop": 200}, "stage.adaptive.stop=200"),
        ({"budget_gpu_h": 0}, "stage.budget_gpu_h=0"),
        ({"budget_gpu_h": -1.5}, "stage.budget_gpu_h=-1.5"),
        ({"tolerance": 0}, "stage.adaptive.tolerance=0"),
        ({"coarse": 1}, "stage.adaptive.coarse=1"),
        ({"per_round": "many"}, "stage.adaptive.per_round='many'"),
    ],
)
def test_bad_parameters_are_refused_naming_the_value(kw, named):
    with pytest.raises(ConfigError) as e:
        AdaptiveGrid(**kw)
    msg = str(e.value)
    assert named in msg and "\n" not in msg and ("valid" in msg)


# -- the replay's score ------------------------------------------------------------------------------------
def test_replay_finds_the_crossover_with_few_points_and_beats_uniform():
    full = list(range(224, 513, 3))  # 97 sizes
    # A jumps above B at 333 (a tile boundary): a step that uniform sampling can only bracket
    curves = {"A": lambda s: (1.0 if s < 333 else 2.0) + 0.001 * s, "B": lambda s: 1.5 + 0.001 * s}
    truth = measure({**curves, "guess": lambda s: 1.2 * max(curves["A"](s), curves["B"](s))}, full, rel_ci=0.002)
    g = AdaptiveGrid(start=224, stop=512, coarse=5, resolution=4, max_rounds=20)
    rep = replay(truth, g)
    assert rep.stop == "converged" and rep.reasons.get("crossover", 0) >= 3
    adaptive = score(truth, rep.sizes, "guess")
    uniform = score(truth, uniform_sizes(np.array(full), len(rep.sizes)), "guess")
    assert adaptive.share <= 0.25 and adaptive.crossovers == 1
    assert adaptive.share_right + adaptive.share_tied == 1.0 and adaptive.crossover_err_px <= 3
    assert adaptive.speedup_inside
    assert uniform.crossover_err_px > adaptive.crossover_err_px and uniform.share_wrong > 0


def test_score_of_the_full_grid_is_perfect():
    full = list(range(224, 513, 8))
    truth = measure({**CROSSING, "guess": lambda s: 10 + 0 * s}, full)
    s = score(truth, tuple(full), "guess")
    assert (s.share, s.share_right, s.crossover_err_px) == (1.0, 1.0, 0.0) and s.speedup == s.speedup_best
    assert uniform_sizes(np.array(full), 3) == (224, 368, 512)


def _noisy_campaign(curves: dict, g: AdaptiveGrid, rel_ci: float, seed: int) -> pd.DataFrame:
    """One simulated campaign run to its end: each size's measurement drawn once (a lognormal error of sd
    rel_ci / 1.96, so that the rows' +-rel_ci intervals are calibrated 95% intervals) and kept across rounds,
    as the tree keeps a measured point."""
    drawn: dict[int, pd.DataFrame] = {}
    for round_ in range(g.max_rounds + 1):
        rows = pd.concat(drawn.values(), ignore_index=True) if drawn else measure(curves, [])
        d = decide(rows, g, round_)
        if d.stop:
            return rows
        for c in d.sizes:
            rng = np.random.default_rng([seed, c.size])
            drawn[c.size] = measure(curves, [c.size], rel_ci=rel_ci, noise=rel_ci / 1.96, seed=int(rng.integers(2**31)))
    raise AssertionError("the policy did not stop within max_rounds")


@pytest.mark.parametrize("rel_ci", [0.01, 0.03])
def test_simulated_campaigns_never_give_a_wrong_clear_answer_and_bracket_the_true_crossover(rel_ci):
    # Known truth: A is fastest below 349, B above (CROSSING). Over many simulated campaigns with calibrated
    # per-row noise, the error that matters to a user is a CLEAR answer (one algorithm, tied with no other)
    # naming the wrong algorithm: the grid's decisions only choose where to measure, so their many overlap
    # tests (95% each, uncorrected) cost sizes, not claims. The band between the last clear A and the first
    # clear B must hold the true crossover. Measured with 300 campaigns: 0 wrong clear answers at 1% and 3%;
    # the band held 349 in 100%, median width 27 px (1%) and 108 px (3%).
    g = AdaptiveGrid(start=224, stop=512, coarse=5, resolution=4, tie_resolution=8, max_rounds=12)
    campaigns, wrong, held, widths = 60, 0, 0, []
    for seed in range(campaigns):
        rows = _noisy_campaign(CROSSING, g, rel_ci, seed)
        ans = answers(rows)
        clear = {s: a.fastest for s, a in ans.items() if len(a.tied) <= 1}
        truth = {s: ("A" if s < 349 else "B") for s in clear}
        wrong += any(clear[s] != truth[s] for s in clear)
        last_a = max((s for s, f in clear.items() if f == "A"), default=g.start)
        first_b = min((s for s, f in clear.items() if f == "B"), default=g.stop)
        held += last_a < 349 < first_b
        widths.append(first_b - last_a)
    assert wrong <= 0.05 * campaigns  # a wrong clear answer is rare (0 of 300 measured)
    assert held >= 0.95 * campaigns
    # the band narrows with the noise: bisection worked inside it (the whole range is 288 px)
    assert np.median(widths) <= (60 if rel_ci == 0.01 else 160)
