"""The figures about the hardware: energy against latency (and its Pareto front), the roofline, and the
support matrix of algorithms x layer shapes (style: analysis.report.plot_style).

Each function takes a table and a path, writes one figure and returns the path (None: nothing to draw).
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch

from analysis.report.plot_style import (
    MAX_SHAPES,
    STATUS_COLORS,
    algo_colors,
    save_figure,
)
from harness.results import hostbound
from harness.results.columns import dynamic_energy_per_inference_j
from harness.results.read import algo_that_ran
from harness.results.schema import CONV_PARAMETERS


def pareto_front(
    rows: pd.DataFrame, group: list[str], latency: str = "p50_ms", energy: str = "energy_per_inference_j"
) -> pd.Series:
    """True for the rows on their group's Pareto front: no other row of the group is faster and uses less
    energy (among rows of equal latency, the least energy). Vectorised: sort by latency, then a row is on
    the front when its energy is below every faster row's."""
    order = rows.sort_values([*group, latency, energy])
    running = order.groupby(group, observed=True, sort=False)[energy].cummin()
    best_before = running.groupby([order[k] for k in group], observed=True, sort=False).shift(1).fillna(np.inf)
    return (order[energy] < best_before).reindex(rows.index)


def energy_latency(comp: pd.DataFrame, path: Path) -> tuple[Path | None, float]:
    """Per (gpu, model) panel, every point x path placed relative to its point: p50 / the point's fastest
    (x) against energy / the point's least energy (y). Filled markers are on their point's Pareto front
    (no other path faster and more frugal). Returns the figure and the share of points whose fastest path
    is also the least-energy one. The energy is the dynamic energy per inference (above idle:
    harness.results.columns.DEFINITIONS); a row without an idle measurement is left out."""
    energy = dynamic_energy_per_inference_j(comp)
    # assigned before filtering: a Series assigned to an empty frame would give it the Series' rows
    df = comp.assign(energy_j=energy)[energy.notna() & (energy > 0)].copy()
    if df.empty:
        return None, float("nan")
    df["gpu"], df["model"] = df["gpu"].astype(str), df["model"].astype(str)
    point = ["stage", "gpu", "model", "input_size", "batch_size", "dtype", "layout"]
    g = df.groupby(point, observed=True)
    df["x"] = df["p50_ms"] / g["p50_ms"].transform("min")
    df["y"] = df["energy_j"] / g["energy_j"].transform("min")
    df["front"] = pareto_front(df, point, energy="energy_j")
    same = int((g["p50_ms"].idxmin() == g["energy_j"].idxmin()).sum())
    share = same / len(g)
    panels = sorted(df.groupby(["gpu", "model"]).groups)
    cols = min(4, len(panels))
    rows = math.ceil(len(panels) / cols)
    colors = algo_colors(list(df["algo"].unique()))
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.2 * cols + 1.8, 2.8 * rows + 0.8), squeeze=False, layout="constrained"
    )
    for n, (gpu, model) in enumerate(panels):
        ax = axes[n // cols, n % cols]
        p = df[(df["gpu"] == gpu) & (df["model"] == model)]
        for algo, pts in p.groupby("algo"):
            on = pts[pts["front"]]
            off = pts[~pts["front"]]
            ax.scatter(off["x"], off["y"], s=10, facecolors="none", edgecolors=colors[algo], lw=0.7)
            ax.scatter(on["x"], on["y"], s=12, color=colors[algo])
        ax.grid(True, alpha=0.3)
        ax.set_title(f"{model} · {gpu}")
        ax.set_xlabel("p50 / fastest at the point")
        ax.set_ylabel("energy above idle / least at the point")
    for n in range(len(panels), rows * cols):
        axes[n // cols, n % cols].set_axis_off()
    handles = [plt.Line2D([], [], color=c, marker="o", ls="", label=a) for a, c in colors.items()]
    handles += [
        plt.Line2D([], [], color="black", marker="o", ls="", label="on the point's Pareto front"),
        plt.Line2D([], [], color="black", marker="o", ls="", markerfacecolor="none", label="dominated"),
    ]
    fig.legend(handles=handles, loc="outside right center")
    fig.suptitle(
        f"Energy above idle against latency, relative to each point's best (fastest is also least-energy at "
        f"{share:.0%} of points)"
    )
    return save_figure(fig, path), share


def roofline(layers: pd.DataFrame, specs: dict, path: Path, max_points: int = 8000) -> Path | None:
    """Per gpu: each timed layer's achieved TFLOP/s against its arithmetic intensity (FLOPs / least bytes),
    coloured by the algorithm that ran it, under the datasheet's roofs (the dtype's peak where the spec is
    known). A random sample of ``max_points`` layers per panel where there are more. Host-bound layer rows
    (harness.results.hostbound) are left out."""
    need = {"flops", "bytes", "p50_ms"}
    if layers.empty or not need <= set(layers.columns):
        return None
    df = layers[
        layers["p50_ms"].notna()
        & (layers["p50_ms"] > 0)
        & (layers["flops"] > 0)
        & (layers["bytes"] > 0)
        & ~hostbound.mask(layers)
    ]
    if df.empty:
        return None
    df = df.assign(gpu=df["gpu"].astype(str), algo=algo_that_ran(df))
    df = df.assign(ai=df["flops"] / df["bytes"], tflops=df["flops"] / (df["p50_ms"] * 1e9))
    gpus = sorted(df["gpu"].unique())
    colors = algo_colors(list(df["algo"].unique()))
    fig, axes = plt.subplots(1, len(gpus), figsize=(4.2 * len(gpus) + 1.8, 3.6), squeeze=False, layout="constrained")
    from harness.measure.roofline import peak_tflops

    for j, gpu in enumerate(gpus):
        ax = axes[0, j]
        p = df[df["gpu"] == gpu]
        if len(p) > max_points:
            p = p.sample(max_points, random_state=0)
        for algo, pts in p.groupby("algo"):
            ax.scatter(pts["ai"], pts["tflops"], s=3, alpha=0.5, color=colors[algo], rasterized=True)
        spec = specs.get(gpu) or {}
        bw = spec.get("mem_bw_gbs")
        x = np.logspace(np.log10(p["ai"].min() / 2), np.log10(p["ai"].max() * 2), 100)
        for dtype in sorted(p["dtype"].astype(str).unique()):
            peak = peak_tflops(spec or None, dtype, None)
            if peak and bw:
                ax.plot(x, np.minimum(peak, bw * 1e9 * x / 1e12), color="black", lw=1)
                ax.text(x[-1], peak, f"{dtype} peak {peak:g}", ha="right", va="bottom", fontsize=7)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
        ax.set_xlabel("arithmetic intensity (FLOP / byte)")
        ax.set_ylabel("achieved TFLOP/s")
        ax.set_title(gpu + ("" if bw else " (no datasheet: no roofs)"))
    handles = [plt.Line2D([], [], color=c, marker="o", ls="", label=a) for a, c in colors.items()]
    fig.legend(handles=handles, loc="outside right center", title="ran the layer")
    fig.suptitle("Per-layer roofline")
    return save_figure(fig, path)


SHAPE_ORDER = list(CONV_PARAMETERS)


def support_grids(support: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per gpu: a status per layer geometry (rows, sorted numerically by channels, kernel, stride...) x
    algorithm (the same columns for every gpu); "not run" where that algorithm has no row for a geometry
    the gpu measured; a geometry's input sizes folded ("mixed" where they disagree)."""
    s = support.assign(gpu=support["gpu"].astype(str), algo=support["algo"].astype(str))
    g = s.groupby(["gpu", *SHAPE_ORDER, "algo"], observed=True)["status"]
    folded = g.first().where(g.nunique() == 1, "mixed").reset_index()
    algos = sorted(folded["algo"].unique())
    grids = {}
    for gpu, f in folded.groupby("gpu", sort=True):
        grid = f.pivot_table(index=SHAPE_ORDER, columns="algo", values="status", aggfunc="first")
        grid = grid.reindex(columns=algos).astype(object)
        grids[gpu] = grid.where(grid.notna(), "not run").sort_index()
    return grids


def support_matrix(support: pd.DataFrame, path: Path) -> Path | None:
    """Layer geometry x algorithm per gpu, coloured by status; "not run" (grey) where that algorithm has no
    row for a geometry the gpu did measure, distinct from "unsupported". Geometries sorted numerically
    (channels, kernel, stride...), the same algorithm columns in every panel; with many geometries, those
    where some algorithm is not ok come first, up to MAX_SHAPES per panel (tables/support.csv has all)."""
    if support.empty:
        return None
    from analysis.tables import shape_label

    order = list(STATUS_COLORS)
    cmap = ListedColormap([STATUS_COLORS[s] for s in order])
    grids = support_grids(support)
    algos = list(next(iter(grids.values())).columns)
    panels = []
    for gpu, grid in grids.items():
        total = len(grid)
        if total > MAX_SHAPES:
            bad = (grid != "ok").sum(axis=1)
            keep = bad.sort_values(ascending=False, kind="stable").index[:MAX_SHAPES]
            grid = grid.loc[grid.index.isin(keep)]
        labels = shape_label(grid.index.to_frame(index=False), size=False).tolist()
        panels.append((gpu, grid, labels, total))
    height = max(len(g) for _, g, _, _ in panels)
    fig, axes = plt.subplots(
        1,
        len(panels),
        squeeze=False,
        figsize=(len(panels) * (0.35 * len(algos) + 2.4) + 0.5, 0.19 * height + 1.9),
        layout="constrained",
    )
    for j, (gpu, grid, labels, total) in enumerate(panels):
        ax = axes[0, j]
        codes = grid.apply(lambda col: col.map(order.index))
        ax.imshow(
            codes.to_numpy(dtype=float),
            cmap=cmap,
            vmin=-0.5,
            vmax=len(order) - 0.5,
            aspect="auto",
            interpolation="nearest",
        )
        ax.set_xticks(range(len(algos)), algos, rotation=45, ha="right")
        ax.set_yticks(range(len(labels)), labels, fontsize=7 if len(labels) > 30 else 8)
        shown = f" (first {len(grid)} of {total} geometries)" if total > len(grid) else ""
        ax.set_title(f"{gpu}{shown}")
    fig.legend(
        handles=[Patch(color=c, label=s) for s, c in STATUS_COLORS.items()],
        loc="outside lower center",
        ncol=len(STATUS_COLORS),
    )
    fig.suptitle("Support: what ran each layer geometry")
    return save_figure(fig, path)
