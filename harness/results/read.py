"""Reading the results tree back: whole tables, one leaf's points, run records, and the rules that make
one answer of many rows (the latest row of a point wins; what a leaf planned is the union of its runs).

A partition folder holds both tables, the run records and any traces, so a reader picks its table by file
name (pyarrow's ``ignore_prefixes``, from the layout); the partition keys come from the folder names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from harness.results import layout
from harness.results.manifest import RunManifest, read_manifest
from harness.results.schema import LAYERS, POINTS

TABLES = {"points": POINTS, "layers": LAYERS}


def dataset(root: str | Path, table: str = "points", dictionary: Sequence[str] = ()) -> ds.Dataset:
    """The ``points`` or ``layers`` table of every run under ``root``, as one pyarrow dataset.

    ``dictionary``: string columns (not partition keys) to read dictionary-encoded, straight from the
    Parquet files' own dictionary pages: for columns of few distinct values (a status, a layer name) this
    reads millions of rows several times faster and smaller, and they become pandas categoricals. With it,
    the partition keys (stage, gpu, model, algo) are dictionary-encoded too, from the folder names, rather
    than a string per row.
    """
    if table not in TABLES:
        raise ValueError(f"unknown table {table!r}; valid: {', '.join(TABLES)}")
    schema, fmt, partitioning = TABLES[table], ds.ParquetFileFormat(), "hive"
    if dictionary:
        bad = [
            c
            for c in dictionary
            if c in layout.PARTITION_KEYS or c not in schema.names or not pa.types.is_string(schema.field(c).type)
        ]
        if bad:
            raise ValueError(f"not string columns of {table} outside the partition keys: {bad}")
        encoded = {*dictionary, *layout.PARTITION_KEYS}
        schema = pa.schema(
            [pa.field(f.name, pa.dictionary(pa.int32(), pa.string())) if f.name in encoded else f for f in schema],
            metadata=schema.metadata,
        )
        fmt = ds.ParquetFileFormat(read_options=ds.ParquetReadOptions(dictionary_columns=list(dictionary)))
        partitioning = ds.HivePartitioning(
            pa.schema([schema.field(k) for k in layout.PARTITION_KEYS]),
            dictionaries=_partition_values(root, fmt, schema, table),
        )
    return ds.dataset(
        str(root),
        format=fmt,
        partitioning=partitioning,
        schema=schema,
        ignore_prefixes=layout.reader_ignore_prefixes(table),
    )


def _partition_values(
    root: str | Path, fmt: ds.ParquetFileFormat, schema: pa.Schema, table: str
) -> dict[str, pa.Array]:
    """Every value of each partition key in the paths of the files the dataset will read (whatever their
    depth), decoded as Arrow decodes hive folder names (URI encoding): the dictionaries of the partition keys.
    Listed with the table's schema, so that no file is opened here (one that is not Parquet is reported by
    the reader, file by file)."""
    files = ds.dataset(
        str(root), format=fmt, partitioning=None, schema=schema, ignore_prefixes=layout.reader_ignore_prefixes(table)
    ).files
    values: dict[str, set[str]] = {k: set() for k in layout.PARTITION_KEYS}
    for f in files:
        for segment in Path(f).relative_to(root).parts[:-1]:
            key, eq, value = segment.partition("=")
            if eq and key in values:
                values[key].add(unquote(value))
    return {k: pa.array(sorted(v), pa.string()) for k, v in values.items()}


def read(root: str | Path, table: str = "points") -> pd.DataFrame:
    """Every row of a table under ``root`` as a DataFrame with the schema's column types (no resolution:
    a point measured twice has two rows; see ``latest``)."""
    return fill_point_axes(dataset(root, table).to_table().to_pandas())


def _earlier_values(names: Iterable[str]) -> dict[str, str]:
    """The columns to fill and their earlier values: the point key's (layout.EARLIER_POINT_VALUES), and in a
    layers table (one with a ``layer_index`` column) its own (layout.EARLIER_LAYER_VALUES: ``point_direction``)."""
    layers = "layer_index" in set(names)
    return layout.EARLIER_POINT_VALUES | (layout.EARLIER_LAYER_VALUES if layers else {})


def fill_point_axes(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with the point-key columns added after rows were written (layout.EARLIER_POINT_VALUES) present
    and their nulls filled with the value those rows were measured at; modified in place and returned. A
    layers table's rows also get ``point_direction`` (forward where null: rows from before the training step)."""
    for column, value in _earlier_values(rows.columns).items():
        if column not in rows:
            rows[column] = value
        elif rows[column].isna().any():
            rows[column] = rows[column].astype(object).where(rows[column].notna(), value)
    return rows


def fill_point_axes_table(table: pa.Table) -> pa.Table:
    """``fill_point_axes`` for an Arrow table (the analysis reads Arrow before pandas)."""
    for column, value in _earlier_values(table.schema.names).items():
        i = table.schema.get_field_index(column)
        if i < 0:
            table = table.append_column(column, repeated(value, pa.string(), table.num_rows))
        elif table.column(i).null_count == table.num_rows:  # a tree from before the column: one value
            table = table.set_column(i, column, repeated(value, table.schema.field(i).type, table.num_rows))
        elif table.column(i).null_count:
            filled = pc.fill_null(table.column(i), pa.scalar(value, table.schema.field(i).type))
            table = table.set_column(i, column, filled)
    return table


