"""Reading a results tree: filters, the schema version check, unreadable files, and latest-wins resolution.

Each Parquet file is read on its own, so one corrupt file is reported and skipped instead of failing the
whole load. A point measured more than once (``remeasure=true``, a changed config, an error retried) has
several rows; per setting (analysis.settings: rows of two settings never replace each other) the most recent
``measured_at`` wins and its layers come from the same run. A run's pieces
and its merged file can both exist after a crash between compaction steps: such identical copies (same
run, same point) are dropped first and counted apart from real repeats.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from analysis import repeats, settings
from analysis.errors import AnalysisError, ResultsInputError, SchemaVersionError
from analysis.keys import mixed_radix
from harness import validate
from harness.results import dataset, hostbound
from harness.results.layout import PARTITION_KEYS, POINT_KEY
from harness.results.read import latest
from harness.results.schema import SCHEMA_VERSION

log = logging.getLogger(__name__)


def _memory_pool() -> pa.MemoryPool:
    """The allocator for reading: jemalloc where this pyarrow has it, else the system's. On 5,000,000 layer
    rows, reading and converting took 6.4 s with jemalloc, 7.1 s with the system allocator and 11.2 s with
    pyarrow's default here (mimalloc), which returns freed pages to the system and faults them in again."""
    try:
        return pa.jemalloc_memory_pool()
    except NotImplementedError:
        return pa.system_memory_pool()


POOL = _memory_pool()

# Identity columns held as categoricals (see _to_pandas).
CATEGORICAL = ("stage", "gpu", "model", "algo", "dtype", "run_id")
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
    ),
}


# How a point was measured, beside where (the partitions): option -> points column, the settings of
# harness.config.keys. A tree may hold several settings of one point (math=fma,tensor_op in one multirun): the
# rows of each are resolved and analysed apart (analysis.settings); these options keep one.
SETTINGS = settings.OPTIONS


@dataclass(frozen=True)
class Filters:
    """Partition values to keep, and measurement settings to keep (empty: all). Values are checked against
    what the tree holds."""

    stage: tuple[str, ...] = ()
    gpu: tuple[str, ...] = ()
    model: tuple[str, ...] = ()
    algo: tuple[str, ...] = ()
    device: tuple[str, ...] = ()
    backend: tuple[str, ...] = ()
    math: tuple[str, ...] = ()
    fallback: tuple[str, ...] = ()
    benchmark: tuple[str, ...] = ()
    graph: tuple[str, ...] = ()
    cpu_threads: tuple[str, ...] = ()
    plan: tuple[str, ...] = ()

    def items(self) -> list[tuple[str, tuple[str, ...]]]:
        """The partition filters given."""
        return [(k, getattr(self, k)) for k in PARTITION_KEYS if getattr(self, k)]

    def settings(self) -> list[tuple[str, tuple[str, ...]]]:
        """The setting filters given (option, values)."""
        return [(k, getattr(self, k)) for k in SETTINGS if getattr(self, k)]

    def chosen(self) -> str:
        """The filters as the command line gave them."""
        return " ".join(f"{flag(k)} {','.join(v)}" for k, v in [*self.items(), *self.settings()])

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser, where: str = "") -> None:
        """``--stage --gpu --model --algo`` and the settings' (``--device --backend --math --fallback
        --benchmark --graph --cpu-threads --plan``), each repeatable or comma-separated (every analysis
        command)."""
        for key in PARTITION_KEYS:
            parser.add_argument(
                f"--{key}",
                action="append",
                default=[],
                metavar=key.upper(),
                type=validate.text,
                help=f"keep only this {key}{where} (repeat, or comma-separate several)",
            )
        Filters.add_setting_arguments(parser, where)

    @staticmethod
    def add_setting_arguments(parser: argparse.ArgumentParser, where: str = "", skip: tuple[str, ...] = ()) -> None:
        """The settings' filters alone (``skip``: options the command uses otherwise)."""
        for key, column in SETTINGS.items():
            if key not in skip:
                parser.add_argument(
                    flag(key),
                    dest=key,
                    action="append",
                    default=[],
                    metavar=key.upper(),
                    type=validate.text,
                    help=f"keep only points measured with this {column} ({_kind(key)}){where}",
                )

    @classmethod
    def from_arguments(cls, args: argparse.Namespace, keys: Sequence[str] = (*PARTITION_KEYS, *SETTINGS)) -> Filters:
        return cls(**{k: tuple(v for item in getattr(args, k) for v in item.split(",") if v) for k in keys})


