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

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from analysis.tree.read import POOL
from harness.results.read import repeated


def read_file(fragment: ds.Fragment, schema: pa.Schema, columns: list[str], keep: dict[str, pa.Array]) -> pa.Table:
    """``columns`` (in that order) of the file ``fragment`` with the types ``schema`` gives them; ``keep``: only
    the rows whose column holds one of these values (a column its folders name holds their value on every
    row). Raises what reading a broken file raises."""
    partition = ds.get_partition_keys(fragment.partition_expression)
    with fragment.filesystem.open_input_file(fragment.path) as source:
        metadata = pq.read_metadata(source)
        present = set(metadata.schema.to_arrow_schema().names)
        read = [c for c in columns if c in present and c not in partition]
        encoded = [c for c in read if pa.types.is_dictionary(schema.field(c).type)]
        parquet = pq.ParquetFile(source, metadata=metadata, read_dictionary=encoded, pre_buffer=True)
        t = parquet.read(columns=read, use_threads=False)
    for column, values in keep.items():
        if column in partition:  # the fragment was chosen by its folders' values: every row is kept
            continue
        held = t.column(column) if column in t.column_names else pa.nulls(t.num_rows, pa.string())
        t = t.filter(pc.is_in(pc.cast(held, pa.string()), value_set=values))
    arrays = []
    for c in columns:
        type_ = schema.field(c).type
        if c in partition:
            value = partition[c]
            arrays.append(pa.nulls(t.num_rows, type_) if value is None else repeated(value, type_, t.num_rows))
        elif c not in present:
            arrays.append(pa.nulls(t.num_rows, type_))
        else:
            column = t.column(c)
            arrays.append(column if column.type == type_ else pc.cast(column, type_, memory_pool=POOL))
    return pa.table(arrays, names=columns)
