"""The layout of a results tree: hive partitions, file names, and the identity of a point.

    <root>/stage=<stage>/gpu=<gpu>/model=<model>/algo=<algo>/     one leaf per combination
        points-<run>.parquet, layers-<run>.parquet               one file per table per run (compacted)
        points-<run>.part-<point>.parquet, layers-...            one pair per point while a run goes on
        run-<run>.json                                           what the run was and how it ended
        trace-<run>.<point>.json                                 a torch.profiler trace, where asked for

Every module that names a folder or a file of the tree asks this one; nothing else spells "stage=" or
"points-". Outside tools read the same layout as hive-partitioned Parquet (RESULTS-SCHEMA.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PARTITION_KEYS = ("stage", "gpu", "model", "algo")
TABLE_NAMES = ("points", "layers")
RUN_PREFIX, TRACE_PREFIX = "run", "trace"

PointKey = tuple[int, int, str]  # (input_size, batch_size, dtype): a point within one leaf
# A point across the tree: its leaf and its key within it. Repeats of it are resolved, latest wins.
# The registry of config keys owns it (harness.config.keys.point_key(): the keys whose role is POINT); it is
# spelled here because harness.config imports this module (spec's Partition), and tests/test_results_layout.py
# checks that the two agree.
POINT_KEY = [*PARTITION_KEYS, "input_size", "batch_size", "dtype", "layout", "l2", "direction"]
# Point-key columns added after rows had been written, with the value every row written before them was
# measured at (NCHW tensors, an L2 cache left warm by the previous iteration, the forward pass). Readers fill the
# nulls of such rows with it (harness.results.read.fill_point_axes), so an old row and a new one of the same
# point are one point, latest wins.
EARLIER_POINT_VALUES = {"layout": "nchw", "l2": "warm", "direction": "forward"}
# A point within its leaf (a partition: stage, gpu, model, algo): what a run plans and a leaf's status counts.
LEAF_POINT_KEY = POINT_KEY[len(PARTITION_KEYS) :]
# Columns of the layers table only, added with the training step: the direction of the point a layer row
# belongs to (its own ``direction`` is that of its conv call). Rows written before were forward points'.
EARLIER_LAYER_VALUES = {"point_direction": "forward"}


@dataclass(frozen=True)
class Partition:
    """One leaf of the tree: a stage x gpu type x model x algorithm."""

    stage: str
    gpu: str
    model: str
    algo: str

    def path(self, root: Path) -> Path:
        return root.joinpath(*(f"{k}={getattr(self, k)}" for k in PARTITION_KEYS))

    @classmethod
    def of(cls, leaf: Path) -> Partition | None:
        """The partition a leaf folder stands for, or None if its last four names are not one."""
        parts = dict(p.split("=", 1) for p in leaf.parts[-4:] if "=" in p)
        if set(parts) != set(PARTITION_KEYS) or [p.split("=", 1)[0] for p in leaf.parts[-4:]] != list(PARTITION_KEYS):
            return None
        return cls(**parts)

    def label(self) -> str:
        return " ".join(f"{k}={getattr(self, k)}" for k in PARTITION_KEYS)


def leaves(root: Path, **fixed: str) -> Iterator[tuple[Partition, Path]]:
    """Every leaf under ``root`` (those whose partition values match ``fixed``, e.g. gpu="h100"), sorted."""
    unknown = set(fixed) - set(PARTITION_KEYS)
    if unknown:
        raise ValueError(f"not partition keys: {sorted(unknown)}; valid: {', '.join(PARTITION_KEYS)}")
    pattern = "/".join(f"{k}={fixed.get(k, '*')}" for k in PARTITION_KEYS)
    for leaf in sorted(root.glob(pattern)):
        partition = Partition.of(leaf)
        if partition is not None and leaf.is_dir():
            yield partition, leaf


def stages_under(root: Path) -> list[str]:
    """The stages that have a folder directly under ``root`` (a tree begun, whether or not a leaf is
    complete yet)."""
    return sorted(p.name.split("=", 1)[1] for p in root.glob("stage=*") if p.is_dir())


def is_partition_folder(name: str) -> bool:
    """Whether a folder name is one level of the partitioning ("stage=sanity", ...)."""
    return any(name.startswith(f"{k}=") for k in PARTITION_KEYS)


def point_label(key: PointKey) -> str:
    size, batch, dtype = key
    return f"s{size}-b{batch}-{dtype}"


# -- file names within a leaf ------------------------------------------------------------------------------


def table_file(table: str, run_id: str) -> str:
    """The compacted file of a table for one run: points-<run>.parquet."""
    _check_table(table)
    return f"{table}-{run_id}.parquet"


def piece_prefix(table: str, run_id: str) -> str:
    """What the names of a run's per-point pieces of a table start with."""
    _check_table(table)
    return f"{table}-{run_id}.part-"


def piece_file(table: str, run_id: str, key: PointKey) -> str:
    return f"{piece_prefix(table, run_id)}{point_label(key)}.parquet"


def run_file(run_id: str) -> str:
    return f"{RUN_PREFIX}-{run_id}.json"


def trace_file(run_id: str, key: PointKey) -> str:
    return f"{TRACE_PREFIX}-{run_id}.{point_label(key)}.json"


def table_files(leaf: Path, table: str) -> list[Path]:
    """Every file of a table in a leaf (compacted files and pieces alike), sorted."""
    _check_table(table)
    return sorted(leaf.glob(f"{table}-*.parquet"))


def run_files(leaf: Path) -> list[Path]:
    return sorted(leaf.glob(f"{RUN_PREFIX}-*.json"))


def run_files_under(root: Path, **fixed: str) -> Iterator[Path]:
    """The run records of every leaf under ``root`` that matches ``fixed``."""
    for _, leaf in leaves(root, **fixed):
        yield from run_files(leaf)


def reader_ignore_prefixes(table: str) -> list[str]:
    """File name prefixes a dataset reader of ``table`` must skip in a leaf: the other table, the run
    records, the traces, and hidden or temporary files."""
    _check_table(table)
    return [".", "_", RUN_PREFIX, TRACE_PREFIX, *(t for t in TABLE_NAMES if t != table)]


def _check_table(table: str) -> None:
    if table not in TABLE_NAMES:
        raise ValueError(f"unknown table {table!r}; valid: {', '.join(TABLE_NAMES)}")
