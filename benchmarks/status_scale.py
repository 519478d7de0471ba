"""Time `python -m harness.status` on a tree of 500 combinations x 100 points (goal: under 2 s).

    python benchmarks/status_scale.py [--combos 500] [--points 100]

Builds the tree in a temporary folder (one compacted points file and one run.json per combination, in the
real schema), then times collect + render as the command does, three times, and prints the median.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow.parquet as pq
from rich.console import Console

from harness import status
from harness.results import layout
from harness.results.layout import Partition
from harness.results.schema import POINTS, SCHEMA_VERSION, to_table
from harness.results.store import write_json_atomic

MODELS = [
    "vgg16",
    "densenet121",
    "resnet152",
    "googlenet",
    "alexnet",
    "resnet50",
    "resnet18",
    "mobilenet_v2",
    "regnet_y_400mf",
    "squeezenet1_0",
]
ALGOS = [
    "implicit_gemm",
    "implicit_precomp_gemm",
    "gemm",
    "fft",
    "fft_tiling",
    "winograd",
    "winograd_nonfused",
    "guess",
    "torch",
    "direct",
]
GPUS = ["l40s", "h100", "v100", "local", "a100"]


def build(root: Path, combos: int, points: int) -> None:
    t0 = datetime(2026, 11, 23, tzinfo=timezone.utc)
    made = 0
    for gpu in GPUS:
        for model in MODELS:
            for algo in ALGOS:
                if made == combos:
                    return
                part = Partition("full", gpu, model, algo)
                leaf = part.path(root)
                leaf.mkdir(parents=True)
                rows = [
                    {
                        "schema_version": SCHEMA_VERSION,
                        "run_id": f"r{made}",
                        "stage": "full",
                        "model": model,
                        "algo": algo,
                        "gpu": gpu,
                        "input_size": 224 + i,
                        "batch_size": 1,
                        "dtype": "float32",
                        "status": "ok" if i % 37 else "error",
                        "error": None if i % 37 else "CUDNN_STATUS_EXECUTION_FAILED",
                        "p50_ms": 1.0,
                        "measured_at": t0 + timedelta(seconds=i),
                    }
                    for i in range(points)
                ]
                pq.write_table(to_table(rows, POINTS), leaf / layout.table_file("points", f"r{made}"))
                write_json_atomic(
                    {
                        "run_id": f"r{made}",
                        "outcome": "completed",
                        "points_planned": points,
                        "started_at": t0.isoformat(),
                        "ended_at": (t0 + timedelta(hours=1)).isoformat(),
                    },
                    leaf / layout.run_file(f"r{made}"),
                )
                made += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--combos", type=int, default=500)
    parser.add_argument("--points", type=int, default=100)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="harness-status-"))
    build(root / "results", args.combos, args.points)
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        combos, reason = status.collect(root / "results", root / "jobs")
        with open("/dev/null", "w") as devnull:
            status.render(Console(file=devnull, width=200), combos, reason)
        times.append(time.perf_counter() - t0)
    print(
        f"{len(combos)} combinations x {args.points} points: collect + render median {statistics.median(times):.2f} s "
        f"(runs: {', '.join(f'{t:.2f}' for t in times)})"
    )


if __name__ == "__main__":
    main()
