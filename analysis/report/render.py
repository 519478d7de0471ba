"""The report: one list of sections rendered twice, as Markdown (images linked) and as a self-contained
HTML page (images embedded as base64), so both always say the same thing.

The HTML page works offline from the one file: a table of contents linking each section's anchor, and every
table sortable (click a header; numeric where the cells are numbers) and filterable (a text box per table) by
a few lines of plain JavaScript in the page. Each cell shows its formatted value and keeps the exact one in
``data-sort``, so sorting is by the number, not by its rounded text."""

from __future__ import annotations

import base64
import html
import math
import re
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
    csv: str | None = None  # a table's full CSV, relative to the report's folder (tables/<name>.csv)


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)

    def text(self, s: str) -> Section:
        self.blocks.append(Block("text", s))
        return self

    def table(self, df: pd.DataFrame, caption: str = "", csv: str | None = None) -> Section:
        """``csv``: the name of the table written in full as tables/<csv>.csv; the report links it."""
        self.blocks.append(Block("table", df, caption, f"tables/{csv}.csv" if csv else None))
        return self

    def image(self, path: Path | None, caption: str = "") -> Section:
        if path is not None:
            self.blocks.append(Block("image", path, caption))
        return self

    def items(self, items: list[str]) -> Section:
        if items:
            self.blocks.append(Block("list", items))
        return self


def _missing(v: Any) -> bool:
    return v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and math.isnan(v))


def _cell(v: Any) -> str:
    if _missing(v):
        return ""
    if isinstance(v, float):
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
            return f"{v:.3g}"
        return f"{v:.4g}" if abs(v) < 100 else f"{v:.1f}"
    return str(v)


def _integral(col: pd.Series) -> bool:
    """A numeric column whose values are all whole numbers (sizes, counts; float only because of gaps)."""
    if pd.api.types.is_bool_dtype(col) or not pd.api.types.is_numeric_dtype(col):
        return False
    if pd.api.types.is_integer_dtype(col):
        return True
    values = col.dropna().to_numpy(dtype=float)
    return bool(len(values)) and bool((values == values.round()).all()) and bool((abs(values) < 2**53).all())


def cells(df: pd.DataFrame) -> list[list[tuple[str, str | None]]]:
    """Each cell as (shown text, exact sort key or None): whole-number columns without decimals, other
    numbers to about 4 significant digits; the key keeps the exact number ('' for a missing one)."""
    integral = [_integral(df[c]) for c in df.columns]
    numeric = [pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c]) for c in df.columns]
    rows = []
    for row in df.itertuples(index=False):
        out = []
        for v, whole, num in zip(row, integral, numeric):
            if _missing(v):
                out.append(("", "" if num else None))
            elif whole:
                out.append((str(int(v)), str(int(v))))
            elif num and isinstance(v, (int, float)) and not isinstance(v, bool):
                f = float(v)
                out.append((_cell(f), repr(f) if math.isfinite(f) else ("Infinity" if f > 0 else "-Infinity")))
            else:
                out.append((_cell(v), None))
        rows.append(out)
    return rows


def _clip(df: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    return (df.head(MAX_ROWS), len(df) - MAX_ROWS) if len(df) > MAX_ROWS else (df, 0)


def _more(more: int, csv: str | None) -> str:
    return f"... {more} more rows in {csv}." if csv else f"... {more} more rows in the CSV/Parquet file."


def markdown_table(df: pd.DataFrame, csv: str | None = None) -> str:
    shown, more = _clip(df)
    cols = [str(c) for c in shown.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in cells(shown):
        lines.append("| " + " | ".join(text.replace("|", "\\|") for text, _ in row) + " |")
    if more:
        lines.append(f"\n_{_more(more, csv)}_")
    if csv:
        lines.append(f"\nFull table: [{csv}]({csv})")
    return "\n".join(lines)


def html_table(df: pd.DataFrame, csv: str | None = None) -> str:
    """A sortable, filterable table in a box that scrolls sideways when wide, linking its full CSV."""
    shown, more = _clip(df)
    head = "".join(f"<th title='click to sort'>{html.escape(str(c))}</th>" for c in shown.columns)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td data-sort='{html.escape(key)}'>{html.escape(text)}</td>"
            if key is not None
            else f"<td>{html.escape(text)}</td>"
            for text, key in row
        )
        + "</tr>"
        for row in cells(shown)
    )
    link = f" <a class='csv' href='{html.escape(csv)}'>full table (CSV)</a>" if csv else ""
    tools = (
        f"<div class='tools'><input type='search' class='filter' placeholder='filter rows' "
        f"aria-label='filter rows'> <span class='count'>{len(shown)} rows</span>{link}</div>"
    )
    tail = f"<p><em>{html.escape(_more(more, csv))}</em></p>" if more else ""
    return (
        f"<div class='tbl'>{tools}<div class='scroll'><table class='sortable'><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table></div>{tail}</div>"
    )


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
                out += [markdown_table(b.content, b.csv) if len(b.content) else "_(none)_", ""]
            elif b.kind == "image":
                rel = Path(b.content).resolve().relative_to(base.resolve())
                out += [f"![{b.caption}]({rel.as_posix()})", "", f"_{b.caption}_", ""]
    return "\n".join(out)


