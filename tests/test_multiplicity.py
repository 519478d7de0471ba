"""harness.results.multiplicity against hand-computed examples, then simulated campaigns with known truth:
compare's family-wise rule (Holm) on A/A and A/B campaigns, the lists' false discovery rate (BH), and the
old one-comparison-at-a-time rule failing the A/A criterion (so these tests catch the bug they are for)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analysis.stats.verdicts import corrected
from harness.results import multiplicity as mt

NAN = float("nan")


def test_erfc_matches_the_standard_library_in_the_tail_too():
    xs = np.r_[-4:9:0.05, 15.0, 25.0]
    ref = np.array([math.erfc(x) for x in xs])
    assert mt.erfc(xs) == pytest.approx(ref, rel=2e-7)
    assert mt.normal_sf([1.959963984540054, -1.6448536269514722]) == pytest.approx([0.025, 0.95], rel=1e-6)
    assert np.isnan(mt.normal_sf([NAN])).all() and mt.normal_sf([np.inf, -np.inf]).tolist() == [0.0, 1.0]


def test_student_t_tail_matches_the_table():
    """t with 20 degrees of freedom: 97.5% at 2.085963, 99% at 2.527977, 99.5% at 2.845340 (the tables)."""
    assert mt.student_sf([2.085963447, 2.527977003, 2.845339707, 0.0]) == pytest.approx(
        [0.025, 0.01, 0.005, 0.5], rel=1e-6
    )
    assert mt.student_sf([-2.085963447])[0] == pytest.approx(0.975, rel=1e-7)
    assert mt.student_sf([3.0], df=2)[0] == pytest.approx(0.5 * (1 - 3 / math.sqrt(11)), rel=1e-9)  # closed form
    assert np.isnan(mt.student_sf([NAN])).all() and mt.student_sf([np.inf, -np.inf]).tolist() == [0.0, 1.0]
    with pytest.raises(ValueError, match="even"):
        mt.student_sf([1.0], df=3)


def test_one_sided_p_values_against_the_minimum_effect():
    z01 = 2.527977002741573  # P(T > z01) = 0.01 for Student's t with TAIL_DF = 20 degrees of freedom
    lr = math.log(1.05) + z01 * 0.02  # 0.01 above the 5% margin at se 0.02
    assert mt.p_slower([lr], [0.02], 0.05)[0] == pytest.approx(0.01, rel=1e-6)
    assert mt.p_faster([-lr], [0.02], 0.05)[0] == pytest.approx(0.01, rel=1e-6)  # the mirror
    assert mt.p_slower([lr], [0.02], 0.0)[0] == pytest.approx(mt.student_sf([lr / 0.02])[0], rel=1e-9)
    at_margin = mt.p_slower([math.log(1.05)], [0.01], 0.05)[0]
    assert at_margin == pytest.approx(0.5, abs=1e-6)  # a change equal to the tolerance is no evidence
    # se 0 is exact (p 0 or 1); NaN or negative se is no test
    assert mt.p_slower([0.1, -0.1, 0.1, 0.1, NAN], [0.0, 0.0, NAN, -1.0, 0.1]).tolist()[:2] == [0.0, 1.0]
    assert np.isnan(mt.p_slower([0.1, 0.1, NAN], [NAN, -1.0, 0.1])).all()


def test_holm_step_down_by_hand():
    p = [0.01, 0.04, 0.03, 0.005]
    # sorted 0.005 x4 = 0.02, 0.01 x3 = 0.03, 0.03 x2 = 0.06, 0.04 x1 = 0.04 -> running max 0.06
    assert mt.holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert mt.rejected(mt.holm(p)).tolist() == [True, False, False, True]
    assert mt.holm([1.0, 0.9]).tolist() == [1.0, 1.0]  # capped at 1


def test_benjamini_hochberg_step_up_by_hand():
    p = [0.01, 0.04, 0.03, 0.005]
    # sorted 0.005*4/1 = 0.02, 0.01*4/2 = 0.02, 0.03*4/3 = 0.04, 0.04*4/4 = 0.04 -> running min from the top
    assert mt.benjamini_hochberg(p) == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert mt.rejected(mt.benjamini_hochberg(p)).all()  # BH keeps all four where Holm keeps two
    assert mt.benjamini_hochberg([0.04, 0.5]) == pytest.approx([0.08, 0.5])
    assert mt.benjamini_hochberg([0.02, 0.03, 0.9]) == pytest.approx([0.045, 0.045, 0.9])  # step-up


def test_nan_is_no_test_and_not_part_of_the_family():
    assert mt.holm([0.01, NAN, 0.04]) == pytest.approx([0.02, NAN, 0.04], nan_ok=True)
    assert mt.benjamini_hochberg([0.01, NAN, 0.04]) == pytest.approx([0.02, NAN, 0.04], nan_ok=True)
    assert not mt.rejected([NAN]).any()
    fam = mt.family([0.01, NAN, 0.04], mt.HOLM, "2 per point", tests_per_comparison=2)
    assert (fam.tests, fam.untested) == (4, 1)
    assert fam.line() == (
        "4 one-sided tests (2 per point), corrected by Holm for a family-wise error of 5%; "
        "1 comparison(s) with no interval (not enough samples) not tested"
    )
    assert mt.holm([]).size == 0 and np.isnan(mt.benjamini_hochberg([NAN])).all()


def test_groups_are_separate_families_in_one_pass():
    p = [0.01, 0.04, 0.01, 0.04]
    assert mt.holm(p, ["a", "a", "b", "b"]) == pytest.approx([0.02, 0.04, 0.02, 0.04])
    assert mt.holm(p) == pytest.approx([0.04, 0.08, 0.04, 0.08])
    assert mt.benjamini_hochberg([0.04, 0.01, 0.5, 0.04], [2, 1, 2, 1]) == pytest.approx([0.08, 0.02, 0.5, 0.04])


def test_directional_with_one_comparison_is_the_old_whole_interval_rule():
    """Holm over the 2 one-sided tests of a single comparison: alpha/2 per side, i.e. the 95% interval
    (with t(20)'s 2.086 standard errors: TAIL_DF) lies wholly beyond the tolerance; with many comparisons
    the same estimate needs more."""
    se = 0.01
    inside = math.log(1.05) + 2.08 * se  # the interval's low end just under 1.05
    beyond = math.log(1.05) + 2.09 * se  # just over
    d = mt.directional([inside, beyond, -beyond, NAN], [se, se, se, se], 0.05, mt.HOLM, groups=[0, 1, 2, 3])
    assert d.decisions().tolist() == ["same", "slower", "faster", "no_interval"]
    assert d.adjusted_slower[1] == pytest.approx(2 * mt.p_slower([beyond], [se], 0.05)[0])
    many = mt.directional(np.full(100, beyond), np.full(100, se), 0.05, mt.HOLM)
    assert (many.decisions() == "same").all()  # 200 tests: 2.09 standard errors is not enough
    assert many.p_value == pytest.approx(0.0248, abs=2e-4)


# Simulated campaigns -------------------------------------------------------------------------------------------
#
# A campaign: 500 points (5 models x 100 input sizes, one gpu and algorithm), each with its own true latency
# and noise (log-normal per-iteration, cv 1% to 5%), measured once on each side. Each measurement's median and
# 95% interval come from the project's own code: harness.stats.summarize on simulated samples (n as the
# quick stage gets them: at least its min_iters, 20, and more where the noise keeps the median's interval
# wider than its 2% target), and harness.results.uncertainty.log_se inside compare. To stay fast, the
# measurements of one noise level are drawn from a pool of summaries of unit-median samples, scaled by the
# point's truth.

CV_ITERS = {0.01: 20, 0.02: 20, 0.03: 30, 0.05: 60}  # per-iteration cv -> iterations (quick's stopping rule)
POOL = 3000
MODELS, SIZES = 5, 100
CAMPAIGNS = 200
SUMMARY = ["n", "p50_ms", "ci95_low_ms", "ci95_high_ms", "std_ms"]


@pytest.fixture(scope="module")
def pools() -> dict[float, np.ndarray]:
    from harness.stats import summarize

    rng = np.random.default_rng(20261126)
    out = {}
    for cv, n in CV_ITERS.items():
        samples = rng.lognormal(0.0, math.sqrt(math.log1p(cv**2)), (POOL, n))
        out[cv] = np.array([[summarize(s, 1)[c] for c in SUMMARY] for s in samples])
    return out


class Campaign:
    """The points of a campaign: truth, noise level, and sides A and B measured from the pools."""

    def __init__(self, pools: dict[float, np.ndarray], rng: np.random.Generator):
        self.pools, self.rng = pools, rng
        m = MODELS * SIZES
        self.model = np.repeat([f"net{i}" for i in range(MODELS)], SIZES)
        self.size = np.tile(np.arange(224, 224 + SIZES), MODELS)
        self.truth = np.exp(rng.uniform(np.log(0.5), np.log(50.0), m))  # 0.5 to 50 ms
        self.level = rng.integers(0, len(CV_ITERS), m)

    def side(self, effect: np.ndarray | float = 1.0) -> pd.DataFrame:
        stats = np.empty((len(self.truth), len(SUMMARY)))
        for k, cv in enumerate(CV_ITERS):
            at = self.level == k
            stats[at] = self.pools[cv][self.rng.integers(0, POOL, at.sum())]
        scale = self.truth * effect
        frame = pd.DataFrame(stats, columns=SUMMARY)
        for c in SUMMARY[1:]:
            frame[c] *= scale
        return frame.assign(
            stage="quick",
            gpu="h100",
            model=self.model,
            algo="gemm",
            input_size=self.size,
            batch_size=1,
            dtype="float32",
            layout="nchw",
            l2="warm",
            direction="forward",
            status="ok",
        )


def compared(a: pd.DataFrame, b: pd.DataFrame):
    """compare's points and groups before the verdicts (analysis.compare.verdicts, between-run noise 0)."""
    from analysis.compare import verdicts

    key = verdicts.Key(verdicts.POINT)
    points = verdicts.compare_points(a, b, key)
    return points, verdicts.compare_groups(points, key), key


def fails(points, groups, key, tolerance: float) -> tuple[bool, pd.DataFrame]:
    """compare's decision: exit 1 when a point or group is slower (Holm) or broke; and the judged points."""
    from analysis.compare import verdicts

    p, g, _ = verdicts.judge(points, groups, key, tolerance)
    slow_p, slow_g = verdicts.regressions(p, g)
    return bool(len(slow_p) or len(slow_g)), p


def old_rule_fails(points: pd.DataFrame, tolerance: float) -> bool:
    """The rule before the correction: any point whose own 95% interval lies above 1 + tolerance."""
    from harness.results.uncertainty import classify_ratio

    return bool((classify_ratio(points["ratio_low"], points["ratio_high"], tolerance) == "slower").any())


@pytest.fixture(scope="module")
def aa_campaigns(pools) -> dict[str, np.ndarray]:
    """CAMPAIGNS A/A campaigns (the same truth on both sides): whether each failed, by rule and tolerance."""
    rng = np.random.default_rng(1)
    out: dict[str, list[bool]] = {"holm 0": [], "holm default": [], "old 0": []}
    for _ in range(CAMPAIGNS):
        c = Campaign(pools, rng)
        points, groups, key = compared(c.side(), c.side())
        out["holm 0"].append(fails(points, groups, key, 0.0)[0])
        out["holm default"].append(fails(points, groups, key, 0.05)[0])
        out["old 0"].append(old_rule_fails(points, 0.0))
    return {k: np.array(v) for k, v in out.items()}


def test_an_aa_campaign_of_500_points_passes_compare_in_95_percent_of_campaigns(aa_campaigns):
    for rule in ("holm 0", "holm default"):
        passed = 1 - aa_campaigns[rule].mean()
        assert passed >= 0.95, f"{rule}: compare exits 0 in {passed:.1%} of {CAMPAIGNS} A/A campaigns"


def test_the_old_rule_fails_the_aa_criterion(aa_campaigns):
    """Each point on its own at 95%: with 500 points some point is 'slower' in almost every A/A campaign."""
    passed = 1 - aa_campaigns["old 0"].mean()
    assert passed < 0.5, f"the per-comparison rule exits 0 in {passed:.1%} of {CAMPAIGNS} A/A campaigns"


def test_an_ab_campaign_finds_most_of_20_points_truly_5_percent_slower(pools):
    rng = np.random.default_rng(2)
    found, false_slower, campaigns = [], [], 40
    for _ in range(campaigns):
        c = Campaign(pools, rng)
        effect = np.ones(len(c.truth))
        slow = rng.choice(len(effect), 20, replace=False)
        effect[slow] = 1.05
        points, groups, key = compared(c.side(), c.side(effect))
        failed, judged = fails(points, groups, key, 0.0)
        verdict = judged.set_index(["model", "input_size"])["verdict"]
        is_slow = pd.MultiIndex.from_arrays([c.model[slow], c.size[slow]])
        found.append((verdict.loc[is_slow] == "slower").mean())
        false_slower.append(int((verdict.drop(is_slow) == "slower").sum()))
        assert failed
    power = float(np.mean(found))
    per_level = "; ".join(f"cv {cv:.0%}: n {n}" for cv, n in CV_ITERS.items())
    assert power >= 0.5, f"power {power:.1%} over {campaigns} campaigns at --tolerance 0 ({per_level})"
    assert np.mean(np.array(false_slower) > 0) <= 0.05, f"a null point called slower in {np.mean(false_slower)}"
    print(f"A/B power at --tolerance 0: {power:.1%} of the 20 slow points found ({campaigns} campaigns)")


def test_the_report_s_lists_keep_their_false_discovery_rate(pools):
    """analysis.answer.speedups (an algorithm against a reference at 500 points, BH over the table): in
    campaigns where 50 points are truly 5% faster and 25 truly 5% slower, the share of false claims (a claim
    at a point with no difference, or in the wrong direction) is at most 5% on average; the rule of each
    point on its own at 95% is shown beside it."""
    from analysis import answer
    from harness.results.uncertainty import classify_ratio

    rng = np.random.default_rng(3)
    fdp, old_fdp, found, campaigns = [], [], [], 100
    for _ in range(campaigns):
        c = Campaign(pools, rng)
        truth = np.zeros(len(c.truth), dtype=np.int8)  # 0 null, 1 algorithm faster, -1 slower
        effect = np.ones(len(c.truth))
        changed = rng.choice(len(effect), 75, replace=False)
        truth[changed[:50]], effect[changed[:50]] = 1, 1 / 1.05
        truth[changed[50:]], effect[changed[50:]] = -1, 1.05
        rows = pd.concat([c.side().assign(algo="guess"), c.side(effect).assign(algo="gemm")], ignore_index=True)
        comp = answer.with_interval(rows.assign(same_path=""))
        sp = answer.speedups(comp, ("guess",)).sort_values(["model", "input_size"])  # the points' order
        claim = sp["verdict"].map({"faster": 1, "slower": -1}).fillna(0).to_numpy()
        old = (
            -pd.Series(classify_ratio(1 / sp["speedup_high"], 1 / sp["speedup_low"], 0.0))
            .map({"faster": -1, "slower": 1, "same": 0})
            .to_numpy()
        )
        for said, out in ((claim, fdp), (old, old_fdp)):
            out.append(((said != 0) & (said != truth)).sum() / max(1, (said != 0).sum()))
        found.append(((claim == truth) & (truth != 0)).sum() / 75)
    assert np.mean(fdp) <= 0.05, (
        f"BH: observed FDR {np.mean(fdp):.2%} over {campaigns} campaigns (the per-point "
        f"rule: {np.mean(old_fdp):.2%})"
    )
    assert np.mean(found) >= 0.5, f"BH finds {np.mean(found):.1%} of the 75 changed points"
    print(f"BH lists: FDR {np.mean(fdp):.2%} (per-point rule {np.mean(old_fdp):.2%}), power {np.mean(found):.1%}")


@pytest.mark.parametrize("tolerance", [0.0, 0.05])
@pytest.mark.parametrize("chunk", [1 << 20, 1000])
def test_both_directions_at_once_equal_each_alone_bit_for_bit(tolerance, chunk, monkeypatch):
    monkeypatch.setattr(mt, "CHUNK", chunk)  # in slices too: some with exact comparisons, some without
    rng = np.random.default_rng(3)
    lr = np.r_[rng.normal(0, 0.1, 5000), 0.0, 0.0, 0.3, -0.3, NAN, 0.1, np.inf, -np.inf]
    se = np.r_[rng.uniform(0, 0.05, 5000), 0.0, 0.02, 0.0, 0.0, 0.02, NAN, 0.02, 0.02]
    se[:50] = 0.0  # exact comparisons: 0 or 1
    slower, faster = mt._p_both(lr, se, tolerance)
    assert np.array_equal(slower, mt.p_slower(lr, se, tolerance), equal_nan=True)
    assert np.array_equal(faster, mt.p_faster(lr, se, tolerance), equal_nan=True)


def test_benjamini_hochberg_with_ties_equals_the_stable_sort_definition():
    """q = min over ranks >= own of p m / rank, ranks from a stable sort: ties in any order give the same q."""
    rng = np.random.default_rng(4)
    p = np.r_[rng.choice([0.001, 0.01, 0.02, 0.5, 1.0], 3000), rng.random(3000), [NAN] * 10]
    rng.shuffle(p)
    tested = np.flatnonzero(~np.isnan(p))
    order = tested[np.argsort(p[tested], kind="stable")]
    raw = np.minimum(1.0, p[order] * len(order) / np.arange(1, len(order) + 1))
    want = np.full(len(p), NAN)
    want[order] = np.minimum.accumulate(raw[::-1])[::-1]
    assert np.array_equal(mt.benjamini_hochberg(p), want, equal_nan=True)


@pytest.mark.parametrize("tolerance", [0.0, 0.05])
@pytest.mark.parametrize("exact_ties", [False, True])
def test_directional_corrects_as_one_family_of_both_tests_bit_for_bit(tolerance, exact_ties):
    """directional's one sort of the smaller p-values (their complements mirrored) gives the q-values of BH over
    the 2m tests exactly: ties, exact comparisons (p 0 and 1), z = 0 (both 0.5), infinities and untested. An
    exact comparison of equal values (p 1 both ways) is no pair of complements: the general path."""
    rng = np.random.default_rng(6)
    lr = np.r_[rng.choice([0.01, -0.01, 0.2], 2000), rng.normal(0, 0.05, 4000), np.inf, -np.inf, NAN, 0.0]
    se = np.r_[rng.choice([0.0, 0.01, 0.02], 2000), rng.uniform(0.001, 0.05, 4000), 0.02, 0.02, 0.02, 0.01]
    if exact_ties:
        lr[:10], se[:10] = 0.0, 0.0
    d = mt.directional(lr, se, tolerance)
    both = mt.benjamini_hochberg(np.concatenate([d.p_slower, d.p_faster]))
    assert np.array_equal(d.adjusted_slower, both[: len(lr)], equal_nan=True)
    assert np.array_equal(d.adjusted_faster, both[len(lr) :], equal_nan=True)
    assert (mt.rejected(d.adjusted) & (d.p_value > 0)).any() and np.isnan(d.adjusted).sum() == 1
    tested = ~np.isnan(d.p_slower)
    assert (d.p_slower[tested] >= 0).all() and (d.p_faster[tested] >= 0).all()  # rounding gave -1e-16 before
    paired = mt._bh_of_complements(d.p_slower, d.p_faster)
    assert (paired is not None) == (tolerance == 0.0 and not exact_ties)  # where the fast path is taken


@pytest.mark.parametrize("chunk", [1 << 20, 1000])
@pytest.mark.parametrize("exact_ties", [False, True])
@pytest.mark.parametrize("workers", [1, 3])
def test_smaller_bh_is_what_directional_gives_bit_for_bit(chunk, exact_ties, workers, monkeypatch):
    """The table's three arrays from fewer arrays of every comparison: the same p-values, q-values and codes as
    the whole Directional (ties, exact comparisons, z = 0, infinities, untested), in slices too, and with the
    slices in ``workers`` threads; an exact comparison of equal values (p 1 both ways) is no pair of
    complements: None, and corrected() takes the general path to the same answer."""
    monkeypatch.setattr(mt, "CHUNK", chunk)
    rng = np.random.default_rng(8)
    lr = np.r_[rng.choice([0.01, -0.01, 0.2, 0.0], 3000), rng.normal(0, 0.05, 4000), np.inf, -np.inf, NAN, 0.0]
    se = np.r_[rng.choice([0.0, 0.01, 0.02], 3000), rng.uniform(0.001, 0.05, 4000), 0.02, 0.02, 0.02, 0.01]
    se[rng.random(len(se)) < 0.01] = NAN
    keep = ~((lr == 0.0) & (se == 0.0))  # p 1 both ways: no complements
    lr, se = lr[keep], se[keep]
    if exact_ties:
        lr[:10], se[:10] = 0.0, 0.0
    d = mt.directional(lr, se, 0.0, mt.BH)
    lean = mt.smaller_bh(lr, se, workers=workers)
    if exact_ties:
        assert lean is None
    else:
        p, q, code = lean
        assert np.array_equal(p, d.p_value, equal_nan=True)
        assert np.array_equal(q, d.adjusted, equal_nan=True)
        assert np.array_equal(code, d.code())
        assert set(np.unique(code)) == {0, 1, 2, 3}  # every decision is exercised
    speedup = np.exp(-lr)
    whole = mt.directional(-np.log(speedup), se, 0.0, mt.BH)
    p, q, code = corrected(speedup, se, workers=workers)
    assert np.array_equal(p, whole.p_value, equal_nan=True) and np.array_equal(q, whole.adjusted, equal_nan=True)
    assert np.array_equal(code, whole.code())


def test_smaller_bh_of_nothing_tested_and_of_a_high_level():
    lean = mt.smaller_bh([0.1, -0.1], [NAN, NAN])
    assert lean is not None and np.isnan(lean[0]).all() and np.isnan(lean[1]).all() and (lean[2] == 3).all()
    assert mt.smaller_bh([0.1, -0.1], [0.01, 0.01], level=0.5) is None  # a larger p could then be rejected


@pytest.mark.parametrize("workers", [1, 2, 3, 4])
@pytest.mark.parametrize(
    "kind", ["spread", "ties", "few_tested", "none_tested", "one_value", "infinite", "half_infinite", "all_infinite"]
)
def test_ascending_orders_every_tested_value_once_in_ranges_of_threads(kind, workers, monkeypatch):
    """Split across threads at quantiles of a sample or sorted whole: every value that is not NaN once, ascending
    (ties in any order), NaN left out; values on a cut, all equal, or with infinities."""
    monkeypatch.setattr(mt, "CHUNK", 100)  # 5,000 values: more than 2 CHUNK, so split where workers > 1
    rng = np.random.default_rng(len(kind) * 10 + workers)
    values = {
        "spread": rng.random(5000),
        "ties": rng.choice([0.001, 0.01, 0.5, 1.0], 5000),
        "few_tested": np.where(rng.random(5000) < 0.01, rng.random(5000), NAN),
        "none_tested": np.full(5000, NAN),
        "one_value": np.full(5000, 0.25),
        "infinite": np.r_[rng.normal(size=4990), [np.inf, -np.inf] * 5],
        "half_infinite": np.r_[np.zeros(2500), np.full(1500, np.inf), np.full(1000, -np.inf)],  # cuts among them
        "all_infinite": np.full(5000, np.inf),
    }[kind]
    values[rng.integers(0, 5000, 50)] = NAN
    order = mt.ascending(values, workers)
    tested = np.flatnonzero(~np.isnan(values))
    assert np.array_equal(np.sort(order), tested)  # each tested position once, no NaN
    assert np.array_equal(values[order], np.sort(values[tested]))
