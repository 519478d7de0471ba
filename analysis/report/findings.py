"""The executive summary: the report's main findings as plain sentences, each naming the table or figure
that holds the evidence, and the caveats of the data stated before any number.

Pure: from the answer tables and the resolved points to lists of sentences.
"""

from __future__ import annotations

import pandas as pd

from analysis.legacy.flags import FLAGS
from analysis.stats.verdicts import family_line
from analysis.tree import SETTINGS, flag, settings
from analysis.tree.settings import Setting


def _x(v: float) -> str:
    return f"{v:.2f}x"


def _ci(lo: float, hi: float) -> str:
    return f"[{lo:.2f}, {hi:.2f}]"


def _share(part: int | float, whole: int | float) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "-"


def findings(frames: dict[str, pd.DataFrame], points: pd.DataFrame) -> list[str]:
    """Five or so sentences: the scope, per GPU what beats cuDNN's heuristic beyond noise, how often the
    fastest is a tie, the per-layer projection, energy against latency, and GPU against GPU."""
    out = []
    ok = points[points["status"] == "ok"]
    n_points = len(points.drop_duplicates(["stage", "gpu", "model", "input_size", "batch_size", "dtype", "layout"]))
    out.append(
        f"Scope: {len(points)} measurements ({len(ok)} ok) of {points['algo'].nunique()} algorithm(s) at "
        f"{n_points} points (model x input size x batch x dtype on a GPU type): {points['gpu'].nunique()} GPU "
        f"type(s), {points['model'].nunique()} model(s) (section Coverage)."
    )
    summary = frames["speedup_summary"]
    out.append(corrections(frames))
    head = frames["summary"]
    vs_guess = summary[summary["reference"] == "guess"]
    for gpu, grp in vs_guess.groupby("gpu", observed=True):
        models = grp["model"].nunique()
        beat = grp[grp["beyond_noise"].astype(bool) & (grp["geomean_speedup"] > 1)]
        guess_share = head.loc[head["gpu"] == gpu, "guess_fastest_or_tied_share"].mean()
        tail = (
            f"; guess itself is the fastest or tied with it at {guess_share:.0%} of points"
            if pd.notna(guess_share)
            else ""
        )
        if beat.empty:
            out.append(
                f"On {gpu}, no algorithm beats cuDNN's heuristic (guess) beyond noise on any of {models} "
                f"model(s){tail} (table: The answer)."
            )
            continue
        top = beat.sort_values("geomean_speedup", ascending=False).iloc[0]
        out.append(
            f"On {gpu}, some algorithm beats cuDNN's heuristic (guess) beyond noise on {beat['model'].nunique()} "
            f"of {models} model(s); the largest gain is {top['algo']} on {top['model']}: "
            f"{_x(top['geomean_speedup'])} {_ci(top['low'], top['high'])} (geometric mean over {top['points']} "
            f"points, 95% interval){tail} (table: The answer; figure: speedup over guess)."
        )
    if vs_guess.empty:
        out.append("No point has a guess measurement: speedups are over torch only (table: The answer).")
    wins = frames["winners"]
    if len(wins):
        ties = int((~wins["sole_winner"]).sum())
        out.append(
            f"At {ties} of {len(wins)} points ({_share(ties, len(wins))}) the fastest algorithm is tied with "
            f"another within noise (95% intervals overlap); those points have no sole winner "
            f"(tables/winners.csv)."
        )
    orc = frames["oracle"]
    sp = orc["projected_speedup"].dropna()
    if len(sp):
        beyond = int((orc["projected_low"] > 1).sum())
        tested = (
            f"; {int(orc['switch_tests'].sum())} layer tests, Benjamini-Hochberg at 5% over each point's "
            f"layers, {int(orc['switch_no_interval'].sum())} layer(s) without an interval not tested"
            if "switch_tests" in orc
            else ""
        )
        out.append(
            f"Choosing the algorithm per layer (switching a layer only beyond noise{tested}) projects a median "
            f"{_x(float(sp.median()))} over the best single algorithm (range {_x(float(sp.min()))} to "
            f"{_x(float(sp.max()))}; beyond noise at {beyond} of {len(sp)} points). This is a projection from "
            f"the per-layer pass, not a measured run (section Per-layer oracle)."
        )
    out += plan_findings(frames)
    best = frames["best"]
    both = best.dropna(subset=["best_algo", "best_energy_algo"])
    if len(both):
        same = int((both["best_algo"] == both["best_energy_algo"]).sum())
        out.append(
            f"Where energy was measured (above idle), the fastest algorithm is also the least-energy one at {same} of "
            f"{len(both)} points ({_share(same, len(both))}) (section Energy, figure energy vs latency)."
        )
    gpus = frames["gpus"]
    overall = gpus[gpus["model"].astype(str) == "(all)"] if len(gpus) else gpus
    for r in overall.itertuples(index=False):
        out.append(
            f"{r.gpu_a} against {r.gpu_b}: p50 ratio {_x(r.geomean_p50_ratio)} (geometric mean over "
            f"{r.matched} matched points, range {_x(r.min_p50_ratio)} to {_x(r.max_p50_ratio)}; > 1: "
            f"{r.gpu_a} slower) (section GPUs compared)."
        )
    return out


def corrections(frames: dict[str, pd.DataFrame]) -> str:
    """How the 'beyond noise' of the answer tables is corrected for their number of comparisons."""
    parts = [
        f"per model and algorithm (speedup_summary): {family_line(frames['speedup_summary']['p_value'])}",
        f"per point (speedups): {family_line(frames['speedups']['p_value'])}",
    ]
    if len(frames.get("layer_speedups", ())):
        parts.append(f"per layer (layer_speedups): {family_line(frames['layer_speedups']['p_value'])}")
    return (
        "'Beyond noise' is corrected for the number of comparisons in each table (Benjamini-Hochberg: at most 5% "
        "of the claims of a table are expected to be false): " + "; ".join(parts) + "."
    )


