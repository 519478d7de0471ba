"""``training_projection``: per train_step point measured with a training plan (algo=per_layer), the step the plan's
calls project (each call's ``algo_used`` looked up in that algorithm's own train_step run of the same call; the
rest of the step from the baseline's) against the measured step, as the forward's plan_projection does for a
forward pass (analysis.tables.catalog.plan_projection.projection over the calls: analysis.tables.training.flattened),
with the training oracle's projection at the same point beside it."""

from __future__ import annotations

import pandas as pd

from analysis.tables.catalog.plan_projection import projection
from analysis.tables.columns import POINT
from analysis.tables.registry import Table
from analysis.tables.training import flattened
from analysis.tree.directions import TRAIN_STEP


def training_projection(points: pd.DataFrame, layers: pd.DataFrame, oracle: pd.DataFrame) -> pd.DataFrame:
    """One row per train_step per_layer point (the columns of plan_projection)."""
    pts, lay = flattened(points, layers)
    if "direction" in POINT and len(oracle):
        oracle = oracle.assign(direction=TRAIN_STEP)
    return projection(pts, lay, oracle)


TABLE = Table(
    name="training_projection",
    inputs=("train_points", "train_layers", "training_oracle"),
    compute=training_projection,
    position=202,
    about="training plans' projected step against their measured step",
)
