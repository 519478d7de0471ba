"""Handing freed heap memory back to the system between the analysis's large steps.

pandas and numpy allocate through the C library's malloc. glibc keeps memory freed from its heap (and from
arrays below its mmap threshold, which it raises as large arrays come and go) for reuse rather than returning
it, so after loading 20,000,000 layer rows the process held about 1.3 GB it no longer used (and 0.8 GB after
decoding 2,000 points files' footers), and every next step started from there. Trimmed after each read, the
load and each table over the layers, the peak of load + tables on that tree went from 9.74 to 7.74 GB, the
torch-free import included (benchmarks/analysis_scale.py; docs/analysis.md, "At scale").
``malloc_trim`` costs milliseconds. Arrow's own allocations go through jemalloc, told to return freed pages at
once (analysis.tree.read.POOL), or through its default allocator (the Parquet files' tables), which is asked to
return what it keeps.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable

import pyarrow as pa


def _trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none (musl, macOS, Windows)."""
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None


_MALLOC_TRIM = _trim()


def give_back() -> bool:
    """Return the heap's free memory to the system (glibc), and what Arrow's default allocator keeps of the
    memory freed to it (mimalloc: the files' tables read through it, 0.19 GB after loading 20,000,000 layer
    rows); whether this C library can trim."""
    pa.default_memory_pool().release_unused()
    if _MALLOC_TRIM is None:
        return False
    _MALLOC_TRIM(0)
    return True
