"""The cold-cache flush (``l2=cold``): a buffer at least the size of the last cache level, written through
the cache before each timed iteration, outside its timed interval.

As NVBench (its L2 flush: a memset of a buffer of the L2's size between samples) and Triton's ``do_bench``
(a 256 MB buffer zeroed before each iteration) do, the flush is work queued *before* the interval's start:

- on a GPU, a write of ``2 x L2_cache_size`` bytes on the current stream, queued before the start event of
  the iteration (or of the layer), so the events do not time it; twice the L2's size because the L2 of recent
  GPUs is split into partitions that may hold a line twice, and a write of exactly its size can leave some
  of the previous iteration's lines in place;
- on the CPU, a read and write of every byte of a buffer of the last-level cache's size (from sysfs), done
  before ``perf_counter_ns`` starts the interval. It is an add, not a memset: glibc's memset of a large
  buffer uses non-temporal stores, which bypass the cache and would evict nothing.

One flush is one write of ``nbytes`` (the ``cache_flush_bytes`` column): it costs about
``nbytes / memory bandwidth`` of the device's time (about 30 us for 100 MB at 3 TB/s; tens of ms for a
CPU's hundreds of MB) once per timed iteration and once per layer in the layer pass, never inside a
timed interval, but it makes a cold point's timing take longer than a warm one's wall clock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from harness.errors import MissingEnvironmentError

log = logging.getLogger(__name__)

L2_STATES = ("warm", "cold")
GPU_FLUSH_FACTOR = 2  # the GPU's flush writes this many times its L2 (partitioned L2s can hold a line twice)
SYSFS_CPU_CACHE = Path("/sys/devices/system/cpu/cpu0/cache")  # where the CPU's cache sizes are read
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30}


def parse_size(text: str) -> int:
    """A sysfs cache size (``491520K``, ``32M``, ``1024``) in bytes."""
    text = text.strip().upper()
    unit = text[-1] if text and text[-1] in _UNITS else ""
    number = text[: len(text) - len(unit)]
    if not number.isdigit():
        raise ValueError(f"not a cache size: {text!r} (expected digits and K, M or G)")
    return int(number) * _UNITS[unit]


def last_level_cache_bytes(root: Path | None = None) -> tuple[int, int]:
    """The CPU's last-level cache: (level, bytes), from ``root`` (default ``SYSFS_CPU_CACHE``: cpu0's
    ``index*/{level,type,size}``); instruction caches are left out."""
    root = root or SYSFS_CPU_CACHE
    best: tuple[int, int] | None = None
    for index in sorted(root.glob("index*")):
        try:
            if (index / "type").read_text().strip() == "Instruction":
                continue
            level, size = int((index / "level").read_text()), parse_size((index / "size").read_text())
        except (OSError, ValueError) as e:
            log.debug("cache %s not read: %s", index, e)
            continue
        if best is None or level > best[0]:
            best = (level, size)
    if best is None:
        raise MissingEnvironmentError(
            f"l2=cold on the CPU flushes the last-level cache, but its size cannot be read from {root}/index*/size "
            f"(no sysfs cache information on this machine); use l2=warm"
        )
    return best


@dataclass(frozen=True)
class CacheFlush:
    """One flush of a device's last cache level: call it before a timed interval starts."""

    device: torch.device
    level: str  # what it flushes: "L2" (GPU) or "L3" etc. (the CPU's last level)
    cache_bytes: int  # the size of that cache
    buffer: torch.Tensor  # uint8, at least cache_bytes long: written whole by each flush

    @property
    def nbytes(self) -> int:
        """Bytes written by one flush (the cache_flush_bytes column)."""
        return int(self.buffer.numel())

    def __call__(self) -> None:
        if self.device.type == "cuda":
            self.buffer.zero_()  # a fill kernel queued on the current stream: ordinary stores through the L2
        else:
            self.buffer.add_(1)  # every line read and written back through the caches (not memset: see above)

    def __str__(self) -> str:
        return f"{self.level} flush: {self.nbytes / 2**20:.1f} MiB written before each timed interval"


def cache_flush(device: torch.device, sysfs: Path | None = None) -> CacheFlush:
    """The flush of ``device``'s last cache level (allocates its buffer: make it after peak memory is taken)."""
    if device.type == "cuda":
        size = int(torch.cuda.get_device_properties(device).L2_cache_size)
        level, nbytes = "L2", GPU_FLUSH_FACTOR * size
    else:
        number, size = last_level_cache_bytes(sysfs)
        level, nbytes = f"L{number}", size
    buffer = torch.zeros(nbytes, dtype=torch.uint8, device=device)
    flush = CacheFlush(device, level, size, buffer)
    log.debug("%s", flush)
    return flush


def flush_for(l2: str, device: torch.device) -> Callable[[], None] | None:
    """The flush for an ``l2`` setting: a ``CacheFlush`` for cold, None for warm (nothing is done)."""
    if l2 not in L2_STATES:
        raise ValueError(f"l2={l2!r}: expected one of {', '.join(L2_STATES)}")
    return cache_flush(device) if l2 == "cold" else None