def flag(option: str) -> str:
    """The command-line flag of a filter option: --cpu-threads for cpu_threads."""
    return "--" + option.replace("_", "-")


def _kind(option: str) -> str:
    from harness.config.keys import SETTINGS as KEYS

    (key,) = [k for k in KEYS if k.option == option]
    choices = [c for c in key.choices or () if c != "auto"]
    return " or ".join(choices) if choices else "a value the rows hold"


@dataclass(frozen=True)
class BadFile:
    path: str
    table: str
    error: str


@dataclass
class LoadReport:
    """What loading saw and did; the report quotes it."""

    root: str  # the results trees read, as one line
    files: dict[str, int] = field(default_factory=dict)  # table -> files read
    bad_files: list[BadFile] = field(default_factory=list)
    rows_read: dict[str, int] = field(default_factory=dict)
    duplicate_copies: dict[str, int] = field(default_factory=dict)  # same run, same point, twice
    superseded: dict[str, int] = field(default_factory=dict)  # older measurements of a point, dropped
    repeated_points: int = 0  # points measured more than once
    orphan_layers: int = 0  # layer rows whose point has no points row (never committed)
    layer_mean_as_median: int = 0  # layer rows without a median (imported): mean_ms stands in for p50_ms
    host_bound_layers: int = 0  # resolved layer rows whose time is the host's (harness.results.hostbound)
    # model name -> the names its different model files were given apart ("<name>@<hash>"); see separate_models
    separated_models: dict[str, list[str]] = field(default_factory=dict)
    # per gpu x model (points and layers): the noise between processes that repeats revealed (analysis.repeats)
    between_process: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=repeats.BETWEEN_COLUMNS))


@dataclass
class Results:
    points: pd.DataFrame
    layers: pd.DataFrame
    report: LoadReport


def _partition_values(path: str, roots: list[Path]) -> dict[str, str]:
    rel = Path(path)
    for root in roots:
        try:
            rel = Path(path).relative_to(root)
            break
        except ValueError:
            continue
    return dict(part.split("=", 1) for part in rel.parts[:-1] if "=" in part)


# String columns of few distinct values, read dictionary-encoded (pandas categoricals): several times faster
# and smaller than strings on millions of layer rows. Categoricals of different categories cannot fill one
# another: "what ran a layer" (algo_used, else algo) is harness.results.read.algo_that_ran.
DICTIONARY = {
    "points": ("run_id", "dtype", "status", "model_source", "model_hash", "math_type"),
    "layers": ("run_id", "dtype", "layer_name", "algo_requested", "algo_used", "status", "math_type", "model_hash"),
}


def _dataset(roots: list[Path], table: str) -> ds.Dataset:
    """One dataset over every tree (all share the schema of harness.results, so they union as they are)."""
    parts = [dataset(root, table, DICTIONARY.get(table, ())) for root in roots]
    return parts[0] if len(parts) == 1 else ds.dataset(parts)


def _names(roots: list[Path]) -> str:
    return " + ".join(str(r) for r in roots)


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
            raise AnalysisError(f"--{key} {', '.join(missing)}: not in {_names(roots)}; present: {valid}")


