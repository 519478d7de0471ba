"""The report's sections (analysis.report.render draws them) from the answer tables, the checks' findings,
the predictor's evaluations and the figures."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from analysis import predict
from analysis.report import checks, findings, methods, render
from analysis.report.frames import Part
from analysis.report.predictor_section import predictor_section
from analysis.stats import repeats
from analysis.stats.verdicts import family_line
from analysis.tree import Results
from analysis.tree.settings import Setting

if TYPE_CHECKING:  # the options are the pipeline's (analysis.options imports this package's checks)
    from analysis.options import Options


def images(section: render.Section, figures: dict[str, Path], name: str, caption: str) -> None:
    """The figure ``name``, or its copy per setting (named "<name> [<setting>]"), each captioned."""
    for key, path in figures.items():
        if key == name or key.startswith(f"{name} ["):
            section.image(path, caption + key[len(name) :])


def setting_columns(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """These columns of a table, after its ``setting`` column where it has one."""
    return df[["setting", *columns] if "setting" in df else columns]


def build_sections(
    res: Results,
    frames: dict[str, pd.DataFrame],
    found: pd.DataFrame,
    evaluations: list[predict.Evaluation],
    figures: dict[str, Path],
    options: Options,
    parts: list[Part] | None = None,
) -> list[render.Section]:
    p = res.points
    parts = parts if parts is not None else [Part(Setting(()), res, frames)]
    S = render.Section
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
            f"{name}: {family_line(frames[name]['p_value'])}"
            for name in ("speedup_summary", "speedups", "layer_speedups", "plan_comparison")
            if len(frames[name]) and "p_value" in frames[name]
        ]
    )
    the_answer.table(
        frames["summary"],
        "Per stage x gpu x model x dtype x layout: the largest gain beyond noise over each "
        "reference, and how often there is a sole winner",
        csv="summary",
    )
    images(the_answer, figures, "speedup-guess", "Geometric-mean speedup over guess with 95% intervals")
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
        f"{len(p)} points: stages {listed(p['stage'])}; GPU types {listed(p['gpu'])} "
        f"(devices {listed(p['device_name'])}); "
        f"models {listed(p['model'])}; algorithms {listed(p['algo'])}; input sizes {listed(p['input_size'])}; "
        f"batch sizes {listed(p['batch_size'])}; dtypes {listed(p['dtype'])}; layouts {listed(p['layout'])}. Status: "
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
    coverage.items(render.load_lines(res.report))
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
        "Per point (stage, gpu, model, input size, batch, dtype, layout): the fastest code path by p50 among those "
        "that measured ok, every path tied with it (95% intervals overlap: 'tie' when there is more than one), the "
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
        "layout",
        "winner",
        "fastest",
        "fastest_p50_ms",
        "tied_with_fastest",
        "runner_up_beyond_noise",
        "margin_beyond_noise",
        "guess_is_fastest_or_tied",
        "torch_is_fastest_or_tied",
    ]
    fastest.table(setting_columns(frames["winners"], cols), "Per point (tables/winners.csv)", csv="winners")
    images(fastest, figures, "speedup-torch", "Geometric-mean speedup over torch with 95% intervals")
    regimes_section(fastest, frames["regimes"])

    gpus = S("GPUs compared").text(
        "Each pair of GPU types on the points both measured ok (same stage, model, algorithm, input size, batch, "
        "dtype): how often the first (gpu_a) is slower, and the geometric mean, min and max of its p50 over the "
        "second's (> 1: gpu_a slower); the same geometric mean for energy per inference where both have it."
    )
    if len(frames["gpus"]):
        gpus.table(frames["gpus"], "Matched points per pair of GPU types, per model and over all models", csv="gpus")
        images(gpus, figures, "gpus", "p50 ratio between GPU types per model, 95% interval")
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
        setting_columns(
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
    images(oracle, figures, "layers", "Sum of layer p50 per algorithm, stacked by layer kind (largest size)")
    images(oracle, figures, "roofline", "Per-layer roofline: achieved TFLOP/s against arithmetic intensity")

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
            setting_columns(
                ls.sort_values(["occurrences", "margin"], ascending=False),
                [
                    "gpu",
                    "dtype",
                    "layout",
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
    images(shapes, figures, "support", "Support matrix: algorithm x layer shape, per gpu")

    energy = S("Energy")
    e = frames["edp"]
    if len(e):
        energy.text(
            "Energy per inference above idle (dynamic energy: each window's energy less the idle power over its "
            "time, the mean over the point's windows; the whole device's energy, idle included, is "
            "tables/algorithms.csv's total_energy_j). A point with no idle measurement has no dynamic energy and "
            "is left out here. Energy-delay product EDP = dynamic energy (J) x p50 (s), lower is better."
        )
        energy.table(e[e["edp_rank"] == 1], "Least EDP per point", csv="edp")
        images(
            energy,
            figures,
            "energy-latency",
            "Energy above idle against latency relative to each point's best; filled: on the point's Pareto front",
        )
    else:
        energy.text("No energy was measured in these results (CPU runs, or energy_window_s=0).")

    pred = predictor_section(evaluations, figures, options.predictor)
    training = training_section(frames)
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
        *([training] if training is not None else []),
        shapes,
        energy,
        pred,
    ]


def training_section(frames: dict[str, pd.DataFrame]) -> render.Section | None:
    """The training step (analysis.tables.training), where the results hold rows of another direction than forward;
    None where they hold forward rows only."""
    layers, oracle = frames.get("training_layers"), frames.get("training_oracle")
    if (layers is None or layers.empty) and (oracle is None or oracle.empty):
        return None
    section = render.Section("Training step").text(
        "Points measured in another direction than forward (direction=train_step: one timed iteration is "
        "zero_grad, forward, loss, backward and the optimizer step; backward_data / backward_filter: that "
        "gradient alone). Each conv layer runs once per direction of its step; the forward tables above hold "
        "forward points only. Per layer and direction, the fastest algorithm with its 95% interval and the "
        "algorithms tied with it (intervals overlap; winner 'tied' where any is)."
    )
    if layers is not None and len(layers):
        section.table(
            setting_columns(
                layers,
                [
                    "gpu",
                    "model",
                    "input_size",
                    "batch_size",
                    "point_direction",
                    "direction",
                    "layer_name",
                    "best_algo",
                    "best_p50_ms",
                    "best_low_ms",
                    "best_high_ms",
                    "winner",
                    "tied_with_best",
                    "best_over_baseline",
                ],
            ),
            "Best algorithm per layer and direction (tables/training_layers.csv)",
            csv="training_layers",
        )
    if oracle is not None and len(oracle):
        section.text(
            "The whole step with the best per-layer choice in every direction, against the step measured with the "
            "baseline (guess: cuDNN's heuristic in every direction; torch where guess was not measured). A call "
            "(layer x direction) switches from the baseline only where the fastest other algorithm beats the "
            "baseline's run of it beyond noise (one-sided, its p times the number of others it was picked from; "
            "Benjamini-Hochberg at 5% over the point's calls); projected_ms = the baseline's measured step less "
            "the switched calls' gains (a kept call cancels), speedup = baseline / projected with a 95% interval "
            "by the delta method on the step's and the switched calls' medians (independent passes)."
        )
        section.table(
            setting_columns(
                oracle,
                [
                    "gpu",
                    "model",
                    "input_size",
                    "batch_size",
                    "baseline",
                    "baseline_p50_ms",
                    "projected_ms",
                    "speedup",
                    "speedup_low",
                    "speedup_high",
                    "switched_forward",
                    "switched_backward_data",
                    "switched_backward_filter",
                    "kept_tied",
                    "oracle_mix",
                ],
            ),
            "Per train_step point (tables/training_oracle.csv)",
            csv="training_oracle",
        )
    proj = frames.get("training_projection")
    if proj is not None and len(proj):
        section.text(
            "Training plans (python -m analysis.plans make --direction train_step) measured with "
            "direction=train_step algo=per_layer: the step their calls project against the step measured "
            "(measured_over_projected > 1: slower than projected)."
        )
        section.table(
            proj.drop(columns=[c for c in ("error_log_se",) if c in proj]),
            "Per training plan's point (tables/training_projection.csv)",
            csv="training_projection",
        )
    return section


def regimes_section(section: render.Section, regimes: pd.DataFrame) -> None:
    """How the ranking moves with batch, dtype and layout (tables/regimes.csv), where more than one regime of
    a model, GPU and input size was measured."""
    place = ["stage", "gpu", "model", "input_size"]
    if regimes.empty or regimes.groupby(place, observed=True).size().max() < 2:
        return  # one regime per place: nothing to move
    section.text(
        "How the ranking moves with the regime (batch, dtype, layout; strict FP32 and TF32 are settings, analysed "
        "apart): per point, the algorithms that ran fastest first (by p50; the table above says which fastest is "
        "beyond noise), and against the base regime of the same model, GPU and input size (the smallest batch, "
        "float32, nchw where measured) Kendall's tau of the two rankings and whether the fastest changed."
    )
    cols = [
        "stage",
        "gpu",
        "model",
        "input_size",
        "batch_size",
        "dtype",
        "layout",
        "fastest",
        "fastest_p50_ms",
        "ranking",
        "kendall_tau",
        "fastest_changed",
        "base_regime",
    ]
    section.table(setting_columns(regimes, cols), "Ranking per regime (tables/regimes.csv)", csv="regimes")


def listed(s: pd.Series, limit: int = 12) -> str:
    values = sorted(s.dropna().unique(), key=lambda v: (str(type(v)), v))
    text = ", ".join(map(str, values[:limit]))
    return text + (f" ... ({len(values)})" if len(values) > limit else "")
