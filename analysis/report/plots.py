"""The figures, as PNG files readable in a paper (style: analysis.report.plot_style): layer breakdowns,
the predictor's parity and regret, speedup heat maps, ratios against input size and between gpu types
(energy, roofline and support: analysis.report.hardware_plots).

Each function takes a table from ``analysis.tables`` (or the predictor's test predictions) and a path,
writes one figure and returns the path, or returns None when the table has nothing to draw.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import Patch

from analysis.report.plot_style import (
    TIED,
    algo_colors,
    model_gpu_panels,
    ratio_axis,
    save_figure,
)
from harness.results import hostbound


def layer_kind(layers: pd.DataFrame) -> pd.Series:
    k = layers["kernel_h"].astype(str) + "x" + layers["kernel_w"].astype(str)
    depthwise = (layers["groups"] > 1) & (layers["groups"] == layers["in_channels"])
    k = k.where(~depthwise, k + " depthwise")
    return k.where(layers["groups"].eq(1) | depthwise, k + " grouped")


def breakdown_rows(layers: pd.DataFrame) -> pd.DataFrame:
    """The layer rows ``layer_breakdown`` sums, with their ``kind``: per model x gpu, the smallest batch at the
    largest input size measured. An algorithm's point with a host-bound layer (harness.results.hostbound)
    is left out whole: its sum would hold the host's time."""
    df = layers[layers["p50_ms"].notna()]
    late = hostbound.mask(df)
    if late.any():
        point = ["stage", "gpu", "model", "input_size", "batch_size", "dtype", "layout", "algo"]
        df = df[
            ~pd.Series(late, index=df.index)
            .groupby([df[k] for k in point], observed=True, dropna=False)
            .transform("any")
        ]
    if df.empty:
        return df.assign(kind=pd.Series(dtype=object))
    df = df[df["batch_size"] == df["batch_size"].min()]
    df = df[df["input_size"] == df.groupby(["model", "gpu"], observed=True)["input_size"].transform("max")]
    return df.assign(kind=layer_kind(df))


def layer_breakdown(layers: pd.DataFrame, path: Path) -> Path | None:
    """Per model x gpu at its largest measured size: each algorithm's summed layer time, stacked by layer
    kind (kernel size, depthwise), so one sees where each algorithm spends its time (rows: breakdown_rows)."""
    df = breakdown_rows(layers)
    if df.empty:
        return None
    kinds = sorted(df["kind"].unique())
    cmap = plt.get_cmap("tab20")
    colors = {k: cmap(i % 20) for i, k in enumerate(kinds)}
    models, gpus = sorted(df["model"].unique()), sorted(df["gpu"].unique())
    fig, axes = plt.subplots(
        len(models),
        len(gpus),
        figsize=(3.6 * len(gpus) + 1.8, 2.6 * len(models) + 0.6),
        squeeze=False,
        layout="constrained",
    )
    for ax, model, gpu, panel in model_gpu_panels(df, axes, models, gpus):
        table = panel.pivot_table(index="algo", columns="kind", values="p50_ms", aggfunc="sum", observed=True)
        bottom = np.zeros(len(table))
        for kind in table.columns:
            v = table[kind].fillna(0).to_numpy()
            ax.bar(range(len(table)), v, bottom=bottom, color=colors[kind], width=0.7)
            bottom += v
        ax.set_xticks(range(len(table)), table.index, rotation=45, ha="right")
        ax.set_title(f"{model} · {gpu} · size {int(panel['input_size'].iloc[0])}")
        ax.set_ylabel("sum of layer p50 (ms)")
        ax.grid(True, axis="y", alpha=0.3)
    fig.legend(
        handles=[Patch(color=c, label=k) for k, c in colors.items()], loc="outside right center", title="layer kind"
    )
    return save_figure(fig, path)


def parity(predictions: pd.DataFrame, path: Path, unit: str) -> Path | None:
    """Predicted against measured on held-out rows, a panel per split: the boosted model coloured by fold
    (what each fold held out), the roofline baseline in grey; y = x with +-10% (dashed) and +-25% (dotted)
    guides."""
    if predictions.empty:
        return None
    splits = list(dict.fromkeys(predictions["split"]))
    fig, axes = plt.subplots(
        1, len(splits), figsize=(4.2 * len(splits) + 0.5, 4.4), squeeze=False, layout="constrained"
    )
    for j, split in enumerate(splits):
        ax = axes[0, j]
        p = predictions[predictions["split"] == split]
        if len(p) > 20000:
            p = p.sample(20000, random_state=0)
        ax.scatter(p["measured"], p["baseline"], s=4, alpha=0.3, color="#999999", label="roofline baseline")
        held = sorted(p["held_out"].astype(str).unique())
        cmap = plt.get_cmap("tab10" if len(held) <= 10 else "tab20")
        for k, h in enumerate(held):
            q = p[p["held_out"].astype(str) == h]
            ax.scatter(
                q["measured"],
                q["predicted"],
                s=4,
                alpha=0.5,
                color=cmap(k % cmap.N),
                label=f"boosted, {h}" if len(held) > 1 else "boosted",
            )
        lo = float(np.nanmin(p[["measured", "predicted", "baseline"]].to_numpy()))
        hi = float(np.nanmax(p[["measured", "predicted", "baseline"]].to_numpy()))
        xs = np.array([lo, hi])
        ax.plot(xs, xs, color="black", lw=0.8)
        for f, style in ((0.10, "--"), (0.25, ":")):
            for side in (1 + f, 1 - f):
                ax.plot(xs, xs * side, color="black", lw=0.7, ls=style, label=f"+-{f:.0%}" if side > 1 else None)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(f"measured {unit}")
        ax.set_ylabel(f"predicted {unit}")
        ax.set_title(split)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(loc="upper left", markerscale=3, fontsize=6 if len(held) > 6 else 7, ncol=2 if len(held) > 10 else 1)
    return save_figure(fig, path)


