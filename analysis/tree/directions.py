"""Directions of a measurement: which rows are the forward pass's and which are a training step's.

A point is measured in one ``direction`` (harness.results.layout's point key: forward, backward_data,
backward_filter or train_step); a layer row carries the direction of ITS conv call (``direction``: forward,
backward_data or backward_filter) and its point's (``point_direction``), so a train_step point has up to three
layer rows per conv layer. Rows written before directions existed have neither column and are forward
(harness.results.read fills them once the point key holds ``direction``; here a missing column or a null is
forward too).

The forward tables (everything under analysis/tables/catalog/ that reads ``points`` and ``layers``) see the
forward points and their layer rows only (``forward``): a forward table never mixes a training step's rows
into a forward competition, and a forward-only tree gives them the very frames it gave before. The training
tables read the rest (``training``): the points measured in another direction and their layer rows.

Within a point, a layer row is (``layer_index``, ``direction``); joined to its point, a layer row's point key
holds its ``point_direction`` in place of its call's direction (``point_keyed``).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from analysis.tree.records import Results
from harness.algorithms.plan import DIRECTIONS as CALLS

FORWARD = "forward"
TRAIN_STEP = "train_step"
POINT_DIRECTIONS = (*CALLS, TRAIN_STEP)  # a point's direction: one conv call's, or the whole step
POINT_COLUMN = "point_direction"  # on a layer row: its point's direction


def _text(df: pd.DataFrame, column: str) -> pd.Series:
    """``column`` as strings, ``forward`` where the column is missing or null (rows from before directions)."""
    if column not in df:
        return pd.Series(FORWARD, index=df.index, dtype=object)
    return df[column].astype(object).where(df[column].notna(), FORWARD).astype(str)


def point_direction(points: pd.DataFrame) -> pd.Series:
    """Each points row's direction."""
    return _text(points, "direction")


def call_direction(layers: pd.DataFrame) -> pd.Series:
    """Each layer row's own conv call's direction."""
    return _text(layers, "direction")


def layer_point_direction(layers: pd.DataFrame) -> pd.Series:
    """Each layer row's point's direction."""
    return _text(layers, POINT_COLUMN)


def _is_forward(df: pd.DataFrame, column: str) -> np.ndarray:
    """Per row, whether ``column`` says forward (missing or null: forward). Compared as read (a categorical's
    codes), not as strings: millions of layer rows."""
    if column not in df:
        return np.ones(len(df), bool)
    values = df[column]
    return ((values == FORWARD) | values.isna()).to_numpy(dtype=bool)


def forward_points(points: pd.DataFrame) -> pd.DataFrame:
    """The points measured forward; ``points`` itself where every one is (no copy)."""
    if "direction" not in points:
        return points
    keep = _is_forward(points, "direction")
    return points if keep.all() else points[keep].reset_index(drop=True)


def forward_layers(layers: pd.DataFrame) -> pd.DataFrame:
    """The layer rows of forward points; ``layers`` itself where every one is (no copy of millions of rows)."""
    if POINT_COLUMN not in layers:
        return layers
    keep = _is_forward(layers, POINT_COLUMN)
    return layers if keep.all() else layers[keep].reset_index(drop=True)


def training_points(points: pd.DataFrame) -> pd.DataFrame:
    """The points measured in a direction other than forward (empty for a forward-only tree)."""
    if "direction" not in points:
        return points.iloc[0:0]
    return points[~_is_forward(points, "direction")].reset_index(drop=True)


def training_layers(layers: pd.DataFrame) -> pd.DataFrame:
    """The layer rows of the points measured in a direction other than forward."""
    if POINT_COLUMN not in layers:
        return layers.iloc[0:0]
    return layers[~_is_forward(layers, POINT_COLUMN)].reset_index(drop=True)


def forward(res: Results) -> Results:
    """The forward points and their layer rows (the results themselves where nothing else was measured)."""
    points, layers = forward_points(res.points), forward_layers(res.layers)
    if points is res.points and layers is res.layers:
        return res
    return Results(points, layers, res.report)


def has_training(points: pd.DataFrame) -> bool:
    """Whether any point was measured in a direction other than forward."""
    return "direction" in points and not _is_forward(points, "direction").all()


def fill_layers_table(layers: pa.Table | None) -> pa.Table | None:
    """The layer rows (Arrow, as read) with ``point_direction`` filled where null: rows written before directions
    were of forward points. (``direction`` is a point-key column: harness.results.read.fill_point_axes_table
    fills it.)"""
    if layers is None:
        return None
    i = layers.schema.get_field_index(POINT_COLUMN)
    if i < 0 or not layers.column(i).null_count:
        return layers
    filled = pc.fill_null(layers.column(i), pa.scalar(FORWARD, layers.schema.field(i).type))
    return layers.set_column(i, POINT_COLUMN, filled)


def point_keyed(layers: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``columns`` of the layer rows as their point's key: ``direction`` is the point's (``point_direction``),
    not the call's. The columns themselves, not copies, where there is nothing to replace."""
    if "direction" not in columns or POINT_COLUMN not in layers:
        return layers[columns] if list(layers.columns) != list(columns) else layers
    return pd.DataFrame(
        {c: (layers[POINT_COLUMN] if c == "direction" else layers[c]) for c in columns}, index=layers.index, copy=False
    )


def call_code(layers: pd.DataFrame) -> np.ndarray:
    """Each layer row's call direction as its position in harness.algorithms.plan.DIRECTIONS (forward 0)."""
    if "direction" not in layers:
        return np.zeros(len(layers), np.int64)
    column = layers["direction"]
    if isinstance(column.dtype, pd.CategoricalDtype):  # as read: recode the few categories, not the rows
        names = list(column.cat.categories.astype(str))
        at = [CALLS.index(c) if c in CALLS else -1 for c in names]
        codes = column.cat.codes.to_numpy()
        unknown = [k for k, i in enumerate(at) if i < 0]
        if unknown and np.isin(codes, unknown).any():
            raise _not_calls(names[k] for k in unknown if (codes == k).any())
        table = np.array([*at, 0], np.int8)  # code -1 (null): the last, forward
        if not table.any():  # every row forward (an inference campaign): no pass over the rows
            return np.zeros(len(layers), np.int64)
        return table[codes].astype(np.int64)
    codes = pd.Categorical(call_direction(layers), categories=list(CALLS)).codes.astype(np.int64)
    if (codes < 0).any():
        raise _not_calls(call_direction(layers)[codes < 0])
    return codes


def _not_calls(found: Iterable[str]) -> ValueError:
    """The error for layer rows whose call direction is none of CALLS (``found``: theirs)."""
    return ValueError(f"layer rows with direction {', '.join(sorted(set(found)))}; valid: {', '.join(CALLS)}")


def within_point(layers: pd.DataFrame) -> np.ndarray:
    """One integer per layer row that tells the rows of one point apart: ``layer_index`` x 3 + the call's
    direction (forward rows keep their order: the forward's is ``layer_index`` x 3)."""
    key = layers["layer_index"].to_numpy().astype(np.int64)  # made in place from here: millions of rows
    key *= len(CALLS)
    key += call_code(layers)
    return key


def identity_columns(layers: pd.DataFrame, key: list[str]) -> list[str]:
    """``key`` plus the direction columns a layer row of it needs to be told apart (its call's and its
    point's direction, where the rows have them and ``key`` lacks them)."""
    return [*key, *(c for c in ("direction", POINT_COLUMN) if c in layers and c not in key)]
