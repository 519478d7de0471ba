"""harness.results.multiplicity against hand-computed examples, then simulated campaigns with known truth:
compare's family-wise rule (Holm) on A/A and A/B campaigns, the lists' false discovery rate (BH), and the
old one-comparison-at-a-time rule failing the A/A criterion (so these tests catch the bug they are for)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from harness.results import multiplicity as mt

NAN = float("nan")


def test_erfc_matches_the_standard_library_in_the_tail_too():
    xs = np.r_[-4:9:0.05, 15.0, 25.0]
    ref = np.array([math.erfc(x) for x in xs])
    assert mt.erfc(xs) == pytest.approx(ref, rel=2e-7)
    assert mt.normal_sf([1.959963984540054, -1.6448536269514722]) == pytest.approx([0.025, 0.95], rel=1e-6)
    assert np.isnan(mt.normal_sf([NAN])).all() and mt.normal_sf([np.inf, -np.inf]).tolist() == [0.0, 1.0]


def test_one_sided_p_values_against_the_minimum_effect():
    z01 = 2.3263478740408408  # P(Z > z01) = 0.01
    lr = math.log(1.05) + z01 * 0.02  # 0.01 above the 5% margin at se 0.02
    assert mt.p_slower([lr], [0.02], 0.05)[0] == pytest.approx(0.01, rel=1e-6)
    assert mt.p_faster([-lr], [0.02], 0.05)[0] == pytest.approx(0.01, rel=1e-6)  # the mirror
    assert mt.p_slower([lr], [0.02], 0.0)[0] == pytest.approx(0.5 * math.erfc(lr / 0.02 / math.sqrt(2)), rel=1e-6)
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
    assert fam.line() == ("4 one-sided tests (2 per point), corrected by Holm for a family-wise error of 5%; "
                          "1 comparison(s) with no interval (not enough samples) not tested")
    assert mt.holm([]).size == 0 and np.isnan(mt.benjamini_hochberg([NAN])).all()


def test_groups_are_separate_families_in_one_pass():
    p = [0.01, 0.04, 0.01, 0.04]
    assert mt.holm(p, ["a", "a", "b", "b"]) == pytest.approx([0.02, 0.04, 0.02, 0.04])
    assert mt.holm(p) == pytest.approx([0.04, 0.08, 0.04, 0.08])
    assert mt.benjamini_hochberg([0.04, 0.01, 0.5, 0.04], [2, 1, 2, 1]) == pytest.approx([0.08, 0.02, 0.5, 0.04])


def test_directional_with_one_comparison_is_the_old_whole_interval_rule():
    """Holm over the 2 one-sided tests of a single comparison: alpha/2 per side, i.e. the 95% interval
    lies wholly beyond the tolerance; with many comparisons the same estimate needs more."""
    se = 0.01
    inside = math.log(1.05) + 1.95 * se  # the 95% interval's low end just under 1.05
    beyond = math.log(1.05) + 1.97 * se  # just over
    d = mt.directional([inside, beyond, -beyond, NAN], [se, se, se, se], 0.05, mt.HOLM, groups=[0, 1, 2, 3])
    assert d.decisions().tolist() == ["same", "slower", "faster", "no_interval"]
    assert d.adjusted_slower[1] == pytest.approx(2 * mt.p_slower([beyond], [se], 0.05)[0])
    many = mt.directional(np.full(100, beyond), np.full(100, se), 0.05, mt.HOLM)
    assert (many.decisions() == "same").all()  # 200 tests: 1.97 standard errors is not enough
    assert (many.p_value == pytest.approx(0.0244, abs=2e-4))
