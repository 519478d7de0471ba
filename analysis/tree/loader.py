"""Loading a results tree: ``load`` (points and layers, filtered, checked and resolved), ``read_points`` (every
points row, unresolved) and the results of each setting (``by_setting``, ``one_setting``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from analysis import memory
from analysis.errors import AnalysisError, ResultsInputError
from analysis.tree import directions, settings, widths
from analysis.tree.convert import (
    _empty,
    _to_pandas,
    encode_categorical,
    keep_apart,
    mixed_models,
    share_categories,
    with_host_bound,
)
from analysis.tree.filters import SETTINGS, Filters, flag, keep_settings
from analysis.tree.gather import read_layers
from analysis.tree.gather import read_points as read_points_table
from analysis.tree.read import (
    FOR_EACH_FILE_ONLY,
    INT32,
    NOT_READ_BY_LOAD,
    _dataset,
    check_filters,
    resolve_roots,
)
from analysis.tree.records import LoadReport, Results, tree_names
from analysis.tree.resolve import (
    drop_copies,
    fill_repeat,
    layers_of,
    pool_repeats,
    resolve_layers,
    resolve_points,
    use_mean_for_missing_median,
)
from harness.results import hostbound
from harness.results.read import fill_point_axes_table


def _read_points(roots: list[Path], filters: Filters, report: LoadReport) -> pa.Table | None:
    """The points rows (Arrow) under ``roots``, filtered (the settings' filters included) and checked, their
    point axes filled."""
    all_points = list(_dataset(roots, "points").get_fragments())
    if not all_points:
        raise ResultsInputError(
            f"no points-*.parquet files under {tree_names(roots)}: is it a results tree of the " f"harness?"
        )
    check_filters(roots, all_points, filters)
    points = read_points_table(roots, filters, report)
    memory.give_back()  # what decoding each file's footer left in the heap: 0.4 GB for 1,000 points files
    if points is None:
        return None
    points = fill_point_axes_table(points)  # rows from before a point-key column: measured at its earlier value
    return keep_settings(points, filters, roots) if filters.settings() else points


def _read(
    roots: list[Path], filters: Filters, without: Sequence[str] = (), narrow: bool = False
) -> tuple[dict[str, pd.DataFrame], LoadReport]:
    """The points and layers frames as read (not resolved), their identity columns categoricals sharing their
    categories (analysis.tree.convert); the layers without the columns of ``without`` the load never reads, nor
    those it uses only on each file's rows (read.FOR_EACH_FILE_ONLY); ``narrow``: their small integers narrowed
    (analysis.tree.widths). An error where no points row is read."""
    report = LoadReport(root=tree_names(roots))
    points = _read_points(roots, filters, report)
    if points is None:
        raise ResultsInputError(
            f"none of the points files under {tree_names(roots)} matching the filters could be read"
        )
    if points.num_rows == 0:
        raise AnalysisError(
            f"no measured points under {tree_names(roots)} match {filters.chosen() or 'the filters'} " f"together"
        )
    mixed = mixed_models(points, report)
    runs = pc.unique(points.column("run_id")).to_pylist() if filters.settings() else None
    unread = [c for c in without if c in NOT_READ_BY_LOAD]
    report.rows_read = {"points": points.num_rows}
    # The points become their frame, and their Arrow table goes, before the layers are read: 2,000 files' tables
    # of 150 columns, put end to end, held 1.2 GB for 0.2 GB of values (each small array's own allocations),
    # which stayed beside the layers until the end of the load.
    frames = {"points": _to_pandas({"points": keep_apart(points, mixed)})["points"]}
    del points
    memory.give_back()  # untrimmed, the layers' arrays came on top of it: 4.22 GB peak reading them, not 3.56
    done_with = [c for c in without if c in FOR_EACH_FILE_ONLY]
    layers = read_layers(roots, filters, report, runs, unread, layer_steps(mixed, done_with))
    memory.give_back()
    report.rows_read["layers"] = 0 if layers is None else len(layers)
    if narrow and layers is not None:
        widths.narrow(layers)
    frames["layers"] = _empty("layers") if layers is None else layers
    return share_categories(frames), report


def layer_steps(mixed: set[str], drop: Sequence[str] = ()) -> Callable[[pa.Table], pa.Table]:
    """What the rows of each layers file go through before they join the frame (row by row, so the same as on
    the whole table): rows from before a point-key column or ``point_direction`` filled, host_bound filled from
    the detail, models of the names in ``mixed`` kept apart, the identity columns dictionary-encoded; then the
    columns ``drop`` (of read.FOR_EACH_FILE_ONLY: not wanted once each file's rows are through) dropped."""

    def steps(t: pa.Table) -> pa.Table:
        t = directions.fill_layers_table(with_host_bound(fill_point_axes_table(t)))
        t = encode_categorical(keep_apart(t, mixed))
        return t.drop_columns([c for c in drop if c in t.column_names]) if drop else t

    return steps


def read_points(
    roots: str | Path | Sequence[str | Path], filters: Filters = Filters()
) -> tuple[pd.DataFrame, LoadReport]:
    """Every points row under ``roots``, filtered and checked as ``load`` does, exact copies dropped, but NOT
    resolved: a point measured in several runs keeps a row per run (for comparisons between runs; resolve
    with ``harness.results.read.latest``)."""
    roots = resolve_roots(roots)
    report = LoadReport(root=tree_names(roots))
    points = _read_points(roots, filters, report)
    if points is None or points.num_rows == 0:
        raise AnalysisError(f"no readable points under {tree_names(roots)} match the filters")
    report.rows_read["points"] = points.num_rows
    points = keep_apart(points, mixed_models(points, report))
    return drop_copies(_to_pandas({"points": points})["points"], report).reset_index(drop=True), report


def load(
    roots: str | Path | Sequence[str | Path],
    filters: Filters = Filters(),
    without: Sequence[str] = (),
    narrow: bool = False,
) -> Results:
    """Points and layers under ``roots`` (one results tree, or several read as one), filtered, checked and
    resolved; the layers without the columns ``without`` (analysis.tree.read.unneeded_layer_columns: those a run
    does not need after the load). Of those, the columns the load never reads (read.NOT_READ_BY_LOAD) are left
    unread; any other is read, used by the load as ever, then dropped. ``narrow``: the layers' small integers
    held as int8 or int16 where they fit (analysis.tree.widths: for the analysis's own run, whose tables hold
    them as int32 again; arithmetic on them wraps silently)."""
    roots = resolve_roots(roots)
    frames, report = _read(roots, filters, without, narrow)
    frames = {
        name: fill_repeat(f, np.int32 if "repeat" in INT32.get(name, ()) else np.int64) for name, f in frames.items()
    }
    if filters.settings():
        frames["layers"] = layers_of(frames["points"], frames.pop("layers"), consume=True)
    points = resolve_points(frames.pop("points"), report)  # the points as read go now, not when the load returns
    layers = use_mean_for_missing_median(frames.pop("layers"), report)
    if "mean_ms" in without and "mean_ms" in layers:
        del layers["mean_ms"]  # its last use: gone before resolving (millions of rows), not after
    layers = resolve_layers(layers, points, report, consume=True)
    points, layers = pool_repeats(points, layers, report)
    report.host_bound_layers = int(hostbound.mask(layers).sum())
    for c in [c for c in dict.fromkeys(without) if c in layers.columns]:
        del layers[c]  # in place: no copy of the other columns (DataFrame.drop copies them under pandas 2)
    memory.give_back()  # the columns replaced while resolving: gigabytes at a campaign's scale
    return Results(points, layers, report)


def by_setting(res: Results) -> list[tuple[settings.Setting, Results]]:
    """The results of each setting (analysis.tree.settings.groups, most rows first), one row per point in each,
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