def _read_table(
    roots: list[Path], table: str, filters: Filters, report: LoadReport, runs: list[str] | None = None
) -> pa.Table | None:
    """The table's rows under ``roots`` (filtered; ``runs``: only these run ids). Fast path: one multi-threaded
    scan of the dataset; when it fails (an unreadable file) or finds another schema version, file by file, to
    name the culprits."""
    data = _dataset(roots, table)
    expr = _expression(filters)
    if runs is not None:
        in_runs = pc.field("run_id").isin(pa.array(runs, pa.string()))
        expr = in_runs if expr is None else expr & in_runs
    fragments = list(data.get_fragments(filter=expr)) if expr is not None else list(data.get_fragments())
    if table == "points" and not fragments:
        chosen = " ".join(f"--{k} {','.join(v)}" for k, v in filters.items())
        raise AnalysisError(
            f"no results under {_names(roots)} match {chosen} together (each value exists on its " f"own)"
        )
    columns = [c for c in data.schema.names if c not in UNUSED.get(table, ())]
    try:
        t = data.to_table(columns=columns, filter=expr, memory_pool=POOL)
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
            report.bad_files.append(BadFile(frag.path, table, f"{type(e).__name__}: {e}".splitlines()[0][:300]))
            log.warning("skipping unreadable %s: %s", frag.path, e)
            continue
        found = set(pc.unique(t.column("schema_version")).to_pylist())
        if found - {SCHEMA_VERSION}:
            versions[frag.path] = sorted(v for v in found if v is not None) or ["missing"]
        parts.append(t)
    if versions:
        listed = "; ".join(f"{p} (version {', '.join(map(str, v))})" for p, v in sorted(versions.items())[:5])
        more = f" and {len(versions) - 5} more" if len(versions) > 5 else ""
        raise SchemaVersionError(
            f"{len(versions)} {table} file(s) were written with a schema version other than {SCHEMA_VERSION}, "
            f"the one this analysis reads: {listed}{more}. Analyse them with the matching version of this "
            f"package, or filter them out (--stage/--gpu/--model/--algo)."
        )
    report.files[table] = len(parts)
    return pa.concat_tables(parts, memory_pool=POOL) if parts else None


def _to_pandas(tables: dict[str, pa.Table | None]) -> dict[str, pd.DataFrame]:
    """DataFrames whose identity columns are categoricals with one sorted category list shared by points and
    layers: a million layer rows group, sort and merge on small integer codes instead of strings.

    Empties ``tables`` as it goes: each column becomes its own block (no consolidation into 2-d blocks, a copy
    of every number) and its Arrow memory is released once converted, so millions of layer rows are never
    held twice."""
    encoded = {}
    for name in list(tables):
        t = tables.pop(name)
        if t is None:
            encoded[name] = _empty(name)
            continue
        for c in CATEGORICAL:
            i = t.schema.get_field_index(c)
            if not pa.types.is_dictionary(t.schema.field(c).type):
                t = t.set_column(i, c, pc.dictionary_encode(t.column(c), memory_pool=POOL))
        # the layers' host_bound as a nullable boolean, not Python objects: millions of rows are masked fast
        mapper = {pa.bool_(): pd.BooleanDtype()}.get if name == "layers" else None
        encoded[name] = t.to_pandas(split_blocks=True, self_destruct=True, memory_pool=POOL, types_mapper=mapper)
        del t
    for c in CATEGORICAL:
        cats = sorted(set().union(*(set(df[c].dropna().unique()) for df in encoded.values())))
        for df in encoded.values():
            df[c] = df[c].astype(str).astype(pd.CategoricalDtype(cats)) if df.empty else df[c].cat.set_categories(cats)
    return encoded


# Latest wins per point and per repeat (each of repeats=K processes keeps its latest row); the repeats of a
# point are then pooled into one row (analysis.repeats). Rows older than the column are repeat 0.
RESOLVE_KEY = [*POINT_KEY, "repeat"]


def fill_repeat(frame: pd.DataFrame) -> pd.DataFrame:
    """``repeat`` as a whole number on every row: null (rows written before repeats existed) is repeat 0."""
    if "repeat" not in frame:
        return frame.assign(repeat=np.zeros(len(frame), np.int64))
    frame["repeat"] = frame["repeat"].fillna(0).astype(np.int64)
    return frame


def drop_copies(points: pd.DataFrame, report: LoadReport) -> pd.DataFrame:
    """Points rows without the identical copies a crash between compaction steps can leave (same run, same
    point), counted in ``report``."""
    n = len(points)
    points = points.drop_duplicates(subset=[*RESOLVE_KEY, "run_id"], keep="last")
    report.duplicate_copies["points"] = n - len(points)
    return points


