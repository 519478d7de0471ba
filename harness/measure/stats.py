"""Moved to harness.stats (the statistics of samples: used by measuring and by the results alike, so it lives
below both). This alias keeps the old import path for jobs in flight and for user code."""

from harness.stats import (  # noqa: F401
    LEVEL,
    MIN_SAMPLES,
    Z95,
    ci_relative_halfwidth,
    lag1_autocorrelation,
    layer_summary,
    median_ci95,
    summarize,
    t_quantile95,
)
