"""Old path of analysis.report.checks (the report's checks and their thresholds).

Kept as an alias module: SLURM jobs in flight pickle callables by module path, and callers import from here.
"""

from analysis.report.checks import (
    BENIGN_REASONS,
    COLUMNS,
    Thresholds,
    findings,
    summary,
)

__all__ = [
    "BENIGN_REASONS",
    "COLUMNS",
    "Thresholds",
    "findings",
    "summary",
]