def regret(chosen: pd.DataFrame, path: Path) -> Path | None:
    """Cumulative share of held-out layers against the regret of running the predicted-fastest algorithm
    (measured / measured fastest - 1), a line per split; dashed: a random pick among the same algorithms
    (its expected regret per layer). Regret 0 is drawn at the left edge of a symmetric-log axis."""
    if chosen.empty:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4.8), layout="constrained")
    cmap = plt.get_cmap("tab10")
    for k, (split, grp) in enumerate(chosen.groupby("split", sort=False)):
        for col, style, what in (("regret", "-", "predicted fastest"), ("random_regret", "--", "random pick")):
            v = np.sort(grp[col].to_numpy(dtype=float) * 100)
            share = np.arange(1, len(v) + 1) / len(v)
            ax.step(
                v, share, where="post", color=cmap(k % 10), ls=style, lw=1.2, label=f"{split}: {what} ({len(v)} layers)"
            )
    ax.axvline(100 * 0.05, color="black", lw=0.7, ls=":", label="5%")
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlim(left=0)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("regret: measured time of the chosen algorithm over the fastest, - 1 (%)")
    ax.set_ylabel("share of held-out layers")
    ax.grid(True, which="both", alpha=0.3)
    fig.legend(loc="outside lower center", fontsize=7, ncol=2)
    return save_figure(fig, path)


# -- the answer ---------------------------------------------------------------------------------------------
def speedup_heatmap(summary: pd.DataFrame, reference: str, path: Path) -> Path | None:
    """Geometric-mean speedup over ``reference``, model x algorithm, a panel per gpu (columns aligned across
    panels, one colour scale). Each cell: the speedup and its 95% interval; a cell whose interval includes 1
    is grey and says "tied" (not beyond noise)."""
    df = summary[summary["reference"] == reference]
    if df.empty:
        return None
    gpus = sorted(df["gpu"].astype(str).unique())
    algos, models = sorted(df["algo"].astype(str).unique()), sorted(df["model"].astype(str).unique())
    logs = np.log2(df["geomean_speedup"].astype(float))
    vmax = float(np.nanmax(np.abs(logs))) or 1.0
    cell_w, cell_h = 0.95, 0.42
    fig, axes = plt.subplots(
        1,
        len(gpus),
        squeeze=False,
        figsize=(len(gpus) * (cell_w * len(algos) + 1.4) + 1.2, cell_h * len(models) + 1.6),
        layout="constrained",
    )
    im = None
    for j, gpu in enumerate(gpus):
        ax = axes[0, j]
        g = df[df["gpu"].astype(str) == gpu].assign(
            algo=lambda d: d["algo"].astype(str), model=lambda d: d["model"].astype(str)
        )
        g = g.groupby(["model", "algo"]).first()  # one dtype/stage per figure is the caller's job
        grid = np.full((len(models), len(algos)), np.nan)
        for (m, a), r in g.iterrows():
            i, k = models.index(m), algos.index(a)
            grid[i, k] = np.log2(r["geomean_speedup"]) if r["beyond_noise"] else np.nan
            text = f"{r['geomean_speedup']:.2f}\n[{r['low']:.2f},{r['high']:.2f}]"
            if not r["beyond_noise"]:
                ax.add_patch(plt.Rectangle((k - 0.5, i - 0.5), 1, 1, color=TIED, zorder=0))
                text = f"tied\n{r['geomean_speedup']:.2f}"
            ax.text(k, i, text, ha="center", va="center", fontsize=6)
        im = ax.imshow(grid, cmap="RdBu", vmin=-vmax, vmax=vmax, aspect="auto")
        ax.set_xlim(-0.5, len(algos) - 0.5)
        ax.set_ylim(len(models) - 0.5, -0.5)
        ax.set_xticks(range(len(algos)), algos, rotation=45, ha="right")
        ax.set_yticks(range(len(models)), models if j == 0 else [""] * len(models))
        ax.set_title(gpu)
    cbar = fig.colorbar(im, ax=axes[0, :].tolist(), shrink=0.8)
    cbar.set_label(f"log2 speedup over {reference}")
    fig.suptitle(f"Speedup over {reference} (geometric mean over the sizes measured, 95% interval; grey: tied)")
    return save_figure(fig, path)


