"""Old path of :mod:`analysis.compare.bless` (kept so pickled callables and ``python -m analysis.bless`` still work)."""

from __future__ import annotations

import logging
import sys

from analysis.compare.bless import (
    DEFAULT_TOLERANCE,
    PROVENANCE,
    between_run,
    main,
    own_tolerance,
    parser,
    references,
)

__all__ = ["DEFAULT_TOLERANCE", "PROVENANCE", "between_run", "main", "own_tolerance", "parser", "references"]

if __name__ == "__main__":
    logging.getLogger(__name__).info("python -m analysis.bless is the old name of python -m analysis.compare.bless")
    sys.exit(main())
