"""The vocabulary every answer table shares: the columns of a point, of a layer shape, the baselines and
statuses, the single algorithms (not a choice per layer) and a layer shape's readable label."""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.algorithms import ALGORITHMS
from harness.results import hostbound
from harness.results.layout import POINT_KEY
from harness.results.schema import CONV_PARAMETERS

# One point of the comparison: every algorithm measured here competes. The results' point key without the
# algorithm (harness.results.layout owns it), so every axis of the key separates points here too: an NCHW and
# an NHWC measurement, or a warm and a cold L2, are two points, never one competition.
POINT = [k for k in POINT_KEY if k != "algo"]


GEOMETRY = [*CONV_PARAMETERS, "in_h", "in_w"]


# A layer shape as an algorithm sees it (batch, dtype and layout change the work and what runs; a cold L2
# changes its time).
SHAPE = ["gpu", "dtype", "layout", "l2", "batch_size", *GEOMETRY]


# Support does not depend on the batch: one verdict per algorithm x shape x gpu (x dtype x layout: cuDNN's
# support differs per layout).
SUPPORT = ["gpu", "dtype", "layout", *GEOMETRY]


BASELINES = ("torch", "guess")


STATUSES = ("ok", "oom", "unsupported", "error")


MIXED = ("per_layer", "find")  # a choice per layer, not one algorithm: never "the best single algorithm"


SINGLE = tuple(a for a in ALGORITHMS if a not in ("guess", "torch", *MIXED))


def shape_label(df: pd.DataFrame, size: bool = True) -> pd.Series:
    """A short readable name of a layer shape, e.g. ``64->128 3x3 s2 p1 @56x56`` (g, d only when not 1;
    without the ``@HxW`` input size when ``size`` is False)."""
    s = (
        df["in_channels"].astype(str)
        + "->"
        + df["out_channels"].astype(str)
        + " "
        + df["kernel_h"].astype(str)
        + "x"
        + df["kernel_w"].astype(str)
        + " s"
        + df["stride_h"].astype(str)
        + " p"
        + df["pad_h"].astype(str)
    )
    s = s + np.where(df["groups"] != 1, " g" + df["groups"].astype(str), "")
    s = s + np.where(df["dilation_h"] != 1, " d" + df["dilation_h"].astype(str), "")
    return s + " @" + df["in_h"].astype(str) + "x" + df["in_w"].astype(str) if size else s


def timed(layers: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``columns`` of the layer rows where the requested algorithm itself ran and was timed at the GPU's pace
    (not host-bound: harness.results.hostbound)."""
    return layers.loc[_timed(layers), columns]


def timed_rows(layers: pd.DataFrame) -> np.ndarray:
    """The positions of ``timed``'s rows."""
    return np.flatnonzero(_timed(layers))


def _timed(layers: pd.DataFrame) -> np.ndarray:
    ran = (layers["status"] == "ok") & layers["p50_ms"].notna()
    return ran.to_numpy(dtype=bool, na_value=False) & ~hostbound.mask(layers)


def singles(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of single algorithms only (what the oracle and the plans choose among); the frame itself where
    it holds no other (no copy of millions of layer rows)."""
    mixed = df["algo"].isin(MIXED)  # on the categorical's codes: no string per row
    return df[~mixed] if mixed.any() else df


def span(s: pd.Series) -> str:
    values = sorted(set(int(v) for v in s))
    if len(values) <= 4:
        return ",".join(map(str, values))
    return f"{values[0]}..{values[-1]} ({len(values)})"
