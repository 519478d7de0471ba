"""Latest-wins resolution of the rows read: identical copies dropped, the latest measurement of each point,
setting and repeat kept with the layers of its run, then the repeats of a point pooled (analysis.stats.repeats)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.stats import repeats
from analysis.tree import directions, settings
from analysis.tree.keys import all_distinct, by_runs, mixed_radix
from analysis.tree.records import LoadReport
from harness.results.layout import POINT_KEY
from harness.results.read import latest

# Latest wins per point and per repeat (each of repeats=K processes keeps its latest row); the repeats of a
# point are then pooled into one row (analysis.stats.repeats). Rows older than the column are repeat 0.
RESOLVE_KEY = [*POINT_KEY, "repeat"]


def fill_repeat(frame: pd.DataFrame, dtype: type = np.int64) -> pd.DataFrame:
    """``repeat`` as a whole number on every row: null (rows written before repeats existed) is repeat 0. A
    column read as integers stays as read; one with nulls becomes ``dtype`` (the layers' int32:
    analysis.tree.read.INT32)."""
    if "repeat" not in frame:
        return frame.assign(repeat=np.zeros(len(frame), dtype))
    if not (isinstance(frame["repeat"].dtype, np.dtype) and frame["repeat"].dtype.kind == "i"):
        frame["repeat"] = frame["repeat"].fillna(0).astype(dtype)
    return frame


def drop_copies(points: pd.DataFrame, report: LoadReport) -> pd.DataFrame:
    """Points rows without the identical copies a crash between compaction steps can leave (same run, same
    point), counted in ``report``."""
    n = len(points)
    points = points.drop_duplicates(subset=[*RESOLVE_KEY, "run_id"], keep="last")
    report.duplicate_copies["points"] = n - len(points)
    return points


def resolve_points(points: pd.DataFrame, report: LoadReport) -> pd.DataFrame:
    """One row per point, setting (analysis.tree.settings.identity) and repeat: exact copies dropped, then the latest
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
    """One int64 per row of each frame that is equal exactly where the rows' RESOLVE_KEY is (analysis.tree.keys);
    None where it does not fit (then merge on the columns instead)."""
    return mixed_radix(frames, RESOLVE_KEY)


def resolve_layers(
    layers: pd.DataFrame, points: pd.DataFrame, report: LoadReport, consume: bool = False
) -> pd.DataFrame:
    """The layers of the winning run of each point and setting (``points``: resolved; a run has one setting,
    so a layer row belongs to the points row of its point and run), each point's rows together and by
    layer_index (in the order the files hold the points); copies, superseded runs and orphans are counted.
    A layer row's point is keyed by its ``point_direction`` (analysis.tree.directions: a train_step point has
    rows of three directions), and within it a row is its layer_index and call direction.

    ``consume``: ``layers`` is the caller's to give up (the load's own frame): the rows kept are taken from it a
    column at a time, so that its rows are never held twice (``rows``); it may be left empty, and is not to be
    used afterwards."""
    codes = point_codes([points, directions.point_keyed(layers, RESOLVE_KEY)])
    runs_shared = all(isinstance(df["run_id"].dtype, pd.CategoricalDtype) for df in (points, layers)) and points[
        "run_id"
    ].cat.categories.equals(layers["run_id"].cat.categories)
    if codes is None or not runs_shared:
        return _resolve_layers_by_merge(layers, points, report)
    point_key, layer_key = codes
    runs = len(points["run_id"].cat.categories) + 1
    if max(int(point_key.max(initial=0)), int(layer_key.max(initial=0))) + 1 >= 2**62 // runs:  # not one int64
        return _resolve_layers_by_merge(layers, points, report)
    given = layers
    layers, layer_key = _drop_layer_copies(layers, layer_key, report, consume)
    own = consume or layers is not given  # a frame of this call's own (copies dropped): taken from as copied
    point_run = _with_run(point_key, runs, points["run_id"])
    layer_run = _with_run(layer_key, runs, layers["run_id"])
    # the points row of each layer's point and run (-1: none); a point's rows together: asked once a point
    pos = by_runs(layer_run, pd.Index(point_run).get_indexer)
    del point_run, layer_run
    orphan = ~by_runs(layer_key, lambda k: pd.Index(k).isin(point_key))  # no points row of its point: uncommitted
    keep = pos >= 0
    report.orphan_layers = int(orphan.sum())
    report.superseded["layers"] = int(len(layers) - report.orphan_layers - keep.sum())
    copied = not keep.all()  # all kept: no copy of millions
    kept, pos = (rows(layers, keep, own), pos[keep]) if copied else (layers, pos)
    within = directions.within_point(kept)
    if not _grouped_by_point(pos, within):  # as written, unless files were mixed: sort
        kept = rows(kept, np.lexsort((within, pos)), own or copied)
    return kept.reset_index(drop=True)


