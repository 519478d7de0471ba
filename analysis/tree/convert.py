"""From the Arrow tables read to the frames the analysis works on: shared categoricals, host_bound filled, and
rows of different models under one name kept apart."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from analysis.tree.read import DICTIONARY, POOL
from analysis.tree.records import LoadReport
from harness.results import hostbound
from harness.results.layout import EARLIER_LAYER_VALUES, PARTITION_KEYS, POINT_KEY

log = logging.getLogger(__name__)


# Identity columns held as categoricals (see _to_pandas): the text columns of the point key (those read
# dictionary-encoded, analysis.tree.read.DICTIONARY, and the partition keys), the run, and the layers' point
# direction, so that every key of a point or layer is integer codes (analysis.tree.keys).
CATEGORICAL = (
    *(c for c in POINT_KEY if c in PARTITION_KEYS or c in DICTIONARY["points"]),
    "run_id",
    *EARLIER_LAYER_VALUES,
)


def _to_pandas(tables: dict[str, pa.Table | None]) -> dict[str, pd.DataFrame]:
    """DataFrames whose identity columns are categoricals with one sorted category list shared by points and
    layers: a million layer rows group, sort and merge on small integer codes instead of strings.

    Empties ``tables`` as it goes: each layer column becomes its own block (no consolidation into 2-d blocks, a
    copy of every number) and its Arrow memory is released once converted, so millions of layer rows are never
    held twice. (The load reads its layers straight into a frame: analysis.tree.gather.)"""
    encoded = {}
    for name in list(tables):
        t = tables.pop(name)
        if t is None:
            encoded[name] = _empty(name)
            continue
        t = encode_categorical(t)
        # the layers' host_bound as a nullable boolean, not Python objects: millions of rows are masked fast
        mapper = {pa.bool_(): pd.BooleanDtype()}.get if name == "layers" else None
        # The points are few rows of many columns: consolidated (a copy of megabytes), else each column is a
        # block and every column a table adds to them warns of a fragmented frame (and is slower).
        encoded[name] = t.to_pandas(
            split_blocks=name != "points", self_destruct=True, memory_pool=POOL, types_mapper=mapper
        )
        del t
    return share_categories(encoded)


def encode_categorical(t: pa.Table) -> pa.Table:
    """``t`` with each CATEGORICAL column dictionary-encoded (those read as plain text, or renamed)."""
    for c in CATEGORICAL:
        i = t.schema.get_field_index(c)
        if i >= 0 and not pa.types.is_dictionary(t.schema.field(c).type):
            t = t.set_column(i, c, pc.dictionary_encode(t.column(c), memory_pool=POOL))
    return t


def share_categories(frames: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """``frames`` with each CATEGORICAL column holding one sorted category list across all of them (codes
    compare between points and layers), in place."""
    for c in CATEGORICAL:
        having = [df for df in frames.values() if c in df]
        cats = sorted(set().union(*(_present(df[c]) for df in having)))
        for df in having:
            df[c] = df[c].astype(str).astype(pd.CategoricalDtype(cats)) if df.empty else _recoded(df[c], cats)
    return frames


def _recoded(values: pd.Series, categories: list) -> pd.Series:
    """``values.cat.set_categories(categories)``: ``values`` itself where it has those categories already (the
    layers' identity columns are read so: analysis.tree.gather), else the codes mapped through a table of old
    code -> new code in one pass of numpy's take over their own narrow integers."""
    old = values.cat.categories
    if len(old) == len(categories) and list(old) == categories:  # as the layers are read (analysis.tree.gather)
        return values
    dtype = pd.CategoricalDtype(categories, ordered=values.cat.ordered)
    where = dtype.categories.get_indexer(old)  # -1: an old category not kept (none is: every used one is)
    table = np.append(where, -1).astype(code_type(len(categories)))  # its last entry: a missing value's code
    codes = np.take(table, values.cat.codes.to_numpy(), mode="wrap")  # -1 wraps to that last entry
    recoded = pd.Categorical.from_codes(codes, dtype=dtype, validate=False)
    return pd.Series(recoded, index=values.index, name=values.name)


def code_type(count: int) -> type:
    """The codes pandas holds for ``count`` categories (int8 below 127, then int16, int32): an integer that
    numbers them and -1 (missing)."""
    return next(t for t in (np.int8, np.int16, np.int32, np.int64) if count < np.iinfo(t).max)


def _present(values: pd.Series) -> set:
    """The values a column holds (a categorical's used categories by counting its codes: millions of rows)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes, n = values.cat.codes.to_numpy(), len(values.cat.categories)
        return set(values.cat.categories[_used(codes, n)])
    return set(values.dropna().unique())


COUNTED = 1 << 20  # codes counted a slice at a time: bincount widens what it counts to intp (8 bytes a row)


def _used(codes: np.ndarray, n: int) -> np.ndarray:
    """Which of ``n`` categories the ``codes`` (-1: missing) use. Counted slice by slice, so that each slice's
    widened copy stays in the caches: 20,000,000 int8 codes 76 -> 28 ms (19 such columns a load)."""
    unsigned = codes.itemsize <= 2  # its own bits unsigned: a missing value (-1) is counted beyond, as the top code
    view = codes.view(np.dtype(f"u{codes.itemsize}")) if unsigned else codes
    counts = np.zeros(n, np.int64)
    for at in range(0, len(codes), COUNTED):
        part = view[at : at + COUNTED]
        counted = np.bincount(part, minlength=n)[:n] if unsigned else np.bincount(part + 1, minlength=n + 1)[1:]
        counts += counted
    return counts > 0


def _empty(table: str) -> pd.DataFrame:
    from harness.results import TABLES

    return TABLES[table].empty_table().to_pandas()


def with_host_bound(layers: pa.Table | None) -> pa.Table | None:
    """The layers rows with ``host_bound`` filled for rows written before the column existed (from their
    detail: harness.results.hostbound.derive), and without ``detail``, which nothing else reads."""
    if layers is None or "detail" not in layers.column_names:
        return layers
    filled = hostbound.derive(layers.column("host_bound"), layers.column("detail"))
    layers = layers.set_column(layers.schema.get_field_index("host_bound"), "host_bound", filled)
    return layers.drop_columns(["detail"])


def separate_models(tables: dict[str, pa.Table | None], report: LoadReport) -> dict[str, pa.Table | None]:
    """Rows of different models under one name (two files with one stem, a file named like a torchvision
    model) never mix: where a model name holds several ``model_hash`` values (null, a torchvision model, counts
    as one), each file's rows are renamed ``<name>@<first 8 hex digits of its hash>``, for every table."""
    mixed = mixed_models(tables.get("points"), report)
    return {name: keep_apart(t, mixed) for name, t in tables.items()} if mixed else tables


def mixed_models(points: pa.Table | None, report: LoadReport) -> set[str]:
    """The model names ``points`` holds rows of several models under (``model_hash``), recorded in ``report``
    and logged."""
    if points is None or "model_hash" not in points.column_names:
        return set()
    pairs = pa.table({c: pc.cast(points.column(c), pa.string()) for c in ("model", "model_hash")})  # one dictionary
    pairs = pairs.group_by(["model", "model_hash"]).aggregate([]).to_pylist()  # per file otherwise: not groupable
    hashes: dict[str, set] = {}
    for pair in pairs:
        hashes.setdefault(pair["model"], set()).add(pair["model_hash"])
    mixed = {m for m, hs in hashes.items() if len(hs) > 1}
    for m in sorted(mixed):
        report.separated_models[m] = sorted(m if h is None else f"{m}@{h[:8]}" for h in hashes[m])
        log.warning(
            "model %s: rows of %d different models (model_hash) kept apart as %s",
            m,
            len(hashes[m]),
            ", ".join(report.separated_models[m]),
        )
    return mixed


def keep_apart(t: pa.Table | None, mixed: set[str]) -> pa.Table | None:
    """``t`` with the model of each row whose name is in ``mixed`` renamed ``<name>@<hash>`` (plain text)."""
    if t is None or not mixed or "model_hash" not in t.column_names:
        return t
    models, digests = t.column("model").to_pylist(), t.column("model_hash").to_pylist()
    renamed = [f"{m}@{h[:8]}" if m in mixed and h is not None else m for m, h in zip(models, digests)]
    return t.set_column(t.schema.get_field_index("model"), "model", pa.array(renamed, pa.string()))
