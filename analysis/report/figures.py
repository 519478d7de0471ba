"""The report's figures, per setting (drawn by analysis.report.plots and .hardware_plots)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from analysis import predict
from analysis.report.frames import Part
from analysis.tree import Results

log = logging.getLogger(__name__)


def figures_by_setting(
    parts: list[Part], evaluations: list[predict.Evaluation], folder: Path, specs: dict | None = None
) -> dict[str, Path]:
    """make_figures for each setting: with several, each figure's name ends in " [<setting>]" and its file in
    "-s<i>" (the predictor's figures, of one setting, once)."""
    if len(parts) == 1:
        return make_figures(parts[0].frames, parts[0].res, evaluations, folder, specs)
    figures: dict[str, Path] = {}
    for i, p in enumerate(parts, 1):
        drawn = make_figures(p.frames, p.res, evaluations if i == 1 else [], folder, specs, suffix=f"-s{i}")
        figures |= {
            name if name.startswith(("parity", "regret")) else f"{name} [{p.setting.label}]": path
            for name, path in drawn.items()
        }
    return figures


def make_figures(
    frames: dict[str, pd.DataFrame],
    res: Results,
    evaluations: list[predict.Evaluation],
    folder: Path,
    specs: dict | None = None,
    suffix: str = "",
) -> dict[str, Path]:
    """Every figure (PNG + SVG beside it; ``suffix`` ends each file's name); a figure with nothing to draw is
    left out. Each figure's time is logged at INFO (-v)."""
    from analysis.report import hardware_plots, plots

    comp = frames["competitors"]
    summary = frames["speedup_summary"]
    jobs: list[tuple[str, Callable[[], Path | None]]] = []
    groups = list(comp.groupby(["stage", "batch_size", "dtype", "layout"], observed=True))
    for (stage, batch, dtype, layout), grp in groups:
        nhwc = "-nhwc" if layout == "nhwc" else ""  # NCHW figures keep the names they had before the layout
        tag = f"-{stage}-b{batch}-{dtype}{nhwc}" if len(groups) > 1 else ""
        title = (
            f"Latency relative to guess (torch where guess is absent) against input size, 95% bands "
            f"(stage {stage}, batch {batch}, {dtype}{', NHWC' if nhwc else ''})"
        )
        jobs.append(
            (
                f"ratio{tag}",
                lambda grp=grp, tag=tag, title=title: plots.ratio_against_size(
                    grp, folder / f"ratio{tag}{suffix}.png", title
                ),
            )
        )
    for ref in ("guess", "torch"):
        jobs.append(
            (
                f"speedup-{ref}",
                lambda ref=ref: plots.speedup_heatmap(summary, ref, folder / f"speedup-{ref}{suffix}.png"),
            )
        )
    jobs += [
        ("energy-latency", lambda: hardware_plots.energy_latency(comp, folder / f"energy-latency{suffix}.png")[0]),
        ("roofline", lambda: hardware_plots.roofline(res.layers, specs or {}, folder / f"roofline{suffix}.png")),
        ("layers", lambda: plots.layer_breakdown(res.layers, folder / f"layers{suffix}.png")),
        ("support", lambda: hardware_plots.support_matrix(frames["support"], folder / f"support{suffix}.png")),
        ("gpus", lambda: plots.gpu_comparison(frames["gpus"], folder / f"gpus{suffix}.png")),
    ]
    for ev in evaluations:
        unit = "ms" if ev.name == "latency" else "J"
        jobs.append(
            (
                f"parity-{ev.name}",
                lambda ev=ev, unit=unit: plots.parity(ev.predictions, folder / f"parity-{ev.name}.png", unit),
            )
        )
        if len(ev.choices):
            jobs.append((f"regret-{ev.name}", lambda ev=ev: plots.regret(ev.choices, folder / f"regret-{ev.name}.png")))
    figs: dict[str, Path] = {}
    for name, draw in jobs:
        t = time.perf_counter()
        path = draw()
        log.info("figure %s: %.2f s", name, time.perf_counter() - t)
        if path is not None:
            figs[name] = path
    return figs
