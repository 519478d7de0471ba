"""The verdict as Markdown (pure: a function of the checks and an environment dict), the console summary, and
where the verdict is written."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from harness.acceptance.checks import AcceptanceCheck
from harness.acceptance.evidence import passed
from harness.acceptance.rows import FAIL, INFO, PASS, Row, _clean

ENV_COLUMNS = (
    "device_name",
    "driver_version",
    "torch_version",
    "cuda_version",
    "cudnn_version",
    "hostname",
    "git_commit",
)


def environment_from_rows(rows: Sequence[Row]) -> dict[str, str | None]:
    """The provenance columns the rows carry (several distinct values are joined with ' / ')."""
    env: dict[str, str | None] = {}
    for col in ENV_COLUMNS:
        values = list(dict.fromkeys(str(v) for v in (_clean(r.get(col)) for r in rows) if v is not None))
        env[col] = " / ".join(values) if values else None
    return env


def device_slug(name: str) -> str:
    """'NVIDIA H100 80GB HBM3' -> 'nvidia-h100-80gb-hbm3'."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "unknown-device"


def _cell_text(v: Any) -> str:
    if v is None:
        return "-"
    text = f"{v:.4g}" if isinstance(v, float) else str(v)
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(rows: Sequence[Mapping[str, Any]], limit: int = 400) -> str:
    if not rows:
        return "_none_\n"
    columns = list(dict.fromkeys(k for r in rows for k in r))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell_text(r.get(c)) for c in columns) + " |" for r in rows[:limit]]
    if len(rows) > limit:
        lines.append(f"\n... and {len(rows) - limit} more rows")
    return "\n".join(lines) + "\n"


def render_markdown(checks: Sequence[AcceptanceCheck], env: Mapping[str, Any]) -> str:
    """A verdict document holding one suite's section (``env["suite"]``, default core): see ``merge_verdict``."""
    return merge_verdict(None, str(env.get("suite") or "core"), checks, env)


def render_section(suite: str, checks: Sequence[AcceptanceCheck], env: Mapping[str, Any]) -> str:
    """One suite's section: its verdict, environment, commands, the table of checks, then each check's details."""
    verdict = "PASS" if passed(checks) else "FAIL: " + ", ".join(c.name for c in checks if c.verdict == FAIL)
    out = [
        _BEGIN.format(suite=suite),
        f"## Suite {suite}: {'PASS' if passed(checks) else 'FAIL'}",
        "",
        f"Verdict: **{verdict}**" + (" (quick run)" if env.get("quick") else ""),
        "",
        "| | |",
        "|---|---|",
    ]
    facts = [
        ("date (UTC)", env.get("datetime") or env.get("date")),
        ("device", env.get("device_name")),
        ("driver", env.get("driver_version")),
        ("torch", env.get("torch_version")),
        ("CUDA", env.get("cuda_version")),
        ("cuDNN", env.get("cudnn_version")),
        ("host", env.get("hostname")),
        ("harness commit", env.get("git_commit")),
        ("results", env.get("results")),
        ("wall time", f"{env['elapsed_s']:.0f} s" if isinstance(env.get("elapsed_s"), (int, float)) else None),
    ]
    out += [f"| {k} | {_cell_text(v)} |" for k, v in facts]
    commands = list(env.get("commands") or [])
    out += ["", f"### Commands ({suite})", "", "```sh", *commands[:2], "```"]
    if len(commands) > 2:
        out += [
            "",
            f"<details><summary>The {len(commands) - 2} harness runs, as `python -m harness` commands "
            "(run in-process through harness.run.runner.run)</summary>",
            "",
            "```sh",
            *commands[2:],
            "```",
            "",
            "</details>",
        ]
    out += [
        "",
        f"### Checks ({suite})",
        "",
        markdown_table([{"check": c.name, "goal": c.goal, "figure": c.figure, "verdict": c.verdict} for c in checks]),
    ]
    out += [f"### Details ({suite})", ""]
    for c in checks:
        out += [f"#### {c.name}: {c.verdict}", "", f"{c.goal}. {c.figure}.", "", markdown_table(list(c.details))]
    out.append(_END.format(suite=suite))
    return "\n".join(out)


_BEGIN, _END = "<!-- suite:{suite} -->", "<!-- /suite:{suite} -->"
_SECTION = re.compile(r"<!-- suite:(?P<suite>[a-z_]+) -->\n(?P<body>.*?)<!-- /suite:(?P=suite) -->", re.S)
_HEADING = re.compile(r"^## Suite (?P<suite>[a-z_]+): (?P<verdict>PASS|FAIL)$", re.M)


def sections(text: str) -> dict[str, str]:
    """The suites' sections of a verdict document, by suite, each as written (markers included)."""
    return {m["suite"]: m.group(0) for m in _SECTION.finditer(text)}


def merge_verdict(existing: str | None, suite: str, checks: Sequence[AcceptanceCheck], env: Mapping[str, Any]) -> str:
    """The verdict document of one device and date with this suite's section added, or replacing the section
    an earlier run of the same suite wrote that day (the results of both stay in their jobs folders); the other
    suites' sections are kept as they were. The head lists every suite's verdict, in the suites' order of value."""
    from harness.acceptance.plan import SUITE_ORDER

    kept = sections(existing) if existing else {}
    kept[suite] = render_section(suite, checks, env)
    order = [s for s in SUITE_ORDER if s in kept] + sorted(s for s in kept if s not in SUITE_ORDER)
    verdicts = {s: m["verdict"] for s in order if (m := _HEADING.search(kept[s]))}
    missing = [s for s in SUITE_ORDER if s not in kept]
    overall = "FAIL" if "FAIL" in verdicts.values() else "PASS"
    head = [
        f"# GPU acceptance: {env.get('device_name') or 'unknown device'}, {env.get('date')}",
        "",
        f"Verdict of the suites run: **{overall}**"
        + (f" (not run on this date: {', '.join(missing)})" if missing else " (every suite run)"),
        "",
        "| suite | verdict |",
        "|---|---|",
        *(f"| [{s}](#suite-{s}-{verdicts.get(s, 'fail').lower()}) | {verdicts.get(s, '?')} |" for s in order),
        "",
    ]
    return "\n".join(head) + "\n" + "\n\n".join(kept[s] for s in order) + "\n"


def summary_table(checks: Sequence[AcceptanceCheck]) -> Table:
    table = Table(title="GPU acceptance")
    for col in ("check", "goal", "figure", "verdict"):
        table.add_column(col, overflow="fold")
    colour = {PASS: "green", FAIL: "red", INFO: "cyan"}
    for c in checks:
        table.add_row(escape(c.name), escape(c.goal), escape(c.figure), f"[{colour[c.verdict]}]{c.verdict}[/]")
    return table


def verdict_path(out: Path, device_name: str, date: str) -> Path:
    """<out>/<device-slug>-<date>.md, the file the suites of that device and date add to; where a file of that
    name was written before suites existed (no suite section), the next free -2, -3... (never overwritten)."""
    base = f"{device_slug(device_name)}-{date}"
    path, n = out / f"{base}.md", 2
    while path.exists() and not sections(path.read_text()):
        path, n = out / f"{base}-{n}.md", n + 1
    return path
