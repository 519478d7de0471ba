"""`python -m analysis [RESULTS...] --out DIR [--stage S] [--gpu G] [--model M] [--algo A]`: tables, plots, report.

Several results trees are read as one (``python -m analysis results results-legacy``): new measurements and
imported ones side by side.

Prints where the report is and a short summary table. Errors a user can fix (a missing results folder, a
filter value the results do not hold, another schema version) are one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from analysis.pipeline import Options, Outcome, run
from analysis.report.checks import Thresholds
from analysis.stats.verdicts import family_line
from analysis.tree import Filters
from harness import validate
from harness.cli import ArgumentParser, command


def parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m analysis", description=__doc__.splitlines()[0])
    p.add_argument(
        "results_dirs",
        nargs="*",
        metavar="RESULTS",
        type=validate.input_path,
        help="the results tree(s) the harness wrote or analysis.legacy imported, read as one " "(default: results)",
    )
    p.add_argument(
        "--results",
        dest="results_opt",
        action="append",
        default=[],
        metavar="DIR",
        type=validate.input_path,
        help="the same, as an option (repeat for several)",
    )
    p.add_argument(
        "--out",
        default="results-analysis",
        type=validate.output_folder,
        help="where tables, figures, predictor and report go "
        "(default: results-analysis; must be outside the results tree)",
    )
    Filters.add_arguments(p)
    p.add_argument(
        "--cv-threshold",
        type=validate.non_negative_float,
        default=Thresholds.cv,
        help="warn about points whose coefficient of variation exceeds this (default %(default)s)",
    )
    p.add_argument(
        "--min-energy-window",
        type=validate.non_negative_float,
        default=Thresholds.energy_window_s,
        help="warn about energy windows shorter than this many seconds (default %(default)s)",
    )
    p.add_argument(
        "--predictor",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="also fit and evaluate the layer-latency and energy predictor (default: off; it is the "
        "slow part on a large tree, see README)",
    )
    p.add_argument("--no-plots", action="store_true", help="skip the figures")
    p.add_argument(
        "--max-train-rows",
        type=validate.positive_int,
        default=Options.max_train_rows,
        help="subsample the predictor's training rows beyond this many (default %(default)s)",
    )
    p.add_argument(
        "--threads",
        type=validate.positive_int,
        default=None,
        help="OpenMP threads for the predictor (default: the cores not busy with other work)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    return p


def _gain(algo, v, lo, hi) -> str:
    if algo is None or (isinstance(algo, float) and math.isnan(algo)):
        return "-"
    if isinstance(v, float) and math.isnan(v):
        return str(algo)
    return f"{algo} {v:.2f}x [{lo:.2f}, {hi:.2f}]"


def summary_table(outcome: Outcome) -> Table:
    """The headline per model and gpu, narrow enough for an 80-column terminal: stage and dtype get a column
    only where they vary (else they are in the title); with several settings, each row's setting first."""
    df = outcome.summary
    varying = [c for c in ("setting", "stage", "dtype") if c in df and df[c].nunique() > 1]
    fixed = ", ".join(f"{c} {df[c].iloc[0]}" for c in ("stage", "dtype") if c not in varying and len(df))
    t = Table(title=f"Largest gain beyond noise (geometric mean, 95% interval){'; ' + fixed if fixed else ''}")
    for col in (*varying, "gpu", "model", "points", "vs guess", "vs torch", "sole winner", "ties"):
        t.add_column(
            col,
            justify="right" if col in ("points", "ties") else "left",
            no_wrap=col in ("gpu", "model", "stage", "dtype", "setting"),
        )
    for r in df.itertuples(index=False):
        winner = r.most_often_sole_winner
        t.add_row(
            *(str(getattr(r, c)) for c in varying),
            str(r.gpu),
            str(r.model),
            str(r.points),
            _gain(r.best_vs_guess, r.speedup_vs_guess, r.speedup_vs_guess_low, r.speedup_vs_guess_high),
            _gain(r.best_vs_torch, r.speedup_vs_torch, r.speedup_vs_torch_low, r.speedup_vs_torch_high),
            f"{winner} ({r.times_sole_winner})" if isinstance(winner, str) else "-",
            str(r.tied_points),
        )
    per_model = outcome.tables.get("speedup_summary")
    if per_model is not None and "p_value" in per_model:
        t.caption = f"beyond noise: {family_line(per_model['p_value'])}"
    return t


def predictor_table(outcome: Outcome) -> Table | None:
    m = outcome.predictor_metrics
    if m.empty:
        return None
    t = Table(title="Predictor, held-out absolute percentage error (median / mean, %)")
    for col in ("target", "split", "level", "n", "boosted", "roofline baseline"):
        t.add_column(col, justify="left" if col in ("target", "split", "level") else "right")
    for (target, split, level), g in m.groupby(["target", "split", "level"], sort=False):
        by = {r.predictor: r for r in g.itertuples(index=False)}
        cell = lambda r: f"{r.median_ape:.1f} / {r.mean_ape:.1f}"  # noqa: E731
        t.add_row(target, split, level, str(by["boosted"].n), cell(by["boosted"]), cell(by["roofline"]))
    return t


@command
def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    roots = [Path(r) for r in dict.fromkeys([*args.results_dirs, *args.results_opt])] or [Path("results")]
    filters = Filters.from_arguments(args)
    options = Options(
        filters=filters,
        thresholds=Thresholds(args.cv_threshold, args.min_energy_window),
        predictor=args.predictor,
        plots=not args.no_plots,
        max_train_rows=args.max_train_rows,
        threads=args.threads,
    )
    console = Console()
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console, transient=True
    ) as bar:
        task = bar.add_task("analysing", total=None)
        outcome = run(
            roots, Path(args.out), options, progress=lambda step: bar.update(task, description=f"analysing: {step}")
        )
    console.print(summary_table(outcome))
    pt = predictor_table(outcome)
    if pt is not None:
        console.print(pt)
    r = outcome.load
    console.print(
        f"{len(outcome.tables['winners'])} points compared; {r.repeated_points} measured more than once "
        f"(latest wins); {len(r.bad_files)} unreadable files skipped; {len(outcome.findings)} warnings; "
        + ", ".join(f"{k} {v:.1f} s" for k, v in outcome.timings.items())
        + "."
    )
    console.print(f"report: {outcome.report_md}  and  {outcome.report_html}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
