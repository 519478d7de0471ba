"""What loading a results tree returns: the rows (Results) and what loading saw and did (LoadReport)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from analysis.stats import repeats


@dataclass(frozen=True)
class BadFile:
    path: str
    table: str
    error: str


@dataclass
class LoadReport:
    """What loading saw and did; the report quotes it."""

    root: str  # the results trees read, as one line
    files: dict[str, int] = field(default_factory=dict)  # table -> files read
    bad_files: list[BadFile] = field(default_factory=list)
    rows_read: dict[str, int] = field(default_factory=dict)
    duplicate_copies: dict[str, int] = field(default_factory=dict)  # same run, same point, twice
    superseded: dict[str, int] = field(default_factory=dict)  # older measurements of a point, dropped
    repeated_points: int = 0  # points measured more than once
    orphan_layers: int = 0  # layer rows whose point has no points row (never committed)
    layer_mean_as_median: int = 0  # layer rows without a median (imported): mean_ms stands in for p50_ms
    host_bound_layers: int = 0  # resolved layer rows whose time is the host's (harness.results.hostbound)
    # model name -> the names its different model files were given apart ("<name>@<hash>"); see convert.mixed_models
    separated_models: dict[str, list[str]] = field(default_factory=dict)
    # per gpu x model (points and layers): the noise between processes that repeats revealed (analysis.stats.repeats)
    between_process: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=repeats.BETWEEN_COLUMNS))


@dataclass
class Results:
    points: pd.DataFrame
    layers: pd.DataFrame
    report: LoadReport


def tree_names(roots: list[Path]) -> str:
    """The results trees read, as one line (messages and LoadReport.root)."""
    return " + ".join(str(r) for r in roots)