def resolve_points(points: pd.DataFrame, report: LoadReport) -> pd.DataFrame:
    """One row per point, setting (analysis.settings.identity) and repeat: exact copies dropped, then the latest
    ``measured_at`` (then run_id) wins. Rows of two settings of a point both stay: which to compare is
    ``by_setting``'s business; the repeats of a point are pooled afterwards (pool_repeats)."""
    points = drop_copies(points, report)
    key = [*POINT_KEY, "_setting", "repeat"]
    keyed = points.assign(_setting=settings.identity(points))
    counts = keyed.groupby(key, dropna=False, observed=True).size()
    report.repeated_points = int((counts > 1).sum())
    resolved = latest(keyed, key).drop(columns="_setting")
    report.superseded["points"] = len(points) - len(resolved)
    return resolved.sort_values(RESOLVE_KEY, kind="stable").reset_index(drop=True)


def point_codes(frames: Sequence[pd.DataFrame]) -> list[np.ndarray] | None:
    """One int64 per row of each frame that is equal exactly where the rows' RESOLVE_KEY is (analysis.keys);
    None where it does not fit (then merge on the columns instead)."""
    return mixed_radix(frames, RESOLVE_KEY)


def resolve_layers(layers: pd.DataFrame, points: pd.DataFrame, report: LoadReport) -> pd.DataFrame:
    """The layers of the winning run of each point and setting (``points``: resolved; a run has one setting,
    so a layer row belongs to the points row of its point and run), each point's rows together and by
    layer_index (in the order the files hold the points); copies, superseded runs and orphans are counted."""
    codes = point_codes([points, layers])
    runs_shared = all(isinstance(df["run_id"].dtype, pd.CategoricalDtype) for df in (points, layers)) and points[
        "run_id"
    ].cat.categories.equals(layers["run_id"].cat.categories)
    if codes is None or not runs_shared:
        return _resolve_layers_by_merge(layers, points, report)
    point_key, layer_key = codes
    runs = len(points["run_id"].cat.categories) + 1
    if max(int(point_key.max(initial=0)), int(layer_key.max(initial=0))) + 1 >= 2**62 // runs:  # not one int64
        return _resolve_layers_by_merge(layers, points, report)
    layers, layer_key = _drop_layer_copies(layers, layer_key, report)
    point_run = point_key * runs + points["run_id"].cat.codes.to_numpy().astype(np.int64) + 1
    layer_run = layer_key * runs + layers["run_id"].cat.codes.to_numpy().astype(np.int64) + 1
    pos = pd.Index(point_run).get_indexer(layer_run)  # the points row of each layer's point and run; -1: none
    orphan = ~pd.Index(layer_key).isin(point_key)  # no points row of the point at all: never committed
    keep = pos >= 0
    report.orphan_layers = int(orphan.sum())
    report.superseded["layers"] = int(len(layers) - report.orphan_layers - keep.sum())
    kept, pos = (layers, pos) if keep.all() else (layers[keep], pos[keep])  # all kept: no copy of millions
    if not _grouped_by_point(pos, kept["layer_index"].to_numpy()):  # as written, unless files were mixed: sort
        kept = kept.iloc[np.lexsort((kept["layer_index"].to_numpy(), pos))]
    return kept.reset_index(drop=True)


def _grouped_by_point(pos: np.ndarray, layer_index: np.ndarray) -> bool:
    """Whether each point's layer rows are together and in layer order (as a run writes them): true of
    every tree the harness writes, so that sorting millions of rows is needed only where it is not."""
    if len(pos) < 2:
        return True
    new_point = np.diff(pos) != 0
    ascending = np.all(new_point | (np.diff(layer_index) > 0))
    return bool(ascending and new_point.sum() + 1 == len(np.unique(pos)))


