"""Statistics and the adaptive timer.

The timer's stopping rules are checked on a synthetic clock (only the timed function moves it), so the
counts are exact on any machine, however slow or busy; the real clock is checked only for what holds
however slow (a sleep is never timed shorter than it is, a time bound is never stopped before it is reached).
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch

from harness.measure import timing
from harness.measure.timing import CHUNK, SamplingPolicy, time_adaptively
from harness.stats import ci_relative_halfwidth, lag1_autocorrelation, median_ci95, summarize


def test_summarize_matches_numpy():
    x = [5.0, 1.0, 3.0, 2.0, 4.0]
    s = summarize(x, batch_size=4)
    assert s["n"] == 5 and s["min_ms"] == 1.0 and s["max_ms"] == 5.0 and s["p50_ms"] == 3.0
    assert s["mean_ms"] == pytest.approx(3.0) and s["std_ms"] == pytest.approx(np.std(x, ddof=1))
    assert s["cv"] == pytest.approx(np.std(x, ddof=1) / 3.0)
    assert s["p95_ms"] == pytest.approx(np.percentile(x, 95))
    assert s["throughput_ips"] == pytest.approx(4 / 0.003)
    assert s["ci95_low_ms"] is None and s["ci95_high_ms"] is None  # 5 samples: no honest 95% interval
    s = summarize(x + [6.0, 7.0, 8.0], batch_size=1)
    assert s["ci95_low_ms"] < s["p50_ms"] < s["ci95_high_ms"]


def test_median_ci_is_the_order_statistic_pair_moved_in_by_interpolation():
    """n = 6: only [x(1), x(6)] covers >= 95% (96.9%); the next pair inwards covers 78.1%. Hettmansperger-
    Sheather: I = (0.96875 - 0.95) / (0.96875 - 0.78125) = 0.1, lambda = 5 I / (1 + 4 I) = 0.357."""
    lo, hi = median_ci95(np.arange(1.0, 7.0))
    lam = 5 * 0.1 / (1 + 4 * 0.1)
    assert lo == pytest.approx(1 + lam) and hi == pytest.approx(6 - lam)
    assert all(math.isnan(v) for v in median_ci95(np.arange(1.0, 6.0)))  # n = 5: no 95% interval exists


def test_lag1_autocorrelation_tells_dependent_iterations_from_independent_ones():
    rng = np.random.default_rng(4)
    e = rng.normal(size=5000)
    ar = np.empty_like(e)
    ar[0] = e[0]
    for i in range(1, e.size):
        ar[i] = 0.8 * ar[i - 1] + e[i]  # each iteration leans on the one before (clocks ramping)
    assert lag1_autocorrelation(ar) == pytest.approx(0.8, abs=0.03)
    assert abs(lag1_autocorrelation(e)) < 0.03
    assert math.isnan(lag1_autocorrelation([1.0, 2.0])) and math.isnan(lag1_autocorrelation([1.0] * 5))


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


class FakeClock:
    """Stands in for the ``time`` module inside harness.measure.timing: perf_counter and perf_counter_ns of a
    machine where time passes only when the timed function says so (``work``)."""

    def __init__(self) -> None:
        self.ns = 0

    def perf_counter_ns(self) -> int:
        return self.ns

    def perf_counter(self) -> float:
        return self.ns / 1e9

    def work(self, seconds: float) -> None:
        self.ns += round(seconds * 1e9)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(timing, "time", fake)
    return fake


CPU = torch.device("cpu")


def test_measure_stops_early_when_the_target_is_met(clock: FakeClock):
    t = time_adaptively(lambda: clock.work(0.001), CPU, SamplingPolicy(1, 0.0, 10, 500, 30.0, 0.5))
    assert t.target_met and len(t.samples_ms) == 10 and t.warmup_iters == 1  # the first chunk already met it
    assert np.all(t.samples_ms == 1.0) and np.all(t.host_ms == 1.0)


def test_measure_stops_at_max_iters_when_the_target_is_not_met(clock: FakeClock):
    rng = np.random.default_rng(3)
    noisy = lambda: clock.work(float(rng.choice([0.0, 0.003])))  # noqa: E731 - bimodal: the CI stays wide
    t = time_adaptively(noisy, CPU, SamplingPolicy(0, 0.0, 5, 17, 30.0, 1e-6))
    assert not t.target_met and len(t.samples_ms) == 17


def test_measure_stops_at_max_time(clock: FakeClock):
    period = iter([0.020, 0.021] * 100)  # not all equal: a CI of zero width would meet any target
    t = time_adaptively(lambda: clock.work(next(period)), CPU, SamplingPolicy(0, 0.0, 3, 10_000, 0.2, 1e-9))
    elapsed_ms = np.cumsum(t.samples_ms)
    # the rule is looked at after min_iters, then after every chunk: it stopped at the first look past 0.2 s
    assert not t.target_met and len(t.samples_ms) == 13
    assert elapsed_ms[-1 - CHUNK] < 200.0 <= elapsed_ms[-1]


def test_warmup_by_time(clock: FakeClock):
    calls = []
    step = 1 / 64  # exact in binary: 8 steps are exactly warmup_s
    t = time_adaptively(lambda: calls.append(clock.work(step)), CPU, SamplingPolicy(1, 1 / 8, 3, 3, 1.0, 0.5))
    assert t.warmup_iters == 8 and len(calls) == 8 + 3  # warmup_s of warmup iterations, then 3 timed


def test_warmup_iters_bound_the_warmup_too(clock: FakeClock):
    t = time_adaptively(lambda: clock.work(1.0), CPU, SamplingPolicy(4, 0.5, 3, 3, 1.0, 0.5))
    assert t.warmup_iters == 4  # the time was spent after the first, the count was not


# -- the real clock: only what holds on any machine ---------------------------------------------------------


def test_cpu_timer_never_times_a_sleep_shorter_than_it_is():
    t = time_adaptively(lambda: time.sleep(0.001), CPU, SamplingPolicy(1, 0.0, 10, 40, 30.0, 0.5))
    assert 10 <= len(t.samples_ms) <= 40 and np.all(t.samples_ms >= 1.0) and np.all(t.host_ms >= 1.0)
    if t.target_met:
        assert ci_relative_halfwidth(t.samples_ms) <= 0.5
    else:
        assert len(t.samples_ms) == 40


def test_real_max_time_is_reached_but_bounds_the_count():
    t0 = time.perf_counter()
    t = time_adaptively(lambda: time.sleep(0.02), CPU, SamplingPolicy(0, 0.0, 3, 10_000, 0.2, 1e-9))
    # every sample is at least 20 ms, so 0.2 s have passed by the look after 13 at the latest (3, 8, 13)
    assert time.perf_counter() - t0 >= 0.2 and 3 <= len(t.samples_ms) <= 13 and not t.target_met
