"""The command, ``python -m harness.acceptance``: refuse without a GPU, plan, run the GPU tests, the sweep and
the extra runs with progress bars, evaluate, write the verdict."""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import torch
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from harness import validate
from harness.acceptance.budget import (
    DEFAULT_BUDGET_S,
    SECONDS_REPORT,
    TESTS_TIMEOUT_S,
    estimate_s,
    extras_s,
    plan_s,
)
from harness.acceptance.energy_probe import run_probe
from harness.acceptance.evidence import AcceptanceEvidence, evaluate, passed
from harness.acceptance.plan import QUICK_MODEL, QUICK_SIZE, SUITE_ORDER, SUITES, Job
from harness.acceptance.suite import REPO, gpu_test_command, run_gpu_tests
from harness.acceptance.sweep import JobResult, PreparedJob, prepare_job, read_layers, run_job
from harness.acceptance.training import TrainingPlanStep, make_training_plan, plan_job, read_projection
from harness.acceptance.verdict import environment_from_rows, merge_verdict, summary_table, verdict_path
from harness.atomic import write_text_atomic
from harness.cli import ArgumentParser, command
from harness.errors import HarnessError, MissingEnvironmentError, UsageError
from harness.measure.device import what_this_machine_has

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="python -m harness.acceptance",
        description="On a CUDA GPU: the GPU tests, a short real sweep and extra runs, checked against the goals "
        "of GPU-CHECKS.md; writes docs/validation/<device>-<date>.md. Exit 0: every check passes; "
        "1: some check fails; 2: no CUDA GPU here (nothing run or written).",
    )
    p.add_argument(
        "--suite",
        type=validate.choice(SUITE_ORDER),
        default=SUITE_ORDER[0],
        help="which suite (each fits one lease of a GPU; in order of value: "
        + "; ".join(f"{name}: {SUITES[name].purpose}" for name in SUITE_ORDER)
        + "). Each adds its section to the device's verdict of the day",
    )
    p.add_argument(
        "--quick", action="store_true", help=f"one model ({QUICK_MODEL}) and one size ({QUICK_SIZE}): a smoke run"
    )
    # defaults as text: argparse checks them like given values, so an unwritable default is refused before GPU work
    p.add_argument(
        "--out",
        type=validate.output_folder,
        default=str(REPO / "docs" / "validation"),
        help="folder of the Markdown verdict",
    )
    p.add_argument(
        "--jobs-dir",
        type=validate.output_folder,
        default="jobs",
        help="results go to JOBS_DIR/acceptance-<UTC timestamp>/results (default: jobs)",
    )
    p.add_argument(
        "--budget-s",
        type=validate.positive_float,
        default=DEFAULT_BUDGET_S,
        help="seconds for the suite: sweep jobs not started by then (minus a reserve for the extra runs) are not "
        "run (default %(default)s: a suite and a machine start fit one 15-minute lease)",
    )
    p.add_argument(
        "--tests-timeout-s", type=validate.positive_float, default=TESTS_TIMEOUT_S, help="limit of the GPU test suite"
    )
    cpu = [n for n in SUITE_ORDER if SUITES[n].cpu_sweep is not None]
    p.add_argument(
        "--cpu-smoke",
        action="store_true",
        help="run the suite's code on the CPU for real (a small model and size, backend=reference; no GPU test, "
        f"no CUDA graph): what CI runs; suites with a CPU run: {', '.join(cpu)}. Its verdict is no GPU's",
    )
    return p


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def cuda_available() -> bool:
    return torch.cuda.is_available()


def _progress(console: Console) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


