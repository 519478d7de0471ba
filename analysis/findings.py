"""Old path of analysis.report.findings (the report's findings and caveats).

Kept as an alias module: SLURM jobs in flight pickle callables by module path, and callers import from here.
"""

from analysis.report.findings import (
    by_setting,
    caveats,
    corrections,
    findings,
    plan_findings,
)
from analysis.report.findings import plan_findings as _plan_findings

__all__ = [
    "_plan_findings",
    "by_setting",
    "caveats",
    "corrections",
    "findings",
    "plan_findings",
]
