"""How long `python -m analysis` takes at scale: 5,000,000 layer rows and 50,000 point rows.

    python benchmarks/analysis_scale.py                    # generate (untimed), then time load + tables
    python benchmarks/analysis_scale.py --plots --predictor   # also time the figures and the predictor
    python benchmarks/analysis_scale.py --keep DIR         # write the tree under DIR and keep it

The tree is synthetic (tests/synthetic.py, the same law as the tests): 10 models of 100 conv layers, 2 GPU
types, all 10 algorithms, 50 input sizes x 5 batch sizes (a full campaign with a batch axis), written in the
store's layout and schema. Goal: load + all tables (the answer with its intervals included) in under 15 s
and under 4 GB peak memory on the 2-core development machine; figures and the predictor are timed apart.
Each stage is run ``--repeat`` times and the median reported (the machine is shared); the peak is the
process's maximum resident set size (the tree is generated in a child process).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository: tests.synthetic, test-only code

from rich.console import Console
from rich.table import Table

from analysis import pipeline, predictor
from analysis.tree import load
from analysis.tree.specs import gpu_specs
from harness.results import layout
from tests.synthetic import Synthetic, default_models, generate  # noqa: E402

ALGOS = (
    "implicit_gemm",
    "implicit_precomp_gemm",
    "gemm",
    "direct",
    "fft",
    "fft_tiling",
    "winograd",
    "winograd_nonfused",
    "guess",
    "torch",
)


def scale_spec() -> Synthetic:
    return Synthetic(
        models=default_models(n_models=10, n_layers=100, seed=0),
        gpus=("h100", "l40s"),
        algos=ALGOS,
        sizes=tuple(range(64, 64 + 50 * 8, 8)),
        batch_sizes=(1, 2, 4, 8, 16),
        fallback={"winograd": "torch", "winograd_nonfused": "torch"},
        power_w={"h100": 300.0, "l40s": 250.0},
        noise=0.03,
        seed=0,
    )


def timed(fn, repeat: int) -> tuple[float, object]:
    times, value = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), value


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", type=Path, help="write the tree here and keep it (default: a temporary folder)")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each timed stage (median reported)")
    ap.add_argument("--plots", action="store_true", help="also time the figures")
    ap.add_argument("--predictor", action="store_true", help="also time the predictor's evaluation and fit")
    ap.add_argument(
        "--max-train-rows", type=int, default=predictor.MAX_TRAIN_ROWS, help="the predictor's training subsample"
    )
    ap.add_argument("--threads", type=int, default=None, help="the predictor's OpenMP threads")
    args = ap.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory(prefix="analysis-scale-") as tmp:
        root = args.keep or Path(tmp) / "results"
        if next(layout.leaves(root), None) is None:
            t = time.perf_counter()
            with ProcessPoolExecutor(1) as child:  # apart, so that its memory does not count in our peak
                written = child.submit(generate, root, scale_spec()).result()
            console.print(
                f"generated {written.points} point rows, {written.layers} layer rows in {written.files} "
                f"files under {root} ({time.perf_counter() - t:.1f} s, not timed)"
            )
        rows = []
        t_load, res = timed(lambda: load(root), args.repeat)
        rows.append(("load (read, check, latest wins)", t_load))
        t_tables, frames = timed(lambda: pipeline.compute_tables(res), args.repeat)
        rows.append(("all tables", t_tables))
        rows.append(("load + all tables", t_load + t_tables))
        if args.plots:
            out = Path(tmp) / "figures"
            t_plots, _ = timed(lambda: pipeline.make_figures(frames, res, [], out), 1)
            rows.append(("figures (without parity)", t_plots))
        if args.predictor:
            specs = gpu_specs(root, res.points["gpu"].unique())
            t_frame, frame = timed(lambda: predictor.layer_frame(res.layers, specs), 1)
            rows.append((f"predictor features ({len(frame.data)} rows)", t_frame))
            t_eval, ev = timed(
                lambda: predictor.evaluate(frame, res.points, res.layers, args.max_train_rows, args.threads), 1
            )
            rows.append(
                (f"predictor evaluation ({len(ev.folds)} folds, <= {args.max_train_rows} training rows)", t_eval)
            )
            console.print(ev.metrics.to_string(index=False))
        table = Table(
            title=f"analysis at scale: {len(res.points)} points, {len(res.layers)} layers "
            f"(median of {args.repeat} where repeated)"
        )
        table.add_column("stage")
        table.add_column("seconds", justify="right")
        for name, s in rows:
            table.add_row(name, f"{s:.2f}")
        console.print(table)
        goal = t_load + t_tables
        peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
        console.print(
            f"load + all tables: {goal:.2f} s ({'within' if goal < 15 else 'OVER'} the 15 s goal); "
            f"peak resident memory {peak_gb:.2f} GB ({'within' if peak_gb < 4 else 'OVER'} the 4 GB goal)"
        )


if __name__ == "__main__":
    main()