def ratio_against_size(comp: pd.DataFrame, path: Path, title: str) -> Path | None:
    """Latency relative to the reference (guess, or torch where guess was not measured) against input size:
    a line per code path with its 95% band, a panel per model (rows) x gpu (columns), one y range for all.
    Below 1: faster than the reference."""
    if comp.empty:
        return None
    frames = []
    for _, grp in comp.groupby(["gpu", "model"], observed=True):
        present = set(grp["algo"])
        ref = "guess" if "guess" in present else "torch" if "torch" in present else None
        if ref is None:
            continue
        r = grp.loc[grp["algo"] == ref, ["input_size", "p50_ms", "log_se"]].rename(
            columns={"p50_ms": "ref_ms", "log_se": "ref_se"}
        )
        m = grp.merge(r, on="input_size")
        se = np.hypot(m["log_se"].fillna(0), m["ref_se"].fillna(0))
        lr = np.log(m["p50_ms"] / m["ref_ms"])
        frames.append(
            m.assign(ratio=np.exp(lr), low=np.exp(lr - 1.96 * se), high=np.exp(lr + 1.96 * se), reference=ref)
        )
    if not frames:
        return None
    df = pd.concat(frames, ignore_index=True)
    df["gpu"], df["model"] = df["gpu"].astype(str), df["model"].astype(str)
    models, gpus = sorted(df["model"].unique()), sorted(df["gpu"].unique())
    colors = algo_colors(list(df["algo"].unique()))
    fig, axes = plt.subplots(
        len(models),
        len(gpus),
        figsize=(3.3 * len(gpus) + 1.8, 2.3 * len(models) + 0.8),
        squeeze=False,
        sharex=True,
        sharey=True,
        layout="constrained",
    )
    for ax, model, gpu, panel in model_gpu_panels(df, axes, models, gpus):
        for algo, line in panel.groupby("algo"):
            line = line.sort_values("input_size")
            ax.fill_between(line["input_size"], line["low"], line["high"], color=colors[algo], alpha=0.2, lw=0)
            ax.plot(line["input_size"], line["ratio"], marker="o", ms=2.5, lw=1.1, color=colors[algo])
        ax.axhline(1.0, color="black", lw=0.8, ls="--")
        ax.set_yscale("log")
        ratio_axis(ax.yaxis)
        ax.grid(True, which="both", alpha=0.3)
        ax.set_title(f"{model} · {gpu} (÷ {panel['reference'].iloc[0]})")
        ax.set_ylabel("p50 / reference p50")
        ax.set_xlabel("input size (px)")
        ax.label_outer()  # shared axes: tick labels and axis labels on the outer panels only
    handles = [plt.Line2D([], [], color=c, marker="o", ms=3, label=a) for a, c in colors.items()]
    fig.legend(handles=handles, loc="outside right center", title="code path")
    fig.suptitle(title)
    return save_figure(fig, path)


def gpu_comparison(pairs: pd.DataFrame, path: Path) -> Path | None:
    """Per pair of GPU types and model: the geometric-mean p50 ratio (first / second) with its 95%
    interval; 1 = the same, > 1: the first is slower."""
    if pairs.empty or "p50_ratio_low" not in pairs:
        return None
    several_stages = pairs["stage"].nunique() > 1
    label = pairs["model"].astype(str) + ((" · " + pairs["stage"].astype(str)) if several_stages else "")
    df = pairs.assign(pair=pairs["gpu_a"].astype(str) + " / " + pairs["gpu_b"].astype(str), model=label)
    pairs_list = sorted(df["pair"].unique())
    models = sorted(df["model"].unique(), key=lambda m: (m.startswith("(all)"), m))
    fig, axes = plt.subplots(
        1,
        len(pairs_list),
        figsize=(4.0 * len(pairs_list) + 0.8, 0.32 * len(models) + 1.4),
        squeeze=False,
        sharey=True,
        layout="constrained",
    )
    for j, pair in enumerate(pairs_list):
        ax = axes[0, j]
        p = df[df["pair"] == pair].set_index("model").reindex(models)
        y = np.arange(len(models))
        err = np.vstack([p["geomean_p50_ratio"] - p["p50_ratio_low"], p["p50_ratio_high"] - p["geomean_p50_ratio"]])
        ax.errorbar(p["geomean_p50_ratio"], y, xerr=err, fmt="o", ms=4, color="#377eb8", capsize=2)
        ax.axvline(1.0, color="black", lw=0.8, ls="--")
        ax.set_xscale("log")
        ratio_axis(ax.xaxis)
        ax.set_yticks(y, models)
        ax.set_ylim(len(models) - 0.5, -0.5)
        ax.grid(True, axis="x", which="both", alpha=0.3)
        ax.set_xlabel(f"p50 ratio {pair} (> 1: {pair.split(' / ')[0]} slower)")
    fig.suptitle("GPU types compared on matched points (geometric mean, 95% interval)")
    return save_figure(fig, path)
