"""The report's Methods paragraph says what the rows hold: iterations, rows without an interval, how close
to independent the iterations were, and the definitions of the results contract."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import methods
from analysis.report.methods import l2_line
from harness.results.columns import DEFINITIONS, dynamic_energy_per_inference_j


def test_paragraph_counts_what_the_rows_hold():
    points = pd.DataFrame(
        {
            "status": ["ok", "ok", "oom"],
            "n": [10, 30, 0],
            "p50_ms": [1.0, 2.0, np.nan],
            "lag1_autocorr": [0.05, 0.9, np.nan],
        }
    )
    layers = pd.DataFrame({"n": [5, 5, 8], "p50_ms": [0.1, 0.2, 0.3], "lag1_autocorr": [0.0, 0.1, -0.2]})
    text = methods.paragraph(points, layers, corrections=["Holm over 4 comparisons."])
    assert "timed for 10 to 30 (median 20) iterations" in text
    assert "5 to 8 (median 5) iterations" in text
    assert "not enough samples: 0 points, 2 layer rows" in text
    # 0.9 > 2/sqrt(30) = 0.37: one of the two ok points; 0.1 < 2/sqrt(5) = 0.89: none of the layers
    assert "50% of 2 point rows exceed 2/sqrt(n)" in text and "0% of 3 layer rows" in text
    assert "Holm over 4 comparisons." in text
    assert DEFINITIONS["throughput"] in text and DEFINITIONS["dynamic energy per inference"] in text


def test_paragraph_leaves_out_what_the_rows_do_not_hold():
    points = pd.DataFrame({"status": ["ok"], "n": [20], "p50_ms": [1.0]})  # a tree older than lag1_autocorr
    text = methods.paragraph(points, pd.DataFrame({"n": [], "p50_ms": []}))
    assert "Independence" not in text and "not enough samples:" not in text and "Per-layer" not in text


def test_dynamic_energy_is_total_less_idle_power_over_the_same_time():
    rows = pd.DataFrame(
        {
            "energy_per_inference_j": [0.5, 0.5],
            "idle_power_w": [100.0, np.nan],
            "energy_window_s": [3.0, 3.0],
            "energy_inferences": [1000, 1000],
        }
    )
    got = dynamic_energy_per_inference_j(rows)
    assert got[0] == pytest.approx(0.5 - 100.0 * 3.0 / 1000) and np.isnan(got[1])


def test_exclusions_and_the_oracle_s_correction_are_said():
    points = pd.DataFrame({"launch_bound": [True, False, None]})
    said = methods.exclusions(points, host_bound_layers=7)
    assert "7 layer rows whose time includes the host's issuing" in said[0] and "1 points are launch-bound" in said[1]
    assert methods.exclusions(pd.DataFrame({"launch_bound": [False]}), 0) == []
    oracle = pd.DataFrame({"switch_tests": [20, 13], "switch_no_interval": [1, 0]})
    assert "33 layer tests over 2 points, 1 layers without an interval" in methods.oracle_correction(oracle)[0]


def test_the_cache_state_of_every_latency_is_said():
    both = pd.DataFrame({"status": ["ok"] * 3, "n": [10] * 3, "p50_ms": [1.0] * 3, "l2": ["warm", None, "cold"]})
    text = methods.paragraph(both, pd.DataFrame({"n": [], "p50_ms": []}))
    assert f"2 points with a warm L2 ({DEFINITIONS['warm L2']})" in text  # a row older than the column: warm
    assert f"1 points with a cold L2 ({DEFINITIONS['cold L2']})" in text and "l2 is part of the point key" in text
    old = pd.DataFrame({"status": ["ok"], "n": [10], "p50_ms": [1.0]})  # a tree from before the l2 column
    assert l2_line(old).startswith("Cache state of every latency (whole model and per layer): 1 points with a warm")
    assert "cold L2" not in l2_line(old) and "point key" not in l2_line(old)
    assert l2_line(old[old["status"] == "none"]) == "No point was timed."
    # as the loader holds it: a categorical of the tree's states, here with no cold point left
    loaded = pd.DataFrame({"status": ["ok"], "l2": pd.Categorical(["warm"], categories=["cold", "warm"])})
    assert "cold L2" not in l2_line(loaded) and "1 points with a warm L2" in l2_line(loaded)
