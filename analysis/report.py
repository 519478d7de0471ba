"""The report: one list of sections rendered twice, as Markdown (images linked) and as a self-contained
HTML page (images embedded as base64), so both always say the same thing."""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.load import LoadReport

MAX_ROWS = 40


@dataclass
class Block:
    kind: str  # "text", "table", "image", "list"
    content: Any
    caption: str = ""


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)

    def text(self, s: str) -> "Section":
        self.blocks.append(Block("text", s))
        return self

    def table(self, df: pd.DataFrame, caption: str = "") -> "Section":
        self.blocks.append(Block("table", df, caption))
        return self

    def image(self, path: Path | None, caption: str = "") -> "Section":
        if path is not None:
            self.blocks.append(Block("image", path, caption))
        return self

    def items(self, items: list[str]) -> "Section":
        if items:
            self.blocks.append(Block("list", items))
        return self


def _cell(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA or v is pd.NaT:
        return ""
    if isinstance(v, float):
        if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
            return f"{v:.3g}"
        return f"{v:.4g}" if abs(v) < 100 else f"{v:.1f}"
    return str(v)


def _clip(df: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    return (df.head(MAX_ROWS), len(df) - MAX_ROWS) if len(df) > MAX_ROWS else (df, 0)


def markdown_table(df: pd.DataFrame) -> str:
    shown, more = _clip(df)
    cols = [str(c) for c in shown.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in shown.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v).replace("|", "\\|") for v in row) + " |")
    if more:
        lines.append(f"\n_... {more} more rows in the CSV/Parquet file._")
    return "\n".join(lines)


def html_table(df: pd.DataFrame) -> str:
    shown, more = _clip(df)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>"
                   for row in shown.itertuples(index=False))
    tail = f"<p><em>... {more} more rows in the CSV/Parquet file.</em></p>" if more else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{tail}"


def render_markdown(title: str, sections: list[Section], base: Path) -> str:
    out = [f"# {title}", ""]
    for s in sections:
        out += [f"## {s.title}", ""]
        for b in s.blocks:
            if b.kind == "text":
                out += [b.content, ""]
            elif b.kind == "list":
                out += [f"- {item}" for item in b.content] + [""]
            elif b.kind == "table":
                if b.caption:
                    out += [f"**{b.caption}**", ""]
                out += [markdown_table(b.content) if len(b.content) else "_(none)_", ""]
            elif b.kind == "image":
                rel = Path(b.content).resolve().relative_to(base.resolve())
                out += [f"![{b.caption}]({rel.as_posix()})", "", f"_{b.caption}_", ""]
    return "\n".join(out)


CSS = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:12px;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:2px 6px;
text-align:right}th{background:#f3f3f3}img{max-width:100%;border:1px solid #eee}figure{margin:1em 0}
figcaption{font-style:italic;font-size:13px}h2{border-bottom:1px solid #ddd;padding-bottom:.2em}"""


def render_html(title: str, sections: list[Section]) -> str:
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
           f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    for s in sections:
        out.append(f"<h2>{html.escape(s.title)}</h2>")
        for b in s.blocks:
            if b.kind == "text":
                out.append(f"<p>{html.escape(b.content)}</p>")
            elif b.kind == "list":
                out.append("<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in b.content) + "</ul>")
            elif b.kind == "table":
                cap = f"<p><strong>{html.escape(b.caption)}</strong></p>" if b.caption else ""
                out.append(cap + (html_table(b.content) if len(b.content) else "<p><em>(none)</em></p>"))
            elif b.kind == "image":
                data = base64.b64encode(Path(b.content).read_bytes()).decode("ascii")
                out.append(f"<figure><img alt='{html.escape(b.caption)}' src='data:image/png;base64,{data}'>"
                           f"<figcaption>{html.escape(b.caption)}</figcaption></figure>")
    out.append("</body></html>")
    return "\n".join(out)


def load_lines(report: LoadReport) -> list[str]:
    """What loading did, in sentences (the resolution counts a reader needs to trust the tables)."""
    lines = [
        f"Read {report.files.get('points', 0)} points files ({report.rows_read.get('points', 0)} rows) and "
        f"{report.files.get('layers', 0)} layers files ({report.rows_read.get('layers', 0)} rows) under "
        f"{report.root}.",
        f"Repeated measurements resolved, latest wins: {report.repeated_points} points were measured more than "
        f"once; {report.superseded.get('points', 0)} older point rows and {report.superseded.get('layers', 0)} "
        f"older layer rows were set aside.",
    ]
    copies = report.duplicate_copies.get("points", 0) + report.duplicate_copies.get("layers", 0)
    if copies:
        lines.append(f"{copies} identical copies of rows (a run's pieces next to its merged file) were dropped.")
    if report.orphan_layers:
        lines.append(f"{report.orphan_layers} layer rows have no points row (a point never committed) and were "
                     f"dropped.")
    if report.layer_mean_as_median:
        lines.append(f"{report.layer_mean_as_median} layer rows hold no median (imported from the old system): "
                     f"their mean stands in for p50 in every layer table, figure and predictor.")
    for model, names in report.separated_models.items():
        lines.append(f"Model {model} has rows of {len(names)} different models (model files of one name, told "
                     f"apart by model_hash), kept apart as {', '.join(names)}.")
    if report.bad_files:
        lines.append(f"{len(report.bad_files)} unreadable files were skipped:")
        lines += [f"  {b.path}: {b.error}" for b in report.bad_files]
    else:
        lines.append("No unreadable files.")
    return lines
