"""Which rows of a results tree form one side of a comparison (or a set of references): a small grammar.

A selection is one of

    COLUMN=VALUE[,VALUE...]      rows whose COLUMN is one of the values, e.g. run_id=20261125T1500Z-ab12cd
                                 or cudnn_version=91002,91100
    measured_at=START..END       rows measured from START (included) to END (excluded); ISO dates or times,
                                 UTC unless they say otherwise; either end may be left out: ..2026-11-25T15:30

COLUMN is one of SELECT_COLUMNS: what tells runs apart, never a part of the point key (a side must hold the
same points as the other to be compared with it). Several selections of one side must all hold. A split
(``--by COLUMN``) makes two sides of one tree from a column with exactly two values.

Pure: functions of a DataFrame; errors are AnalysisError naming the bad value and the valid choices.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from analysis.errors import AnalysisError

# What tells two sets of measurements of the same points apart.
SELECT_COLUMNS = (
    "run_id",
    "git_commit",
    "torch_version",
    "cuda_version",
    "cudnn_version",
    "driver_version",
    "device_name",
    "hostname",
    "config_hash",
)
TIME_COLUMN = "measured_at"
MAX_LISTED = 12
GRAMMAR = f"""A selection (--a, --b, --select) is COLUMN=VALUE[,VALUE...] or {TIME_COLUMN}=START..END:
  run_id=20261125T150000Z-ab12cd       rows of these runs
  cudnn_version=91002,91100            rows whose column holds one of the values
  {TIME_COLUMN}=2026-11-01..2026-11-25T15:30   measured from START (included) to END (excluded); ISO dates
                                       or times, UTC unless they say otherwise; either end may be left out
COLUMN: {', '.join(SELECT_COLUMNS)}. Repeat a selection to narrow further (all must hold)."""


@dataclass(frozen=True)
class Selection:
    """``column`` in ``values``, or ``measured_at`` in [start, end)."""

    column: str
    values: tuple[str, ...] = ()
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None

    def label(self) -> str:
        if self.column == TIME_COLUMN:
            fmt = lambda t: "" if t is None else t.isoformat()  # noqa: E731
            return f"{TIME_COLUMN}={fmt(self.start)}..{fmt(self.end)}"
        return f"{self.column}={','.join(self.values)}"

    def mask(self, rows: pd.DataFrame) -> pd.Series:
        if self.column == TIME_COLUMN:
            t = rows[TIME_COLUMN]
            keep = t.notna()
            if self.start is not None:
                keep &= t >= self.start
            if self.end is not None:
                keep &= t < self.end
            return keep
        return rows[self.column].astype("string").isin(self.values).fillna(False).astype(bool)


def _timestamp(text: str, what: str) -> pd.Timestamp | None:
    if not text:
        return None
    try:
        t = pd.Timestamp(text)
    except ValueError:
        raise AnalysisError(
            f"{what} {text!r} is not a date or time; write e.g. 2026-11-25 or 2026-11-25T15:30"
        ) from None
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def parse(text: str) -> Selection:
    """A selection from its text (see the module docstring)."""
    column, eq, value = text.partition("=")
    column = column.strip()
    valid = ", ".join((*SELECT_COLUMNS, TIME_COLUMN))
    if not eq or not value.strip():
        raise AnalysisError(
            f"selection {text!r} is not COLUMN=VALUE[,VALUE...] or {TIME_COLUMN}=START..END; "
            f"COLUMN is one of: {valid}"
        )
    if column == TIME_COLUMN:
        start, dots, end = value.partition("..")
        if not dots:
            raise AnalysisError(
                f"selection {text!r}: a time range is {TIME_COLUMN}=START..END (either end may be "
                f"left out), e.g. {TIME_COLUMN}=2026-11-01..2026-11-25T15:30"
            )
        s, e = _timestamp(start.strip(), "start"), _timestamp(end.strip(), "end")
        if s is not None and e is not None and e <= s:
            raise AnalysisError(f"selection {text!r}: the end must come after the start")
        return Selection(column, start=s, end=e)
    if column not in SELECT_COLUMNS:
        raise AnalysisError(f"cannot select on {column!r}; valid columns: {valid}")
    values = tuple(v.strip() for v in value.split(",") if v.strip())
    return Selection(column, values)


def present(rows: pd.DataFrame, column: str) -> list[str]:
    """The distinct non-null values of ``column``, as text, sorted."""
    return sorted(rows[column].dropna().astype(str).unique())


def _listed(values: list[str]) -> str:
    more = f" and {len(values) - MAX_LISTED} more" if len(values) > MAX_LISTED else ""
    return (", ".join(values[:MAX_LISTED]) or "(none: null on every row)") + more


def select(rows: pd.DataFrame, selections: Sequence[Selection], where: str) -> pd.DataFrame:
    """The rows every selection keeps; a value the rows do not hold is an error that lists those they do."""
    keep = pd.Series(True, index=rows.index)
    for sel in selections:
        if sel.column != TIME_COLUMN:
            have = set(present(rows, sel.column))
            missing = [v for v in sel.values if v not in have]
            if missing:
                raise AnalysisError(
                    f"{sel.column}={','.join(missing)}: not in {where}; present: "
                    f"{_listed(present(rows, sel.column))}"
                )
        keep &= sel.mask(rows)
    if not keep.any():
        chosen = " ".join(s.label() for s in selections)
        times = rows[TIME_COLUMN].dropna()
        span = f" (measured {times.min().isoformat()} .. {times.max().isoformat()})" if len(times) else ""
        raise AnalysisError(f"no rows of {where}{span} match {chosen}")
    return rows[keep]


def split_by(rows: pd.DataFrame, column: str, where: str) -> tuple[tuple[str, pd.DataFrame], tuple[str, pd.DataFrame]]:
    """Two sides of ``rows`` by a column with exactly two values: first the one measured earlier (its first
    row), then the other. Rows where the column is null belong to neither."""
    if column not in SELECT_COLUMNS:
        raise AnalysisError(f"cannot split by {column!r}; valid columns: {', '.join(SELECT_COLUMNS)}")
    values = present(rows, column)
    if len(values) != 2:
        raise AnalysisError(
            f"--by {column} needs exactly two values in {where}; it has {len(values)}: "
            f"{_listed(values)} (choose two with --a {column}=... --b {column}=...)"
        )
    text = rows[column].astype("string")
    first = {v: rows.loc[text == v, TIME_COLUMN].min() for v in values}
    ordered = sorted(values, key=lambda v: (pd.isna(first[v]), first[v] if not pd.isna(first[v]) else 0, v))
    a, b = ordered
    return (f"{column}={a}", rows[text == a]), (f"{column}={b}", rows[text == b])
