"""`python -m harness.status`: one screen that says what ran, what runs, what failed and why.

Reads only what the launcher and the store wrote (manifests under jobs/, run-*.json and the row counts and
statuses of the points files under results/) and, where SLURM answers, sacct's live state of the recorded
job ids. A SLURM command that fails or hangs makes the state "unknown (reason)": it never crashes or
hangs the dashboard. A file it cannot read shows on its row; it never hides the others.

    python -m harness.status                        # every combination, a table per stage
    python -m harness.status --stage quick --failed
    python -m harness.status --json                 # the same data, for scripts
    python -m harness.status --rerun-failed [--yes] # the command that resubmits what failed or is unfinished
    python -m harness.status --watch 10
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from harness import validate
from harness.cli import ArgumentParser, command
from harness.config.compose import overrides_for
from harness.errors import InputFileError
from harness.results import layout, rounds
from harness.results.manifest import RunManifest
from harness.results.read import PlannedPoints, latest_leaf_points, run_records

SLURM_TIMEOUT_S = 10
ACTIVE = {
    "PENDING": "queued",
    "REQUEUED": "queued",
    "CONFIGURING": "queued",
    "RUNNING": "running",
    "COMPLETING": "running",
    "SUSPENDED": "running",
}
GROUPS_WITH_FILES = ("stage", "model", "algo", "gpu")


@dataclass
class Combo:
    stage: str
    gpu: str
    model: str
    algo: str
    planned: int | None = None  # the union of what every sweep task and every run of the leaf planned
    counts: dict[str, int] = field(default_factory=dict)  # status -> points (latest row per point)
    last_error: str | None = None
    jobs: dict[str, str] = field(default_factory=dict)  # job id -> SLURM state
    attempts: int = 0
    outcome: str | None = None  # of the latest run.json
    started: str | None = None
    ended: str | None = None
    elapsed_s: float = 0.0
    problems: list[str] = field(default_factory=list)  # unreadable files
    state: str = "unknown"
    eta_s: float | None = None
    config: dict[str, Any] | None = field(default=None, repr=False)  # the latest run's, for --rerun-failed
    # what planned its points: sweep manifests' tasks and run records (their points_planned(_keys)), joined
    plans: PlannedPoints = field(default_factory=PlannedPoints, repr=False)

    def public(self) -> dict[str, Any]:
        """What --json shows: everything but the recorded config (the run manifest has it) and the records of
        what planned its points (not copied: they may be many)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("config", "plans")}

    def add_plans(self, records: Iterable[RunManifest | Mapping[str, Any]]) -> None:
        """Join what ``records`` planned (sweep tasks, run records) to ``planned``: the union of their points
        (harness.results.read.PlannedPoints; a record that gives only a count bounds it from below). Each record
        is read once and not kept: a combination may have many."""
        for record in records:
            self.plans.add(record)
        if self.plans.count is not None:
            self.planned = self.plans.count

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.stage, self.gpu, self.model, self.algo)

    @property
    def measured(self) -> int:
        return sum(self.counts.values())


def read_results(root: Path, combos: dict[tuple, Combo]) -> None:
    """Counts by status (latest row per point), last error, run.json facts; metadata and two columns only."""
    for partition, leaf in layout.leaves(root):
        key = (partition.stage, partition.gpu, partition.model, partition.algo)
        combo = combos.setdefault(key, Combo(*key))
        rows, problems = latest_leaf_points(leaf, ["status", "error"])
        combo.problems += problems
        combo.counts = {}
        for status, error in zip(rows["status"], rows["error"]):  # oldest first: the last error shown is the latest
            combo.counts[status] = combo.counts.get(status, 0) + 1
            if status != "ok" and isinstance(error, str) and error:
                combo.last_error = error
        runs, problems = run_records(leaf)
        combo.problems += problems
        if runs:
            last = max(runs, key=lambda r: str(r.started_at))
            combo.outcome, combo.started, combo.ended = last.outcome, last.started_at, last.ended_at
            combo.attempts = max(combo.attempts, int(last.attempts))
            combo.config = last.config if last.config is not None else combo.config
            combo.add_plans(runs)  # joined to what the sweeps' tasks of the leaf planned
            combo.elapsed_s = sum(_seconds(r.started_at, r.ended_at) for r in runs)


