"""How well the intervals hold, in figures: the simulation tests/test_calibration.py asserts on, printed.

    python benchmarks/calibration.py                 # every truth x every stage's n, 4000 replicates
    python benchmarks/calibration.py --replicates 1000

Per truth (log-normal cv, or cv 1% with 5% of iterations 3x slower) and per sample size the stages use
(layers: stage.layer_iters; points: stage.min_iters upwards): the share of rows with no interval ("not
enough samples": no claim), the coverage of the true median by the 95% interval of one row and of the
ratio of two rows, and their widths over the oracle's (the true sampling distribution's 95% range), as a
mean and in the median replicate.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' simulation, from a checkout
from tests import test_calibration as cal  # noqa: E402

STAGES = {
    3: "acceptance before",
    5: "sanity (no claim)",
    8: "acceptance",
    10: "points: min",
    20: "quick",
    30: "full",
    50: "points",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicates", type=int, default=cal.REPLICATES)
    args = parser.parse_args()
    cal.REPLICATES = args.replicates
    rng = np.random.default_rng(0)
    table = Table(title=f"95% intervals against known truth ({args.replicates} replicates each)")
    for col in (
        "rows",
        "truth",
        "n",
        "used by",
        "no claim",
        "coverage",
        "width/oracle (mean, median)",
        "ratio coverage",
        "ratio width/oracle (mean, median)",
    ):
        table.add_column(col, justify="right" if col not in ("rows", "truth", "used by") else "left")
    for rows_of, sizes in ((cal.layer_rows, cal.LAYER_N), (cal.point_rows, cal.POINT_N)):
        for truth in cal.TRUTHS:
            for n in sizes:
                one = cal.judge(rows_of(truth.draw(rng, (args.replicates, n))), truth, n, rng)
                r, oracle = cal.ratio_of_rows(truth, n, rows_of, rng)
                two = cal.score(r.low, r.high, 1.1, oracle)
                table.add_row(
                    rows_of.__name__.split("_")[0],
                    repr(truth),
                    str(n),
                    STAGES.get(n, ""),
                    f"{one['no_claim']:.0%}",
                    _pct(one["coverage"]),
                    _widths(one),
                    _pct(two["coverage"]),
                    _widths(two),
                )
    Console(width=max(Console().width, 150)).print(table)


def _pct(v: float) -> str:
    return "-" if np.isnan(v) else f"{v:.1%}"


def _widths(r: dict[str, float]) -> str:
    return "-" if np.isnan(r["width_ratio"]) else f"{r['width_ratio']:.2f}, {r['median_width_ratio']:.2f}"


if __name__ == "__main__":
    main()