@contextmanager
def _logging_to(path: Path, console: Console) -> Iterator[None]:
    """INFO and above on the console (through rich, above the progress bars), DEBUG of the harness in a file."""
    root, ours = logging.getLogger(), logging.getLogger("harness")
    shown = RichHandler(console=console, show_path=False, level=logging.INFO)
    kept = logging.FileHandler(path)
    kept.setLevel(logging.DEBUG)
    kept.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    saved = root.level, ours.level
    root.addHandler(shown)
    root.addHandler(kept)
    root.setLevel(logging.INFO)
    ours.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        root.removeHandler(shown)
        root.removeHandler(kept)
        kept.close()
        root.setLevel(saved[0])
        ours.setLevel(saved[1])


def _job_folder(jobs_dir: Path, stamp: str) -> Path:
    folder, n = jobs_dir / f"acceptance-{stamp}", 2
    while folder.exists():
        folder, n = jobs_dir / f"acceptance-{stamp}-{n}", n + 1
    folder.mkdir(parents=True)
    return folder.resolve()


def _run_jobs(jobs: Sequence[PreparedJob], bar: Progress, title: str, deadline: float | None) -> list[JobResult]:
    """Run the jobs one after the other with a progress bar of points; after ``deadline``, start no more."""
    task = bar.add_task(title, total=sum(p.record.job.points() for p in jobs))
    done = []
    for prepared in jobs:
        job = prepared.record.job
        if deadline is not None and time.monotonic() > deadline:
            log.warning("time budget spent: %s not run", job.label)
            done.append(prepared.record)
            continue
        bar.update(task, description=f"{title}: {job.model} {job.algo} [{job.config.label}]")
        done.append(run_job(prepared, lambda key, point: bar.advance(task)))
    bar.update(task, description=title)
    return done


def _training_plan(
    results: Path, folder: Path, extras: Sequence[Job], bar: Progress
) -> tuple[TrainingPlanStep, list[JobResult]]:
    """The training suite's last step: a training plan made from its train_step points, run with
    algo=per_layer, and its projection read back."""
    steps = [j for j in extras if j.phase == "train_step"]
    task = bar.add_task("training plan: made, run, projected", total=None)
    training = make_training_plan(results, steps, folder / "training-plan.json")
    job = plan_job(steps, training)
    ran = []
    if job is not None:
        try:
            prepared = prepare_job(job, results)
        except HarnessError as e:  # the plan file refused: the projection check fails with why
            training.projection_error = f"the plan's run was refused: {e}"
        else:
            ran = _run_jobs([prepared], bar, "training plan's run (algo=per_layer)", None)
            read_projection(results, training, job, ran[0].run_id, folder / "analysis")
    bar.update(task, total=1, completed=1)
    return training, ran