def rows(frame: pd.DataFrame, which: np.ndarray, consume: bool = False) -> pd.DataFrame:
    """``frame``'s rows ``which`` (a boolean mask or positions), on a new RangeIndex. ``consume``: taken a column
    at a time, each of ``frame``'s columns dropped from it as soon as its rows are copied, so that millions of
    layer rows are never held twice (``frame[mask]`` copies every column before the caller can let any old one
    go: with every point measured twice, the load held both); ``frame`` is left without columns. A frame with two
    columns of one name is taken whole (deleting one by name would delete both)."""
    positions = np.flatnonzero(which) if which.dtype == bool else which
    index = pd.RangeIndex(len(positions))
    if not consume or not frame.columns.is_unique:
        out = frame.iloc[positions]
        out.index = index  # in place: reset_index would copy every column again under pandas 2
        return out
    taken = {}
    for c in list(frame.columns):
        column = frame[c].take(positions)
        column.index = index
        taken[c] = column
        del frame[c], column  # the old column goes now, not once every column is copied
    return pd.DataFrame(taken, index=index, copy=False)  # the index: the row count where no column is left


def _with_run(key: np.ndarray, runs: int, run_id: pd.Series) -> np.ndarray:
    """key * runs + the run's code + 1, in one array (tens of millions of rows: no temporary of each step)."""
    out = key.astype(np.int64)  # a copy
    out *= runs
    out += run_id.cat.codes.to_numpy()
    out += 1
    return out


def _grouped_by_point(pos: np.ndarray, layer_index: np.ndarray) -> bool:
    """Whether each point's layer rows are together and in layer order (as a run writes them): true of
    every tree the harness writes, so that sorting millions of rows is needed only where it is not."""
    if len(pos) < 2:
        return True
    new_point = pos[1:] != pos[:-1]  # on views: no difference of every row made first (20,000,000 int64)
    ascending = np.all(new_point | (layer_index[1:] > layer_index[:-1]))
    starts = np.r_[0, np.flatnonzero(new_point) + 1]
    return bool(ascending and all_distinct(pos[starts]))  # no point's rows in two places


def _drop_layer_copies(
    layers: pd.DataFrame, point_key: np.ndarray, report: LoadReport, consume: bool = False
) -> tuple[pd.DataFrame, np.ndarray]:
    """Without identical copies (same point, run and layer; a crash between compaction steps leaves them),
    counted in ``report``: the three as one integer where they fit in 63 bits (hashing millions of
    integers, not of column tuples), else on the columns."""
    index = directions.within_point(layers)
    runs, top = len(layers["run_id"].cat.categories) + 1, int(index.max(initial=0)) + 1
    fits = index.min(initial=0) >= 0 and int(point_key.max(initial=0)) + 1 < 2**62 // (runs * top)
    if fits:
        key = _with_run(point_key, runs, layers["run_id"])  # (point, run, layer) as one integer, in place
        key *= top
        key += index
        del index
        dup = np.zeros(len(key), bool) if all_distinct(key) else pd.Index(key).duplicated(keep="last")
    else:
        subset = directions.identity_columns(layers, [*RESOLVE_KEY, "run_id", "layer_index"])
        dup = layers.duplicated(subset=subset, keep="last").to_numpy()
    report.duplicate_copies["layers"] = int(dup.sum())
    return (rows(layers, ~dup, consume), point_key[~dup]) if dup.any() else (layers, point_key)


