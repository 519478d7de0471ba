"""Which setting each points row was measured with, and the groups of rows the analysis may compare: rows of
two settings are never compared and never replace each other.

The settings are the config keys whose role is ``setting`` in harness.config.keys, each recorded in a points
column (device, backend, math_type, fallback_policy, cudnn_benchmark, cuda_graph, cpu_threads, plan_hash).
A setting does not apply to a row (``ANY``: the row would be the same under every value of it) where

- backend is ``torch``: algo=torch swaps no layer, so no backend runs one;
- fallback_policy: algo=torch, or no layer of the row fell back (``algo_fallback_layers`` 0: the same layers
  ran as under any policy; a point ``unsupported`` under fallback=none is such a row);
- math_type, cudnn_benchmark, cuda_graph: a CPU row (GPU settings);
- cpu_threads: a GPU row (the GPU's work does not run on the framework's CPU threads);
- plan_hash: null (not a plan);
- the training step's (train_loss, train_optimizer, train_input_grad, train_amp, train_deterministic,
  train_model_mode): a forward row (no step ran); a training row older than train_model_mode ran in eval;
- any setting: null on a row that measured nothing (a failed point records only the settings it reached).

A null on a row that measured is a value of its own, ``UNKNOWN`` (rows older than the cpu_threads column,
imported rows): such rows are compared only with rows that do not know it either.

A row belongs to every group whose setting agrees with it wherever the row's own value applies. The groups
are the rows' settings that no other row's setting refines (agrees with and is more specific than), so a
tree measured with one setting is one group, whatever rows its settings do not apply to.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.config.keys import SETTINGS as SETTING_KEYS
from harness.config.spec import EARLIER_TRAIN
from harness.results.layout import POINT_KEY

COLUMNS: tuple[str, ...] = tuple(k.column for k in SETTING_KEYS)  # points columns, in the registry's order
OPTIONS: dict[str, str] = {k.option: k.column for k in SETTING_KEYS}  # analysis filter option -> column
GPU_ONLY = ("math_type", "cudnn_benchmark", "cuda_graph")
# The training step's settings (the train.* keys of role setting), each with the value a training row was
# measured at before its column existed (harness.config.spec.EARLIER_TRAIN; None: every training row records it)
TRAINING = {
    k.column: EARLIER_TRAIN.get(k.name.removeprefix("train.")) for k in SETTING_KEYS if k.name.startswith("train.")
}
ANY = "*"  # the setting does not apply to the row
UNKNOWN = "unknown"  # a row that measured, without a value of the setting (older or imported rows)


def _text(column: pd.Series) -> pd.Series:
    """A setting column as lower-case text (booleans: true, false; integers without decimals), nulls as None;
    each distinct value converted once."""

    def one(v: object) -> str:
        if isinstance(v, (bool, np.bool_)):
            return str(bool(v)).lower()
        if isinstance(v, (float, np.floating)) and float(v).is_integer():
            return str(int(v))
        return str(v).lower()

    codes, uniques = pd.factorize(column)
    text = np.array([one(v) for v in uniques] + [None], dtype=object)
    return pd.Series(text[codes], index=column.index)  # code -1 (null): the last, None


def recorded(points: pd.DataFrame, column: str) -> set[str]:
    """The values of a setting column the rows record, as text (whether or not they apply to the rows)."""
    return set(_text(points[column]).dropna()) if column in points else set()


def values(points: pd.DataFrame) -> pd.DataFrame:
    """Each row's value of each setting column as text, ``ANY`` where the setting does not apply to the row,
    ``UNKNOWN`` where a row that measured does not record it (see the module docstring)."""
    measured = (points["status"].astype(str) == "ok").to_numpy()
    device = points["device"].astype(str).to_numpy() if "device" in points else np.full(len(points), "")
    torch = (points["algo"].astype(str) == "torch").to_numpy() if "algo" in points else np.zeros(len(points), bool)
    forward = (
        (points["direction"].astype(object).fillna("forward") == "forward").to_numpy(dtype=bool)
        if "direction" in points
        else np.ones(len(points), bool)
    )
    out = {}
    for col in COLUMNS:
        v = _text(points[col]) if col in points else pd.Series(None, index=points.index, dtype=object)
        if TRAINING.get(col) is not None:
            v = v.where(v.notna() | forward, TRAINING[col])  # a training row from before the column
        null = v.isna().to_numpy()
        applies = ~(null & ~measured)
        if col == "backend":
            applies &= (v != "torch").to_numpy()
        elif col == "fallback_policy":
            applies &= ~torch
            if "algo_fallback_layers" in points:
                fell_back = points["algo_fallback_layers"].astype("Float64")
                applies &= ~(fell_back == 0).fillna(False).to_numpy(dtype=bool)
        elif col in GPU_ONLY:
            applies &= device != "cpu"
        elif col == "cpu_threads":
            applies &= device != "cuda"
        elif col == "plan_hash":
            applies &= ~null
        elif col in TRAINING:
            applies &= ~forward
        out[col] = np.where(~applies, ANY, np.where(null, UNKNOWN, v.to_numpy(dtype=object)))
    return pd.DataFrame(out, index=points.index)


def identity(points: pd.DataFrame) -> pd.Series:
    """Each row's setting as one number: equal exactly where two rows' settings are (every setting column's
    value, ``ANY`` included). A number, not the values joined in a string: at 200,000 points the strings took
    most of the time of resolving the points."""
    v = values(points)
    if v.empty:
        return pd.Series([], index=points.index, dtype=np.int64)
    number = v.groupby(list(COLUMNS), sort=False, dropna=False).ngroup()
    return number.astype(np.int64)


@dataclass(frozen=True)
class Setting:
    """One group of comparable rows: its value of each setting column (``ANY``: applies to none of them)."""

    values: tuple[tuple[str, str], ...]
    label: str = ""  # the columns that tell it from the other groups, e.g. "cuda_graph=true, math_type=fma"

    def label_columns(self) -> list[str]:
        return [part.split("=", 1)[0] for part in self.label.split(", ")] if self.label else []

    def fixed(self) -> dict[str, str]:
        return {c: v for c, v in self.values if v != ANY}

    def describe(self) -> str:
        """Every value it fixes, e.g. "device=cuda, backend=cudnn, math_type=fma, cuda_graph=true"."""
        return ", ".join(f"{c}={v}" for c, v in self.fixed().items()) or "(no setting recorded)"

    def mask(self, points: pd.DataFrame, ignore: tuple[str, ...] = ()) -> pd.Series:
        """The rows of ``points`` this setting holds: their value agrees wherever it applies to them
        (``ignore``: columns not asked about)."""
        return self.holds(values(points), ignore)

    def holds(self, v: pd.DataFrame, ignore: tuple[str, ...] = ()) -> pd.Series:
        """``mask`` from the rows' ``values``."""
        keep = np.ones(len(v), dtype=bool)
        for col, value in self.fixed().items():
            if col not in ignore:
                keep &= ((v[col] == value) | (v[col] == ANY)).to_numpy()
        return pd.Series(keep, index=v.index)

    def resolve(self, points: pd.DataFrame) -> pd.DataFrame:
        """One row per point of those it holds: the latest (harness.results.read.latest's rule), except that a
        row which measured nothing and to which one of this setting's values does not apply loses to any other
        (in the fallback=torch setting, a point ``unsupported`` under fallback=none loses to its row measured
        with layers run by torch, whichever is newer)."""
        rows = points[self.mask(points)]
        v = values(rows)
        fixed = [c for c in self.fixed() if c in v]
        loses = (v[fixed] == ANY).any(axis=1) & (rows["status"].astype(str) != "ok")
        order = ["_wins", *[c for c in ("measured_at", "run_id") if c in rows]]
        ordered = rows.assign(_wins=~loses).sort_values(order, kind="stable", na_position="first")
        return ordered.drop_duplicates(subset=POINT_KEY, keep="last").drop(columns="_wins").sort_index()


