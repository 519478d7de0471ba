"""Algorithm x layer shape x gpu: ok, fallback, unsupported or mixed."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.tables import slices
from analysis.tables.columns import (
    SUPPORT,
    shape_label,
)
from analysis.tables.registry import Table
from analysis.tree.keys import by_appearance, row_keys

KEY = [*SUPPORT, "algo"]


def support(layers: pd.DataFrame) -> pd.DataFrame:
    """Algorithm x layer shape x gpu: "ok", "fallback" or "unsupported" (the status of its first row that has
    one), or "mixed" where occurrences of one shape disagree (e.g. between batch sizes).

    Counted one model at a time (analysis.tables.slices), then added up: a slice's rows group in the caches,
    and the counts of every slice are a row per shape, algorithm and status (thousands, not millions)."""
    if layers.empty:
        return pd.DataFrame(columns=[*SUPPORT, "shape", "algo", "status", "rows"])
    counts = pd.concat(slices.each(lambda a, b: _counts(layers.iloc[a:b], a), slices.ranges(layers)), ignore_index=True)
    # the slices' counts (a row per shape, algorithm and status of each model) added up per shape and algorithm,
    # on one integer per row: grouping and joining on the 16 columns took half the table's time
    group, first = by_appearance(row_keys([counts], KEY)[0])
    status, statuses = pd.factorize(counts["status"])  # -1: no status
    known = np.flatnonzero(status >= 0)
    earliest = known[np.lexsort((counts["first"].to_numpy()[known], group[known]))]
    leads = earliest[np.r_[True, group[earliest][1:] != group[earliest][:-1]]] if len(earliest) else earliest
    pairs = np.unique(group[known] * max(len(statuses), 1) + status[known])  # each group's distinct statuses
    kinds = np.bincount(pairs // max(len(statuses), 1), minlength=len(first))
    out = counts.iloc[first][KEY].reset_index(drop=True)
    text = np.full(len(first), np.nan, dtype=object)
    text[group[leads]] = np.asarray(statuses, dtype=object)[status[leads]]  # the status of its first row with one
    # as text: "mixed" is none of the loaded statuses' categories (setting it on the categorical raised)
    out["status"] = pd.Series(np.where(kinds == 1, text, "mixed"), dtype=object)
    out["rows"] = np.bincount(group, weights=counts["rows"].to_numpy(), minlength=len(first)).astype(np.int64)
    out.insert(len(SUPPORT), "shape", shape_label(out))
    return out.sort_values(KEY).reset_index(drop=True)


def _counts(layers: pd.DataFrame, start: int) -> pd.DataFrame:
    """Per shape, algorithm and status among these rows (the first at position ``start``): how many rows, and
    the position of the first. On one integer per row (the shape's number, then the algorithm's and the status's,
    a missing one a value of its own), each group's values taken from its first row: grouping the three
    columns and joining the shapes back took most of the table's time, much of it holding the interpreter's
    lock, which the other tables' threads wait for."""
    rows = layers[[*SUPPORT, "algo", "status"]]
    shape = pd.factorize(row_keys([rows], SUPPORT)[0])[0]  # 15 columns as one integer, then numbered densely
    algo = pd.factorize(rows["algo"], use_na_sentinel=False)[0]
    status = pd.factorize(rows["status"], use_na_sentinel=False)[0]
    key = (shape * (int(algo.max(initial=0)) + 1) + algo) * (int(status.max(initial=0)) + 1) + status
    group, first = by_appearance(key)
    out = rows.iloc[first].reset_index(drop=True)
    out["rows"] = np.bincount(group, minlength=len(first))
    out["first"] = start + first
    return out


TABLE = Table(
    name="support",
    inputs=("layers",),
    compute=support,
    position=130,
    about="which algorithm runs which layer shape",
)
