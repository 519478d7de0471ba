"""One Parquet file of a results tree read as the dataset scan reads it, without the scan's cost per file.

A dataset's ``Fragment.to_table`` (or one scan over every file) set up its execution for each file: on the layers
files of the 20,000,000-row tree it took 5.8-7.1 ms a file (2,500 rows, 40 columns) where ``ParquetFile.read``
with its column chunks fetched in one go (``pre_buffer``) took 2.7 ms, and streaming the scan's batches alone
took 17.5 s of the 20,000,000 rows (benchmarks/analysis_scale.py). What the scan did beside reading is done here,
the same way: the partition keys (stage, gpu, model, algo) from the file's folders, a column the file lacks as
nulls, each column cast to the table's schema, and the rows the filters leave out (of other runs; of another
gpu, say, in a file whose folders do not name its gpu) left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from analysis.tree.read import POOL
from harness.results.read import repeated


@dataclass(frozen=True)
class Wanted:
    """The columns to read of a table's files, in order, with their types in the table's schema and the
    dictionary-encoded ones among them: looked up once for a read, not once a file (150 columns, 2,000 files)."""

    names: list[str]
    types: dict[str, pa.DataType]
    encoded: list[str]

    @classmethod
    def of(cls, schema: pa.Schema, columns: list[str]) -> Wanted:
        types = {c: schema.field(c).type for c in columns}
        return cls(list(columns), types, [c for c in columns if pa.types.is_dictionary(types[c])])


def read_file(fragment: ds.Fragment, wanted: Wanted, keep: dict[str, pa.Array]) -> pa.Table:
    """The ``wanted`` columns (in that order) of the file ``fragment`` with their types; ``keep``: only the rows
    whose column holds one of these values (a column its folders name holds their value on every row). Raises
    what reading a broken file raises."""
    partition = ds.get_partition_keys(fragment.partition_expression)
    columns, types = wanted.names, wanted.types
    with fragment.filesystem.open_input_file(fragment.path) as source:
        parquet = _opened(source, [c for c in wanted.encoded if c not in partition])
        present = set(parquet.schema_arrow.names)
        read = [c for c in columns if c in present and c not in partition]
        t = parquet.read(columns=read, use_threads=False)
    for column, values in keep.items():
        if column in partition:  # the fragment was chosen by its folders' values: every row is kept
            continue
        held = t.column(column) if column in t.column_names else pa.nulls(t.num_rows, pa.string())
        t = t.filter(pc.is_in(pc.cast(held, pa.string()), value_set=values))
    arrays = []
    for c in columns:
        type_ = types[c]
        if c in partition:
            value = partition[c]
            arrays.append(pa.nulls(t.num_rows, type_) if value is None else repeated(value, type_, t.num_rows))
        elif c not in present:
            arrays.append(pa.nulls(t.num_rows, type_))
        else:
            column = t.column(c)
            arrays.append(column if column.type == type_ else pc.cast(column, type_, memory_pool=POOL))
    return pa.table(arrays, names=columns)


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
