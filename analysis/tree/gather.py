"""The layers of a results tree read file by file straight into the arrays of their pandas frame; the points
read file by file into one Arrow table (``read_points``).

Why not one scan of the dataset and ``Table.to_pandas``: at 20,000,000 layer rows the scan alone (its batches
streamed and dropped) took 17.5 s on the 2-core development machine, and the scan's Arrow table (3.9 GB) and
the frame made from it were both alive during the conversion (read and convert: 32 s there). Here the arrays of
the frame are made once for every row (the files' footers give the counts), each file is read alone
(analysis.tree.file_table: the reading releases the GIL), and runs of consecutive files of about GROUP_ROWS rows
together, read by one thread of a pool, are put end to end and their columns copied into place at the run's
offset (copying file by file cost Python's overhead on each of 40 columns of 2,000 files: reading the 20,000,000
layer rows took 15.8 s, in runs 12.8 s).

What each file's table becomes is what the scan's table became before: the same columns and types (integers of
analysis.tree.read.INT32 held as int32), the same Arrow-level steps on its rows (the caller's ``prepare``, on
each run's rows: point axes filled, host_bound filled, models of one name kept apart), the same pandas types
(``Table.to_pandas`` of the whole: integers with a null become float64 with NaN, booleans nullable,
dictionary-encoded text categoricals whose categories come in order of first appearance, file after file).
tests/analysis/test_gather.py holds the frame equal to the scan's, converted whole.

Text is held as int8 indices while the files are read, widened for a column whose file has more entries than
that holds. An integer beyond int32 in a column of INT32 makes the read start again with the integers as the
files hold them (int64), narrowed afterwards where every value fits (the rule of ``read.narrow``).
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from analysis.errors import AnalysisError
from analysis.threads import workers
from analysis.tree import file_table
from analysis.tree.convert import CATEGORICAL, code_type
from analysis.tree.file_table import Wanted, read_file
from analysis.tree.filters import Filters
from analysis.tree.read import (
    INT32,
    UNUSED,
    _dataset,
    fragments,
    no_match,
    other_version,
    other_versions,
    unreadable,
)
from analysis.tree.records import LoadReport

log = logging.getLogger(__name__)

NUMBER, BOOLEAN, TEXT, OTHER = "number", "boolean", "text", "other"

# Rows of the layers files read by one thread as a run of consecutive files (_groups), and points files read,
# put end to end and combined by one thread (a points file has a hundred rows of 150 columns: combining 2,000
# files' chunks of every column took 1.5 s after the reading; in the reading threads, by group, 2 s less)
GROUP_ROWS = 1 << 17
POINTS_GROUP = 64


class _Wider(Exception):
    """An integer does not fit int32: read again with the integers at the files' own width."""


@dataclass
class _Column:
    """One column of the frame being filled. ``values``: numbers and booleans as they will be held; text:
    each file's own dictionary indices at first, the frame's category codes once ``_categorical`` has run.
    ``nulls`` (True where null): booleans always, numbers from their first null on. ``parts``: per file, the
    dictionary of its text column (in index order) or its Arrow array of another type."""

    name: str
    kind: str
    values: np.ndarray | None = None
    nulls: np.ndarray | None = None
    parts: dict[int, pa.Array] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)  # text: writers hold it (its array may grow)


@dataclass
class _Files:
    """The fragments to read, each file's first row in the frame, and what reading found."""

    fragments: list[ds.Fragment]
    starts: np.ndarray  # int64, one more than fragments: file i fills rows starts[i]:starts[i] + kept[i]
    kept: list[int]  # rows each file gave (after the row filter; 0 for an unreadable file)
    readable: list[bool] = field(default_factory=list)  # whether each file's footer could be read
    versions: dict[str, list] = field(default_factory=dict)  # path -> schema versions other than ours
    lock: threading.Lock = field(default_factory=threading.Lock)


def read_layers(
    roots: list[Path],
    filters: Filters,
    report: LoadReport,
    runs: list[str] | None,
    unread: Sequence[str],
    prepare: Callable[[pa.Table], pa.Table],
) -> pd.DataFrame | None:
    """The layers rows under ``roots`` (filtered; ``runs``: only these run ids) as one frame, without the columns
    of read.UNUSED and ``unread``, each file's table passed through ``prepare``; None where there is none."""
    data = _dataset(roots, "layers")
    columns = [c for c in data.schema.names if c not in UNUSED["layers"] and c not in unread]
    files = fragments(data, filters)
    return gather("layers", data.schema, files, columns, report, prepare, _keep(filters, runs), workers())