CSS = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right;
white-space:nowrap}th{background:#f3f3f3;cursor:pointer;user-select:none}
th[aria-sort=ascending]::after{content:" \\25B2"}
th[aria-sort=descending]::after{content:" \\25BC"}.tbl{margin:.5em 0 1.5em}.scroll{overflow-x:auto;max-width:100%}
td:not([data-sort]){text-align:left}.tools{font-size:12px;margin:.3em 0}
.tools input{font-size:12px;width:16em}.count{color:#666}
img{max-width:100%;border:1px solid #eee}figure{margin:1em 0}figcaption{font-style:italic;font-size:13px}
h2{border-bottom:1px solid #ddd;padding-bottom:.2em}nav#toc ol{columns:2;font-size:14px}"""

# Sorting and filtering, plain JavaScript (no framework, nothing fetched). A header click sorts its column,
# ascending first, then toggles; cells with data-sort compare as numbers, empty ones always last; others by
# text (natural order). The filter box hides the rows whose text does not contain what it holds.
SCRIPT = """(function(){
function key(td){var k=td.getAttribute('data-sort');return k===null?td.textContent:k;}
function cmp(a,b){if(a===b)return 0;var x=Number(a),y=Number(b);
 if(a!==''&&b!==''&&!isNaN(x)&&!isNaN(y))return x<y?-1:x>y?1:0;return a.localeCompare(b,undefined,{numeric:true});}
document.querySelectorAll('div.tbl').forEach(function(box){
 var t=box.querySelector('table.sortable'),body=t.tBodies[0],heads=t.tHead.rows[0].cells;
 Array.prototype.forEach.call(heads,function(th,i){th.addEventListener('click',function(){
  var asc=th.getAttribute('aria-sort')!=='ascending',rows=Array.prototype.slice.call(body.rows);
  Array.prototype.forEach.call(heads,function(h){h.removeAttribute('aria-sort');});
  th.setAttribute('aria-sort',asc?'ascending':'descending');
  rows.sort(function(r,s){var a=key(r.cells[i]),b=key(s.cells[i]);
   if(a===''||b==='')return (a==='')-(b==='');return asc?cmp(a,b):cmp(b,a);});
  rows.forEach(function(r){body.appendChild(r);});});});
 var box_input=box.querySelector('input.filter'),count=box.querySelector('.count');
 box_input.addEventListener('input',function(){var q=box_input.value.toLowerCase(),n=0;
  Array.prototype.forEach.call(body.rows,function(r){var show=r.textContent.toLowerCase().indexOf(q)>=0;
   r.hidden=!show;n+=show;});count.textContent=(q?n+' of ':'')+body.rows.length+' rows';});
});})();"""


def anchors(sections: list[Section]) -> list[str]:
    """Each section's HTML id, from its title (unique: a repeated title gets -2, -3, ...)."""
    seen: dict[str, int] = {}
    ids = []
    for s in sections:
        base = re.sub(r"[^a-z0-9]+", "-", s.title.lower()).strip("-") or "section"
        seen[base] = seen.get(base, 0) + 1
        ids.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return ids


def render_html(title: str, sections: list[Section]) -> str:
    ids = anchors(sections)
    out = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>",
        "<nav id='toc'><h2>Contents</h2><ol>"
        + "".join(f"<li><a href='#{i}'>{html.escape(s.title)}</a></li>" for s, i in zip(sections, ids))
        + "</ol></nav>",
    ]
    for s, anchor in zip(sections, ids):
        out.append(f"<section id='{anchor}'><h2>{html.escape(s.title)}</h2>")
        for b in s.blocks:
            if b.kind == "text":
                out.append(f"<p>{html.escape(b.content)}</p>")
            elif b.kind == "list":
                out.append("<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in b.content) + "</ul>")
            elif b.kind == "table":
                cap = f"<p><strong>{html.escape(b.caption)}</strong></p>" if b.caption else ""
                out.append(cap + (html_table(b.content, b.csv) if len(b.content) else "<p><em>(none)</em></p>"))
            elif b.kind == "image":
                data = base64.b64encode(Path(b.content).read_bytes()).decode("ascii")
                out.append(
                    f"<figure><img alt='{html.escape(b.caption)}' src='data:image/png;base64,{data}'>"
                    f"<figcaption>{html.escape(b.caption)}</figcaption></figure>"
                )
        out.append("</section>")
    out.append(f"<script>{SCRIPT}</script></body></html>")
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
        lines.append(
            f"{report.orphan_layers} layer rows have no points row (a point never committed) and were " f"dropped."
        )
    if report.layer_mean_as_median:
        lines.append(
            f"{report.layer_mean_as_median} layer rows hold no median (imported from the old system): "
            f"their mean stands in for p50 in every layer table, figure and predictor."
        )
    for model, names in report.separated_models.items():
        lines.append(
            f"Model {model} has rows of {len(names)} different models (model files of one name, told "
            f"apart by model_hash), kept apart as {', '.join(names)}."
        )
    if report.bad_files:
        lines.append(f"{len(report.bad_files)} unreadable files were skipped:")
        lines += [f"  {b.path}: {b.error}" for b in report.bad_files]
    else:
        lines.append("No unreadable files.")
    return lines
