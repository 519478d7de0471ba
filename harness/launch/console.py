"""What the user sees: a progress bar while points are measured, then a table of the results (rich)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from harness.run.runner import RunResult

if TYPE_CHECKING:
    from harness.launch.submit import Sweep


def progress(console: Console) -> Progress:
    """A transient progress bar; off where ``console`` is no terminal (a log file, a pipe, a SLURM job's
    output), where it would show nothing but leave an empty line, before an error's one line among others."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )


def _ms(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, float) else "-"


def results_table(result: RunResult) -> Table:
    spec = result.spec
    title = (
        f"{spec.model.name} · algo={spec.algo} · stage={spec.stage.name} · gpu={spec.gpu.name} "
        f"· {result.device.name}" + (f" · repeat {spec.repeat + 1} of {spec.repeats}" if spec.repeats > 1 else "")
    )
    table = Table(title=title)
    for col in ("input size", "batch", "n", "p50 ms", "p95 ms", "throughput /s", "status"):
        table.add_column(col, justify="left" if col == "status" else "right")
    for p in result.points:
        error = p.get("error") or ""
        error = error if len(error) <= 90 else error[:87] + "..."
        status = p["status"] if p["status"] == "ok" else f"[red]{p['status']}[/red]: {escape(error)}"
        tput = p.get("throughput_ips")
        table.add_row(
            str(p["input_size"]),
            str(p["batch_size"]),
            str(p.get("n") or "-"),
            _ms(p.get("p50_ms")),
            _ms(p.get("p95_ms")),
            f"{tput:.1f}" if isinstance(tput, float) else "-",
            status,
        )
    return table


def report(console: Console, result: RunResult) -> None:
    if result.points:
        console.print(results_table(result))
    if result.skipped:
        console.print(
            f"{len(result.skipped)} point(s) already measured in {result.directory}, skipped "
            f"(remeasure=true measures them again)."
        )
    if result.spec.references is not None:
        console.print(reference_summary(result), highlight=False)
    console.print(f"run {result.run_id}: {result.outcome}; files in {result.directory}:")
    for path in result.files:
        console.print(f"  {path}", soft_wrap=True, highlight=False)


def reference_summary(result: RunResult) -> str:
    """The check against references: counts per status, then one line per deviation."""
    counts = ", ".join(f"{n} {s}" for s, n in result.reference_counts().items()) or "no point measured ok"
    lines = [f"references {result.spec.references.path}: {counts}"]
    if result.deviations:
        lines.append(f"{len(result.deviations)} point(s) deviate from the references:")
        lines += [
            f"  input size {p['input_size']}, batch {p['batch_size']}: {v.describe()}" for p, v in result.deviations
        ]
    return "\n".join(lines)


def report_submission(console: Console, sweep: Sweep) -> None:
    """What was submitted, where its logs and results go, and how to watch it."""
    total = sum(len(g.jobs) for g in sweep.groups)
    console.print(f"submitted {total} job(s) to SLURM in {len(sweep.groups)} sbatch call(s); nothing waits for them:")
    for group in sweep.groups:
        array_id = group.jobs[0].job_id.split("_")[0]
        console.print(
            f"  job {array_id}: {len(group.tasks)} task(s), partition={group.parameters.get('slurm_partition')}, "
            f"constraint={group.parameters.get('slurm_constraint')}, time {group.parameters['timeout_min']} min"
        )
        for task, job in zip(group.tasks, group.jobs):
            leaf = task.spec.partition().path(task.spec.results_dir)
            console.print(f"    {job.job_id} {task.label}", highlight=False)
            console.print(f"      log: {job.paths.stdout}", soft_wrap=True, highlight=False)
            console.print(f"      results: {leaf}", soft_wrap=True, highlight=False)
    ids = ",".join(g.jobs[0].job_id.split("_")[0] for g in sweep.groups)
    console.print(f"watch: squeue -j {ids}   (finished: sacct -j {ids})", highlight=False)
    console.print(f"manifest: {sweep.manifest_path}", soft_wrap=True, highlight=False)
