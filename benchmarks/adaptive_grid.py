"""The adaptive size grid replayed on real curves: does it give the full grid's answers with a quarter of
the points, and better than uniform subsampling at the same cost?

    python benchmarks/adaptive_grid.py                    # both data sets (the sweep made first if missing)
    python benchmarks/adaptive_grid.py --only legacy      # the old system's 6,200 points only
    python benchmarks/adaptive_grid.py --only sweep --cache DIR   # the CPU sweep, cached under DIR

Two full grids, each taken as the truth (harness.campaign.replay): the policy asks for sizes round by round
and sees only the full grid's rows at those sizes.

- legacy: the old system's combined_overall.csv (/work/shared/data/ai3-legacy: 4 models x 3 GPUs x up to
  7 algorithms x 100 sizes 224..512; real curves with real noise, flawed as GPU times: see its README).
  The median and std of its 20 iterations give each row's interval (harness.results.uncertainty.log_se);
  the baseline is ``guess`` (cuDNN's own choice).
- sweep: a dense CPU sweep made with ``python -m harness`` (backend reference, 3 small models x 4
  algorithms + torch as the baseline x 40 sizes), written once under ``--cache`` (default
  ~/.cache/harness/adaptive_grid_sweep) and read back from there; it resumes where it stopped (the harness
  skips measured points). Outside CI: tens of minutes on a shared 2-core machine.

Printed per group (a model on a GPU) and in all: the share of the full grid's points used, the per-size
fastest-algorithm map against the full grid's (right / tied within noise / wrong), the speedup over the
baseline and whether it lies in the full grid's 95% interval, the crossovers and the mean distance to them;
the adaptive grid and uniform subsampling at the same number of sizes side by side.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tarfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from harness.algorithms import canonical_name  # noqa: E402
from harness.campaign.adaptive import AdaptiveGrid  # noqa: E402
from harness.campaign.replay import Score, replay, score, uniform_sizes  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
LEGACY = REPO.parent / "shared/data/ai3-legacy/ai3-performance-prediction-results.tar.gz"
if not LEGACY.exists():
    LEGACY = Path("/work/shared/data/ai3-legacy/ai3-performance-prediction-results.tar.gz")
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "harness" / "adaptive_grid_sweep"

SWEEP_MODELS = ("resnet18", "mobilenet_v2", "shufflenet_v2_x0_5")
SWEEP_ALGOS = ("gemm", "fft", "winograd", "direct", "torch")  # 4 algorithms + the framework's own (baseline)
SWEEP_SIZES = tuple(range(32, 32 + 3 * 40, 3))  # 40 sizes, 32..149
SWEEP_STAGE = [
    "stage=quick",
    f"stage.sizes=[{','.join(map(str, SWEEP_SIZES))}]",
    "stage.warmup_iters=2",
    "stage.warmup_s=0",
    "stage.min_iters=10",
    "stage.max_iters=40",
    "stage.max_time_s=1.0",
    "stage.target_ci_rel=0.02",
    "stage.layer_iters=1",
    "stage.energy_window_s=0",
    "device=cpu",
    "cpu_threads=1",
    "fallback=torch",
]


def legacy_rows(tarball: Path = LEGACY) -> pd.DataFrame:
    """combined_overall.csv as rows the policy reads: p50 (the median of 20 iterations), std, n."""
    with tarfile.open(tarball) as tar:
        f = tar.extractfile("combined_overall.csv")
        raw = pd.read_csv(io.BytesIO(f.read()))
    return pd.DataFrame(
        {
            "model": raw["model"],
            "gpu": raw["device"].str.lower(),
            "batch_size": raw["batch_size"],
            "input_size": raw["input_size"].astype(int),
            "algo": [canonical_name(a) for a in raw["algorithm"]],
            "status": "ok",
            "p50_ms": raw["median"].astype(float),
            "mean_ms": raw["mean"].astype(float),
            "std_ms": raw["std"].astype(float),
            "n": 20,
        }
    )


def make_sweep(cache: Path) -> None:
    """Measure (or finish) the dense CPU sweep under ``cache`` with the harness itself."""
    cache.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable, "-m", "harness", "-m",
        f"model.name={','.join(SWEEP_MODELS)}", f"algo={','.join(SWEEP_ALGOS)}",
        *SWEEP_STAGE, f"results_dir={cache / 'results'}",
    ]  # fmt: skip
    env = os.environ | {"PYTHONPATH": str(REPO)}
    subprocess.run(cmd, cwd=cache, env=env, check=True)


def sweep_rows(cache: Path) -> pd.DataFrame:
    from harness.results.read import latest, read

    rows = latest(read(cache / "results"))
    return rows[rows["input_size"].isin(SWEEP_SIZES)].reset_index(drop=True)


def evaluate(rows: pd.DataFrame, g: AdaptiveGrid, baseline: str) -> list[tuple[str, Score, Score, int, str]]:
    """Per group: (name, the adaptive grid's score, uniform's at the same number of sizes, rounds, stop)."""
    out = []
    for (model, gpu), truth in rows.groupby(["model", "gpu"], sort=True):
        full = np.unique(truth["input_size"].to_numpy(dtype=int))
        grid = replace(g, start=int(full.min()), stop=int(full.max()))
        rep = replay(truth, grid)
        out.append(
            (
                f"{model} / {gpu}",
                score(truth, rep.sizes, baseline),
                score(truth, uniform_sizes(full, len(rep.sizes)), baseline),
                rep.rounds,
                rep.stop,
            )
        )
    return out


def table(title: str, results: list[tuple[str, Score, Score, int, str]]) -> Table:
    t = Table(title=title)
    cols = (
        "group",
        "grid",
        "points",
        "right",
        "tied",
        "wrong",
        "speedup (full grid's 95% CI)",
        "realised",
        "crossovers",
    )
    for col in cols:
        t.add_column(col, justify="left" if col in ("group", "grid") else "right")

    def row(name: str, kind: str, s: Score, extra: str = "") -> None:
        inside = "in" if s.speedup_inside else "OUT"
        t.add_row(
            name,
            kind + extra,
            f"{s.sizes}/{s.full_sizes} = {s.share:.0%}",
            f"{s.share_right:.0%}",
            f"{s.share_tied:.0%}",
            f"{s.share_wrong:.0%}",
            f"{s.speedup:.3f} ({s.speedup_low:.3f}..{s.speedup_high:.3f}) {inside}",
            f"{s.speedup_realised:.3f}",
            f"{s.crossovers} (map {s.changes}): {s.crossover_err_px:.1f} px",
        )

    for name, a, u, rounds, stop in results:
        row(name, "adaptive", a, f" ({rounds} rounds, {stop})")
        row("", "uniform", u)
    for kind, i in (("adaptive", 1), ("uniform", 2)):
        ss = [r[i] for r in results]
        points = sum(s.sizes for s in ss) / sum(s.full_sizes for s in ss)
        weights = np.array([s.full_sizes for s in ss], dtype=float)
        right, tied, wrong = (
            np.average([getattr(s, k) for s in ss], weights=weights)
            for k in ("share_right", "share_tied", "share_wrong")
        )
        inside = sum(s.speedup_inside for s in ss)
        errs = [s.crossover_err_px for s in ss if s.crossovers and np.isfinite(s.crossover_err_px)]
        t.add_row(
            "ALL" if i == 1 else "",
            kind,
            f"{points:.0%}",
            f"{right:.0%}",
            f"{tied:.0%}",
            f"{wrong:.0%}",
            f"inside for {inside}/{len(ss)} groups",
            "",
            f"{sum(s.crossovers for s in ss)} (map {sum(s.changes for s in ss)}): "
            f"{np.mean(errs) if errs else float('nan'):.1f} px",
            style="bold",
        )
    return t


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", choices=("legacy", "sweep"), help="one data set (default: both)")
    p.add_argument("--legacy", type=Path, default=LEGACY, help="the old system's tarball")
    p.add_argument("--cache", type=Path, default=CACHE, help="where the CPU sweep is kept")
    p.add_argument("--no-measure", action="store_true", help="use the cached sweep as it is, measure nothing")
    p.add_argument("--coarse", type=int, default=9)
    p.add_argument("--resolution", type=int, default=8)
    p.add_argument("--tie-resolution", type=int, default=16)
    p.add_argument("--tolerance", type=float, default=0.05)
    p.add_argument("--max-rounds", type=int, default=8)
    a = p.parse_args(argv)
    g = AdaptiveGrid(
        start=1, stop=100000, coarse=a.coarse, resolution=a.resolution, tie_resolution=a.tie_resolution,
        tolerance=a.tolerance, max_rounds=a.max_rounds, per_round=64,
    )  # fmt: skip
    console = Console(width=160)
    settings = (
        f"coarse {a.coarse}, resolution {a.resolution} px, tie resolution {a.tie_resolution} px, "
        f"tolerance {a.tolerance:.0%}, at most {a.max_rounds} rounds"
    )
    if a.only in (None, "legacy"):
        console.print(
            table(f"legacy (ai3-8CuDNN, baseline guess): {settings}", evaluate(legacy_rows(a.legacy), g, "guess"))
        )
    if a.only in (None, "sweep"):
        if not a.no_measure:
            make_sweep(a.cache)
        rows = sweep_rows(a.cache)
        rows["gpu"] = "cpu"
        console.print(table(f"CPU sweep (reference backend, baseline torch): {settings}", evaluate(rows, g, "torch")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