@command
def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    out, err = Console(), Console(stderr=True)
    suite = SUITES[args.suite]
    if args.cpu_smoke and suite.cpu_sweep is None:
        smoke = [n for n in SUITE_ORDER if SUITES[n].cpu_sweep is not None]
        raise UsageError(f"--cpu-smoke: suite {suite.name} has no CPU run; valid choices: {', '.join(smoke)}")
    if not args.cpu_smoke and not cuda_available():
        raise MissingEnvironmentError(
            f"python -m harness.acceptance needs a CUDA GPU; this machine has "
            f"{what_this_machine_has()}. Nothing was run or written."
        )
    started, t0 = datetime.now(timezone.utc), time.monotonic()
    folder = _job_folder(args.jobs_dir, started.strftime("%Y%m%dT%H%M%SZ"))
    results = folder / "results"
    with _logging_to(folder / "acceptance.log", err):
        plan = suite.cpu_sweep() if args.cpu_smoke and suite.cpu_sweep is not None else suite.sweep(args.quick)
        extras = suite.extras(plan, args.quick)
        # every config checked before any GPU work: a HarnessError here is refused at the border (exit 2)
        sweep = [prepare_job(j, results) for j in plan.sweep_jobs()]
        more = [prepare_job(j, results) for j in extras]
        run_tests = suite.gpu_tests and not args.cpu_smoke
        device = "CPU (smoke run)" if args.cpu_smoke else torch.cuda.get_device_name()
        out.print(
            f"{device}, suite {suite.name}: {'GPU tests, then ' if run_tests else ''}"
            f"{len(sweep)} sweep jobs ({plan.points()} points: {', '.join(plan.models) or 'no model'} x "
            f"{len(plan.sizes)} sizes x {len(plan.batches)} batch sizes x {len(plan.all_algos())} algorithms"
            f"{f' in {len(plan.directions)} directions' if plan.directions else ''} x "
            f"{len(plan.configs)} configurations), then {len(more)} extra runs. Estimate: about "
            f"{estimate_s(plan, suite, args.quick) / 60:.0f} min (budget {args.budget_s / 60:.1f} min). "
            f"Results: {results}",
            highlight=False,
            soft_wrap=True,
        )
        junit = folder / "gpu-tests.xml"
        given = list(argv) if argv is not None else sys.argv[1:]
        commands = [
            " ".join(["python -m harness.acceptance", *map(shlex.quote, given)]),
            " ".join(["python", *map(shlex.quote, gpu_test_command(junit, suite.tests)[1:])]),
        ]
        if not run_tests:
            commands = commands[:1]
        with _progress(err) as bar:
            tests = None
            if run_tests:
                step = bar.add_task("1/3 GPU tests (pytest -m gpu)", total=None)
                tests = run_gpu_tests(junit, folder / "gpu-tests.log", args.tests_timeout_s, suite.tests)
                bar.update(
                    step,
                    total=1,
                    completed=1,
                    description=f"1/3 GPU tests: {tests.passed} passed, {tests.failed} failed, {tests.skipped} skipped",
                )
            deadline = t0 + args.budget_s - extras_s(plan, extras) - plan_s(suite, extras) - SECONDS_REPORT
            jobs = _run_jobs(sweep, bar, "2/3 sweep", deadline)
            phases = ", ".join(dict.fromkeys(j.phase for j in extras))
            jobs += _run_jobs(more, bar, f"3/3 extra runs ({phases or 'none'})", None)
            training = None
            if suite.training_plan:
                training, ran = _training_plan(results, folder, extras, bar)
                jobs += ran
            probe = None
            if suite.energy_probe:
                step = bar.add_task("energy probe: the counter's period, 2N over N forwards", total=None)
                probe = run_probe()
                bar.update(step, total=1, completed=1)
        commands += [j.command for j in jobs if j.job.phase != "plan"]
        commands += [training.command] if training is not None else []
        commands += [j.command for j in jobs if j.job.phase == "plan"]
        sweep_runs = {j.run_id for j in jobs if j.job.phase == "sweep" and j.run_id}
        evidence = AcceptanceEvidence(
            tests, jobs, read_layers(results, sweep_runs), suite.name, probe, training, args.cpu_smoke
        )
        checks = evaluate(evidence)
        env = environment_from_rows([r for j in jobs for r in j.rows])
        if args.cpu_smoke:
            env["device_name"] = f"cpu-smoke {env.get('device_name') or 'cpu'}"
        env["device_name"] = env.get("device_name") or torch.cuda.get_device_name()
        env |= {
            "date": started.strftime("%Y-%m-%d"),
            "datetime": started.strftime("%Y-%m-%d %H:%M:%S UTC"),
            "commands": commands,
            "results": str(results),
            "elapsed_s": time.monotonic() - t0,
            "quick": args.quick,
            "suite": suite.name,
        }
        args.out.mkdir(parents=True, exist_ok=True)
        path = verdict_path(args.out, env["device_name"], env["date"])
        earlier = path.read_text() if path.exists() else None
        write_text_atomic(merge_verdict(earlier, suite.name, checks, env), path)
        log.info("log of this run: %s", folder / "acceptance.log")
    out.print(summary_table(checks))
    out.print(
        f"suite {suite.name}: {'PASS' if passed(checks) else 'FAIL'}; written to {path}",
        highlight=False,
        soft_wrap=True,
    )
    return 0 if passed(checks) else 1