def read_points(roots: list[Path], filters: Filters, report: LoadReport) -> pa.Table | None:
    """The points rows under ``roots`` (filtered), every column but read.UNUSED's, as one Arrow table: each file
    read alone (analysis.tree.file_table), groups of POINTS_GROUP files put end to end and each column made one
    array in the threads, then the groups' tables, in the dataset's order (a few hundred thousand rows: 2,000
    files of 150 columns, whose cost is per file). None where no row is read; an error where no file matches the
    filters together."""
    data = _dataset(roots, "points")
    files = fragments(data, filters)
    if not files:
        raise no_match(roots, filters)
    columns = [c for c in data.schema.names if c not in UNUSED["points"]]
    wanted, keep, lock, versions = Wanted.of(data.schema, columns), _keep(filters, None), threading.Lock(), {}
    reported = len(report.bad_files)

    def group(frags: list[ds.Fragment]) -> tuple[pa.Table | None, int]:
        """The group's files read, put end to end and each column made one array, and how many were read."""
        parts = [t for f in frags if (t := _checked(f, wanted, keep, "points", report, lock, versions)) is not None]
        return (pa.concat_tables(parts).combine_chunks() if parts else None), len(parts)

    # each column made one array: converting 2,000 chunks of every column to pandas took 2.0 s at 200,000 points,
    # combining them first 1.1 s and converting the result 0.2 s (the same frame); combined group by group in the
    # threads, then the groups' arrays
    groups = [files[i : i + POINTS_GROUP] for i in range(0, len(files), POINTS_GROUP)]
    try:
        with ThreadPoolExecutor(workers()) as pool:
            done = list(pool.map(group, groups))
    finally:
        file_table.forget()
    report.bad_files[reported:] = sorted(report.bad_files[reported:], key=lambda b: b.path)
    if versions:
        raise other_versions("points", versions)
    report.files["points"] = sum(n for _, n in done)
    parts = [t for t, _ in done if t is not None]
    del done
    table = pa.concat_tables(parts).combine_chunks() if parts else None
    del parts
    return table if table is not None and table.num_rows else None


def _keep(filters: Filters, runs: list[str] | None) -> dict[str, pa.Array]:
    """The values each filtered column may hold (read_file: for files whose folders do not say)."""
    keep = {key: pa.array(list(values), pa.string()) for key, values in filters.items()}
    if runs is not None:
        keep["run_id"] = pa.array(runs, pa.string())
    return keep


def gather(
    table: str,
    schema: pa.Schema,
    fragments: Sequence[ds.Fragment],
    columns: list[str],
    report: LoadReport,
    prepare: Callable[[pa.Table], pa.Table],
    keep: dict[str, pa.Array] | None = None,
    workers: int = 2,
) -> pd.DataFrame | None:
    """The rows of ``fragments`` (files of ``table`` under ``schema``, in the order given; ``keep``: only the rows
    whose column holds one of these values, file_table.read_file), their ``columns`` and each file's
    table passed through ``prepare``, as one frame (None where no row is read). An unreadable file is reported
    (``report.bad_files``) and skipped; files of another schema version are an error that lists them.
    ``workers``: threads reading files."""
    ordered = list(fragments)  # as the dataset lists them: tree after tree, each tree's files in path order
    wanted, keep = Wanted.of(schema, columns), keep or {}
    reported = len(report.bad_files)  # those of other tables, read before
    try:
        frame = _gather(table, wanted, ordered, report, prepare, keep, workers, wide=False)
    except _Wider:
        log.info("%s: an integer does not fit int32; reading again at the files' width", table)
        del report.bad_files[reported:]  # this read's: reported again by the second
        frame = _gather(table, wanted, ordered, report, prepare, keep, workers, wide=True)
    finally:
        file_table.forget()
    report.bad_files[reported:] = sorted(report.bad_files[reported:], key=lambda b: b.path)  # not as threads went
    return frame


