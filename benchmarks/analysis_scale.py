"""How long `python -m analysis` takes, and how much memory, at a campaign's scale: 5,000,000 and 20,000,000
layer rows, and 5,000,000 of 10,000,000 read (every point measured twice).

    python benchmarks/analysis_scale.py                         # every scale, idle then with one core busy
    python benchmarks/analysis_scale.py --scale 20m --idle-only # one scale, idle only
    python benchmarks/analysis_scale.py --plots --predictor     # also time the figures and the predictor
    python benchmarks/analysis_scale.py --cache DIR             # where the trees are kept (generated once)
    python benchmarks/analysis_scale.py --before DIR            # also the code checked out in DIR, side by side
    python benchmarks/analysis_scale.py --steps                 # also the load and each table alone, with peaks

The trees are synthetic (tests/synthetic.py, the same law as the tests): 2 GPU types, all 10 algorithms, 5 batch
sizes, models of 100 conv layers; ``5m``: 10 models x 50 input sizes (50,000 points, 5,000,000 layer rows),
``20m``: 20 models x 100 input sizes (a full stage: 200,000 points, 20,000,000 layer rows), ``5m-twice``: the 5m
campaign with every point measured in two runs (10,000,000 layer rows read, the earlier run's superseded: what
latest-wins resolution costs). Each tree is generated once, in a child process, and kept under ``--cache``
(about 1 GB for 20m); a tree whose generation did not finish is made again. Goals: load + all tables (the answer
with its intervals included) under 15 s at 5m and 5m-twice and 30 s at 20m, under 4 GB peak memory, on the
2-core development machine; figures and the predictor are timed apart. The load keeps the layer columns the run
needs, as ``python -m analysis`` does (``lean_load``, analysis.tree.read.unneeded_layer_columns: without
``--plots`` or ``--predictor``, not their columns, and never the columns only the load reads; a ``--before``
checkout loads as its own code did). Every measurement runs in a fresh process of its own, so that its peak (the
process's maximum resident set size, the imports included) is its own; with one core busy, another process spins
on one core meanwhile (as benchmarks/analysis_cli.py does). Each stage is run ``--repeat`` times in that process
and the median reported (the machine is shared). ``--before DIR`` measures the same trees with the analysis of
another checkout too (e.g. ``git worktree add DIR <commit>``), each in its own fresh process, one after the
other, so that before and after are compared on the same machine at the same time.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the repository: tests.synthetic, test-only code (imported where used: a
# measuring process of --before imports the analysis, and the harness, of the other checkout only)

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

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


@dataclass(frozen=True)
class Scale:
    """One size of campaign: its tree and the goals for load + all tables."""

    name: str
    models: int
    sizes: int
    goal_s: float
    goal_gb: float = 4.0
    runs: int = 1  # each point measured in this many runs, the latest winning (the earlier ones' rows superseded)

    def spec(self):
        from tests.synthetic import Synthetic, default_models

        return Synthetic(
            models=default_models(n_models=self.models, n_layers=100, seed=0),
            gpus=("h100", "l40s"),
            algos=ALGOS,
            sizes=tuple(range(64, 64 + self.sizes * 8, 8)),
            batch_sizes=(1, 2, 4, 8, 16),
            fallback={"winograd": "torch", "winograd_nonfused": "torch"},
            power_w={"h100": 300.0, "l40s": 250.0},
            noise=0.03,
            repeats=self.runs,
            seed=0,
        )

    def describe(self) -> str:
        runs = f", every point measured in {self.runs} runs" if self.runs > 1 else ""
        return f"{self.models} models x {self.sizes} sizes x 5 batches x 2 GPUs x {len(ALGOS)} algorithms{runs}"


SCALES = {
    s.name: s
    for s in (
        Scale("5m", models=10, sizes=50, goal_s=15.0),
        Scale("20m", models=20, sizes=100, goal_s=30.0),
        # the 5m campaign measured twice (10,000,000 layer rows read, half superseded): what latest-wins costs
        Scale("5m-twice", models=10, sizes=50, goal_s=15.0, runs=2),
    )
}


def scale_spec(name: str = "5m"):
    return SCALES[name].spec()


def tree(cache: Path, scale: Scale, console: Console) -> Path:
    """The scale's tree under ``cache``, generated (in a child process, untimed) unless a finished one is there."""
    root, done = cache / scale.name / "results", cache / scale.name / "generated.json"
    if done.exists() and json.loads(done.read_text()).get("spec") == scale.describe():
        return root
    from tests.synthetic import generate

    shutil.rmtree(cache / scale.name, ignore_errors=True)  # an unfinished or other tree
    t = time.perf_counter()
    with ProcessPoolExecutor(1) as child:  # apart, so that its memory counts in no measurement
        written = child.submit(generate, root, scale.spec()).result()
    done.write_text(json.dumps({"spec": scale.describe(), **asdict(written)}))
    console.print(
        f"{scale.name}: generated {written.points} point rows, {written.layers} layer rows in {written.files} "
        f"files under {root} ({time.perf_counter() - t:.0f} s, not timed)"
    )
    return root


