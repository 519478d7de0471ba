"""The width the layers' small integers are held at: a convolution's geometry, its point's sizes and its repeat.

They are read as int32 (analysis.tree.read.INT32). The analysis's own run (``load(narrow=True)``, as
``python -m analysis`` loads) then holds each in the narrowest of int8 and int16 that holds every value read,
else leaves it int32: 42 bytes a row less, 0.84 GB at 20,000,000 layer rows, on every step after the read.

It is not ``load``'s default because arithmetic on int16 wraps silently: ``in_channels * out_channels``
overflows from 182 channels up, and a caller's own code would get a wrong number with no error. The analysis
casts to float or int64 before any arithmetic on these columns (the predictor's features, the mixed-radix keys,
``within_point``), and every table it makes holds them as int32 again (``as_int32``: the tables computed and
the tables written), so its outputs are those of an int32 load, type for type.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.results.schema import CONV_PARAMETERS

SMALL = ("input_size", "batch_size", "layer_index", *CONV_PARAMETERS, "in_h", "in_w", "out_h", "out_w", "repeat")

_NARROW = (np.dtype(np.int8), np.dtype(np.int16))


def narrow(layers: pd.DataFrame) -> pd.DataFrame:
    """``layers`` with each integer column of SMALL in the narrowest of int8 and int16 that holds all of its
    values (unchanged where neither does, or where it has nulls and so is not an integer column), in place:
    a column at a time, so that millions of rows are never held twice."""
    for c in SMALL:
        if c not in layers or not len(layers):
            continue
        values = layers[c].to_numpy()
        if values.dtype.kind != "i":
            continue
        low, high = int(values.min()), int(values.max())
        fits = next((t for t in _NARROW if np.iinfo(t).min <= low and high <= np.iinfo(t).max), None)
        if fits is not None and fits.itemsize < values.dtype.itemsize:
            layers[c] = values.astype(fits)
    return layers


def as_int32(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the columns of SMALL that ``narrow`` made int8 or int16 as int32 again (a copy of those
    columns only): what a table holds and writes, whatever the width of the layers it came from."""
    small = {c: np.int32 for c in SMALL if c in frame.columns and frame[c].dtype in _NARROW}
    return frame.astype(small) if small else frame