def _drop_layer_copies(
    layers: pd.DataFrame, point_key: np.ndarray, report: LoadReport
) -> tuple[pd.DataFrame, np.ndarray]:
    """Without identical copies (same point, run and layer; a crash between compaction steps leaves them),
    counted in ``report``: the three as one integer where they fit in 63 bits (hashing millions of
    integers, not of column tuples), else on the columns."""
    run = layers["run_id"].cat.codes.to_numpy().astype(np.int64) + 1
    index = layers["layer_index"].to_numpy()
    runs, top = len(layers["run_id"].cat.categories) + 1, int(index.max(initial=0)) + 1
    fits = index.min(initial=0) >= 0 and int(point_key.max(initial=0)) + 1 < 2**62 // (runs * top)
    if fits:
        dup = pd.Index((point_key * runs + run) * top + index).duplicated(keep="last")
    else:
        dup = layers.duplicated(subset=[*RESOLVE_KEY, "run_id", "layer_index"], keep="last").to_numpy()
    report.duplicate_copies["layers"] = int(dup.sum())
    return (layers[~dup], point_key[~dup]) if dup.any() else (layers, point_key)


def _resolve_layers_by_merge(layers: pd.DataFrame, points: pd.DataFrame, report: LoadReport) -> pd.DataFrame:
    """resolve_layers on the key columns themselves (slower: for frames point_codes cannot encode)."""
    n = len(layers)
    layers = layers.drop_duplicates(subset=[*RESOLVE_KEY, "run_id", "layer_index"], keep="last")
    report.duplicate_copies["layers"] = n - len(layers)
    keys = points[[*RESOLVE_KEY, "run_id"]].assign(_win=True)
    merged = layers.merge(keys.drop(columns="run_id").drop_duplicates(), on=RESOLVE_KEY, how="left")
    report.orphan_layers = int(merged["_win"].isna().sum())
    kept = layers.merge(keys, on=[*RESOLVE_KEY, "run_id"], how="inner").drop(columns="_win")
    report.superseded["layers"] = len(layers) - report.orphan_layers - len(kept)
    return kept.sort_values([*RESOLVE_KEY, "layer_index"], kind="stable").reset_index(drop=True)


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


def use_mean_for_missing_median(layers: pd.DataFrame, report: LoadReport) -> pd.DataFrame:
    """Imported layer rows hold a mean but no median (the old system wrote none); the tables, figures and
    predictor work on p50_ms, so such rows use their mean there, and the report counts them."""
    missing = layers["p50_ms"].isna() & layers["mean_ms"].notna()
    report.layer_mean_as_median = int(missing.sum())
    if report.layer_mean_as_median:
        layers["p50_ms"] = layers["p50_ms"].where(~missing, layers["mean_ms"])
    return layers


def _read(roots: list[Path], filters: Filters, tables: Sequence[str]) -> tuple[dict[str, pa.Table | None], LoadReport]:
    report = LoadReport(root=_names(roots))
    all_points = list(_dataset(roots, "points").get_fragments())
    if not all_points:
        raise ResultsInputError(
            f"no points-*.parquet files under {_names(roots)}: is it a results tree of the " f"harness?"
        )
    check_filters(roots, all_points, filters)
    read: dict[str, pa.Table | None] = {}
    runs = None
    for t in tables:
        read[t] = _read_table(roots, t, filters, report, runs)
        if t == "layers":
            read[t] = with_host_bound(read[t])
        if t == "points" and filters.settings():
            read[t] = keep_settings(read[t], filters, roots)
            runs = pc.unique(read[t].column("run_id")).to_pylist() if read[t] is not None else []
    return separate_models(read, report), report


def with_host_bound(layers: pa.Table | None) -> pa.Table | None:
    """The layers rows with ``host_bound`` filled for rows written before the column existed (from their
    detail: harness.results.hostbound.derive), and without ``detail``, which nothing else reads."""
    if layers is None or "detail" not in layers.column_names:
        return layers
    filled = hostbound.derive(layers.column("host_bound"), layers.column("detail"))
    layers = layers.set_column(layers.schema.get_field_index("host_bound"), "host_bound", filled)
    return layers.drop_columns(["detail"])


