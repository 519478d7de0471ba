"""How many threads the analysis's parallel steps use (reading the layers' files, the tables, the slices of a
table): the cores this process may use, at most 4. pyarrow's reading and numpy's and pandas' loops over
millions of rows release the GIL."""

from __future__ import annotations

import os


def workers() -> int:
    """The cores this process may use (its affinity, where the system says), at most 4."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))
