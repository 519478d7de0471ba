"""Statistics and the adaptive timer."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch

from harness.measure.stats import ci_relative_halfwidth, median_ci95, summarize
from harness.measure.timing import SamplingPolicy, time_adaptively


def test_summarize_matches_numpy():
    x = [5.0, 1.0, 3.0, 2.0, 4.0]
    s = summarize(x, batch_size=4)
    assert s["n"] == 5 and s["min_ms"] == 1.0 and s["max_ms"] == 5.0 and s["p50_ms"] == 3.0
    assert s["mean_ms"] == pytest.approx(3.0) and s["std_ms"] == pytest.approx(np.std(x, ddof=1))
    assert s["cv"] == pytest.approx(np.std(x, ddof=1) / 3.0)
    assert s["p95_ms"] == pytest.approx(np.percentile(x, 95))
    assert s["throughput_ips"] == pytest.approx(4 / 0.003)
    assert s["ci95_low_ms"] <= s["p50_ms"] <= s["ci95_high_ms"]


def test_summarize_refuses_no_samples():
    with pytest.raises(ValueError):
        summarize([], 1)


def test_median_ci_covers_the_true_median_at_least_95_percent():
    rng = np.random.default_rng(1)
    for n in (10, 40, 200):
        hits = 0
        for _ in range(2000):
            lo, hi = median_ci95(np.sort(rng.exponential(size=n)))
            hits += lo <= math.log(2) <= hi
        assert hits / 2000 >= 0.94, n


def test_median_ci_narrows_with_more_samples():
    rng = np.random.default_rng(2)
    x = rng.normal(10, 1, size=1000)
    assert ci_relative_halfwidth(x[:1000]) < ci_relative_halfwidth(x[:30]) < ci_relative_halfwidth(x[:8])
    assert ci_relative_halfwidth([1.0]) == math.inf


def test_measure_stops_early_when_the_target_is_met():
    t = time_adaptively(lambda: time.sleep(0.001), torch.device("cpu"), SamplingPolicy(1, 0.0, 10, 500, 30.0, 0.5))
    assert t.target_met and len(t.samples_ms) == 10 and t.warmup_iters == 1
    assert np.all(t.samples_ms >= 1.0)


def test_measure_stops_at_max_iters_when_the_target_is_not_met():
    rng = np.random.default_rng(3)
    noisy = lambda: time.sleep(float(rng.choice([0.0, 0.003])))  # noqa: E731 - bimodal: the CI stays wide
    t = time_adaptively(noisy, torch.device("cpu"), SamplingPolicy(0, 0.0, 5, 17, 30.0, 1e-6))
    assert not t.target_met and len(t.samples_ms) == 17


def test_measure_stops_at_max_time():
    t0 = time.perf_counter()
    t = time_adaptively(lambda: time.sleep(0.02), torch.device("cpu"), SamplingPolicy(0, 0.0, 3, 10_000, 0.2, 1e-9))
    assert time.perf_counter() - t0 < 2.0 and 3 <= len(t.samples_ms) < 30 and not t.target_met


def test_warmup_by_time():
    calls = []
    time_adaptively(lambda: calls.append(time.sleep(0.01)), torch.device("cpu"), SamplingPolicy(1, 0.1, 3, 3, 1.0, 0.5))
    assert len(calls) >= 3 + 8  # >= 0.1 s of 10 ms warmup iterations, then 3 timed
