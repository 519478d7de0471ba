"""All of it, with the I/O at the edges: load, compute the tables, check, evaluate the predictor, plot, and
write tables (Parquet + CSV), figures, the fitted predictor and the report under one output folder."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from analysis import predict
from analysis.errors import AnalysisOutputError
from analysis.options import Options
from analysis.report import checks, render

# frames, figures and sections moved to analysis.report; their old names stay importable from here (__all__)
from analysis.report.figures import (
    figures_by_setting,
    make_figures,
)
from analysis.report.frames import (
    PARQUET_ONLY,
    Part,
    combined,
    compute_tables,
    tables_by_setting,
    torch_of,
    torch_rows_for,
    write_tables,
)
from analysis.report.frames import table_workers as _workers
from analysis.report.frames import torch_rows_for as _torch_rows
from analysis.report.sections import build_sections
from analysis.report.sections import images as _images
from analysis.report.sections import listed as _list
from analysis.report.sections import setting_columns as _columns
from analysis.tree import LoadReport, Results, directions, load, read, resolve_roots
from analysis.tree.specs import gpu_specs
from harness import validate

__all__ = [
    "PARQUET_ONLY",
    "Options",
    "Outcome",
    "Part",
    "Progress",
    "_columns",
    "_images",
    "_list",
    "_torch_rows",
    "_workers",
    "build_sections",
    "check_out",
    "combined",
    "compute_tables",
    "figures_by_setting",
    "make_figures",
    "run",
    "tables_by_setting",
    "torch_of",
    "write_tables",
]

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    out: Path
    report_md: Path
    report_html: Path
    tables: dict[str, pd.DataFrame]
    files: list[Path]
    figures: dict[str, Path]
    load: LoadReport
    summary: pd.DataFrame
    predictor_metrics: pd.DataFrame
    findings: pd.DataFrame
    timings: dict[str, float] = field(default_factory=dict)


def check_out(roots: list[Path], out: Path) -> None:
    o = out.resolve()
    for root in roots:
        r = root.resolve()
        if o == r or r in o.parents:
            raise AnalysisOutputError(
                f"--out {out} is inside the results directory {root}: its Parquet tables "
                f"would be read as results next time; choose a folder outside it"
            )
    if out.exists() and not out.is_dir():
        raise AnalysisOutputError(f"--out {out} exists and is not a folder")


Progress = Callable[[str], None]  # told what starts now ("tables", "predictor: fold 3 of 11 ...")


def _timed(timings: dict[str, float], name: str, fn: Callable, progress: Progress):
    progress(name)
    t = time.perf_counter()
    value = fn()
    timings[name] = time.perf_counter() - t
    log.info("%s: %.2f s", name, timings[name])
    return value


def run(
    roots: str | Path | Sequence[str | Path],
    out: str | Path,
    options: Options = Options(),
    progress: Progress = lambda step: None,
) -> Outcome:
    """Analyse one results tree, or several as one (e.g. ``results`` and an imported ``results-legacy``).
    ``progress`` is called with each step's name as it starts (the CLI shows it). An ``out`` that cannot be
    written is refused (harness.errors.ConfigError) before anything is read; an empty one, never the current
    folder by accident."""
    out = validate.output_folder(out, "--out")
    roots = resolve_roots(roots)
    check_out(roots, out)
    timings: dict[str, float] = {}
    unneeded = read.unneeded_layer_columns(options.plots, options.predictor)
    res = _timed(timings, "load", lambda: load(roots, options.filters, unneeded, narrow=True), progress)
    parts = _timed(
        timings, "tables", lambda: tables_by_setting(res, torch_rows_for(roots, options.filters, res)), progress
    )
    frames = combined(parts)
    found = checks.findings(res.points, res.report, options.thresholds)
    forward = directions.forward(res)  # what the figures, the predictor and the forward sections read
    frames["warnings"] = found
    out.mkdir(parents=True, exist_ok=True)
    files = _timed(timings, "write tables", lambda: write_tables(frames, out / "tables"), progress)
    specs = gpu_specs(roots, res.points["gpu"].unique())

    evaluations: list[predict.Evaluation] = []
    if options.predictor:
        largest = parts[0].res  # the setting of most rows: the predictor learns within one setting

        def fit(res: Results = largest) -> None:
            for frame in (predict.layer_frame(res.layers, specs), predict.energy_frame(res.points, specs)):
                if len(frame.data) < predict.MIN_TRAIN_ROWS:
                    log.info("predictor %s: %d rows, too few to fit", frame.name, len(frame.data))
                    continue
                latency = frame.name == "latency"
                ev = predict.evaluate(
                    frame,
                    res.points if latency else None,
                    res.layers if latency else None,
                    options.max_train_rows,
                    options.threads,
                    progress=lambda what, frame=frame: progress(f"predictor ({frame.name}): {what}"),
                )
                evaluations.append(ev)
                files.extend(write_tables(ev.tables(), out / "tables"))
                progress(f"predictor ({frame.name}): final fit")
                files.extend(
                    predict.fit_and_save(frame, ev, out / "predictor", options.max_train_rows, options.threads)
                )

        _timed(timings, "predictor", fit, progress)
    metrics = (
        pd.concat([e.metrics.assign(target=e.name) for e in evaluations if len(e.metrics)], ignore_index=True)
        if any(len(e.metrics) for e in evaluations)
        else pd.DataFrame()
    )

    figures: dict[str, Path] = {}
    if options.plots:
        figures = _timed(
            timings, "figures", lambda: figures_by_setting(parts, evaluations, out / "figures", specs), progress
        )

    progress("report")
    sections = build_sections(forward, frames, found, evaluations, figures, options, parts)
    title = f"Convolution algorithms: analysis of {res.report.root}"
    md, page = out / "report.md", out / "report.html"
    md.write_text(render.render_markdown(title, sections, out))
    page.write_text(render.render_html(title, sections))
    return Outcome(out, md, page, frames, files, figures, res.report, frames["summary"], metrics, found, timings)
