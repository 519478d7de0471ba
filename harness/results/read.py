"""Reading results/ back: the points and the layers tables as pyarrow datasets or pandas DataFrames.

A partition folder holds both tables and the run.json files, so a reader picks its table by file name
(pyarrow's ``ignore_prefixes``); the partition keys (stage, gpu, model, algo) come from the folder names.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds

from harness.results.schema import LAYERS, POINTS

TABLES = {"points": POINTS, "layers": LAYERS}


def dataset(root: str | Path, table: str = "points") -> ds.Dataset:
    """The ``points`` or ``layers`` table of every run under ``root``, as one pyarrow dataset."""
    if table not in TABLES:
        raise ValueError(f"unknown table {table!r}; valid: {', '.join(TABLES)}")
    others = [t for t in TABLES if t != table]
    return ds.dataset(
        str(root), format="parquet", partitioning="hive", schema=TABLES[table],
        ignore_prefixes=[".", "_", "run", "trace", *others],
    )


def read(root: str | Path, table: str = "points") -> pd.DataFrame:
    return dataset(root, table).to_table().to_pandas()