def _agree(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """Two settings agree wherever both apply."""
    return all(x == y or ANY in (x, y) for x, y in zip(a, b))


def _join(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(y if x == ANY else x for x, y in zip(a, b))


def groups(points: pd.DataFrame) -> list[Setting]:
    """The groups of rows that may be compared, in order of their number of rows (most first), labelled by the
    columns in which they differ. The rows' distinct settings, most specific first, each join the first group
    they agree with (filling in the values it did not fix), else start one: a tree of one setting is one
    group, whatever rows its settings do not apply to (algo=torch, a fallback no layer needed, the rows of
    other algorithms beside a plan's)."""
    if points.empty:
        return []
    v = values(points)
    distinct = sorted(
        {tuple(t) for t in v.drop_duplicates().itertuples(index=False)}, key=lambda t: (-sum(x != ANY for x in t), t)
    )
    merged: list[tuple[str, ...]] = []
    for t in distinct:
        i = next((i for i, g in enumerate(merged) if _agree(g, t)), None)
        if i is None:
            merged.append(t)
        else:
            merged[i] = _join(merged[i], t)
    maximal = list(dict.fromkeys(merged))
    differ = [c for i, c in enumerate(COLUMNS) if len({t[i] for t in maximal}) > 1]
    out = []
    for t in maximal:
        named = dict(zip(COLUMNS, t))
        label = ", ".join(f"{c}={'any' if named[c] == ANY else named[c]}" for c in differ) if len(maximal) > 1 else ""
        out.append(Setting(tuple(zip(COLUMNS, t)), label))
    sizes = [int(s.holds(v).sum()) for s in out]
    return [s for _, s in sorted(zip(sizes, out), key=lambda p: -p[0])]