def keep_settings(points: pa.Table | None, filters: Filters, roots: list[Path]) -> pa.Table | None:
    """The points rows measured with the settings asked for, and those a setting does not apply to or that do
    not record it (analysis.settings: ANY and UNKNOWN; e.g. algo=torch for ``--fallback``, a CPU row for
    ``--math``, an imported row); a value no row holds is an error that lists those the rows do hold."""
    if points is None:
        return None
    needed = dict.fromkeys([*settings.COLUMNS, "status", "algo", "device", "algo_fallback_layers"])
    frame = points.select([c for c in needed if c in points.column_names]).to_pandas()
    values = settings.values(frame)
    keep = np.ones(points.num_rows, dtype=bool)
    for key, wanted in filters.settings():
        column = values[SETTINGS[key]]
        present = sorted(settings.recorded(frame, SETTINGS[key]))
        missing = [v for v in wanted if v.lower() not in present]
        if missing:
            raise AnalysisError(
                f"{flag(key)} {', '.join(missing)}: no point under {_names(roots)} was measured "
                f"with {SETTINGS[key]} {', '.join(missing)}; present: {', '.join(present) or '(none)'}"
            )
        asked = column.isin([v.lower() for v in wanted]) | column.isin([settings.ANY, settings.UNKNOWN])
        keep &= asked.to_numpy()
    return points.filter(pa.array(keep))


def by_setting(res: Results) -> list[tuple[settings.Setting, Results]]:
    """The results of each setting (analysis.settings.groups, most rows first), one row per point in each,
    with their layers: what the analysis compares. Results of one setting come back as they are."""
    parts = []
    for setting in settings.groups(res.points):
        points = setting.resolve(res.points)
        if len(points) == len(res.points):
            parts.append((setting, res))
            continue
        points = points.reset_index(drop=True)
        parts.append((setting, Results(points, layers_of(points, res.layers), res.report)))
    return parts


def one_setting(res: Results, command: str) -> Results:
    """The results, where they hold one setting; else an error that names the settings and the filters that
    keep one (for a command that must not mix them)."""
    parts = by_setting(res)
    if len(parts) <= 1:
        return parts[0][1] if parts else res
    listed = "; ".join(s.label for s, _ in parts)
    columns = sorted({c for s, _ in parts for c in s.label_columns()})
    options = " ".join(flag(k) for k, c in SETTINGS.items() if c in columns)
    raise AnalysisError(f"{command}: these results hold {len(parts)} settings ({listed}); choose one with {options}")


def layers_of(points: pd.DataFrame, layers: pd.DataFrame) -> pd.DataFrame:
    """The layers rows of these points rows (same point, same run): where a setting filter kept some points
    of a run and not others (a graph=auto run whose capture failed at one size), the others' layers go too,
    rather than being counted as layers of points never committed."""
    codes = point_codes([points, layers])
    if codes is None or not isinstance(layers["run_id"].dtype, pd.CategoricalDtype):
        keys = points[[*RESOLVE_KEY, "run_id"]].drop_duplicates()
        return layers.merge(keys, on=[*RESOLVE_KEY, "run_id"], how="inner")
    kept = pd.MultiIndex.from_arrays([codes[0], points["run_id"].cat.codes.to_numpy()])
    mine = pd.MultiIndex.from_arrays([codes[1], layers["run_id"].cat.codes.to_numpy()]).isin(kept)
    return layers if mine.all() else layers[mine].reset_index(drop=True)


def separate_models(tables: dict[str, pa.Table | None], report: LoadReport) -> dict[str, pa.Table | None]:
    """Rows of different models under one name (two files with one stem, a file named like a torchvision
    model) never mix: where a model name holds several ``model_hash`` values (null, a torchvision model, counts
    as one), each file's rows are renamed ``<name>@<first 8 hex digits of its hash>``, for every table."""
    points = tables.get("points")
    if points is None or "model_hash" not in points.column_names:
        return tables
    pairs = pa.table({c: pc.cast(points.column(c), pa.string()) for c in ("model", "model_hash")})  # one dictionary
    pairs = pairs.group_by(["model", "model_hash"]).aggregate([]).to_pylist()  # per file otherwise: not groupable
    hashes: dict[str, set] = {}
    for pair in pairs:
        hashes.setdefault(pair["model"], set()).add(pair["model_hash"])
    mixed = {m for m, hs in hashes.items() if len(hs) > 1}
    if not mixed:
        return tables
    for m in sorted(mixed):
        report.separated_models[m] = sorted(m if h is None else f"{m}@{h[:8]}" for h in hashes[m])
        log.warning(
            "model %s: rows of %d different models (model_hash) kept apart as %s",
            m,
            len(hashes[m]),
            ", ".join(report.separated_models[m]),
        )
    out = {}
    for name, t in tables.items():
        if t is None or "model_hash" not in t.column_names:
            out[name] = t
            continue
        models, digests = t.column("model").to_pylist(), t.column("model_hash").to_pylist()
        renamed = [f"{m}@{h[:8]}" if m in mixed and h is not None else m for m, h in zip(models, digests)]
        out[name] = t.set_column(t.schema.get_field_index("model"), "model", pa.array(renamed, pa.string()))
    return out


