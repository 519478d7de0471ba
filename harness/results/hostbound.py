"""Host-bound layer rows: a layer time that is the host's pace, not the GPU's.

On a GPU each layer is timed behind a head start (harness.measure.layers.HeadStart). A layer the longest
head start did not cover was issued by the host slower than the spin ran out: its events timed the host's
issuing, so its time says how fast the CPU is, not the algorithm. Such a layers row has ``host_bound`` true
(and says so in ``detail``); rows written before that column existed carry only the ``detail`` text.

This module owns the text and the two rules that read it back: ``derive`` (the column, old rows included)
and ``mask`` (which rows of a frame are host-bound). Torch-free, so readers of the tree need no torch.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

# The layers row's detail text of a host-bound layer (written by harness.measure.point).
HOST_BOUND = "time includes the host's issuing: no head start covered it (see README, launch-bound points)"


def derive(host_bound: pa.ChunkedArray | pa.Array, detail: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """The ``host_bound`` column with its gaps filled from ``detail``: a row that has the column keeps it;
    a row without it (written before the column existed) is true where its detail carries HOST_BOUND, else
    null (a head start covered it, or none was used: an old row cannot tell which)."""
    marked = pc.fill_null(pc.match_substring(detail, HOST_BOUND), False)
    from_text = pc.if_else(marked, pa.scalar(True), pa.scalar(None, pa.bool_()))
    return pc.coalesce(host_bound, from_text)


def mask(layers: pd.DataFrame) -> np.ndarray:
    """Per row of ``layers``, whether its time is known to be host-bound (False where the frame has no
    ``host_bound`` column, or the row's is null)."""
    if "host_bound" not in layers.columns:
        return np.zeros(len(layers), dtype=bool)
    return layers["host_bound"].eq(True).fillna(False).to_numpy(dtype=bool)


def gpu_timed(layers: pd.DataFrame) -> pd.DataFrame:
    """``layers`` without its host-bound rows: the rows whose time may stand for the GPU's (the frame itself
    where none is host-bound: no copy of millions of rows)."""
    hb = mask(layers)
    return layers[~hb] if hb.any() else layers
