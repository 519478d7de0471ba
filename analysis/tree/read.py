"""Reading the Parquet files of a results tree: the fast multi-threaded scan, else file by file to name an
unreadable file or one of another schema version; the filter check against what the tree holds."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from analysis.errors import AnalysisError, ResultsInputError, SchemaVersionError
from analysis.tree.filters import Filters
from analysis.tree.records import BadFile, LoadReport, tree_names
from harness.results import TABLES, dataset
from harness.results.layout import EARLIER_LAYER_VALUES, PARTITION_KEYS, POINT_KEY
from harness.results.schema import CONV_PARAMETERS, SCHEMA_VERSION

log = logging.getLogger(__name__)


def _memory_pool() -> pa.MemoryPool:
    """The allocator for reading: jemalloc where this pyarrow has it, else the system's. On 5,000,000 layer
    rows, reading and converting took 6.4 s with jemalloc, 7.1 s with the system allocator and 11.2 s with
    pyarrow's default here (mimalloc), which returns freed pages to the system and faults them in again.
    jemalloc is told to return freed pages at once (decay 0, for the process): the Arrow tables are freed
    column by column as pandas takes them over, and kept pages counted in the peak (load of 5,000,000 layer
    rows: peak 3.4 GB with jemalloc's default decay, 2.75 GB with 0, in the same time within the noise)."""
    try:
        pool = pa.jemalloc_memory_pool()
        pa.jemalloc_set_decay_ms(0)
        return pool
    except NotImplementedError:
        return pa.system_memory_pool()


POOL = _memory_pool()


# Columns no table, check or feature uses, left unread (a million layer rows: every column costs). The layers'
# detail is read only to fill host_bound on rows older than that column, then dropped (with_host_bound).
UNUSED = {
    "points": ("provenance",),
    "layers": (
        "device_name",
        "backend",
        "workspace_bytes",
        "arithmetic_intensity",
        "roofline_bound",
        "measured_at",
        "provenance",
        "legacy_flags",
        "legacy_percentage",
        "compute_type",
        "model_source",
        "kernels",  # the names (lists): the tables read kernel_family and tensor_cores
        "cudnn_engine",  # the torch baseline's engine name: no table reads it
        "nondeterministic",  # a training call's determinism: the layers table's record, no answer reads it
        "determinism_checked",
    ),
}


# Layer columns only the figures (the roofline) or the predictor (its features, its regret by requested
# algorithm) read: a run that makes neither leaves them unread (``unneeded_layer_columns``; 33 bytes a row held,
# 0.66 GB at 20,000,000 rows). tests/analysis/test_scale.py holds the tables and the report equal without them.
FOR_FIGURES = ("flops", "bytes")
FOR_PREDICTOR = ("flops", "bytes", "share_of_model", "out_h", "out_w", "algo_requested")

# Layer columns the load itself reads and nothing after it does: the schema version (checked as the files are
# read), the model hash (models of one name kept apart) and the mean (the median of rows without one). A run
# that asks for the layers without them (``unneeded_layer_columns``) has them dropped once the load is done:
# 13 bytes a row held, 0.26 GB at 20,000,000 rows. (The repeat stays: by_setting keys a layer row's point by it.)
FOR_LOAD_ONLY = ("schema_version", "model_hash", "mean_ms")
# Of those, the ones used only on each file's rows as it is read (the version checked, models of one name kept
# apart: analysis.tree.loader.layer_steps): a run that does not want them never has them in its frame.
FOR_EACH_FILE_ONLY = ("schema_version", "model_hash")


# The layer columns the load itself never reads: of the columns a caller of ``load(without=...)`` does not want,
# only these are left unread; any other is read, used by the load as ever, then dropped.
NOT_READ_BY_LOAD = tuple(dict.fromkeys((*FOR_FIGURES, *FOR_PREDICTOR)))


def unneeded_layer_columns(plots: bool = True, predictor: bool = True) -> tuple[str, ...]:
    """The layer columns a run that makes figures (``plots``) and the predictor or not does not need after the
    load: those it need not read at all, then FOR_LOAD_ONLY (read for the load, then dropped)."""
    needed = {*(FOR_FIGURES if plots else ()), *(FOR_PREDICTOR if predictor else ())}
    unread = (c for c in NOT_READ_BY_LOAD if c not in needed)
    return (*unread, *FOR_LOAD_ONLY)


# String columns of few distinct values, read dictionary-encoded (pandas categoricals): several times faster
# and smaller than strings on millions of layer rows. Categoricals of different categories cannot fill one
# another: "what ran a layer" (algo_used, else algo) is harness.results.read.algo_that_ran.
# Every text column of the point key (harness.results.layout.POINT_KEY, outside the partition keys, which the
# folder names encode) is one: a new point-key column is read encoded, so that the keys of millions of layer rows
# stay integers (analysis.tree.keys) rather than strings hashed row by row.
_POINT_TEXT = tuple(
    c for c in POINT_KEY if c not in PARTITION_KEYS and pa.types.is_string(TABLES["points"].field(c).type)
)
DICTIONARY = {
    "points": ("run_id", *_POINT_TEXT, "status", "model_source", "model_hash", "math_type"),
    "layers": (
        "run_id",
        *_POINT_TEXT,
        *EARLIER_LAYER_VALUES,  # point_direction: the point key's direction on a layer row
        "layer_name",
        "algo_requested",
        "algo_used",
        "status",
        "math_type",
        "model_hash",
        "kernel_family",
    ),
}


# Integer columns of the layers read as int32: the geometry and counts of a convolution (cuDNN's own descriptors
# hold them as 32-bit ints), not the FLOPs and bytes. On 20,000,000 layer rows each int64 column costs 160 MB
# and these are twenty of them: 1.6 GB less to read, convert and hold. A tree whose values do not fit (none the
# harness writes) is read as int64, as before (``narrow``).
INT32 = {
    "layers": (
        "input_size",
        "batch_size",
        "layer_index",
        *CONV_PARAMETERS,
        "in_h",
        "in_w",
        "out_h",
        "out_w",
        "n",
        "repeat",
    ),
}


# The dictionary-encoded layer columns' indices read as int16, not the reader's int32: 17 columns, 0.68 GB less
# Arrow memory at 20,000,000 rows while the table is read and converted (pandas' categoricals keep their own
# codes). A file whose dictionary has more than 32,767 entries fails the cast and the table is read file by file.
DICTIONARY_INDEX = {"layers": pa.int16()}


def _projection(table: str, columns: list[str], schema: pa.Schema) -> dict[str, ds.Expression]:
    """The scan's columns, each int64 column of INT32 cast to int32 and each dictionary-encoded one's indices
    to DICTIONARY_INDEX (a value that does not fit fails the cast, and the table is read file by file instead,
    then ``narrow``-ed where it fits)."""
    small = {c for c in INT32.get(table, ()) if c in schema.names and pa.types.is_int64(schema.field(c).type)}
    index = DICTIONARY_INDEX.get(table)

    def read(c: str) -> ds.Expression:
        t = schema.field(c).type
        if c in small:
            return pc.field(c).cast(pa.int32())
        if index is not None and pa.types.is_dictionary(t) and t.index_type.bit_width > index.bit_width:
            return pc.field(c).cast(pa.dictionary(index, t.value_type))
        return pc.field(c)

    return {c: read(c) for c in columns}


def narrow(table: str, t: pa.Table) -> pa.Table:
    """``t`` with the int64 columns of INT32 as int32 where every value fits (the slow path's equivalent of the
    scan's cast)."""
    for c in INT32.get(table, ()):
        i = t.schema.get_field_index(c)
        if i < 0 or not pa.types.is_int64(t.schema.field(i).type):
            continue
        bounds = pc.min_max(t.column(i))
        low, high = bounds["min"].as_py(), bounds["max"].as_py()
        if low is None or (low >= -(2**31) and high < 2**31):
            t = t.set_column(i, c, pc.cast(t.column(i), pa.int32(), memory_pool=POOL))
    return t


def _partition_values(path: str, roots: list[Path]) -> dict[str, str]:
    rel = Path(path)
    for root in roots:
        try:
            rel = Path(path).relative_to(root)
            break
        except ValueError:
            continue
    return dict(part.split("=", 1) for part in rel.parts[:-1] if "=" in part)


def _dataset(roots: list[Path], table: str) -> ds.Dataset:
    """One dataset over every tree (all share the schema of harness.results, so they union as they are)."""
    parts = [dataset(root, table, DICTIONARY.get(table, ())) for root in roots]
    return parts[0] if len(parts) == 1 else ds.dataset(parts)


def _expression(filters: Filters) -> ds.Expression | None:
    expr = None
    for key, values in filters.items():
        e = pc.field(key).isin(list(values))
        expr = e if expr is None else expr & e
    return expr


def check_filters(roots: list[Path], fragments: list[ds.Fragment], filters: Filters) -> None:
    """A filter value the tree does not hold is an error that lists the values it does hold."""
    present: dict[str, set[str]] = {k: set() for k in PARTITION_KEYS}
    for frag in fragments:
        for k, v in _partition_values(frag.path, roots).items():
            if k in present:
                present[k].add(v)
    for key, values in filters.items():
        missing = [v for v in values if v not in present[key]]
        if missing:
            valid = ", ".join(sorted(present[key])) or "(none)"
            raise AnalysisError(f"--{key} {', '.join(missing)}: not in {tree_names(roots)}; present: {valid}")


def _read_table(
    roots: list[Path],
    table: str,
    filters: Filters,
    report: LoadReport,
    runs: list[str] | None = None,
    unread: Sequence[str] = (),
) -> pa.Table | None:
    """The table's rows under ``roots`` (filtered; ``runs``: only these run ids), without the columns of UNUSED
    and ``unread``. Fast path: one multi-threaded scan of the dataset; when it fails (an unreadable file) or finds
    another schema version, file by file, to name the culprits. The load reads file by file instead
    (analysis.tree.gather: the scan's cost per file); this is the reference its tests hold it to."""
    data = _dataset(roots, table)
    expr = _expression(filters)
    if runs is not None:
        in_runs = pc.field("run_id").isin(pa.array(runs, pa.string()))
        expr = in_runs if expr is None else expr & in_runs
    fragments = list(data.get_fragments(filter=expr)) if expr is not None else list(data.get_fragments())
    if table == "points" and not fragments:
        raise no_match(roots, filters)
    columns = [c for c in data.schema.names if c not in UNUSED.get(table, ()) and c not in unread]
    try:
        t = data.to_table(columns=_projection(table, columns, data.schema), filter=expr, memory_pool=POOL)
        if set(pc.unique(t.column("schema_version")).to_pylist()) <= {SCHEMA_VERSION}:
            report.files[table] = len(fragments)
            return t if t.num_rows else None
    except (OSError, pa.ArrowException):
        pass
    return _read_files(table, data.schema, fragments, columns, report)


def _read_files(
    table: str, schema: pa.Schema, fragments: list[ds.Fragment], columns: list[str], report: LoadReport
) -> pa.Table | None:
    parts, versions = [], {}
    for frag in sorted(fragments, key=lambda f: f.path):
        try:
            t = frag.to_table(schema=schema, columns=columns, memory_pool=POOL)
        except (OSError, pa.ArrowException) as e:  # ArrowInvalid: not Parquet, truncated, bad pages
            report.bad_files.append(unreadable(frag.path, table, e))
            continue
        if (found := other_version(t)) is not None:
            versions[frag.path] = found
        parts.append(t)
    if versions:
        raise other_versions(table, versions)
    report.files[table] = len(parts)
    return narrow(table, pa.concat_tables(parts, memory_pool=POOL)) if parts else None


def fragments(data: ds.Dataset, filters: Filters) -> list[ds.Fragment]:
    """The files of ``data`` whose folders the partition filters keep (a file whose folders do not name a key
    is kept: its rows are filtered as read)."""
    expr = _expression(filters)
    return list(data.get_fragments(filter=expr)) if expr is not None else list(data.get_fragments())


def no_match(roots: list[Path], filters: Filters) -> AnalysisError:
    """The error for partition filters whose values each exist but no points file holds together."""
    chosen = " ".join(f"--{k} {','.join(v)}" for k, v in filters.items())
    return AnalysisError(f"no results under {tree_names(roots)} match {chosen} together (each value exists on its own)")


def unreadable(path: str, table: str, e: BaseException) -> BadFile:
    """The report's record of a file that could not be read (logged as skipped)."""
    log.warning("skipping unreadable %s: %s", path, e)
    return BadFile(path, table, f"{type(e).__name__}: {e}".splitlines()[0][:300])


def other_version(t: pa.Table) -> list | None:
    """The schema versions other than ours that the rows ``t`` read from one file hold (``["missing"]`` for rows
    without one); None where every row is ours or the version was not read."""
    at = t.schema.get_field_index("schema_version")  # not t.column_names: a list made anew, 0.09 ms a call
    if at < 0:
        return None
    column = t.column(at)
    # as numbers, without a compute call per file (4,000 files: 0.3 s holding the interpreter's lock)
    as_numbers = column.null_count == 0 and pa.types.is_integer(column.type)
    if as_numbers and all((chunk.to_numpy() == SCHEMA_VERSION).all() for chunk in column.chunks):
        return None
    found = set(pc.unique(column).to_pylist())
    if not found - {SCHEMA_VERSION}:
        return None
    return sorted(v for v in found if v is not None) or ["missing"]


def other_versions(table: str, versions: dict[str, list]) -> SchemaVersionError:
    """The error for files of ``table`` written with another schema version (path -> the versions found)."""
    listed = "; ".join(f"{p} (version {', '.join(map(str, v))})" for p, v in sorted(versions.items())[:5])
    more = f" and {len(versions) - 5} more" if len(versions) > 5 else ""
    return SchemaVersionError(
        f"{len(versions)} {table} file(s) were written with a schema version other than {SCHEMA_VERSION}, "
        f"the one this analysis reads: {listed}{more}. Analyse them with the matching version of this "
        f"package, or filter them out (--stage/--gpu/--model/--algo)."
    )


def resolve_roots(roots: str | Path | Sequence[str | Path]) -> list[Path]:
    """The results trees to read together: each must exist, and none may hold another (its rows would be
    read twice)."""
    paths = [Path(roots)] if isinstance(roots, (str, Path)) else [Path(r) for r in roots]
    if not paths:
        raise AnalysisError("no results directory given")
    for root in paths:
        if not root.is_dir():
            hint = " (it is a file)" if root.exists() else ""
            raise ResultsInputError(
                f"results directory {root} does not exist{hint}; pass the results_dir the " f"harness wrote"
            )
    resolved = [p.resolve() for p in paths]
    for a, ra in zip(paths, resolved):
        for b, rb in zip(paths, resolved):
            if a is not b and (ra == rb or rb in ra.parents):
                raise AnalysisError(
                    f"results directory {a} is {'the same as' if ra == rb else 'inside'} {b}: "
                    f"its rows would be read twice; give each tree once"
                )
    return paths