def _gather(table, wanted, fragments, report, prepare, keep, workers, wide):
    files = _count(fragments, workers, report, table)
    frame_columns: list[_Column] | None = None
    total = int(files.starts[-1])

    def read(group: range) -> pa.Table | None:
        """The rows of the group's files, put end to end and passed through ``prepare`` once; None where none of
        its files could be read. The group's rows fill the frame from its first file's start on (``kept``)."""
        parts = []
        for i in group:
            if not files.readable[i]:  # its footer could not be read
                continue
            t = _checked(files.fragments[i], wanted, keep, table, report, files.lock, files.versions)
            if t is None:
                continue
            if t.num_rows > files.starts[i + 1] - files.starts[i]:
                raise AnalysisError(
                    f"{files.fragments[i].path}: {t.num_rows} rows read where its footer said "
                    f"{files.starts[i + 1] - files.starts[i]}: was it rewritten while the analysis read it?"
                )
            parts.append(t)
        if not parts:
            return None
        return prepare(pa.concat_tables(parts) if len(parts) > 1 else parts[0])  # read_file: the same schema

    def fill(group: range, t: pa.Table) -> None:
        assert frame_columns is not None
        if [c.name for c in frame_columns] != t.schema.names:
            path = files.fragments[group[0]].path
            raise ValueError(f"{path}: columns {t.schema.names} differ from the first file's")
        at = int(files.starts[group[0]])
        for column in frame_columns:
            _fill(column, t.column(column.name), at, group[0], total, files.lock)
        files.kept[group[0]] = t.num_rows  # the group's other files: 0, their rows counted here

    groups = _groups(files.starts, GROUP_ROWS)
    first = 0
    while first < len(groups) and frame_columns is None:
        t = read(groups[first])
        if t is not None:
            frame_columns = [_Column(f.name, _kind(f)) for f in t.schema]
            for column in frame_columns:
                _allocate(column, t.schema.field(column.name).type, total, table, wide)
            fill(groups[first], t)
        first += 1
    if frame_columns is None:
        return _finish_report(files, report, table, frame=None)

    def one(group: range) -> None:
        t = read(group)
        if t is not None:
            fill(group, t)

    rest = groups[first:]
    if workers > 1 and len(rest) > 1:
        with ThreadPoolExecutor(workers) as pool:
            for _ in pool.map(one, rest):
                pass
    else:
        for group in rest:
            one(group)
    if files.versions:
        raise other_versions(table, files.versions)
    rows = _compact(frame_columns, files)
    frame = pd.DataFrame({c.name: _series_values(c, files, table, wide) for c in frame_columns}, copy=False)
    return _finish_report(files, report, table, frame if rows else None)


def _groups(starts: np.ndarray, rows: int) -> list[range]:
    """The files in runs of consecutive ones of about ``rows`` rows together (by their footers), each run read
    by one thread and copied into the frame as one table. Copying file by file cost Python's overhead on every
    column of every file (2,000 files of 40 columns at 20,000,000 layer rows); a larger run holds more of its
    Arrow arrays at once."""
    groups, first = [], 0
    for i in range(len(starts) - 1):
        if starts[i + 1] - starts[first] >= rows:
            groups.append(range(first, i + 1))
            first = i + 1
    if first < len(starts) - 1:
        groups.append(range(first, len(starts) - 1))
    return groups


def _count(fragments: list[ds.Fragment], workers: int, report: LoadReport, table: str) -> _Files:
    """Each file's rows, from its footer (a file whose footer cannot be read is reported and gives none). The
    footers are not kept: 2,000 layers files' took 0.25 GB, which stayed in the heap, scattered, after they were
    freed."""
    files = _Files(list(fragments), np.zeros(len(fragments) + 1, np.int64), [0] * len(fragments))
    files.readable = [True] * len(fragments)

    def footer(i: int) -> int:
        frag = files.fragments[i]
        try:
            with frag.filesystem.open_input_file(frag.path) as source:
                return pq.read_metadata(source).num_rows
        except (OSError, pa.ArrowException) as e:
            files.readable[i] = False
            _bad(report, files.lock, frag.path, table, e)
            return 0

    if workers > 1 and len(fragments) > 1:
        with ThreadPoolExecutor(workers) as pool:
            counts = list(pool.map(footer, range(len(fragments))))
    else:
        counts = [footer(i) for i in range(len(fragments))]
    files.starts[1:] = np.cumsum(counts)
    return files


def _checked(frag, wanted, keep, table, report, lock, versions) -> pa.Table | None:
    """One file's rows (file_table.read_file), or None where it cannot be read (reported); a file of another
    schema version is noted in ``versions`` (path -> versions), under ``lock``."""
    try:
        t = read_file(frag, wanted, keep)
    except (OSError, pa.ArrowException) as e:  # ArrowInvalid: not Parquet, truncated, bad pages
        _bad(report, lock, frag.path, table, e)
        return None
    if (found := other_version(t)) is not None:
        with lock:
            versions[frag.path] = found
    return t


def _bad(report: LoadReport, lock: threading.Lock, path: str, table: str, e: BaseException) -> None:
    with lock:
        if not any(b.path == path and b.table == table for b in report.bad_files):
            report.bad_files.append(unreadable(path, table, e))


def _kind(f: pa.Field) -> str:
    t = f.type
    if pa.types.is_dictionary(t) and (pa.types.is_string(t.value_type) or pa.types.is_large_string(t.value_type)):
        return TEXT
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return NUMBER
    if pa.types.is_boolean(t):
        return BOOLEAN
    return OTHER