@dataclass
class Measured:
    """One measurement's stages (seconds, median of repeats), row counts and peak resident memory."""

    stages: dict[str, float] = field(default_factory=dict)
    points: int = 0
    layers: int = 0
    peak_gb: float = 0.0
    metrics: str = ""


def timed(fn, repeat: int) -> tuple[float, object]:
    times, value = [], None
    for _ in range(repeat):
        value = None  # the previous repeat's result freed first: it would count in the peak
        t = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), value


def measure(
    root: Path,
    repeat: int,
    plots: bool,
    predict: bool,
    max_train_rows: int | None,
    threads: int | None,
    code: Path = REPO,
) -> Measured:
    """Load + all tables (then figures and the predictor where asked) in this process, with the analysis of the
    checkout ``code``: run in a fresh one."""
    import tempfile

    sys.path.insert(0, str(code))
    import analysis

    if not Path(analysis.__file__).resolve().is_relative_to(code.resolve()):
        raise RuntimeError(f"the analysis imported is {analysis.__file__}, not the one under {code}")

    from analysis import pipeline, predictor
    from analysis.tree.specs import gpu_specs

    m = Measured()
    t_load, res = timed(lambda: lean_load(root, plots, predict), repeat)
    m.stages["load (read, check, latest wins)"] = t_load
    t_tables, frames = timed(lambda: pipeline.compute_tables(res), repeat)
    m.stages["all tables"] = t_tables
    m.stages["load + all tables"] = t_load + t_tables
    m.points, m.layers = len(res.points), len(res.layers)
    m.peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    if plots:
        with tempfile.TemporaryDirectory(prefix="analysis-scale-figures-") as out:
            m.stages["figures (without parity)"], _ = timed(
                lambda: pipeline.make_figures(frames, res, [], Path(out)), 1
            )
    if predict:
        max_train_rows = max_train_rows or predictor.MAX_TRAIN_ROWS
        specs = gpu_specs(root, res.points["gpu"].unique())
        t_frame, frame = timed(lambda: predictor.layer_frame(res.layers, specs), 1)
        m.stages[f"predictor features ({len(frame.data)} rows)"] = t_frame
        t_eval, ev = timed(lambda: predictor.evaluate(frame, res.points, res.layers, max_train_rows, threads), 1)
        m.stages[f"predictor evaluation ({len(ev.folds)} folds, <= {max_train_rows} training rows)"] = t_eval
        m.metrics = ev.metrics.to_string(index=False)
    return m


def lean_load(root: Path, plots: bool, predict: bool):
    """``load`` as python -m analysis calls it in the checkout imported: without the layer columns a run that
    makes the figures (``plots``) and the predictor or not does not need, the small integers narrowed
    (``narrow``, analysis.tree.widths) where the code has it. Earlier code had ``unread_layer_columns`` and
    ``load(unread=)``, and code before that read every column."""
    import inspect

    from analysis.tree import load, read

    if hasattr(read, "unneeded_layer_columns"):
        narrow = {"narrow": True} if "narrow" in inspect.signature(load).parameters else {}
        return load(root, without=read.unneeded_layer_columns(plots, predict), **narrow)
    if hasattr(read, "unread_layer_columns"):
        return load(root, unread=read.unread_layer_columns(plots, predict))
    return load(root)


@dataclass(frozen=True)
class Step:
    """The load or one table, run alone: its seconds, the resident memory after it and its peak within it
    (None where the system cannot reset a process's peak: Linux's /proc/self/clear_refs)."""

    name: str
    seconds: float
    held_gb: float
    peak_gb: float | None


def _resident_gb() -> tuple[float, float]:
    """The process's resident set now and its peak since the last reset (Linux's /proc/self/status)."""
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return int(status["VmRSS"].split()[0]) / 2**20, int(status["VmHWM"].split()[0]) / 2**20  # KiB


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # the peak resident set starts again from now
        return True
    except OSError:
        return False


