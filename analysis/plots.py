"""The figures, as PNG files readable in a paper (Agg backend: no display needed).

Each function takes a table from ``analysis.tables`` (or the predictor's test predictions) and a path,
writes one figure and returns the path, or returns None when the table has nothing to draw.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

DPI = 150
STATUS_COLORS = {"ok": "#4daf4a", "fallback": "#ff7f00", "unsupported": "#e41a1c", "mixed": "#984ea3"}
MAX_SHAPES = 60

plt.rcParams.update({"font.size": 9, "axes.titlesize": 9, "legend.fontsize": 8, "figure.dpi": DPI})


def _colors(algos: list[str]) -> dict[str, tuple]:
    cmap = plt.get_cmap("tab10" if len(algos) <= 10 else "tab20")
    return {a: cmap(i % cmap.N) for i, a in enumerate(sorted(algos))}


def _save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def _grid(rows: list[str], cols: list[str], w: float = 3.4, h: float = 2.6) -> tuple[plt.Figure, np.ndarray]:
    fig, axes = plt.subplots(len(rows), len(cols), figsize=(w * len(cols) + 1.5, h * len(rows) + 0.6),
                             squeeze=False, sharex=True)
    return fig, axes


def against_size(algos: pd.DataFrame, column: str, ylabel: str, path: Path, title: str) -> Path | None:
    """``column`` (p50_ms or energy_j) against input size, a line per algorithm, a panel per model x gpu.
    One batch size and dtype per figure (the caller splits by them)."""
    df = algos[algos[column].notna()]
    if df.empty:
        return None
    models, gpus = sorted(df["model"].unique()), sorted(df["gpu"].unique())
    colors = _colors(list(algos["algo"].unique()))
    fig, axes = _grid(models, gpus)
    for i, model in enumerate(models):
        for j, gpu in enumerate(gpus):
            ax = axes[i, j]
            panel = df[(df["model"] == model) & (df["gpu"] == gpu)]
            for algo, line in panel.groupby("algo", observed=True):
                line = line.sort_values("input_size")
                ax.plot(line["input_size"], line[column], marker="o", ms=3, lw=1.2, label=algo, color=colors[algo])
            ax.set_title(f"{model} · {gpu}")
            ax.set_yscale("log")
            ax.grid(True, which="both", alpha=0.3)
            if j == 0:
                ax.set_ylabel(ylabel)
            if i == len(models) - 1:
                ax.set_xlabel("input size (px)")
    handles = [plt.Line2D([], [], color=c, marker="o", ms=3, label=a) for a, c in colors.items()
               if a in set(df["algo"])]
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), title="algorithm")
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def speedup_heatmap(algos: pd.DataFrame, path: Path) -> Path | None:
    """Geometric-mean speedup over torch (all sizes and batches), algorithm x model, a panel per gpu."""
    df = algos[algos["speedup_vs_torch"].notna() & (algos["algo"] != "torch")]
    if df.empty:
        return None
    gpus = sorted(df["gpu"].unique())
    fig, axes = plt.subplots(1, len(gpus), figsize=(1.2 + 0.9 * df["model"].nunique() * len(gpus) + 1.5,
                                                    0.45 * df["algo"].nunique() + 1.8), squeeze=False)
    vmax = float(np.nanmax(np.abs(np.log2(df["speedup_vs_torch"])))) or 1.0
    algos, models = sorted(df["algo"].unique()), sorted(df["model"].unique())
    for j, gpu in enumerate(gpus):
        ax = axes[0, j]
        g = df[df["gpu"] == gpu].assign(l=lambda d: np.log(d["speedup_vs_torch"]))
        grid = g.pivot_table(index="algo", columns="model", values="l", aggfunc="mean", observed=True)
        grid = np.exp(grid.reindex(index=algos, columns=models))
        im = ax.imshow(np.log2(grid.to_numpy(dtype=float)), cmap="RdBu", vmin=-vmax, vmax=vmax, aspect="auto")
        ax.set_xticks(range(grid.shape[1]), grid.columns, rotation=45, ha="right")
        ax.set_yticks(range(grid.shape[0]), grid.index if j == 0 else [""] * grid.shape[0])
        for (r, c), v in np.ndenumerate(grid.to_numpy(dtype=float)):
            if not math.isnan(v):
                ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=7)
        ax.set_title(f"speedup over torch · {gpu}")
    cbar = fig.colorbar(im, ax=axes[0, :].tolist(), shrink=0.8)
    cbar.set_label("log2 speedup (geometric mean)")
    return _save(fig, path)


def layer_kind(layers: pd.DataFrame) -> pd.Series:
    k = layers["kernel_h"].astype(str) + "x" + layers["kernel_w"].astype(str)
    depthwise = (layers["groups"] > 1) & (layers["groups"] == layers["in_channels"])
    k = k.where(~depthwise, k + " depthwise")
    return k.where(layers["groups"].eq(1) | depthwise, k + " grouped")


def layer_breakdown(layers: pd.DataFrame, path: Path) -> Path | None:
    """Per model x gpu at its largest measured size: each algorithm's summed layer time, stacked by layer
    kind (kernel size, depthwise), so one sees where each algorithm spends its time."""
    df = layers[layers["p50_ms"].notna()].copy()
    if df.empty:
        return None
    df = df[df["batch_size"] == df["batch_size"].min()]
    df = df[df["input_size"] == df.groupby(["model", "gpu"], observed=True)["input_size"].transform("max")]
    df["kind"] = layer_kind(df)
    kinds = sorted(df["kind"].unique())
    cmap = plt.get_cmap("tab20")
    colors = {k: cmap(i % 20) for i, k in enumerate(kinds)}
    models, gpus = sorted(df["model"].unique()), sorted(df["gpu"].unique())
    fig, axes = plt.subplots(len(models), len(gpus), figsize=(3.6 * len(gpus) + 1.8, 2.6 * len(models) + 0.6),
                             squeeze=False)
    for i, model in enumerate(models):
        for j, gpu in enumerate(gpus):
            ax = axes[i, j]
            panel = df[(df["model"] == model) & (df["gpu"] == gpu)]
            if panel.empty:
                ax.set_axis_off()
                continue
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
    fig.legend(handles=[Patch(color=c, label=k) for k, c in colors.items()], loc="center left",
               bbox_to_anchor=(1.0, 0.5), title="layer kind")
    fig.tight_layout()
    return _save(fig, path)


def support_matrix(support: pd.DataFrame, path: Path) -> Path | None:
    """Algorithm x layer geometry per gpu, colored by status; the layer's input size is folded in ("mixed":
    the status depends on it, or on the dtype). With many geometries, those where some algorithm is not ok
    come first, up to MAX_SHAPES per panel (tables/support.csv has every shape and size)."""
    if support.empty:
        return None
    from analysis.tables import shape_label

    gpus = sorted(support["gpu"].unique())
    order = list(STATUS_COLORS)
    cmap = ListedColormap([STATUS_COLORS[s] for s in order])
    s = support.assign(label=shape_label(support, size=False))
    folded = s.groupby(["gpu", "label", "algo"], observed=True)["status"].agg(
        lambda v: v.iloc[0] if v.nunique() == 1 else "mixed").reset_index()
    panels = []
    for gpu in gpus:
        f = folded[folded["gpu"] == gpu]
        bad = f.groupby("label")["status"].agg(lambda v: int((v != "ok").sum()))
        shapes = bad.sort_values(ascending=False, kind="stable").index[:MAX_SHAPES].tolist()
        grid = f[f["label"].isin(shapes)].pivot_table(index="label", columns="algo", values="status", aggfunc="first")
        panels.append((gpu, grid.reindex(shapes), len(bad)))
    height = max(len(g) for _, g, _ in panels)
    width = max(g.shape[1] for _, g, _ in panels)
    fig, axes = plt.subplots(1, len(gpus), figsize=((2.2 + 0.4 * width) * len(gpus) + 0.5, 0.2 * height + 2.0),
                             squeeze=False)
    for j, (gpu, grid, total) in enumerate(panels):
        ax = axes[0, j]
        codes = grid.apply(lambda col: col.map(lambda v: order.index(v) if isinstance(v, str) else np.nan))
        ax.imshow(codes.to_numpy(dtype=float), cmap=cmap, vmin=-0.5, vmax=len(order) - 0.5, aspect="auto",
                  interpolation="nearest")
        ax.set_xticks(range(grid.shape[1]), grid.columns, rotation=45, ha="right")
        ax.set_yticks(range(grid.shape[0]), grid.index, fontsize=7 if len(grid) > 30 else 8)
        shown = f" (first {len(grid)} of {total})" if total > len(grid) else ""
        ax.set_title(f"support · {gpu}{shown}")
    fig.legend(handles=[Patch(color=c, label=s) for s, c in STATUS_COLORS.items()], loc="upper center",
               bbox_to_anchor=(0.5, 0.0), ncol=len(STATUS_COLORS))
    fig.tight_layout()
    return _save(fig, path)


def parity(predictions: pd.DataFrame, path: Path, unit: str) -> Path | None:
    """Predicted against measured on held-out rows, a panel per split: boosted model and roofline baseline."""
    if predictions.empty:
        return None
    splits = list(dict.fromkeys(predictions["split"]))
    fig, axes = plt.subplots(1, len(splits), figsize=(3.6 * len(splits) + 0.5, 3.6), squeeze=False)
    for j, split in enumerate(splits):
        ax = axes[0, j]
        p = predictions[predictions["split"] == split]
        if len(p) > 20000:
            p = p.sample(20000, random_state=0)
        ax.scatter(p["measured"], p["baseline"], s=4, alpha=0.35, color="#999999", label="roofline baseline")
        ax.scatter(p["measured"], p["predicted"], s=4, alpha=0.5, color="#377eb8", label="boosted")
        lo = float(np.nanmin(p[["measured", "predicted", "baseline"]].to_numpy()))
        hi = float(np.nanmax(p[["measured", "predicted", "baseline"]].to_numpy()))
        ax.plot([lo, hi], [lo, hi], color="black", lw=0.8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(f"measured {unit}")
        ax.set_ylabel(f"predicted {unit}")
        ax.set_title(split)
        ax.grid(True, which="both", alpha=0.3)
    axes[0, 0].legend(loc="upper left", markerscale=3)
    fig.tight_layout()
    return _save(fig, path)
