"""What a comparison says, as report sections (rendered to Markdown and HTML by analysis.report)."""

from __future__ import annotations

import pandas as pd

from analysis.compare.comparison import Comparison
from analysis.compare.noise import GOAL
from analysis.report import Section

METHOD = (
    "Per point: the ratio of medians B/A with a 95% confidence interval by the delta method on log p50 "
    "(harness.results.uncertainty.ratio_interval); each side's standard error comes from the summary statistics "
    "stored in its row (the median's distribution-free 95% CI, else std and n): the tree holds no raw "
    "samples. A side without an honest interval (not enough samples) makes the point no_interval: it is not "
    "tested, and counted. The noise between runs that no row's CI holds "
    "(estimated from the run-to-run pairs of identical settings, see the noise floor, or --noise-floor) is "
    "added to each side's standard error. Per group: the geometric mean of the ratios of its points with an "
    "interval, with the 95% interval of their own noise (harness.results.uncertainty.geomean_interval: over "
    "the points measured). Verdicts, corrected for their number "
    "(harness.results.multiplicity): every point and group with an interval gets two one-sided tests against the "
    "tolerance as the minimum effect (H0 'not slower than 1 + tolerance', and 'not faster than "
    "1 / (1 + tolerance)'; normal on the log scale, a group's from the midpoint and width of its "
    "interval), and the whole family of 2 x (points + groups) tests is corrected by Holm's step-down method: "
    "slower or faster where the Holm-adjusted p (p_holm) is at most 5%, same otherwise. So the probability that "
    "any point or group of an unchanged comparison is called slower is at most 5%, however many points are "
    "compared (one point alone: the old rule, the whole 95% interval beyond the tolerance). broke / fixed when a "
    "point stopped / started measuring ok. The comparison fails (exit code 1) when a point or a group is "
    "slower or a point broke."
)


def _shown(points: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    cols = [
        *key,
        "p50_ms_a",
        "p50_ms_b",
        "ratio",
        "ratio_low",
        "ratio_high",
        "p_value",
        "p_holm",
        "verdict",
        "why",
        "caveats",
    ]
    return points[[c for c in cols if c in points.columns]]


def verdict_text(c: Comparison) -> str:
    p, g = c.regressions()
    slower, broke = int((p["verdict"] == "slower").sum()), int((p["verdict"] == "broke").sum())
    confidence = f"with 95% family-wise confidence (Holm over {c.family.tests} one-sided tests)"
    if not c.failed:
        return (
            f"PASS: no point or group of B is slower than A beyond the {c.tolerance:.0%} tolerance {confidence}, "
            f"and no point stopped measuring ok."
        )
    flagged = p["caveats"].astype(bool).sum() + g["caveats"].astype(bool).sum()
    caveat = f" ({flagged} of them carry legacy flags that may explain the difference: see caveats)" if flagged else ""
    return (
        f"FAIL: {slower} point(s) and {len(g)} group(s) of B are slower than A beyond the {c.tolerance:.0%} "
        f"tolerance {confidence}; {broke} point(s) stopped measuring ok{caveat}."
    )


def family_line(c: Comparison) -> str:
    """How many comparisons were made and how they were corrected."""
    return f"comparisons: {c.family.line()}"


def counts_line(c: Comparison) -> str:
    counts = c.points["verdict"].value_counts()
    return ", ".join(f"{n} {v}" for v, n in counts.items())


def render(c: Comparison) -> tuple[str, list[Section]]:
    key = c.key.columns
    pts = c.points
    sides = Section("Sides").items(
        [
            f"A: {c.sides.a.label} ({len(c.sides.a.rows)} rows)",
            f"B: {c.sides.b.label} ({len(c.sides.b.rows)} rows)",
            f"matched on: {', '.join(key)} (each side: the latest row of each point)",
            *c.key.notes(),
            f"between-run noise added to each side's standard error: {c.between_run:.3f} (sd of log latency; "
            f"{c.between_run_source})",
            f"points: {counts_line(c)}",
            family_line(c),
        ]
    )
    regress = Section("Regressions").table(_shown(pts[pts["verdict"].isin(["slower", "broke"])], key))
    groups = (
        Section("Per gpu x model x algorithm")
        .text(
            "ratio = B/A (> 1: B slower); the geometric mean over the group's sizes and batch sizes, 95% interval "
            "of their measurement noise."
        )
        .table(c.groups)
    )
    faster = Section("Faster points").table(_shown(pts[pts["verdict"].isin(["faster", "fixed"])], key))
    unmatched = pts[pts["verdict"].isin(["only_a", "only_b"])]
    listed = unmatched[[*key, "verdict", "status_a", "status_b", "p50_ms_a", "p50_ms_b"]]
    only = (
        Section("Unmatched points")
        .text(
            f"{(unmatched['verdict'] == 'only_a').sum()} point(s) only in A, "
            f"{(unmatched['verdict'] == 'only_b').sum()} "
            f"only in B: not compared."
        )
        .table(listed)
    )
    noise = (
        Section("Noise floor (run-to-run, identical settings)")
        .text(
            "The same point measured in several runs of one tree, with the same config hash, device, software "
            f"versions and harness commit: each run against the one before it. Goal on a GPU: within {GOAL:.0%}. "
            "A tolerance below this floor calls noise a change."
        )
        .items([s.line() for s in c.noise])
    )
    if len(c.noise_pairs):
        noise.table(c.noise_pairs, "run-to-run pairs")
    same = (
        Section("All matched points")
        .text("Every point with its verdict: points.parquet.")
        .table(_shown(pts[~pts["verdict"].isin(["only_a", "only_b"])], key))
    )
    method = Section("Method").text(METHOD)
    title = f"Comparison: B = {c.sides.b.label} against A = {c.sides.a.label}"
    return title, [
        Section("Verdict").text(verdict_text(c)).text(family_line(c)),
        sides,
        regress,
        groups,
        faster,
        only,
        noise,
        same,
        method,
    ]
