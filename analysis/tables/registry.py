"""The answer tables, one record each: a name, the frames it is computed from and how.

A table lives in its own module under analysis/tables/catalog/ that declares ``TABLE = Table(...)``; every such
module is found here, so adding a table is adding one file. Its inputs are the loaded frames (``SOURCES``:
the resolved forward points and their layers, torch's rows per cudnn_benchmark setting or None, and the points
measured in another direction with their layers: ``train_points`` and ``train_layers``,
analysis.tree.directions) or other tables by name,
passed to ``compute`` in the order declared. ``compute_all`` computes every table (each as soon as its inputs
are, in threads: pandas and numpy release the GIL in their loops over millions of layer rows) and returns
them in ``position`` order, the order the tables are written in.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

import pandas as pd

from analysis import memory
from analysis.tree import directions, widths

SOURCES = ("points", "layers", "torch_rows", "train_points", "train_layers")
CATALOG = "analysis.tables.catalog"


@dataclass(frozen=True)
class Table:
    """One answer table: ``compute(*inputs)`` is its DataFrame (pure: it only reads its inputs)."""

    name: str
    inputs: tuple[str, ...]  # SOURCES or other tables' names, in compute's argument order
    compute: Callable[..., pd.DataFrame]
    position: int  # where it comes among the tables (the order they are written and listed in)
    about: str = ""  # what it answers, in a few words
    per_layer_row: bool = False  # a row per layer row (millions): computed with no other layers table beside it


_TABLES: dict[str, Table] = {}
_catalog_loaded = False


def register(table: Table) -> Table:
    """Add ``table``; a name already registered, or a table without inputs, is an error."""
    if table.name in _TABLES or table.name in SOURCES:
        raise ValueError(f"table {table.name!r} is already registered")
    if not table.inputs:
        raise ValueError(f"table {table.name!r} declares no inputs")
    _TABLES[table.name] = table
    return table


def unregister(name: str) -> None:
    """Remove a registered table (a test's toy table)."""
    _load_catalog()
    del _TABLES[name]


def _load_catalog() -> None:
    """Import every module of the catalog once and register its TABLE (lazily: the catalog imports this)."""
    global _catalog_loaded
    if _catalog_loaded:
        return
    _catalog_loaded = True
    package = importlib.import_module(CATALOG)
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{CATALOG}.{info.name}")
        if hasattr(module, "TABLE"):
            register(module.TABLE)


def tables() -> list[Table]:
    """Every registered table, in position order (then by name)."""
    _load_catalog()
    return sorted(_TABLES.values(), key=lambda t: (t.position, t.name))


def get(name: str) -> Table:
    _load_catalog()
    return _TABLES[name]


def _waves(chosen: list[Table]) -> list[list[Table]]:
    """The tables in rounds: each round's inputs are all sources or tables of earlier rounds."""
    ready, waves, left = set(SOURCES), [], list(chosen)
    while left:
        wave = [t for t in left if set(t.inputs) <= ready]
        if not wave:
            missing = sorted({i for t in left for i in t.inputs} - ready - {t.name for t in left})
            raise ValueError(f"tables {[t.name for t in left]} wait on inputs no table gives: {missing}")
        waves.append(wave)
        ready |= {t.name for t in wave}
        left = [t for t in left if t not in wave]
    return waves


def over_layer_rows(table: Table) -> bool:
    """Whether ``table`` reads the layers or a table of a row per layer row (``per_layer_row``)."""
    rows = {"layers", "train_layers", *(t.name for t in _TABLES.values() if t.per_layer_row)}
    return bool(rows & set(table.inputs))


class _Gate:
    """Who computes over the layer rows now (``over_layer_rows``): two tables at a time, or a table of a row per
    layer row, or one computed from such a table, alone. At 20,000,000 layer rows a table over them holds 0.3-0.7
    GB of intermediates above the 2.2 GB the load holds, two together 1 GB at most; ``layer_speedups`` 1.4 GB,
    and 0.9 GB of its rows stay held for the tables computed from it (``layer_speedup_summary`` beside
    ``plan_projection`` made the peak of that tree, 0.2 GB above either alone). One at a time, the layers' tables
    left a core idle: ``layer_shapes`` runs on one."""

    def __init__(self, slots: int = 2):
        self._slots = slots
        self._free = slots
        self._changed = threading.Condition()

    @contextmanager
    def held(self, alone: bool):
        need = self._slots if alone else 1
        with self._changed:
            self._changed.wait_for(lambda: self._free >= need)
            self._free -= need
        try:
            yield
        finally:
            with self._changed:
                self._free += need
                self._changed.notify_all()


def _alone(table: Table) -> bool:
    """Whether ``table`` computes with no other table over the layer rows beside it: it holds a row per layer row,
    or reads a table that does."""
    return table.per_layer_row or any(t.per_layer_row for t in _TABLES.values() if t.name in table.inputs)


def _gated(gate: _Gate, alone: bool, compute: Callable[..., pd.DataFrame]) -> Callable[..., pd.DataFrame]:
    """``compute`` within ``gate`` (``alone``: with no other table over the layer rows beside it)."""

    def run(*inputs: pd.DataFrame | None) -> pd.DataFrame:
        with gate.held(alone):
            try:
                return compute(*inputs)
            finally:  # its intermediates back to the system before the next one starts from there
                memory.give_back()

    return run


def _trimmed(compute: Callable[..., pd.DataFrame]) -> Callable[..., pd.DataFrame]:
    """``compute``, the heap trimmed after it (a point table's intermediates: megabytes each, 0.15 GB left in
    the heap after every table at 20,000,000 layer rows)."""

    def run(*inputs: pd.DataFrame | None) -> pd.DataFrame:
        try:
            return compute(*inputs)
        finally:
            memory.give_back()

    return run


def _within(
    step: Callable[[str], AbstractContextManager], name: str, compute: Callable[..., pd.DataFrame]
) -> Callable[..., pd.DataFrame]:
    def run(*inputs: pd.DataFrame | None) -> pd.DataFrame:
        with step(name):
            return compute(*inputs)

    return run


def compute_all(
    points: pd.DataFrame,
    layers: pd.DataFrame,
    torch_rows: pd.DataFrame | None = None,
    workers: int = 1,
    step: Callable[[str], AbstractContextManager] | None = None,
) -> dict[str, pd.DataFrame]:
    """Every registered table from resolved points and layers (``torch_rows``: torch per cudnn_benchmark
    setting, analysis.tables.catalog.plan_comparison.torch_settings), in position order. The tables that read
    ``points`` and ``layers`` get the forward points and their layer rows (the frames themselves for a
    forward-only tree); ``train_points`` and ``train_layers`` are the rest (analysis.tree.directions). Each
    table starts as soon as its inputs are done, in ``workers`` threads (the tables over millions of layer rows
    run beside the point tables, as analysis.pipeline.compute_tables ran them, and two at a time at most: ``_Gate``).
    ``step(name)``: a context each table is computed in, with ``workers`` 1 (benchmarks/analysis_scale.py --steps
    times each and takes its peak memory)."""
    if step is not None and workers != 1:
        raise ValueError(f"step times each table alone: workers={workers}, it needs 1")
    chosen = tables()
    _waves(chosen)  # every input is given by a source or a table: an error before anything runs
    frames: dict[str, pd.DataFrame | None] = {
        "points": directions.forward_points(points),
        "layers": directions.forward_layers(layers),
        "torch_rows": torch_rows,
        "train_points": directions.training_points(points),
        "train_layers": directions.training_layers(layers),
    }
    waiting, running = list(chosen), {}
    gate = _Gate()
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        while waiting or running:
            # a table of a row per layer row last among those ready: the others' intermediates come and go
            # before its rows are held (20,000,000 layer rows: 0.93 GB), not on top of them
            for t in sorted((t for t in waiting if all(i in frames for i in t.inputs)), key=lambda t: t.per_layer_row):
                compute = _gated(gate, _alone(t), t.compute) if over_layer_rows(t) else _trimmed(t.compute)
                compute = compute if step is None else _within(step, t.name, compute)
                running[pool.submit(compute, *(frames[i] for i in t.inputs))] = t.name
                waiting.remove(t)
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                frames[running.pop(future)] = future.result()
    return {t.name: _int32(frames[t.name]) for t in chosen}


def _int32(frame: pd.DataFrame | None) -> pd.DataFrame | None:
    """A table with the layers' small integers as int32, from narrowed layers too (analysis.tree.widths)."""
    return None if frame is None else widths.as_int32(frame)
