"""A comparison from its sides to its tables and verdict, and writing them under --out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis.compare import noise, verdicts
from analysis.compare.comparison import Comparison
from analysis.compare.report import render
from analysis.compare.sides import Sides
from analysis.errors import AnalysisError
from analysis.pipeline import check_out, write_tables
from analysis.report import render_html, render_markdown
from harness.results.uncertainty import MIN_PAIRS

DEFAULT_TOLERANCE = 0.05


def between_run_noise(pairs: pd.DataFrame, noise_floor: str | float = "auto") -> tuple[float, str]:
    """The between-run sd of log latency the comparison adds to each side, and where it comes from:
    ``auto`` estimates it from the trees' run-to-run pairs (0 with too few), a number gives it."""
    if noise_floor != "auto":
        try:
            value = float(noise_floor)
        except (TypeError, ValueError):
            value = float("nan")
        if not value >= 0:
            raise AnalysisError(
                f"--noise-floor {noise_floor} is not valid: give auto, or a standard deviation of "
                f"log latency between runs >= 0 (0: trust each row's own CI; 0.02: about 2%)"
            )
        return value, "given (--noise-floor)"
    estimate = noise.floor(pairs)
    if np.isnan(estimate):
        return 0.0, (
            f"none: {len(pairs)} run-to-run pair(s) of identical settings, fewer than {MIN_PAIRS}; "
            f"each row's own CI only (--noise-floor VALUE gives one)"
        )
    return estimate, f"estimated from {len(pairs)} run-to-run pairs of identical settings"


def compare(
    sides: Sides, tolerance: float = DEFAULT_TOLERANCE, across_stages: bool = False, noise_floor: str | float = "auto"
) -> Comparison:
    if not tolerance >= 0:
        raise AnalysisError(f"--tolerance {tolerance} is not valid: give a relative tolerance >= 0, e.g. 0.05")
    key = verdicts.match_key(sides.a.rows, sides.b.rows, across_stages)
    pair_frames, summaries = [], []
    for tree, rows in sides.trees.items():
        p = noise.run_pairs(rows, key)
        pair_frames.append(p.assign(tree=tree))
        summaries.append(noise.summarize(p, tree, key))
    pairs = pd.concat(pair_frames, ignore_index=True)
    between, source = between_run_noise(pairs, noise_floor)
    a, b = verdicts.resolve(sides.a.rows, key), verdicts.resolve(sides.b.rows, key)
    points = verdicts.compare_points(a, b, key, between)
    if points["verdict"].isin(["only_a", "only_b"]).all():
        raise AnalysisError(
            f"no point of A ({sides.a.label}) matches one of B ({sides.b.label}) on "
            f"{', '.join(key.columns)}: {verdicts.disjoint(a, b, key)}"
        )
    points, groups, family = verdicts.judge(points, verdicts.compare_groups(points, key), key, tolerance)
    return Comparison(sides, tolerance, key, points, groups, pairs, summaries, family, between, source)


def write(comparison: Comparison, out: Path) -> list[Path]:
    """comparison.md and .html, and the tables (Parquet and CSV) under ``out``."""
    check_out([Path(t) for t in comparison.sides.trees], out)
    out.mkdir(parents=True, exist_ok=True)
    files = write_tables(
        {"points": comparison.points, "groups": comparison.groups, "noise": comparison.noise_pairs}, out
    )
    title, sections = render(comparison)
    md, page = out / "comparison.md", out / "comparison.html"
    md.write_text(render_markdown(title, sections, out))
    page.write_text(render_html(title, sections))
    comparison.files = [md, page, *files]
    return comparison.files
