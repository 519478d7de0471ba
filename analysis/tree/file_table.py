"""One Parquet file of a results tree read as the dataset scan reads it, without the scan's cost per file.

A dataset's ``Fragment.to_table`` (or one scan over every file) set up its execution for each file: on the layers
files of the 20,000,000-row tree it took 5.8-7.1 ms a file (2,500 rows, 40 columns) where ``ParquetFile.read``
with its column chunks fetched in one go (``pre_buffer``) took 2.7 ms, and streaming the scan's batches alone
took 17.5 s of the 20,000,000 rows (benchmarks/analysis_scale.py). What the scan did beside reading is done here,
the same way: the partition keys (stage, gpu, model, algo) from the file's folders, a column the file lacks as
nulls, each column cast to the table's schema, and the rows the filters leave out (of other runs; of another
gpu, say, in a file whose folders do not name its gpu) left out.

A column that holds one value on every row of the file, as its statistics say (``_constants``), is not decoded
but made from that value, as a partition key is: half the columns of a run's layers file and 90 of the 150 of a
points file are such (the run, the batch size, the versions, the GPU's inventory, ...). Reading 2,000 points files
took 8.8-9.1 s, so 7.1-7.4 s; 20,000,000 layer rows 12.8-14.3 s, so 12.0-13.7 s (2 threads, median 13.4 -> 12.1).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from analysis.tree.read import POOL
from harness.results.read import repeated

# The arrays of one value _repeated keeps: at most this many, each of at most REPEATED_ROWS rows (a campaign's
# points files hold 100 rows, its layers files 10,000: 512 int64 arrays of 16,384 rows are 64 MB at most).
REPEATED_KEPT = 512
REPEATED_ROWS = 16_384


@dataclass(frozen=True)
class Wanted:
    """The columns to read of a table's files, in order, with their types in the table's schema and the
    dictionary-encoded ones among them: looked up once for a read, not once a file (150 columns, 2,000 files)."""

    names: list[str]
    types: dict[str, pa.DataType]
    encoded: list[str]
    simple: frozenset[str]  # those a file's statistics may show to hold one value (_constants)

    @classmethod
    def of(cls, schema: pa.Schema, columns: list[str]) -> Wanted:
        types = {c: schema.field(c).type for c in columns}
        encoded = [c for c in columns if pa.types.is_dictionary(types[c])]
        return cls(list(columns), types, encoded, frozenset(c for c in columns if _simple(types[c])))


def read_file(fragment: ds.Fragment, wanted: Wanted, keep: dict[str, pa.Array]) -> pa.Table:
    """The ``wanted`` columns (in that order) of the file ``fragment`` with their types; ``keep``: only the rows
    whose column holds one of these values (a column its folders name holds their value on every row). Raises
    what reading a broken file raises."""
    partition = ds.get_partition_keys(fragment.partition_expression)
    columns, types = wanted.names, wanted.types
    with fragment.filesystem.open_input_file(fragment.path) as source:
        parquet = _opened(source, [c for c in wanted.encoded if c not in partition])
        schema = parquet.schema_arrow
        present = [c for c in columns if c not in partition and schema.get_field_index(c) >= 0]
        simple = [c for c in present if c in wanted.simple and schema.field(c).type == types[c]]
        constant = _constants(parquet.metadata, simple)
        t = parquet.read(columns=[c for c in present if c not in constant], use_threads=False)
    filtered = False
    for column, values in keep.items():
        if column in partition:  # the fragment was chosen by its folders' values: every row is kept
            continue
        filtered = True
        if column in constant:  # every row kept or none
            one = _repeated(constant[column], types[column], 1)
            if not pc.is_in(pc.cast(one, pa.string()), value_set=values)[0].as_py():
                t = t.filter(pa.array(np.zeros(t.num_rows, np.bool_)))
            continue
        at = t.schema.get_field_index(column)
        held = t.column(at) if at >= 0 else pa.nulls(t.num_rows, pa.string())
        t = t.filter(pc.is_in(pc.cast(held, pa.string()), value_set=values))
    # a filter that keeps no row leaves a column no chunk (so no dictionary whose values become categories): the
    # constant columns too, as when they were read and filtered
    none_kept = filtered and t.num_rows == 0
    arrays, read = [], set(t.schema.names)  # not t.column_names: 0.09 ms a file of 150 columns, this 0.01
    for c in columns:
        type_ = types[c]
        if c in partition:
            arrays.append(_repeated(partition[c], type_, t.num_rows))
        elif c in constant:
            arrays.append(pa.chunked_array([], type_) if none_kept else _repeated(constant[c], type_, t.num_rows))
        elif c not in read:  # a column the file lacks
            arrays.append(pa.nulls(t.num_rows, type_))
        else:
            column = t.column(c)
            arrays.append(column if column.type == type_ else pc.cast(column, type_, memory_pool=POOL))
    return pa.table(arrays, names=columns)


def _repeated(value, type_: pa.DataType, rows: int) -> pa.Array:
    """``rows`` times ``value`` (None: null) as ``type_``: a partition key's or a constant column's array. One of
    at most REPEATED_ROWS rows is kept and given again for the same three (``_kept``; Arrow arrays are
    immutable): the files of a campaign share most such values and lengths (the 90 constant columns of 2,000
    points files of 100 rows each), and building each array anew held the interpreter's lock for 0.9 s of
    reading them and the layers. Longer ones are made each time: their cost is their rows, and 512 of them kept
    could hold hundreds of megabytes."""
    if rows > REPEATED_ROWS:
        return _made(value, type_, rows)
    return _kept(value, type_, rows)


def _made(value, type_: pa.DataType, rows: int) -> pa.Array:
    return pa.nulls(rows, type_) if value is None else repeated(value, type_, rows)


_kept = functools.lru_cache(maxsize=REPEATED_KEPT, typed=True)(_made)


def forget() -> None:
    """Let go of the arrays ``_repeated`` keeps (a read's end: not held for the rest of the process)."""
    _kept.cache_clear()


def _constants(metadata: pq.FileMetaData, names: list[str]) -> dict[str, object]:
    """The columns among ``names`` (of a simple type, _simple, read as the file holds them) that hold one value on
    every row of the file, by its row groups' statistics, with that value (None: null on every row). Such a
    column is not decoded: on the layers files of a campaign (a run's, 10,000 rows) half their columns are (the
    run, the batch size, the dtype, the algorithm used, ...), which took more than half the decoding, and so on
    the points'. A column without statistics, or whose minimum is not its maximum, is read. Floating-point
    columns are left out: a NaN is in neither bound."""
    rows = metadata.num_rows
    if rows == 0 or metadata.num_row_groups == 0:
        return {}
    wanted = set(names)
    found: dict[str, object] = {}
    for g in range(metadata.num_row_groups):
        group = metadata.row_group(g)
        seen: dict[str, object] = {}
        for j in range(group.num_columns):
            chunk = group.column(j)
            name = chunk.path_in_schema
            if name not in wanted or (g and name not in found):
                continue
            value = _one_value(chunk.statistics, group.num_rows)
            if value is not _VARIES and (g == 0 or found[name] == value):
                seen[name] = value
        found = seen
    return {name: value.decode() if isinstance(value, bytes) else value for name, value in found.items()}


_VARIES = object()


def _one_value(stats: pq.Statistics | None, rows: int):
    """The raw value every row of a row group holds (None: null), or _VARIES where the statistics do not say."""
    if stats is None or not stats.has_null_count:
        return _VARIES
    if stats.null_count == rows:
        return None
    if stats.null_count == 0 and stats.has_min_max and stats.min_raw == stats.max_raw:
        return stats.min_raw
    return _VARIES


def _simple(type_: pa.DataType) -> bool:
    """Signed integers, booleans and text (dictionary-encoded or not): types whose statistics are their values
    (text as UTF-8 bytes). Not unsigned integers: their raw statistics are the stored signed numbers (a uint32
    of 2**31 or more reads negative)."""
    if pa.types.is_dictionary(type_):
        type_ = type_.value_type
    signed = pa.types.is_integer(type_) and not pa.types.is_unsigned_integer(type_)
    return signed or pa.types.is_boolean(type_) or pa.types.is_string(type_)


def _opened(source: pa.NativeFile, encoded: list[str]) -> pq.ParquetFile:
    """The file ``source`` opened once, its footer read, the text columns ``encoded`` to be read as dictionaries;
    where the file lacks one of them (written before that column existed), opened again with those it has.
    Reading the footer on its own and then opening the file with it cost 0.35 ms more a file of 150 columns
    (2,000 points files and 2,000 layers files at a campaign's scale)."""
    try:
        return pq.ParquetFile(source, read_dictionary=encoded, pre_buffer=True)
    except KeyError:  # a column named in read_dictionary that the file does not have
        metadata = pq.read_metadata(source)
        present = set(metadata.schema.to_arrow_schema().names)
        has = [c for c in encoded if c in present]
        return pq.ParquetFile(source, metadata=metadata, read_dictionary=has, pre_buffer=True)
