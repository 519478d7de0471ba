"""Old name of ``python -m analysis.plans`` (analysis.plans.cli): make, show or export a per-layer plan.

Kept as an alias module: ``python -m analysis.plan`` still works (logging a deprecation note at info level,
so that stderr stays the one line a refusal prints), and its
usage errors still name ``python -m analysis.plan``.
"""

import logging
import sys

from analysis.plans import cli
from analysis.plans.cli import (
    BACKENDS,
    SETTING_FILTERS_SKIPPED,
    SOURCES,
    ai3_support_note,
    device_of,
    lines,
    make,
    make_predicted,
)

OLD_PROG = "python -m analysis.plan"

__all__ = [
    "BACKENDS",
    "OLD_PROG",
    "SETTING_FILTERS_SKIPPED",
    "SOURCES",
    "ai3_support_note",
    "device_of",
    "lines",
    "main",
    "make",
    "make_predicted",
    "parser",
]


def parser(prog: str = OLD_PROG):
    """The plans CLI's parser under its old name."""
    return cli.parser(prog)


def main(argv: list[str] | None = None, prog: str = OLD_PROG) -> int:
    """The plans CLI (analysis.plans.cli.main) under its old name."""
    return cli.main(argv, prog)


if __name__ == "__main__":
    logging.getLogger(__name__).info("python -m analysis.plan is deprecated: use python -m analysis.plans")
    sys.exit(main())