def read_points(
    roots: str | Path | Sequence[str | Path], filters: Filters = Filters()
) -> tuple[pd.DataFrame, LoadReport]:
    """Every points row under ``roots``, filtered and checked as ``load`` does, exact copies dropped, but NOT
    resolved: a point measured in several runs keeps a row per run (for comparisons between runs; resolve
    with ``harness.results.read.latest``)."""
    roots = resolve_roots(roots)
    tables, report = _read(roots, filters, ["points"])
    if tables["points"] is None or tables["points"].num_rows == 0:
        raise AnalysisError(f"no readable points under {_names(roots)} match the filters")
    report.rows_read["points"] = tables["points"].num_rows
    return drop_copies(_to_pandas(tables)["points"], report).reset_index(drop=True), report


def load(roots: str | Path | Sequence[str | Path], filters: Filters = Filters()) -> Results:
    """Points and layers under ``roots`` (one results tree, or several read as one), filtered, checked and
    resolved."""
    roots = resolve_roots(roots)
    tables, report = _read(roots, filters, ("points", "layers"))
    if tables["points"] is None:
        raise ResultsInputError(f"none of the points files under {_names(roots)} matching the filters could be read")
    if tables["points"].num_rows == 0:
        raise AnalysisError(
            f"no measured points under {_names(roots)} match {filters.chosen() or 'the filters'} " f"together"
        )
    report.rows_read = {name: t.num_rows if t is not None else 0 for name, t in tables.items()}
    frames = {name: fill_repeat(f) for name, f in _to_pandas(tables).items()}  # empties tables as frames fill
    if filters.settings():
        frames["layers"] = layers_of(frames["points"], frames["layers"])
    points = resolve_points(frames["points"], report)
    layers = resolve_layers(use_mean_for_missing_median(frames["layers"], report), points, report)
    points, layers = pool_repeats(points, layers, report)
    report.host_bound_layers = int(hostbound.mask(layers).sum())
    return Results(points, layers, report)


def pool_repeats(points: pd.DataFrame, layers: pd.DataFrame, report: LoadReport) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per point (and per point's layer) from its repeats (analysis.repeats); a tree measured in one
    process per point is returned as it is, with the columns the pooling adds."""
    if not (points["repeat"] > 0).any():  # nothing to pool (millions of layer rows: no grouping)
        report.between_process = repeats.no_between()
        return repeats.alone(points), layers
    # repeats of a point pool within its setting: the setting of a layer row is its run's
    setting = settings.identity(points)
    of_run = pd.Series(setting.to_numpy(), index=points["run_id"].astype(str).to_numpy())
    of_run = of_run[~of_run.index.duplicated()]
    pooled_points = repeats.pool(points.assign(_setting=setting), [*POINT_KEY, "_setting"], "points")
    pooled_layers = repeats.pool(
        layers.assign(_setting=of_run.reindex(layers["run_id"].astype(str)).to_numpy()),
        [*POINT_KEY, "_setting", "layer_index"],
        "layers",
    )
    report.between_process = pd.concat([pooled_points.between, pooled_layers.between], ignore_index=True)
    return pooled_points.rows.drop(columns="_setting"), pooled_layers.rows.drop(columns="_setting")


def _empty(table: str) -> pd.DataFrame:
    from harness.results import TABLES

    return TABLES[table].empty_table().to_pandas()