def _allocate(column: _Column, type_: pa.DataType, rows: int, table: str, wide: bool) -> None:
    """The column's arrays for every row: read.INT32's integers as int32 and text indices as int16, unless
    ``wide`` (then as the files hold them)."""
    if column.kind == NUMBER:
        narrow = not wide and pa.types.is_integer(type_) and column.name in INT32.get(table, ())
        column.values = np.empty(rows, np.int32 if narrow else type_.to_pandas_dtype())
    elif column.kind == BOOLEAN:
        column.values = np.empty(rows, np.bool_)
        column.nulls = np.empty(rows, np.bool_)
    elif column.kind == TEXT:  # int8 until a file's dictionary needs more (_widened)
        column.values = np.empty(rows, np.int8)


def _fill(column: _Column, data: pa.ChunkedArray, at: int, file: int, total: int, lock) -> None:
    """Copy one file's column into the frame's arrays at row ``at``. Raises _Wider where a value does not fit
    them."""
    end = at + len(data)
    if column.kind == OTHER:
        column.parts[file] = data.combine_chunks() if data.num_chunks != 1 else data.chunk(0)
        return
    if column.kind == TEXT:
        dictionary, indices = _indices(data)
        with column.lock:
            if len(dictionary) > np.iinfo(column.values.dtype).max:
                column.values = _widened(column.values, len(dictionary))
            column.parts[file] = dictionary
            column.values[at:end] = indices
        return
    if column.kind == NUMBER and (not data.null_count or pa.types.is_floating(data.type)):
        for chunk in data.chunks:  # chunk by chunk: no copy of the group's column made first (a null: NaN)
            _put(column.values, chunk.to_numpy(zero_copy_only=False), at)
            at += len(chunk)
        return
    arr = data.combine_chunks() if data.num_chunks != 1 else data.chunk(0)
    if column.kind == BOOLEAN:
        column.nulls[at:end] = arr.is_null().to_numpy(zero_copy_only=False)
        column.values[at:end] = (arr.fill_null(False) if arr.null_count else arr).to_numpy(zero_copy_only=False)
        return
    with lock:  # an integer column's first null
        if column.nulls is None:
            column.nulls = np.zeros(total, np.bool_)
    column.nulls[at:end] = arr.is_null().to_numpy(zero_copy_only=False)
    _put(column.values, arr.fill_null(pa.scalar(0, arr.type)).to_numpy(), at)


def _put(held: np.ndarray, values: np.ndarray, at: int) -> None:
    """``values`` copied into ``held`` from row ``at``. Raises _Wider where one does not fit ``held``'s type."""
    if values.dtype != held.dtype and held.dtype.kind == "i" and len(values):
        low, high = _bounds(held.dtype)
        if values.min() < low or values.max() > high:  # numpy would wrap it silently
            raise _Wider()
    held[at : at + len(values)] = values


@functools.cache
def _bounds(dtype: np.dtype) -> tuple[int, int]:
    """The least and greatest values of an integer type (np.iinfo made once a type, not once a column of a file:
    it held the interpreter's lock for 0.2 s of reading 20,000,000 layer rows)."""
    info = np.iinfo(dtype)
    return int(info.min), int(info.max)


def _widened(codes: np.ndarray, count: int) -> np.ndarray:
    """``codes`` as an array that numbers ``count`` categories (text arrays start as int8: a frame's layers
    rarely have more than 127 of anything but layer names and runs, and int16 for every text column was 15
    bytes a row more, 0.3 GB at 20,000,000 rows)."""
    return codes.astype(code_type(count))


