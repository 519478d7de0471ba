"""Old path of analysis.report.methods (the report's Methods section).

Kept as an alias module: SLURM jobs in flight pickle callables by module path, and callers import from here.
"""

from analysis.report.methods import (
    autocorrelation_line,
    exclusions,
    no_interval,
    oracle_correction,
    paragraph,
)

__all__ = [
    "autocorrelation_line",
    "exclusions",
    "no_interval",
    "oracle_correction",
    "paragraph",
]