def by_step(root: Path) -> list[Step]:
    """Load, then every table one at a time (registry.compute_all with one worker), each step timed with its peak:
    where the time and memory of ``python -m analysis`` go. Run in a fresh process."""
    from contextlib import contextmanager

    from analysis.tables import registry

    steps: list[Step] = []

    @contextmanager
    def step(name: str):
        resets = _reset_peak()
        t = time.perf_counter()
        yield
        seconds = time.perf_counter() - t
        held, peak = _resident_gb()
        steps.append(Step(name, seconds, held, peak if resets else None))

    with step("load"):
        res = lean_load(root, plots=False, predict=False)
    registry.compute_all(res.points, res.layers, None, workers=1, step=step)
    return steps


def in_new_interpreter(fn, *args):
    """``fn(*args)`` in a new interpreter: its peak memory and imports its own."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as child:
        return child.submit(fn, *args).result()


def print_steps(console: Console, scale: Scale, steps: list[Step]) -> None:
    table = Table(title=f"{scale.name}: each step alone (idle), in the order run")
    for head in ("step", "seconds", "held after (GB)", "peak within (GB)"):
        table.add_column(head, justify="left" if head == "step" else "right")
    for s in steps:
        table.add_row(s.name, f"{s.seconds:.2f}", f"{s.held_gb:.2f}", "" if s.peak_gb is None else f"{s.peak_gb:.2f}")
    console.print(table)


def in_fresh_process(busy: bool, *args) -> Measured:
    """``measure`` in a new interpreter (its own peak), with another process spinning on a core if ``busy``."""
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        return in_new_interpreter(measure, *args)
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()


def main() -> None:  # imports no analysis here: its memory belongs to the measuring processes
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", nargs="+", choices=list(SCALES), default=list(SCALES), help="which trees (default: all)")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/analysis-scale"), help="where the trees are kept")
    ap.add_argument("--idle-only", action="store_true", help="skip the runs with one core busy")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each timed stage (median reported)")
    ap.add_argument("--plots", action="store_true", help="also time the figures")
    ap.add_argument("--predictor", action="store_true", help="also time the predictor's evaluation and fit")
    ap.add_argument("--max-train-rows", type=int, help="the predictor's training subsample (default: its own)")
    ap.add_argument("--threads", type=int, default=None, help="the predictor's OpenMP threads")
    ap.add_argument("--before", type=Path, help="a checkout of earlier code to measure beside this one")
    ap.add_argument(
        "--steps", action="store_true", help="also the load and each table alone: seconds, memory held, peak"
    )
    args = ap.parse_args()
    console = Console()
    scales = [SCALES[s] for s in args.scale]
    roots = {s.name: tree(args.cache, s, console) for s in scales}  # all generated before anything is timed
    if args.before is not None and not (args.before / "analysis" / "__init__.py").exists():
        ap.error(f"--before {args.before}: no analysis package there; give a checkout of this repository")
    codes = [("before", args.before.resolve()), ("after", REPO)] if args.before else [("", REPO)]
    runs = [(s, busy, c) for s in scales for busy in ([False] if args.idle_only else [False, True]) for c in codes]
    results = []
    for s, busy, (which, code) in runs:
        m = in_fresh_process(
            busy, roots[s.name], args.repeat, args.plots, args.predictor, args.max_train_rows, args.threads, code
        )
        results.append((s, busy, m, which))
        if m.metrics:
            console.print(m.metrics)
    table = Table(title=f"python -m analysis at scale (seconds; median of {args.repeat} where repeated)")
    table.add_column("stage")
    for _, busy, m, which in results:
        head = f"{m.layers:,} layers\n{'one core busy' if busy else 'idle'}" + (f"\n{which}" if which else "")
        table.add_column(head, justify="right")
    stages = list(dict.fromkeys(k for _, _, m, _ in results for k in m.stages))
    for name in stages:
        table.add_row(name, *(f"{m.stages[name]:.2f}" if name in m.stages else "" for _, _, m, _ in results))
    table.add_row("peak memory, load + tables (GB)", *(f"{m.peak_gb:.2f}" for _, _, m, _ in results))
    console.print(table)
    for s, busy, m, which in results:
        goal = m.stages["load + all tables"]
        console.print(
            f"{s.name} {which} ({m.points:,} points, {m.layers:,} layer rows{', one core busy' if busy else ''}): "
            f"load + all tables {goal:.2f} s ({'within' if goal < s.goal_s else 'OVER'} the {s.goal_s:g} s "
            f"goal), peak resident memory {m.peak_gb:.2f} GB ({'within' if m.peak_gb < s.goal_gb else 'OVER'} "
            f"the {s.goal_gb:g} GB goal)"
        )

    if args.steps:
        for s in scales:
            print_steps(console, s, in_new_interpreter(by_step, roots[s.name]))


if __name__ == "__main__":
    main()