def by_setting(parts: list[tuple[Setting, dict[str, pd.DataFrame], pd.DataFrame]]) -> list[str]:
    """``findings`` of each setting's tables and points; with several settings, each sentence starts with its
    setting in brackets (no finding is about rows of two settings)."""
    if len(parts) == 1:
        ((_, frames, points),) = parts
        return findings(frames, points)
    return [f"[{setting.label}] {line}" for setting, frames, points in parts for line in findings(frames, points)]


def _settings_caveats(points: pd.DataFrame, groups: list[Setting]) -> list[str]:
    """Several settings in the selection (each analysed apart), and rows that do not record a setting."""
    out = []
    if len(groups) > 1:
        differ = sorted({c for g in groups for c in g.label_columns()}, key=settings.COLUMNS.index)
        first = " ".join(
            f"{flag(o)} {groups[0].fixed()[c]}" for o, c in SETTINGS.items() if c in differ and c in groups[0].fixed()
        )
        out.append(
            f"These results hold {len(groups)} settings, which differ in {', '.join(differ)}: each is analysed "
            f"apart, and no table, figure or finding compares rows of two settings (the tables' setting "
            f"column, the brackets before each finding). To analyse one alone, filter (e.g. {first})."
        )
    unknown = settings.values(points) == settings.UNKNOWN
    if unknown.any(axis=None):
        columns = [c for c in settings.COLUMNS if unknown[c].any()]
        out.append(
            f"{int(unknown.any(axis=1).sum())} of {len(points)} rows did not record {', '.join(columns)} "
            f"(written before the column existed, or imported): they are compared only with rows that do "
            f"not record it either."
        )
    return out


def caveats(
    points: pd.DataFrame,
    energy_window_s: float,
    cv: float,
    groups: list[Setting] | None = None,
    host_bound_layers: int = 0,
) -> list[str]:
    """What limits the data, before any number: imported rows' known flaws, launch-bound points, host-bound
    layer rows (``host_bound_layers``: how many the layers hold), short energy windows, noisy points, and the
    settings of the rows (``groups``: analysis.settings.groups, each analysed apart; None: those of
    ``points``)."""
    out = []
    ok = points[points["status"] == "ok"]
    if "legacy_flags" in points and points["legacy_flags"].notna().any():
        flags = points["legacy_flags"].dropna().explode().dropna()
        counts = flags.value_counts()
        listed = "; ".join(f"{name} ({n} points): {FLAGS.get(name, '')}" for name, n in counts.items())
        out.append(
            f"{points['legacy_flags'].notna().sum()} points were imported from the old system and carry "
            f"its known flaws: {listed}."
        )
    if "launch_bound" in ok and ok["launch_bound"].fillna(False).astype(bool).any():
        n = int(ok["launch_bound"].fillna(False).astype(bool).sum())
        out.append(
            f"{n} points are launch-bound (the host's issue time is at least 0.8x the p50): their latency "
            f"measures the host as much as the GPU."
        )
    if host_bound_layers:
        out.append(
            f"{host_bound_layers} layer rows are host-bound (no head start covered them: the host issued the "
            f"layer slower than the longest spin, so their time is the CPU's pace, not the GPU's) and their "
            f"times were excluded from every layer table, figure, plan and the predictor; an oracle or plan "
            f"projection that needs one is left empty and counts it in host_bound_layers."
        )
    measured = ok["energy_method"].fillna("none") != "none" if "energy_method" in ok else pd.Series(False, ok.index)
    short = measured & (ok["energy_window_s"] < energy_window_s)
    if short.any():
        out.append(
            f"{int(short.sum())} of {int(measured.sum())} energy measurements come from windows shorter than "
            f"{energy_window_s:g} s, where the counter's granularity dominates."
        )
    noisy = ok["cv"] > cv
    if noisy.any():
        out.append(
            f"{int(noisy.sum())} of {len(ok)} points have a coefficient of variation above {cv:g}; their "
            f"intervals are wide and they are more often ties."
        )
    out += _settings_caveats(points, settings.groups(points) if groups is None else groups)
    if not out:
        out.append(
            "No known caveat: no imported rows, no launch-bound point, no host-bound layer, no short energy "
            "window, no noisy point."
        )
    return out


def plan_findings(frames: dict[str, pd.DataFrame]) -> list[str]:
    """Measured per-layer plans: against the best single algorithm, and the projection's error."""
    comp, bias = frames.get("plan_comparison"), frames.get("plan_bias")
    out = []
    if comp is not None and len(comp):
        single = comp[comp["other"] == "best single"]
        if len(single):
            faster = int((single["verdict"] == "faster").sum())
            slower = int((single["verdict"] == "slower").sum())
            fam = family_line(comp["p_value"]) if "p_value" in comp else ""
            out.append(
                f"Measured per-layer plans (algo=per_layer) beat the best single algorithm beyond noise at "
                f"{faster} of {len(single)} points and lose at {slower} (section Per-layer plans, measured"
                + (f"; {fam}" if fam else "")
                + ")."
            )
    if bias is not None and len(bias):
        for r in bias.itertuples(index=False):
            out.append(
                f"On {r.gpu}, {r.model}: the mixed model measured {_x(r.geomean_measured_over_projected)} its "
                f"sum-of-layers projection {_ci(r.low, r.high)} over {r.points} point(s): {r.verdict} "
                f"(> 1: the projection was optimistic; tables/plan_bias.csv)."
            )
    return out
