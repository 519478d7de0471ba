"""All of it, with the I/O at the edges: load, compute the tables, check, evaluate the predictor, plot, and
write tables (Parquet + CSV), figures, the fitted predictor and the report under one output folder."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from analysis import answer, checks, findings, methods, perlayer, predictor, repeats, report, tables
from analysis.errors import AnalysisError, AnalysisOutputError
from analysis.load import Filters, LoadReport, Results, by_setting, load, read_points, resolve_roots
from analysis.options import Options
from analysis.settings import Setting
from analysis.specs import gpu_specs
from harness import validate

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


def _workers() -> int:
    """Threads for the tables: the cores this process may use (pandas and numpy release the GIL in their
    loops over millions of layer rows), at most 4."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


def compute_tables(res: Results, torch_rows: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
    """Every answer table from resolved points and layers (pure); ``torch_rows``: torch per cudnn_benchmark
    setting (perlayer.torch_settings) for the per-layer plans' comparison.

    The four tables over the layer rows (millions at scale) are computed in threads beside the point tables
    (every table function only reads the frames):
    on 2 cores at 5,000,000 layer rows, 7.7 s one after the other, 4.9 s this way
    (benchmarks/analysis_scale.py)."""
    with ThreadPoolExecutor(max_workers=_workers()) as pool:
        layer_sp_f = pool.submit(answer.layer_speedups, res.layers)
        oracle_f = pool.submit(lambda: tables.oracle(perlayer.singles(res.points), perlayer.singles(res.layers)))
        shapes_f = pool.submit(tables.layer_shapes, res.layers)
        support_f = pool.submit(tables.support, res.layers)
        algos = tables.algorithms(res.points)
        best = tables.best(algos)
        comp = answer.competitors(res.points)
        sp = answer.speedups(comp)
        speedup_summary = answer.speedup_summary(sp)
        wins = answer.winners(comp)
        gpus = tables.gpu_pairs(algos)
        layer_sp, oracle = layer_sp_f.result(), oracle_f.result()
        shapes, support = shapes_f.result(), support_f.result()
    proj = perlayer.projection(res.points, res.layers, oracle)
    return {
        "summary": answer.headline(speedup_summary, wins),
        "competitors": comp,
        "speedups": sp,
        "speedup_summary": speedup_summary,
        "winners": wins,
        "layer_speedups": layer_sp,
        "layer_speedup_summary": answer.layer_summary(layer_sp),
        "algorithms": algos,
        "best": best,
        "edp": tables.edp(algos),
        "gpus": gpus,
        "layer_shapes": shapes,
        "support": support,
        "oracle": oracle,
        "plan_comparison": perlayer.plan_vs_others(res.points, torch_rows),
        "plan_projection": proj,
        "plan_bias": perlayer.projection_bias(proj),
        "coverage": tables.coverage(res.points),
        "failures": tables.failures(res.points),
    }


# Tables with a row per layer: Parquet only (a CSV of millions of rows costs more than the rest together).
PARQUET_ONLY = frozenset({"layer_speedups"})


def _torch_rows(roots: list[Path], filters: Filters, res: Results) -> pd.DataFrame | None:
    """torch's unresolved rows, read only where per_layer points are to be compared (see ``torch_of``)."""
    if not (res.points["algo"].astype(str) == "per_layer").any() or (filters.algo and "torch" not in filters.algo):
        return None
    try:
        rows, _ = read_points(roots, replace(filters, algo=("torch",)))
    except AnalysisError:
        return None  # no torch rows: the comparison goes without
    return rows


def torch_of(rows: pd.DataFrame | None, setting: Setting) -> pd.DataFrame | None:
    """torch's rows per cudnn_benchmark setting (perlayer.torch_settings) among those of ``setting`` in every
    other setting: a plan is compared with torch as the framework runs by default and with cudnn.benchmark."""
    if rows is None:
        return None
    return perlayer.torch_settings(rows[setting.mask(rows, ignore=("cudnn_benchmark",))])


@dataclass
class Part:
    """The results of one setting and their tables: what the analysis compares."""

    setting: Setting
    res: Results
    frames: dict[str, pd.DataFrame]


def tables_by_setting(res: Results, torch_rows: pd.DataFrame | None) -> list[Part]:
    """compute_tables for each setting of the results (analysis.load.by_setting): no table compares rows of
    two settings."""
    return [Part(s, r, compute_tables(r, torch_of(torch_rows, s))) for s, r in by_setting(res)]


def combined(parts: list[Part]) -> dict[str, pd.DataFrame]:
    """Each table of every setting as one: with several settings, a ``setting`` column first says whose rows
    each are (with one, the tables as they are)."""
    if len(parts) == 1:
        return dict(parts[0].frames)
    out = {}
    for name in parts[0].frames:
        frames = [p.frames[name].assign(setting=p.setting.label) for p in parts]
        both = pd.concat([f for f in frames if len(f)] or frames[:1], ignore_index=True)
        out[name] = both[["setting", *[c for c in both.columns if c != "setting"]]]
    return out


def write_tables(frames: dict[str, pd.DataFrame], folder: Path) -> list[Path]:
    """Each table as Parquet, and as CSV for people unless it has a row per layer (PARQUET_ONLY)."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, df in frames.items():
        df.to_parquet(folder / f"{name}.parquet", index=False)
        written.append(folder / f"{name}.parquet")
        if name not in PARQUET_ONLY:
            df.to_csv(folder / f"{name}.csv", index=False)
            written.append(folder / f"{name}.csv")
    return written


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
    res = _timed(timings, "load", lambda: load(roots, options.filters), progress)
    parts = _timed(
        timings, "tables", lambda: tables_by_setting(res, _torch_rows(roots, options.filters, res)), progress
    )
    frames = combined(parts)
    found = checks.findings(res.points, res.report, options.thresholds)
    frames["warnings"] = found
    out.mkdir(parents=True, exist_ok=True)
    files = _timed(timings, "write tables", lambda: write_tables(frames, out / "tables"), progress)
    specs = gpu_specs(roots, res.points["gpu"].unique())

    evaluations: list[predictor.Evaluation] = []
    if options.predictor:
        largest = parts[0].res  # the setting of most rows: the predictor learns within one setting

        def fit(res: Results = largest) -> None:
            for frame in (predictor.layer_frame(res.layers, specs), predictor.energy_frame(res.points, specs)):
                if len(frame.data) < predictor.MIN_TRAIN_ROWS:
                    log.info("predictor %s: %d rows, too few to fit", frame.name, len(frame.data))
                    continue
                latency = frame.name == "latency"
                ev = predictor.evaluate(
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
                    predictor.fit_and_save(frame, ev, out / "predictor", options.max_train_rows, options.threads)
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
    sections = build_sections(res, frames, found, evaluations, figures, options, parts)
    title = f"Convolution algorithms: analysis of {res.report.root}"
    md, page = out / "report.md", out / "report.html"
    md.write_text(report.render_markdown(title, sections, out))
    page.write_text(report.render_html(title, sections))
    return Outcome(out, md, page, frames, files, figures, res.report, frames["summary"], metrics, found, timings)


def figures_by_setting(
    parts: list[Part], evaluations: list[predictor.Evaluation], folder: Path, specs: dict | None = None
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
    evaluations: list[predictor.Evaluation],
    folder: Path,
    specs: dict | None = None,
    suffix: str = "",
) -> dict[str, Path]:
    """Every figure (PNG + SVG beside it; ``suffix`` ends each file's name); a figure with nothing to draw is
    left out. Each figure's time is logged at INFO (-v)."""
    from analysis import plots

    comp = frames["competitors"]
    summary = frames["speedup_summary"]
    jobs: list[tuple[str, Callable[[], Path | None]]] = []
    groups = list(comp.groupby(["stage", "batch_size", "dtype"], observed=True))
    for (stage, batch, dtype), grp in groups:
        tag = f"-{stage}-b{batch}-{dtype}" if len(groups) > 1 else ""
        title = (
            f"Latency relative to guess (torch where guess is absent) against input size, 95% bands "
            f"(stage {stage}, batch {batch}, {dtype})"
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
        ("energy-latency", lambda: plots.energy_latency(comp, folder / f"energy-latency{suffix}.png")[0]),
        ("roofline", lambda: plots.roofline(res.layers, specs or {}, folder / f"roofline{suffix}.png")),
        ("layers", lambda: plots.layer_breakdown(res.layers, folder / f"layers{suffix}.png")),
        ("support", lambda: plots.support_matrix(frames["support"], folder / f"support{suffix}.png")),
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


def _images(section: report.Section, figures: dict[str, Path], name: str, caption: str) -> None:
    """The figure ``name``, or its copy per setting (named "<name> [<setting>]"), each captioned."""
    for key, path in figures.items():
        if key == name or key.startswith(f"{name} ["):
            section.image(path, caption + key[len(name) :])


def _columns(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """These columns of a table, after its ``setting`` column where it has one."""
    return df[["setting", *columns] if "setting" in df else columns]


def build_sections(
    res: Results,
    frames: dict[str, pd.DataFrame],
    found: pd.DataFrame,
    evaluations: list[predictor.Evaluation],
    figures: dict[str, Path],
    options: Options,
    parts: list[Part] | None = None,
) -> list[report.Section]:
    p = res.points
    parts = parts if parts is not None else [Part(Setting(()), res, frames)]
    S = report.Section
    summary = S("Summary").text("Main findings (each names where its evidence is):")
    summary.items(findings.by_setting([(part.setting, part.frames, part.res.points) for part in parts]))
    summary.text("Caveats of the data:")
    summary.items(
        findings.caveats(
            p,
            options.thresholds.energy_window_s,
            options.thresholds.cv,
            [part.setting for part in parts],
            res.report.host_bound_layers,
        )
    )
    methods_section = S("Methods").text(
        methods.paragraph(
            p,
            res.layers,
            corrections=[findings.corrections(frames), *methods.oracle_correction(frames.get("oracle"))],
            exclusions=methods.exclusions(p, res.report.host_bound_layers),
            between=repeats.methods_sentences(res.report.between_process, p),
        )
    )
    if len(res.report.between_process):
        methods_section.table(
            res.report.between_process,
            "Noise between processes per gpu x model (points and " "layers measured in several processes: repeats=K)",
            csv="between_process",
        )

    sp = frames["speedup_summary"]
    the_answer = S("The answer").text(
        "Speedup = reference p50 / algorithm p50 (> 1: faster than the reference), over cuDNN's heuristic (guess) "
        "and over the framework's own convolution (torch). Per point the interval is the delta method on the two "
        "medians' standard errors, from each row's summary statistics (its stored 95% interval of the median, "
        "else sqrt(pi/2) std / sqrt(n) widened by t(n-1)); per model the geometric mean over the points "
        "measured, with the 95% interval of their own noise. Verdicts are corrected for the number of "
        "comparisons in each table: every row with an "
        "interval gets two one-sided tests (faster, slower), and 'faster' or 'slower' is claimed where the "
        "Benjamini-Hochberg q-value (q_value, beside the raw p_value) over the table's tests is at most 5%, so at "
        "most 5% of a table's claims are expected to be false; else 'tied'; 'no_interval' where a row has no "
        "honest interval (not enough samples): not tested, never taken as exact. beyond_noise of a model's "
        "geometric mean: the same over the rows of speedup_summary (normal on the log scale from its "
        "interval). Algorithms known to run the same code are merged (same_path)."
    )
    the_answer.items(
        [
            f"{name}: {answer.family_line(frames[name]['p_value'])}"
            for name in ("speedup_summary", "speedups", "layer_speedups", "plan_comparison")
            if len(frames[name]) and "p_value" in frames[name]
        ]
    )
    the_answer.table(
        frames["summary"],
        "Per stage x gpu x model x dtype: the largest gain beyond noise over each "
        "reference, and how often there is a sole winner",
        csv="summary",
    )
    _images(the_answer, figures, "speedup-guess", "Geometric-mean speedup over guess with 95% intervals")
    if len(sp):
        shown = sp.sort_values(
            ["reference", "stage", "gpu", "model", "geomean_speedup"], ascending=[True, True, True, True, False]
        )
        the_answer.table(
            shown,
            "Per algorithm: geometric-mean speedup, 95% interval, verdicts per point "
            "(tables/speedup_summary.csv; per point: tables/speedups.csv)",
            csv="speedup_summary",
        )
    ls = frames["layer_speedup_summary"]
    if len(ls):
        the_answer.table(
            ls,
            "Per layer, against guess on the same layer at the same point: how many layers each "
            "algorithm runs faster / tied / slower beyond noise (tables/layer_speedups.parquet)",
            csv="layer_speedup_summary",
        )
    for name, path in figures.items():
        if name.startswith("ratio"):
            the_answer.image(path, "Latency ratio to the reference against input size, 95% bands")
    coverage = S("Coverage").text(
        f"{len(p)} points: stages {_list(p['stage'])}; GPU types {_list(p['gpu'])} "
        f"(devices {_list(p['device_name'])}); "
        f"models {_list(p['model'])}; algorithms {_list(p['algo'])}; input sizes {_list(p['input_size'])}; "
        f"batch sizes {_list(p['batch_size'])}; dtypes {_list(p['dtype'])}. Status: "
        + ", ".join(f"{k} {v}" for k, v in p["status"].astype(str).value_counts().items())
        + "."
    )
    if options.filters.chosen():
        coverage.text("Filters: " + options.filters.chosen())
    coverage.text(
        "Settings (analysed apart; tables/coverage.csv counts each one's points): "
        + "; ".join(f"{part.setting.describe()} ({len(part.res.points)} points)" for part in parts)
        + "."
    )
    coverage.items(report.load_lines(res.report))
    coverage.table(frames["coverage"], "Points per stage x gpu x model x algorithm, by status", csv="coverage")
    coverage.table(frames["failures"], "What failed and why", csv="failures")

    warnings = S("Warnings").text(
        f"Points with cv > {options.thresholds.cv:g}, NVML throttle reasons other than idle/pinned clocks, "
        f"verification failures, energy windows under {options.thresholds.energy_window_s:g} s, CI targets not "
        f"met, a gpu type measured on several devices, unreadable files, and the known flaws imported rows carry "
        f"(kind 'legacy: <flag>')."
    )
    warnings.table(checks.summary(found), "Findings by kind")
    warnings.table(found, "Findings (tables/warnings.csv has all)", csv="warnings")

    fastest = S("Fastest algorithm").text(
        "Per point (stage, gpu, model, input size, batch, dtype): the fastest code path by p50 among those that "
        "measured ok, every path tied with it (95% intervals overlap: 'tie' when there is more than one), the "
        "fastest path outside the tie and its margin, and whether guess and torch are the fastest or tied. "
        "tables/best.csv keeps every algorithm's p50 and the least-energy and least-EDP algorithms."
    )
    cols = [
        "stage",
        "gpu",
        "model",
        "input_size",
        "batch_size",
        "dtype",
        "winner",
        "fastest",
        "fastest_p50_ms",
        "tied_with_fastest",
        "runner_up_beyond_noise",
        "margin_beyond_noise",
        "guess_is_fastest_or_tied",
        "torch_is_fastest_or_tied",
    ]
    fastest.table(_columns(frames["winners"], cols), "Per point (tables/winners.csv)", csv="winners")
    _images(fastest, figures, "speedup-torch", "Geometric-mean speedup over torch with 95% intervals")

    gpus = S("GPUs compared").text(
        "Each pair of GPU types on the points both measured ok (same stage, model, algorithm, input size, batch, "
        "dtype): how often the first (gpu_a) is slower, and the geometric mean, min and max of its p50 over the "
        "second's (> 1: gpu_a slower); the same geometric mean for energy per inference where both have it."
    )
    if len(frames["gpus"]):
        gpus.table(frames["gpus"], "Matched points per pair of GPU types, per model and over all models", csv="gpus")
        _images(gpus, figures, "gpus", "p50 ratio between GPU types per model, 95% interval")
    else:
        gpus.text("Fewer than two GPU types measured the same points.")

    o = frames["oracle"]
    oracle = S("Per-layer oracle").text(
        "Each conv layer run by its own fastest algorithm (among those that ran it themselves), against the best "
        "single algorithm. projected_ms = the best algorithm's non-conv remainder (p50 minus its layers' sum, "
        "floored at 0) + the oracle's layer sum; layer times come from the separate per-layer pass. A point has "
        "no projection where a layer was run by no algorithm itself (unrun_layers) or where the best algorithm's "
        "own time of a layer is host-bound (host_bound_layers: the host's issuing, not the GPU's); a host-bound "
        "row is never a candidate. A layer "
        "switches only beyond noise, corrected for the number of layers: per layer, the fastest other algorithm "
        "against the best single one (one-sided, its p times the number of others it was picked from), "
        "Benjamini-Hochberg at a false discovery rate of 5% over each point's layers (switch_tests; "
        "switch_no_interval: layers whose rows have no interval, not tested)"
        + (
            f"; {int(o['switch_tests'].sum())} layer tests over {len(o)} points, "
            f"{int(o['switch_no_interval'].sum())} layer(s) not tested."
            if len(o)
            else "."
        )
    )
    oracle.table(
        _columns(
            o,
            [
                "stage",
                "gpu",
                "model",
                "input_size",
                "batch_size",
                "best_algo",
                "best_p50_ms",
                "projected_ms",
                "projected_speedup",
                "conv_speedup",
                "layers_switched",
                "switch_tests",
                "layers",
                "unrun_layers",
                "host_bound_layers",
                "oracle_mix",
            ],
        ),
        csv="oracle",
    )
    _images(oracle, figures, "layers", "Sum of layer p50 per algorithm, stacked by layer kind (largest size)")
    _images(oracle, figures, "roofline", "Per-layer roofline: achieved TFLOP/s against arithmetic intensity")

    plans = S("Per-layer plans, measured").text(
        "Points measured with algo=per_layer (a plan: python -m analysis.plan, README: Per-layer plans), each "
        "against guess, torch (heuristic, or cudnn.benchmark where its row says so), find and the best single "
        "algorithm at the same point: speedup = other p50 / plan p50 (> 1: the plan is faster), 95% interval by "
        "the delta method, verdict beyond noise (Benjamini-Hochberg at 5% over the table, as in The answer); "
        "energy_ratio = other / plan energy per inference."
    )
    if len(frames["plan_comparison"]):
        plans.table(
            frames["plan_comparison"].drop(columns=["plan_low_ms", "plan_high_ms", "other_low_ms", "other_high_ms"]),
            "Plan against the others (tables/plan_comparison.csv)",
            csv="plan_comparison",
        )
        plans.text(
            "Projected against measured: projected_ms = the baseline's non-conv remainder (its p50 minus its layers' "
            "sum) + each layer's p50 in the run of the algorithm that really ran it in the mix (algo_used); "
            "measured_over_projected > 1: the mixed model ran slower than the sum of its layers said (caches, "
            "workspaces, launch gaps). oracle_projected_ms is the Per-layer oracle's projection at the same point."
        )
        plans.table(
            frames["plan_projection"].drop(columns=["error_log_se"]),
            "Per point (tables/plan_projection.csv)",
            csv="plan_projection",
        )
        plans.table(
            frames["plan_bias"],
            "Is the projection biased? Geometric mean of measured / projected with its "
            "95% Student-t interval over the points (tables/plan_bias.csv)",
            csv="plan_bias",
        )
    else:
        plans.text("No per_layer point in these results.")

    shapes = S("Layer shapes and support")
    ls = frames["layer_shapes"]
    if len(ls):
        shapes.table(
            _columns(
                ls.sort_values(["occurrences", "margin"], ascending=False),
                [
                    "gpu",
                    "dtype",
                    "batch_size",
                    "shape",
                    "best_algo",
                    "best_p50_ms",
                    "runner_up",
                    "margin",
                    "occurrences",
                    "models",
                ],
            ),
            "Best algorithm per layer shape (median over occurrences), most frequent shapes first",
            csv="layer_shapes",
        )
    sup = frames["support"]
    if len(sup):
        by = [sup[c].astype(str) for c in ("setting", "gpu", "algo") if c in sup]
        counts = pd.crosstab(by, sup["status"]).reset_index()
        counts.columns.name = None
        shapes.table(
            counts, "Layer shapes per status, per gpu x algorithm (tables/support.csv has each shape)", csv="support"
        )
    _images(shapes, figures, "support", "Support matrix: algorithm x layer shape, per gpu")

    energy = S("Energy")
    e = frames["edp"]
    if len(e):
        energy.text("Energy per inference from NVML; energy-delay product EDP = energy (J) x p50 (s), lower is better.")
        energy.table(e[e["edp_rank"] == 1], "Least EDP per point", csv="edp")
        _images(
            energy,
            figures,
            "energy-latency",
            "Energy against latency relative to each point's best; filled: " "on the point's Pareto front",
        )
    else:
        energy.text("No energy was measured in these results (CPU runs, or energy_window_s=0).")

    pred = S("Predictor")
    if not options.predictor:
        pred.text("Not run (add --predictor to fit and evaluate it).")
    elif not evaluations:
        pred.text(f"Too little data to fit (fewer than {predictor.MIN_TRAIN_ROWS} rows).")
    for ev in evaluations:
        if ev.name == "latency":
            pred.text(
                f"{ev.kind}: gradient-boosted trees (scikit-learn) on the log ratio of measured time to a roofline "
                "baseline, against that baseline alone (max(FLOPs/peak, bytes/bandwidth), scaled per GPU on the "
                "training rows). Features: layer geometry, FLOPs, bytes, the layer's own input size, batch, dtype, "
                "the algorithm that ran it, GPU datasheet numbers; nothing measured on the predicted point. 'model' "
                "rows: whole model = sum of predicted layers + the non-conv remainder measured at the same model, "
                "gpu and size with the other algorithms."
            )
        else:
            pred.text(
                f"{ev.kind}: gradient-boosted trees on the log ratio to an energy-proportional-to-FLOPs baseline "
                "(scaled per GPU on the training rows). Features: model FLOPs, parameters, input size, batch, dtype, "
                "conv layer count, algorithm, GPU datasheet numbers."
            )
        pred.text(
            "Errors are on held-out rows only: APE = |predicted - measured| / measured, in %; a split's "
            "rows pool every fold's test rows. A leave-one-gpu-out split with fewer than "
            f"{predictor.STRONG_GPU_TYPES} GPU types learns across datasheets from too few examples: its "
            "rows say 'weak' in the note."
        )
        pred.table(ev.metrics, f"{ev.kind}: absolute percentage error per split")
        share = ev.metrics.get("remainder_share")
        if share is not None and share.notna().any():
            model = ev.metrics[(ev.metrics["level"] == "model") & (ev.metrics["predictor"] == "boosted")]
            pred.text(
                "Whole-model predictions include the non-conv remainder as measured with the other algorithms: "
                "its median share of the boosted prediction (remainder_share) is "
                + ", ".join(f"{r.remainder_share:.0%} ({r.split})" for r in model.itertuples())
                + "; that part of a whole-model error is measurement, not prediction."
            )
        if len(ev.fold_summary):
            pred.table(
                ev.fold_summary,
                f"{ev.kind}: per split, the mean over folds of each fold's median APE and the "
                "worst fold (what it held out)",
            )
        pred.table(ev.folds, f"{ev.kind}: per fold")
        if len(ev.regret):
            pooled = ev.regret[ev.regret["held_out"] == "all folds"]
            pred.text(
                "Choosing an algorithm: per held-out layer (a layer at one point) with at least two algorithms "
                "timed ok, regret = measured time of the algorithm predicted fastest / the measured fastest - 1. "
                "Beside it, a random pick among the same algorithms (its expected regret). Median regret: "
                + ", ".join(
                    f"{r.median_regret_pct:.1f}% ({r.split}; {r.within_5pct:.0%} of {r.layers} layers "
                    f"within 5%, random pick {r.random_within_5pct:.0%})"
                    for r in pooled.itertuples()
                )
                + "."
            )
            pred.table(
                ev.regret,
                f"{ev.kind}: regret of choosing the predicted-fastest algorithm, per split (all " "folds) and per fold",
            )
        pred.items([f"skipped: {s}" for s in ev.skipped])
        pred.image(
            figures.get(f"parity-{ev.name}"),
            f"{ev.kind}: predicted against measured, held-out rows, a " "colour per fold; dashed +-10%, dotted +-25%",
        )
        pred.image(
            figures.get(f"regret-{ev.name}"),
            f"{ev.kind}: cumulative share of held-out layers against the "
            "regret of the predicted-fastest algorithm (solid) and of a random pick (dashed)",
        )
    return [
        summary,
        methods_section,
        the_answer,
        coverage,
        warnings,
        fastest,
        gpus,
        oracle,
        plans,
        shapes,
        energy,
        pred,
    ]


def _list(s: pd.Series, limit: int = 12) -> str:
    values = sorted(s.dropna().unique(), key=lambda v: (str(type(v)), v))
    text = ", ".join(map(str, values[:limit]))
    return text + (f" ... ({len(values)})" if len(values) > limit else "")
