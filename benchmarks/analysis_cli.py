"""How long `python -m analysis` takes on a real tree, as a user runs it: alone, and with one core kept busy
by another process (a login node shared with others).

    python -m analysis.legacy ai3-performance-prediction-results.tar.gz --out results-legacy   # once
    python benchmarks/analysis_cli.py results-legacy                 # the default analysis, idle then busy
    python benchmarks/analysis_cli.py results-legacy --predictor     # also with the predictor

Each run is the real command line in a fresh process (imports included) writing to a temporary --out; the
wall time and the per-step times the command prints are reported side by side. Goal (issue 14): under 30 s
wall on the 2-core development machine, also with one core busy.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

GOAL_S = 30.0


def run_once(results: list[str], extra: list[str]) -> tuple[float, str]:
    with tempfile.TemporaryDirectory(prefix="analysis-cli-") as tmp:
        t = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "analysis", *results, "--out", str(Path(tmp) / "out"), *extra],
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - t
    if done.returncode != 0:
        raise SystemExit(f"python -m analysis failed ({done.returncode}): {done.stderr[-2000:]}")
    steps = re.search(r"warnings; (.*?)\.\s*report:", " ".join(done.stdout.split()))
    return wall, steps.group(1) if steps else ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="+", help="results tree(s) to analyse")
    ap.add_argument("--predictor", action="store_true", help="also time the run with --predictor")
    ap.add_argument("--idle-only", action="store_true", help="skip the runs with a busy core")
    args = ap.parse_args()
    variants = [("default", [])] + ([("--predictor", ["--predictor"])] if args.predictor else [])
    table = Table(title=f"python -m analysis {' '.join(args.results)} (wall seconds; goal < {GOAL_S:g} s)")
    for col in ("command", "machine", "wall s", "steps"):
        table.add_column(col, justify="right" if col == "wall s" else "left")
    for name, extra in variants:
        for busy in [False] if args.idle_only else [False, True]:
            hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
            try:
                wall, steps = run_once(args.results, extra)
            finally:
                if hog is not None:
                    hog.kill()
                    hog.wait()
            table.add_row(name, "one core busy" if busy else "idle", f"{wall:.1f}", steps)
    Console().print(table)


if __name__ == "__main__":
    main()