def repeated(value: str, type_: pa.DataType, rows: int) -> pa.Array:
    """``rows`` times ``value`` as ``type_`` (string, or dictionary-encoded: one entry, every index 0), built
    whole: filling 20,000,000 nulls took 0.6 s a column, this 0.02 s."""
    if pa.types.is_dictionary(type_):
        indices = pa.array(np.zeros(rows, dtype=type_.index_type.to_pandas_dtype()), type_.index_type)
        return pa.DictionaryArray.from_arrays(indices, pa.array([value], type_.value_type))
    return pa.repeat(pa.scalar(value, type_), rows)


def has_point_axes(rows: pd.DataFrame) -> bool:
    """Whether ``fill_point_axes`` would leave ``rows`` as they are (every such column present, none null)."""
    return all(c in rows and not rows[c].isna().any() for c in _earlier_values(rows.columns))


def latest(rows: pd.DataFrame, key: Sequence[str] = layout.POINT_KEY) -> pd.DataFrame:
    """One row per point: the row with the latest ``measured_at`` wins (a row without one loses; equal
    times: the larger ``run_id``, then the later row). The rule every reader of the tree applies. Rows written
    before a point-key column existed count as measured at its earlier value (``fill_point_axes``)."""
    if any(k in layout.EARLIER_POINT_VALUES for k in key) and not has_point_axes(rows):
        rows = fill_point_axes(rows.copy())  # a copy: the caller's rows stay as they were
    order = [c for c in ("measured_at", "run_id") if c in rows.columns]
    ordered = rows.sort_values(order, kind="stable", na_position="first") if order else rows
    return ordered.drop_duplicates(subset=list(key), keep="last")


def algo_that_ran(layers: pd.DataFrame) -> pd.Series:
    """Per layer row, the algorithm that ran the layer: ``algo_used`` (a fallback, a plan's choice, Find's pick),
    else the requested ``algo`` (rows older than that column). As strings: readers may hold both columns as
    categoricals of different categories, which cannot fill one another."""
    used = layers["algo_used"] if "algo_used" in layers else layers["algo"]
    return used.astype(object).fillna(layers["algo"].astype(object)).astype(str)


def leaf_points(leaf: Path, columns: Sequence[str]) -> tuple[pd.DataFrame, list[str]]:
    """``columns`` of every points file in one leaf, and a line per file that could not be read (the others
    are still read)."""
    frames, problems = [], []
    for path in layout.table_files(leaf, "points"):
        try:
            present = [c for c in columns if c in pq.read_schema(path).names]  # older files lack newer columns
            frames.append(pq.read_table(path, columns=present).to_pandas())
        except FileNotFoundError:
            continue  # merged away by a run finishing meanwhile: its rows are in the merged file
        except (OSError, pa.ArrowException) as e:
            problems.append(f"unreadable {path.name}: {str(e)[:80]}")
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns}), problems
    rows = pd.concat(frames, ignore_index=True)
    for c in columns:
        if c not in rows:
            rows[c] = None
    return fill_point_axes(rows) if any(c in layout.EARLIER_POINT_VALUES for c in columns) else rows, problems


def latest_leaf_points(leaf: Path, columns: Sequence[str]) -> tuple[pd.DataFrame, list[str]]:
    """The latest row of each point of one leaf (``columns`` plus what the rule needs), and unreadable files."""
    key = layout.LEAF_POINT_KEY
    wanted = list(dict.fromkeys([*key, "measured_at", "run_id", *columns]))
    rows, problems = leaf_points(leaf, wanted)
    return latest(rows, key).reset_index(drop=True), problems


def run_records(leaf: Path) -> tuple[list[RunManifest], list[str]]:
    """The run manifests (run-*.json) of one leaf, and a line per file that could not be read."""
    runs, problems = [], []
    for path in layout.run_files(leaf):
        try:
            runs.append(read_manifest(path))
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as e:
            problems.append(f"unreadable {path.name}: {e}")
    return runs, problems


@dataclass
class PlannedPoints:
    """What a leaf planned, joined record by record (``add``): the union of the records' point keys and the
    largest count of the records that give only one (``count``; see ``planned_points``). Holds the keys, not
    the records."""

    keys: set[tuple] = field(default_factory=set)
    least: int | None = None  # the largest count of a record without keys: the answer is at least this

    def add(self, record: RunManifest | Mapping[str, Any]) -> None:
        run = record if isinstance(record, RunManifest) else RunManifest.from_dict({"run_id": "", **record})
        if run.points_planned_keys is not None:
            self.keys |= {leaf_point(k) for k in run.points_planned_keys}
        elif run.points_planned is not None:
            self.least = max(self.least or 0, int(run.points_planned))

    @property
    def count(self) -> int | None:
        if not self.keys and self.least is None:
            return None
        return max(len(self.keys), self.least or 0)


def planned_points(records: Iterable[RunManifest | Mapping[str, Any]]) -> int | None:
    """How many points a leaf planned: the union of what each of its runs planned.

    A run record lists its points (``points_planned_keys``: layout.LEAF_POINT_KEY's values; records written
    before the layout, l2 and direction axes list size, batch and dtype, and count as planned at those axes'
    earlier values, so a forward and a training run of one leaf plan points apart); records written before that
    field existed give only a count, which then bounds the answer from below. None where no record says.
    """
    planned = PlannedPoints()
    for record in records:
        planned.add(record)
    return planned.count


def leaf_point(values: Sequence[Any]) -> tuple[Any, ...]:
    """A planned point's key (``values`` in layout.LEAF_POINT_KEY's order), a shorter one of an earlier record
    completed with the values its points were measured at (layout.EARLIER_POINT_VALUES)."""
    rest = layout.LEAF_POINT_KEY[len(values) :]
    return (*values, *(layout.EARLIER_POINT_VALUES[c] for c in rest))
