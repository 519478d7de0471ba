"""Calibration: every interval the analysis rests on is checked against known truth.

Latencies are drawn from known distributions (log-normal with cv 0.3% to 10%, and a heavy tail where an
iteration is now and then 3x slower), at the sample sizes the stages really use. Each interval is built by
the project's own code path (a layer record's or a point's summary, then ``log_se`` and ``interval``, as
the analysis reads a row) and must:

- cover the true median in at least 93% of replicates (nominal 95%; 4000 replicates put 93% about six
  standard errors below 95%, so a correct interval does not fail by chance and a 90% one cannot pass);
- be at most 1.5x as wide, on average, as an oracle interval that knows the true distribution (the 2.5% and
  97.5% quantiles of the sample median itself);
- or say "not enough samples" (NaN): exempt from coverage, but counted, and never at the sizes where an
  honest 95% interval of a median exists (n >= 6).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from harness.measure.layers import LayerRecord
from harness.measure.stats import summarize
from harness.results.uncertainty import interval, log_se

REPLICATES = 4000
MIN_COVERAGE = 0.93
MAX_WIDTH_RATIO = 1.5
LAYER_N = (3, 5, 8, 20, 30)  # acceptance (before), sanity, acceptance, quick, full: stage.layer_iters
POINT_N = (10, 20, 50)  # points: stage.min_iters upwards


class Truth:
    """Latencies with a known median: log-normal with coefficient of variation ``cv``; with ``outliers`` > 0
    each iteration is 3x slower with that probability."""

    def __init__(self, cv: float, outliers: float = 0.0) -> None:
        self.cv, self.outliers = cv, outliers
        self.sigma = math.sqrt(math.log1p(cv * cv))

    def __repr__(self) -> str:
        return f"cv={self.cv:.1%}" + (f"+{self.outliers:.0%}x3" if self.outliers else "")

    def draw(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        x = np.exp(rng.normal(0.0, self.sigma, shape))
        if self.outliers:
            x = np.where(rng.random(shape) < self.outliers, 3.0 * x, x)
        return x

    def median(self) -> float:
        """The distribution's median: the root of its CDF - 1/2 (bisection on the log scale)."""
        phi = lambda z: 0.5 * (1 + math.erf(z / math.sqrt(2)))  # noqa: E731
        cdf = lambda t: (1 - self.outliers) * phi(t / self.sigma) + self.outliers * phi((t - math.log(3)) / self.sigma)  # noqa: E731
        lo, hi = -10 * self.sigma, 10 * self.sigma + math.log(3)
        for _ in range(200):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if cdf(mid) < 0.5 else (lo, mid)
        return math.exp((lo + hi) / 2)


TRUTHS = [Truth(0.003), Truth(0.01), Truth(0.03), Truth(0.10), Truth(0.01, outliers=0.05)]


def oracle_width(truth: Truth, n: int, rng: np.random.Generator) -> float:
    """Width (log scale) of the interval that knows the distribution: the sample median's own 2.5-97.5%."""
    medians = np.median(truth.draw(rng, (20000, n)), axis=1)
    lo, hi = np.quantile(np.log(medians), [0.025, 0.975])
    return float(hi - lo)


def judge(rows: pd.DataFrame, truth: Truth, n: int, rng: np.random.Generator) -> dict[str, float]:
    """Coverage of the true median, mean width over the oracle's, and the share with no interval."""
    se = log_se(rows)
    lo, hi = interval(np.log(rows["p50_ms"].astype(float)), se)
    claimed = np.isfinite(lo) & np.isfinite(hi)
    m = truth.median()
    covered = (lo[claimed] <= m) & (m <= hi[claimed])
    width = np.log(hi[claimed]) - np.log(lo[claimed])
    return {
        "no_claim": float(1 - claimed.mean()),
        "coverage": float(covered.mean()) if claimed.any() else math.nan,
        "width_ratio": float(width.mean() / oracle_width(truth, n, rng)) if claimed.any() else math.nan,
    }


def layer_rows(samples: np.ndarray) -> pd.DataFrame:
    """What a layers row holds for each replicate's iterations (the measuring code's own summary)."""
    return pd.DataFrame([LayerRecord(0, "conv", None, (1, 3, 8, 8), (1, 3, 8, 8), list(s)).summary() for s in samples])


def point_rows(samples: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame([summarize(s, batch_size=1) for s in samples])


def check(result: dict[str, float], n: int) -> None:
    if n >= 6:
        assert result["no_claim"] == 0, result
    if result["no_claim"] < 1:
        assert result["coverage"] >= MIN_COVERAGE, result
        assert result["width_ratio"] <= MAX_WIDTH_RATIO, result


@pytest.mark.xfail(strict=True, reason="layer intervals use z = 1.96 at n = 3..8 and the std under outliers")
@pytest.mark.parametrize("truth", TRUTHS, ids=repr)
def test_layer_interval_holds_at_every_stages_layer_iterations(truth: Truth):
    rng = np.random.default_rng(11)
    for n in LAYER_N:
        check(judge(layer_rows(truth.draw(rng, (REPLICATES, n))), truth, n, rng), n)


@pytest.mark.xfail(strict=True, reason="the median's interval is [min, max] up to n = 10: twice the width needed")
@pytest.mark.parametrize("truth", TRUTHS, ids=repr)
def test_point_interval_holds_at_the_iterations_points_use(truth: Truth):
    rng = np.random.default_rng(12)
    for n in POINT_N:
        check(judge(point_rows(truth.draw(rng, (REPLICATES, n))), truth, n, rng), n)
