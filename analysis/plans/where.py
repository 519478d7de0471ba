"""The point a plan is made for (``Where``) and picking its rows out of resolved points and layers.

Shared by the three ways to make a plan (analysis.plans.make, .find, .predicted).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.errors import AnalysisError
from harness.algorithms.plan import Evidence, PlanKey


@dataclass(frozen=True)
class Where:
    """The point a plan is made for."""

    model: str
    input_size: int
    batch_size: int = 1
    dtype: str = "float32"
    gpu: str | None = None  # None: the only one the tree holds
    stage: str | None = None  # None: the only one holding the point

    def describe(self) -> str:
        return (
            f"model={self.model} input_size={self.input_size} batch_size={self.batch_size} dtype={self.dtype}"
            + (f" gpu={self.gpu}" if self.gpu else "")
            + (f" stage={self.stage}" if self.stage else "")
        )

    def pinned(self, points: pd.DataFrame) -> Where:
        """This point with its GPU type and stage set: the given ones, else the only ones ``points`` (the rows
        at this point) hold (an AnalysisError naming the choices where they hold several)."""
        gpu = self.gpu or only_value(points["gpu"], "gpu", self)
        stage = self.stage or only_value(points["stage"], "stage", self)
        return Where(self.model, self.input_size, self.batch_size, self.dtype, gpu, stage)


def only_value(values: pd.Series, what: str, where: Where) -> str:
    found = sorted(set(values.astype(str)))
    if len(found) != 1:
        raise AnalysisError(
            f"{where.describe()}: the tree holds this point for {what} {', '.join(found)}; " f"choose one with --{what}"
        )
    return found[0]


# where's values and their plan make flags, in the order they narrow a model's points
WHERE_FLAGS = (
    ("input_size", "--size"),
    ("batch_size", "--batch"),
    ("dtype", "--dtype"),
    ("gpu", "--gpu"),
    ("stage", "--stage"),
)


def not_held(points: pd.DataFrame, where: Where) -> str:
    """Why no ok point is at ``where``: its first value the tree does not hold (narrowed by the ones before
    it), with the values it holds there, e.g. ``--size 999 is not valid: ...; held there: 224, 256``."""
    rows = points[points["model"].astype(str) == where.model]
    for column, flag in WHERE_FLAGS:
        value = getattr(where, column)
        if value is None:
            continue
        held = sorted({int(v) for v in rows[column]} if column.endswith("_size") else set(rows[column].astype(str)))
        if value not in held:
            return (
                f"{flag} {value} is not valid: no point of {where.model} measured ok at it in the tree; held "
                f"there: {', '.join(map(str, held)) or 'none'}"
            )
        rows = rows[(rows[column] if column.endswith("_size") else rows[column].astype(str)) == value]
    return f"{where.describe()}: no point measured ok in the tree"


def at_point(df: pd.DataFrame, where: Where) -> pd.DataFrame:
    m = (
        (df["model"].astype(str) == where.model)
        & (df["input_size"] == where.input_size)
        & (df["batch_size"] == where.batch_size)
        & (df["dtype"].astype(str) == where.dtype)
    )
    for col in ("gpu", "stage"):
        if getattr(where, col) is not None:
            m &= df[col].astype(str) == getattr(where, col)
    return df[m]


def evidence(row: pd.Series | None) -> Evidence | None:
    if row is None:
        return None
    lo, hi = (None if np.isnan(v) else v for v in (float(row["lo"]), float(row["hi"])))  # no interval: None
    return Evidence(str(row["algo"]), float(row["p50_ms"]), lo, hi)


def plan_key(where: Where, points: pd.DataFrame, backend: str | None) -> PlanKey:
    """The key of a plan made at ``where`` (pinned) from ``points`` (its rows): the device and cuDNN version
    its first row recorded."""
    first = points.iloc[0]
    return PlanKey(
        where.model,
        where.gpu,
        optional_str(first.get("device_name")),
        where.dtype,
        where.input_size,
        where.batch_size,
        optional_str(first.get("cudnn_version")),
        backend,
    )


def single_backend(points: pd.DataFrame) -> str | None:
    """The backend of the points' own algorithms (torch's rows left out), where there is exactly one."""
    backends = set(points.loc[points["algo"].astype(str) != "torch", "backend"].dropna().astype(str)) - {"torch"}
    return backends.pop() if len(backends) == 1 else None


def optional_str(v: object) -> str | None:
    return None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)
