"""`python -m analysis.compare A B` or `python -m analysis.compare TREE --by COLUMN | --a SEL --b SEL`.

Compares two sets of measurements of the same points (B against A): per point and per gpu x model x
algorithm, faster / slower / same with the ratio of medians B/A and its 95% confidence interval, the points
only one side has, and the run-to-run noise floor. Writes comparison.md/.html and Parquet/CSV tables to
--out. Exit status: 1 when a regression beyond the tolerance holds with 95% confidence over the whole
family of comparisons (Holm: a point or a group slower, or a point that stopped measuring ok), 0 otherwise,
2 for a usage error (a bad path, an unknown column, a side with no rows),
with a message naming the bad value and the valid choices.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from analysis.compare import pipeline
from analysis.compare.report import counts_line, family_line, verdict_text
from analysis.compare.sides import load_sides
from analysis.tree import Filters, selection
from harness import validate
from harness.cli import ArgumentParser, command

log = logging.getLogger(__name__)
SHOWN = 15


def parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="python -m analysis.compare",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=selection.GRAMMAR,
    )
    p.add_argument(
        "trees",
        nargs="+",
        metavar="TREE",
        type=validate.input_path,
        help="results tree A and tree B, or one tree to split",
    )
    p.add_argument(
        "--by",
        metavar="COLUMN",
        type=validate.text,
        help=f"split one tree by a column with exactly two values (the one "
        f"measured first is A): {', '.join(selection.SELECT_COLUMNS)}",
    )
    p.add_argument(
        "--a",
        action="append",
        default=[],
        metavar="SELECTION",
        type=validate.text,
        help="rows of side A, e.g. " "run_id=RUN or measured_at=..2026-11-25T15:30 (repeat: all must hold)",
    )
    p.add_argument("--b", action="append", default=[], metavar="SELECTION", type=validate.text, help="rows of side B")
    Filters.add_arguments(p, " on both sides")
    p.add_argument(
        "--tolerance",
        type=validate.non_negative_float,
        default=pipeline.DEFAULT_TOLERANCE,
        help="relative change that counts (the minimum effect): slower means B/A lies above 1 + this "
        "with 95%% confidence over the whole family of comparisons (Holm) (default %(default)s)",
    )
    p.add_argument(
        "--noise-floor",
        default="auto",
        metavar="auto|SD",
        type=validate.auto_or(validate.non_negative_float),
        help="noise between runs added to each side's own CI: auto (default) estimates it from points "
        "measured in several runs with identical settings (none with fewer than 3 such pairs); "
        "or a standard deviation of log latency, e.g. 0.02, or 0",
    )
    p.add_argument(
        "--across-stages",
        action="store_true",
        help="match points measured in different stages (e.g. imported stage=legacy rows against quick)",
    )
    p.add_argument(
        "--out",
        default="comparison",
        type=validate.output_folder,
        help="where comparison.md/.html and the tables go " "(default: comparison; outside the trees)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    return p


def _table(c: pipeline.Comparison) -> Table:
    """The groups, worst first: a group is named by the key values that vary; those that do not, in the title."""
    group, g = c.key.group(), c.groups
    varying = [k for k in group if g[k].nunique() > 1] or ["gpu", "model", "algo"]
    fixed = " ".join(f"{k}={g[k].iloc[0]}" for k in group if k not in varying) if len(g) else ""
    t = Table(title=f"B/A per {' x '.join(varying)} (the group), geometric mean with 95% CI\n{fixed}")
    caveats = bool(g["caveats"].astype(bool).any())
    for col in ("group", "points", "B/A", "95% CI", "verdict", "slower", "faster", *(["caveats"] * caveats)):
        t.add_column(col, justify="right" if col in ("points", "B/A", "95% CI", "slower", "faster") else "left")
    order = g.sort_values("geomean_ratio", ascending=False, na_position="last")
    for r in order.head(SHOWN).itertuples(index=False):
        d = r._asdict()
        t.add_row(
            " ".join(str(d[k]) for k in varying),
            str(d["points"]),
            f"{d['geomean_ratio']:.3f}",
            f"{d['ratio_low']:.3f}-{d['ratio_high']:.3f}",
            d["verdict"],
            str(d["slower"]),
            str(d["faster"]),
            *([d["caveats"]] * caveats),
        )
    if len(order) > SHOWN:
        t.caption = f"{len(order) - SHOWN} more in groups.parquet"
    return t


@command
def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    filters = Filters.from_arguments(args)
    console = Console()
    sides = load_sides([Path(t) for t in args.trees], by=args.by, a=args.a, b=args.b, filters=filters)
    comparison = pipeline.compare(sides, args.tolerance, args.across_stages, args.noise_floor)
    pipeline.write(comparison, Path(args.out))
    console.print(f"A: {sides.a.label}\nB: {sides.b.label}", highlight=False)
    console.print(_table(comparison))
    console.print(f"points: {counts_line(comparison)}", highlight=False)
    for note in comparison.key.notes():
        console.print(note, highlight=False)
    for summary in comparison.noise:
        console.print(f"noise floor {summary.line()}", highlight=False)
    console.print(
        f"between-run noise added to each side: {comparison.between_run:.3f} (sd of log latency; "
        f"{comparison.between_run_source})",
        highlight=False,
    )
    console.print(family_line(comparison), highlight=False)
    console.print(verdict_text(comparison), highlight=False)
    console.print(
        f"report: {Path(args.out) / 'comparison.md'} (and .html); tables: points, groups, noise .parquet",
        highlight=False,
    )
    return 1 if comparison.failed else 0


if __name__ == "__main__":
    sys.exit(main())