def _indices(data: pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
    """A group's text column as one dictionary (the chunks' unified: values in order of first appearance, those
    of a file that gave no rows included) and indices into it (-1 for null)."""
    if data.num_chunks == 0:
        return pa.array([], pa.string()), np.empty(0, np.int64)
    if data.num_chunks > 1:
        data = data.unify_dictionaries()
    indices = pa.chunked_array([chunk.indices for chunk in data.chunks])
    at = (pc.fill_null(indices, -1) if indices.null_count else indices).to_numpy()
    return data.chunk(0).dictionary, at


def _compact(columns: list[_Column], files: _Files) -> int:
    """Close the gaps left by rows a file did not give (filtered out, unreadable): each file's rows moved down
    to follow the previous file's, in place; the arrays shortened to the rows kept. The rows kept."""
    kept = np.asarray(files.kept, np.int64)
    new_starts = np.zeros(len(kept) + 1, np.int64)
    new_starts[1:] = np.cumsum(kept)
    rows = int(new_starts[-1])
    if rows == int(files.starts[-1]):
        return rows
    moves = [(int(a), int(b), int(k)) for a, b, k in zip(files.starts[:-1], new_starts[:-1], kept) if k and a != b]
    for column in columns:
        for array in (column.values, column.nulls):
            if array is None:
                continue
            for old, new, k in moves:  # new < old: moving down never overwrites rows not yet moved
                array[new : new + k] = array[old : old + k]
    for column in columns:
        column.values = _shortened(column.values, rows)
        column.nulls = _shortened(column.nulls, rows)
    files.starts = new_starts
    return rows


def _shortened(array: np.ndarray | None, rows: int) -> np.ndarray | None:
    if array is None:
        return None
    array.resize(rows, refcheck=False)  # in place (every array here owns its memory): the rest handed back
    return array


def _series_values(column: _Column, files: _Files, table: str, wide: bool):
    """What the frame holds for ``column``: as ``Table.to_pandas`` would have made it from the whole table."""
    if column.kind == TEXT:
        return _categorical(column, files, ordered=column.name in CATEGORICAL)
    if column.kind == OTHER:
        parts = [column.parts[i] for i in range(len(files.fragments)) if i in column.parts]
        return pa.chunked_array(parts).to_pandas() if parts else pd.Series([], dtype=object)
    values, nulls = column.values, column.nulls
    column.values = column.nulls = None
    if column.kind == BOOLEAN:
        return pd.arrays.BooleanArray(values, nulls)
    if wide and column.name in INT32.get(table, ()) and np.issubdtype(values.dtype, np.integer):
        values = _narrowed(values)
    if nulls is not None and nulls.any():
        values = values.astype(np.float64)
        values[nulls] = np.nan
    return values


def _narrowed(values: np.ndarray) -> np.ndarray:
    """int64 values as int32 where every one fits (read.narrow's rule, on the frame's array)."""
    if len(values) and (values.min() < -(2**31) or values.max() >= 2**31):
        return values
    return values.astype(np.int32)


def _categorical(column: _Column, files: _Files, ordered: bool = False) -> pd.Categorical:
    """The frame's categorical: categories in order of first appearance, file after file (what unifying the
    chunks' dictionaries gives), each file's indices recoded (in place where the codes fit the array).
    ``ordered``: the categories sorted instead, as convert.share_categories sorts the identity columns (which
    then need not recode millions of rows again)."""
    position: dict = {}
    lookups: dict[tuple, np.ndarray] = {}  # the same dictionary in many files (a partition key's): made once
    per_file = []
    for i in range(len(files.fragments)):
        part = column.parts.pop(i, None)  # None: an unreadable file (a file of no rows still orders categories)
        if part is None:
            continue
        dictionary = tuple(part.to_pylist())
        lookup = lookups.get(dictionary)
        if lookup is None:
            codes_of = [position.setdefault(v, len(position)) if v is not None else -1 for v in dictionary]
            lookup = lookups[dictionary] = np.array([*codes_of, -1], np.int64)
        per_file.append((int(files.starts[i]), files.kept[i], lookup))
    categories = list(position)
    if ordered:  # each first-appearance position's rank among the sorted values; the last entry -1 stays -1
        order = sorted(range(len(categories)), key=categories.__getitem__)
        rank = np.full(len(categories) + 1, -1, np.int64)
        rank[order] = np.arange(len(categories))
        categories = [categories[i] for i in order]
        per_file = [(at, k, rank[lookup]) for at, k, lookup in per_file]
    indices, column.values = column.values, None
    codes = (
        indices if len(position) <= np.iinfo(indices.dtype).max else np.empty_like(indices, code_type(len(position)))
    )
    for at, k, lookup in per_file:
        codes[at : at + k] = lookup[indices[at : at + k]]  # index -1 (null) takes the last entry: -1
    del indices
    return pd.Categorical.from_codes(codes, dtype=_dtype_as_read(categories), validate=False)


def _dtype_as_read(categories: list) -> pd.CategoricalDtype:
    """The categorical type ``to_pandas`` gives a dictionary of these strings (the categories' own type
    included: ``object`` where there is none)."""
    dictionary = pa.DictionaryArray.from_arrays(pa.array([], pa.int32()), pa.array(categories, pa.string()))
    return dictionary.to_pandas().dtype


def _finish_report(files: _Files, report: LoadReport, table: str, frame: pd.DataFrame | None):
    bad = {b.path for b in report.bad_files}
    report.files[table] = sum(1 for f in files.fragments if f.path not in bad)
    return frame
