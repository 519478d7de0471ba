"""What the user sees: a progress bar while points are measured, then a table of the results (rich)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness.runner import RunResult


def progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def _ms(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, float) else "-"


def results_table(result: RunResult) -> Table:
    spec = result.spec
    title = (
        f"{spec.model.name} · algo={spec.algo} · stage={spec.stage.name} · gpu={spec.gpu.name} "
        f"· {result.device.name}"
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
            str(p["input_size"]), str(p["batch_size"]), str(p.get("n") or "-"), _ms(p.get("p50_ms")),
            _ms(p.get("p95_ms")), f"{tput:.1f}" if isinstance(tput, float) else "-", status,
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
    console.print(f"run {result.run_id}: {result.outcome}; files in {result.directory}:")
    for path in result.files:
        console.print(f"  {path}", soft_wrap=True, highlight=False)