def _seconds(start: Any, end: Any) -> float:
    try:
        return max(0.0, (datetime.fromisoformat(str(end)) - datetime.fromisoformat(str(start))).total_seconds())
    except (TypeError, ValueError):
        return 0.0


def read_manifests(jobs: Path, combos: dict[tuple, Combo]) -> tuple[list[str], set[Path]]:
    """Job ids and planned points from every sweep manifest; returns the job ids and the results roots."""
    ids, roots = [], set()
    for path in sorted(jobs.glob("*/manifest.json")):
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            Console(stderr=True).print(f"cannot read {path}: {e}")
            continue
        for group in doc.get("groups", []):
            for t in group.get("tasks", []):
                key = (t["stage"], t["gpu"], t["model"], t["algo"])
                combo = combos.setdefault(key, Combo(*key))
                combo.jobs[t["job_id"]] = "unknown"
                combo.add_plans([{k: t.get(k) for k in ("points_planned", "points_planned_keys")}])
                combo.config = t.get("config", combo.config)  # a task that never started: the sweep's record
                ids.append(t["job_id"])
                if t.get("results_dir"):
                    roots.add(Path(t["results_dir"]))
    return ids, roots


def slurm_states(job_ids: list[str], timeout_s: float = SLURM_TIMEOUT_S) -> tuple[dict[str, str], str | None]:
    """{job id: state} from sacct, or ({}, reason) when SLURM does not answer."""
    if not job_ids:
        return {}, None
    arrays = sorted({j.split("_")[0] for j in job_ids})
    try:
        proc = subprocess.run(
            ["sacct", "-n", "-P", "-X", "-j", ",".join(arrays), "-o", "JobID,State"],
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    except FileNotFoundError:
        return {}, "no sacct here"
    except subprocess.TimeoutExpired:
        return {}, f"sacct timed out after {timeout_s:g} s"
    if proc.returncode != 0:
        return {}, f"sacct failed: {proc.stderr.strip()[:80] or proc.returncode}"
    states = {}
    for line in proc.stdout.splitlines():
        if "|" in line:
            job, state = line.split("|", 1)
            states[job.strip()] = state.split()[0] if state.strip() else "UNKNOWN"
    return states, None


def decide(combo: Combo, slurm_reason: str | None) -> None:
    """The combination's state and ETA from its jobs, its run.json and its points."""
    states = list(combo.jobs.values())
    measured, planned = combo.measured, combo.planned
    failed_points = combo.counts.get("error", 0)
    if any(ACTIVE.get(s) == "running" for s in states):
        combo.state = "running"
    elif any(ACTIVE.get(s) == "queued" for s in states):
        combo.state = "queued"
    elif planned is not None and measured >= planned and failed_points == 0:
        combo.state = "done"
    elif combo.outcome == "cancelled" or any(s.startswith("CANCELLED") for s in states):
        combo.state = "cancelled"
    elif (
        failed_points
        or combo.outcome in ("failed", "killed")
        or any(s in ("FAILED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL") for s in states)
    ):
        combo.state = "failed"
    elif combo.jobs and slurm_reason and combo.outcome in (None, "running"):
        combo.state = f"unknown ({slurm_reason})"
    elif measured:
        combo.state = "partial"
    if combo.state in ("running", "queued", "partial") and planned and measured and combo.elapsed_s:
        combo.eta_s = combo.elapsed_s / measured * max(0, planned - measured)


def collect(results: Path, jobs: Path, timeout_s: float = SLURM_TIMEOUT_S) -> tuple[list[Combo], str | None]:
    combos: dict[tuple, Combo] = {}
    ids, roots = read_manifests(jobs, combos)
    for root in sorted({results.resolve(), *(r.resolve() for r in roots)}):
        read_results(root, combos)  # the jobs' own results folders too
    states, reason = slurm_states(ids, timeout_s)
    for combo in combos.values():
        for job in combo.jobs:
            combo.jobs[job] = states.get(job) or states.get(job.split("_")[0]) or "UNKNOWN"
        decide(combo, reason)
    return sorted(combos.values(), key=lambda c: c.key), reason


def rerun_commands(combos: list[Combo]) -> list[str]:
    """`python -m harness -m ...` lines that resubmit exactly the failed and unfinished combinations.

    A combination whose latest run manifest records its config gets its own line, the overrides that
    compose that config again (harness.config.compose.overrides_for: model files, plan files and every other
    value as they were), or, where no run started, whose sweep manifest's task records it; the others are
    grouped by stage, gpu and algorithm, the models swept."""
    model_files = {p.stem for p in (Path(__file__).resolve().parent.parent / "conf" / "model").glob("*.yaml")}
    todo = [c for c in combos if c.state not in ("done", "running", "queued")]
    lines: list[tuple[tuple[str, ...], str]] = []
    groups: dict[tuple[str, str, str], list[str]] = {}
    for c in todo:
        if c.config is not None:
            lines.append(((c.stage, c.gpu, c.algo, c.model), shlex.join(_HARNESS + overrides_for(c.config))))
        else:
            groups.setdefault((c.stage, c.gpu, c.algo), []).append(c.model)
    for (stage, gpu, algo), names in groups.items():
        key = "model" if all(n in model_files for n in names) else "model.name"
        args = [*_HARNESS, f"stage={stage}", f"gpu={gpu}", f"algo={algo}", f"{key}={','.join(sorted(names))}"]
        lines.append(((stage, gpu, algo, ""), shlex.join(args)))
    return [line for _, line in sorted(lines)]


_HARNESS = ["python", "-m", "harness", "-m"]


def summary(combos: list[Combo]) -> dict[str, Any]:
    planned = sum(c.planned or 0 for c in combos)
    done = sum(c.counts.get("ok", 0) for c in combos)
    gpu_hours = sum(c.elapsed_s for c in combos if c.gpu != "local") / 3600
    left = sum(c.eta_s or 0 for c in combos) / 3600
    return {
        "points_ok": done,
        "points_planned": planned,
        "gpu_hours_used": round(gpu_hours, 3),
        "hours_left_estimate": round(left, 3),
    }


def render(console: Console, combos: list[Combo], reason: str | None) -> None:
    colour = {
        "done": "green",
        "running": "cyan",
        "queued": "blue",
        "partial": "yellow",
        "failed": "red",
        "cancelled": "magenta",
    }
    for stage in sorted({c.stage for c in combos}):
        table = Table(title=f"stage={stage}")
        for col in (
            "model",
            "algo",
            "gpu",
            "state",
            "ok/oom/unsup/err of planned",
            "jobs (state)",
            "tries",
            "elapsed",
            "ETA",
            "last error",
        ):
            table.add_column(col)
        for c in (c for c in combos if c.stage == stage):
            counts = "/".join(str(c.counts.get(s, 0)) for s in ("ok", "oom", "unsupported", "error"))
            jobs = ", ".join(f"{j} ({s})" for j, s in c.jobs.items()) or "-"
            error = "; ".join([*c.problems, (c.last_error or "")[:60]]).strip("; ")
            table.add_row(
                c.model,
                c.algo,
                c.gpu,
                f"[{colour.get(c.state, 'white')}]{c.state}[/]",
                f"{counts} of {c.planned if c.planned is not None else '?'}",
                jobs,
                str(c.attempts or "-"),
                _duration(c.elapsed_s),
                _duration(c.eta_s),
                error or "-",
            )
        console.print(table)
    s = summary(combos)
    console.print(
        f"points ok {s['points_ok']} of {s['points_planned']} planned; GPU-hours used {s['gpu_hours_used']:.2f}; "
        f"estimated hours left {s['hours_left_estimate']:.2f}" + (f"; SLURM: {reason}" if reason else "")
    )


def adaptive_journals(results: Path, stage: str | None) -> list[tuple[Path, dict[str, Any]]]:
    """The adaptive grid's journals under ``results`` (of ``stage`` only, if given); one that cannot be read
    is left out with a line in the log (the dashboard shows the others)."""
    out = []
    for path in rounds.journals(results) if results.exists() else []:
        try:
            doc = rounds.read_journal(path)
        except InputFileError as e:
            print(f"warning: {e}", file=sys.stderr)
            continue
        if doc is not None and stage in (None, doc.get("stage")):
            out.append((path, doc))
    return out


def render_rounds(console: Console, results: Path, stage: str | None) -> None:
    """Each adaptive grid (stage.sizes=adaptive): its rounds, points and budget, and why each size was
    added."""
    for path, doc in adaptive_journals(results, stage):
        s = rounds.summary(doc)
        budget = "no budget" if s["budget_gpu_h"] is None else f"budget left {s['budget_left_gpu_h']:.3f} GPU-h"
        spent = "?" if s["spent_gpu_h"] is None else f"{s['spent_gpu_h']:.3f}"
        stop = "; ".join(f"{g}: {why}" for g, why in (s["stop"] or {}).items())
        table = Table(
            title=f"adaptive grid {s['campaign']} (stage={s['stage']}): {s['rounds']} round(s), {s['state']}"
            + (f" ({stop})" if stop else "")
            + f"; {s['points'] or 0} points, {spent} GPU-h spent, {budget}",
            caption=str(path),
        )
        for col in ("round", "state", "model/gpu", "size", "why"):
            table.add_column(col)
        for r in doc.get("rounds", []):
            for group, sizes in sorted(r.get("sizes", {}).items()):
                for size, kind, why in sizes:
                    table.add_row(str(r["round"]), r["state"], group, str(size), f"{kind}: {why}")
        console.print(table)


def _duration(seconds: float | None) -> str:
    if not seconds:
        return "-"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def select(combos: list[Combo], args: argparse.Namespace) -> list[Combo]:
    keep = [c for c in combos if all(getattr(args, k) in (None, getattr(c, k)) for k in GROUPS_WITH_FILES)]
    if args.failed:
        keep = [c for c in keep if c.state.startswith(("failed", "cancelled", "partial", "unknown"))]
    return keep


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="python -m harness.status", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--results", type=validate.path, default=Path("results"))
    parser.add_argument("--jobs", type=validate.path, default=Path("jobs"))
    for key in GROUPS_WITH_FILES:
        parser.add_argument(f"--{key}", type=validate.text, help=f"only this {key} (one the results or jobs hold)")
    parser.add_argument("--failed", action="store_true", help="only what failed, was cancelled or is unfinished")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--watch", type=validate.positive_float, metavar="SECONDS")
    parser.add_argument("--rerun-failed", action="store_true")
    parser.add_argument("--yes", action="store_true", help="with --rerun-failed: run the commands without asking")
    return parser


def unknown_filter(combos: list[Combo], args: argparse.Namespace) -> str | None:
    """A --stage/--gpu/--model/--algo value that nothing here holds, said with the ones held (else None): an
    empty dashboard and exit 0 would read as "nothing failed"."""
    for key in GROUPS_WITH_FILES:
        value, held = getattr(args, key), sorted({getattr(c, key) for c in combos})
        if value is not None and value not in held:
            return f"argument --{key}: {value} is not valid: valid choices here: {', '.join(held) or 'none'}"
    return None


@command
def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.results.exists() and not args.jobs.exists():
        raise InputFileError(
            f"--results {args.results}, --jobs {args.jobs}: neither exists, nothing has run here; "
            f"give the results_dir and jobs folder of the runs"
        )
    console = Console(width=200)
    while True:
        combos, reason = collect(args.results, args.jobs)
        if (problem := unknown_filter(combos, args)) is not None:
            parser.error(problem)
        combos = select(combos, args)
        if args.json:
            print(
                json.dumps(
                    {
                        "combinations": [c.public() for c in combos],
                        "summary": summary(combos),
                        "slurm": reason,
                        "adaptive": [rounds.summary(d) for _, d in adaptive_journals(args.results, args.stage)],
                    },
                    default=str,
                )
            )
        elif args.rerun_failed:
            return _rerun(rerun_commands(combos), console, args.yes)
        else:
            render(console, combos, reason)
            render_rounds(console, args.results, args.stage)
        if not args.watch:
            return 0
        time.sleep(args.watch)
        console.clear()


def _rerun(commands: list[str], console: Console, yes: bool) -> int:
    if not commands:
        console.print("nothing failed or unfinished")
        return 0
    for line in commands:
        console.print(line, highlight=False, soft_wrap=True)
    if not yes and (not sys.stdin.isatty() or input("run these now? [y/N] ").strip().lower() != "y"):
        return 0
    codes = [subprocess.run([sys.executable, *shlex.split(line)[1:]]).returncode for line in commands]
    return max(codes)


if __name__ == "__main__":
    sys.exit(main())
