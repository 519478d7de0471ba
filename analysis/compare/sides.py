"""The two sides of a comparison, read from results trees (the I/O edge of analysis.compare).

Either two trees (A, B), each optionally narrowed by selections (``--a``/``--b``), or one tree made into
two sides: ``--by COLUMN`` (a column with exactly two values; the one measured first is A) or explicit
selections ``--a SEL --b SEL`` (analysis.selection). Rows are read with analysis.load.read_points: filtered,
checked, every run's row kept (each side is resolved, latest wins, once the matching key is known).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from analysis.errors import AnalysisError
from analysis.tree import Filters, LoadReport, read_points, selection


@dataclass
class Side:
    """One side: its name (A or B), what it is (tree and selection, in words), and its rows (unresolved)."""

    name: str
    label: str
    rows: pd.DataFrame


@dataclass
class Sides:
    a: Side
    b: Side
    trees: dict[str, pd.DataFrame]  # each tree read (filtered), for the noise floor
    reports: dict[str, LoadReport]


def _label(tree: Path, selections: Sequence[selection.Selection]) -> str:
    return " ".join([str(tree), *(s.label() for s in selections)])


def load_sides(
    trees: Sequence[Path],
    *,
    by: str | None = None,
    a: Sequence[str] = (),
    b: Sequence[str] = (),
    filters: Filters = Filters(),
) -> Sides:
    """Read the trees and make the two sides; AnalysisError for anything a user must change."""
    if not 1 <= len(trees) <= 2:
        raise AnalysisError(f"give one results tree (split with --by or --a/--b) or two (A and B); got {len(trees)}")
    sel_a, sel_b = [selection.parse(t) for t in a], [selection.parse(t) for t in b]
    if by is not None and (sel_a or sel_b):
        raise AnalysisError("--by and --a/--b are two ways to make the sides: give one of them")
    if len(trees) == 2 and by is not None:
        raise AnalysisError(
            f"--by {by} splits one tree; with two trees each is a side already (narrow them with " f"--a/--b)"
        )
    if len(trees) == 1 and by is None and not (sel_a and sel_b):
        raise AnalysisError(
            f"one tree ({trees[0]}) needs two sides: --by COLUMN (one of "
            f"{', '.join(selection.SELECT_COLUMNS)}), or --a SELECTION --b SELECTION, or a second "
            f"tree"
        )
    read = {}
    reports = {}
    for tree in dict.fromkeys(trees):
        read[str(tree)], reports[str(tree)] = read_points(tree, filters)
    if len(trees) == 2:
        ta, tb = (str(t) for t in trees)
        side_a = Side("A", _label(trees[0], sel_a), selection.select(read[ta], sel_a, ta))
        side_b = Side("B", _label(trees[1], sel_b), selection.select(read[tb], sel_b, tb))
    elif by is not None:
        t = str(trees[0])
        (la, ra), (lb, rb) = selection.split_by(read[t], by, t)
        side_a, side_b = Side("A", f"{t} {la}", ra), Side("B", f"{t} {lb}", rb)
    else:
        t = str(trees[0])
        side_a = Side("A", _label(trees[0], sel_a), selection.select(read[t], sel_a, t))
        side_b = Side("B", _label(trees[0], sel_b), selection.select(read[t], sel_b, t))
        both = side_a.rows.index.intersection(side_b.rows.index)
        if len(both):
            raise AnalysisError(
                f"--a and --b overlap: {len(both)} rows of {t} are on both sides; make the " f"selections disjoint"
            )
    return Sides(side_a, side_b, read, reports)