def _resolve_layers_by_merge(layers: pd.DataFrame, points: pd.DataFrame, report: LoadReport) -> pd.DataFrame:
    """resolve_layers on the key columns themselves (slower: for frames point_codes cannot encode)."""
    n = len(layers)
    layers = layers.drop_duplicates(
        subset=directions.identity_columns(layers, [*RESOLVE_KEY, "run_id", "layer_index"]), keep="last"
    )
    report.duplicate_copies["layers"] = n - len(layers)
    has_point, won = _of_points(points, layers)
    report.orphan_layers = int((~has_point).sum())
    kept = layers[won]
    report.superseded["layers"] = len(layers) - report.orphan_layers - len(kept)
    order = directions.identity_columns(kept, [*RESOLVE_KEY, "layer_index"])
    return kept.sort_values(order, kind="stable").reset_index(drop=True)


def _of_points(points: pd.DataFrame, layers: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per layer row, on the key columns themselves: whether any points row is of its point, and whether the
    points row of its point and run is (a layer row's point keyed by its point_direction)."""
    keyed = directions.point_keyed(layers, [*RESOLVE_KEY, "run_id"])

    def index(df: pd.DataFrame, columns: list[str]) -> pd.MultiIndex:
        return pd.MultiIndex.from_arrays([df[c].astype(object).to_numpy() for c in columns])

    has_point = index(keyed, RESOLVE_KEY).isin(index(points, RESOLVE_KEY))
    won = index(keyed, [*RESOLVE_KEY, "run_id"]).isin(index(points, [*RESOLVE_KEY, "run_id"]))
    return np.asarray(has_point), np.asarray(won)


def use_mean_for_missing_median(layers: pd.DataFrame, report: LoadReport) -> pd.DataFrame:
    """Imported layer rows hold a mean but no median (the old system wrote none); the tables, figures and
    predictor work on p50_ms, so such rows use their mean there, and the report counts them."""
    missing = layers["p50_ms"].isna() & layers["mean_ms"].notna()
    report.layer_mean_as_median = int(missing.sum())
    if report.layer_mean_as_median:
        layers["p50_ms"] = layers["p50_ms"].where(~missing, layers["mean_ms"])
    return layers


def layers_of(points: pd.DataFrame, layers: pd.DataFrame, consume: bool = False) -> pd.DataFrame:
    """The layers rows of these points rows (same point, same run): where a setting filter kept some points
    of a run and not others (a graph=auto run whose capture failed at one size), the others' layers go too,
    rather than being counted as layers of points never committed. ``consume``: ``layers`` is the caller's to
    give up (the load's frame as read), its rows taken a column at a time (``rows``)."""
    codes = point_codes([points, directions.point_keyed(layers, RESOLVE_KEY)])
    if codes is None or not isinstance(layers["run_id"].dtype, pd.CategoricalDtype):
        _, won = _of_points(points, layers)
        return rows(layers, won, consume)
    kept = pd.MultiIndex.from_arrays([codes[0], points["run_id"].cat.codes.to_numpy()])
    mine = pd.MultiIndex.from_arrays([codes[1], layers["run_id"].cat.codes.to_numpy()]).isin(kept)
    return layers if mine.all() else rows(layers, mine, consume)


def pool_repeats(points: pd.DataFrame, layers: pd.DataFrame, report: LoadReport) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per point (and per point's layer) from its repeats (analysis.stats.repeats); a tree measured in one
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
        directions.identity_columns(layers, [*POINT_KEY, "_setting", "layer_index"]),
        "layers",
    )
    report.between_process = pd.concat([pooled_points.between, pooled_layers.between], ignore_index=True)
    return pooled_points.rows.drop(columns="_setting"), pooled_layers.rows.drop(columns="_setting")
