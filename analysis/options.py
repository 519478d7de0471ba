"""What a ``python -m analysis`` run does beyond reading the trees: the filters, thresholds, predictor and plots."""

from __future__ import annotations

from dataclasses import dataclass

from analysis.report import checks
from analysis.tree import Filters


@dataclass(frozen=True)
class Options:
    filters: Filters = Filters()
    thresholds: checks.Thresholds = checks.Thresholds()
    predictor: bool = False  # opt-in (--predictor): minutes on a large tree, the rest takes seconds
    plots: bool = True
    max_train_rows: int = 50_000
    threads: int | None = None  # the predictor's OpenMP threads (None: the cores other work leaves free)
