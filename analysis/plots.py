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
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402

from harness.results import hostbound  # noqa: E402
from harness.results.read import algo_that_ran  # noqa: E402

DPI = 150
STATUS_COLORS = {
    "ok": "#4daf4a",
    "fallback": "#ff7f00",
    "unsupported": "#e41a1c",
    "mixed": "#984ea3",
    "not run": "#e6e6e6",
}
TIED = "#bdbdbd"
MAX_SHAPES = 60

# svg.fonttype none: an SVG's text stays text (editable in a paper's figure, and much faster to write).
plt.rcParams.update(
    {"font.size": 9, "axes.titlesize": 9, "legend.fontsize": 8, "figure.dpi": DPI, "svg.fonttype": "none"}
)


def _colors(algos: list[str]) -> dict[str, tuple]:
    cmap = plt.get_cmap("tab10" if len(algos) <= 10 else "tab20")
    return {a: cmap(i % cmap.N) for i, a in enumerate(sorted(algos))}


def _ratio_axis(axis) -> None:
    """A log-scaled ratio axis labelled in plain numbers at 1, 2, 5 x powers of ten (0.5, 1, 2, ...), not
    "2 x 10^0" at every minor tick."""
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _model_gpu_panels(df: pd.DataFrame, axes: np.ndarray, models: list[str], gpus: list[str]):
    """(ax, model, gpu, rows) for each panel of a model (rows) x gpu (columns) grid that has rows; a panel
    without rows is switched off."""
    groups = {key: rows for key, rows in df.groupby(["model", "gpu"], observed=True)}
    for i, model in enumerate(models):
        for j, gpu in enumerate(gpus):
            rows = groups.get((model, gpu))
            if rows is None or rows.empty:
                axes[i, j].set_axis_off()
                continue
            yield axes[i, j], model, gpu, rows


def _save(fig: plt.Figure, path: Path) -> Path:
    """The PNG (for the HTML report) and an SVG beside it (vector, for a paper). Every figure uses the
    constrained layout (legends "outside" it, inside the figure): laid out once while the PNG is drawn,
    then frozen, so the SVG is drawn without laying out again (text layout is most of a figure's cost)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, pil_kwargs={"compress_level": 3})
    fig.set_layout_engine("none")
    fig.savefig(path.with_suffix(".svg"))
    plt.close(fig)
    return path


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
        point = ["stage", "gpu", "model", "input_size", "batch_size", "dtype", "algo"]
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
    for ax, model, gpu, panel in _model_gpu_panels(df, axes, models, gpus):
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
    return _save(fig, path)


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
    return _save(fig, path)


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
    return _save(fig, path)


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
    return _save(fig, path)


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
    colors = _colors(list(df["algo"].unique()))
    fig, axes = plt.subplots(
        len(models),
        len(gpus),
        figsize=(3.3 * len(gpus) + 1.8, 2.3 * len(models) + 0.8),
        squeeze=False,
        sharex=True,
        sharey=True,
        layout="constrained",
    )
    for ax, model, gpu, panel in _model_gpu_panels(df, axes, models, gpus):
        for algo, line in panel.groupby("algo"):
            line = line.sort_values("input_size")
            ax.fill_between(line["input_size"], line["low"], line["high"], color=colors[algo], alpha=0.2, lw=0)
            ax.plot(line["input_size"], line["ratio"], marker="o", ms=2.5, lw=1.1, color=colors[algo])
        ax.axhline(1.0, color="black", lw=0.8, ls="--")
        ax.set_yscale("log")
        _ratio_axis(ax.yaxis)
        ax.grid(True, which="both", alpha=0.3)
        ax.set_title(f"{model} · {gpu} (÷ {panel['reference'].iloc[0]})")
        ax.set_ylabel("p50 / reference p50")
        ax.set_xlabel("input size (px)")
        ax.label_outer()  # shared axes: tick labels and axis labels on the outer panels only
    handles = [plt.Line2D([], [], color=c, marker="o", ms=3, label=a) for a, c in colors.items()]
    fig.legend(handles=handles, loc="outside right center", title="code path")
    fig.suptitle(title)
    return _save(fig, path)


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
    is also the least-energy one."""
    df = comp[comp["energy_per_inference_j"].notna() & (comp["energy_per_inference_j"] > 0)].copy()
    if df.empty:
        return None, float("nan")
    df["gpu"], df["model"] = df["gpu"].astype(str), df["model"].astype(str)
    point = ["stage", "gpu", "model", "input_size", "batch_size", "dtype"]
    g = df.groupby(point, observed=True)
    df["x"] = df["p50_ms"] / g["p50_ms"].transform("min")
    df["y"] = df["energy_per_inference_j"] / g["energy_per_inference_j"].transform("min")
    df["front"] = pareto_front(df, point)
    same = int((g["p50_ms"].idxmin() == g["energy_per_inference_j"].idxmin()).sum())
    share = same / len(g)
    panels = sorted(df.groupby(["gpu", "model"]).groups)
    cols = min(4, len(panels))
    rows = math.ceil(len(panels) / cols)
    colors = _colors(list(df["algo"].unique()))
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
        ax.set_ylabel("energy / least at the point")
    for n in range(len(panels), rows * cols):
        axes[n // cols, n % cols].set_axis_off()
    handles = [plt.Line2D([], [], color=c, marker="o", ls="", label=a) for a, c in colors.items()]
    handles += [
        plt.Line2D([], [], color="black", marker="o", ls="", label="on the point's Pareto front"),
        plt.Line2D([], [], color="black", marker="o", ls="", markerfacecolor="none", label="dominated"),
    ]
    fig.legend(handles=handles, loc="outside right center")
    fig.suptitle(
        f"Energy against latency, relative to each point's best (fastest is also least-energy at "
        f"{share:.0%} of points)"
    )
    return _save(fig, path), share


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
    colors = _colors(list(df["algo"].unique()))
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
    return _save(fig, path)


SHAPE_ORDER = [
    "in_channels",
    "out_channels",
    "kernel_h",
    "kernel_w",
    "stride_h",
    "stride_w",
    "pad_h",
    "pad_w",
    "dilation_h",
    "dilation_w",
    "groups",
]


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
    return _save(fig, path)


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
        _ratio_axis(ax.xaxis)
        ax.set_yticks(y, models)
        ax.set_ylim(len(models) - 0.5, -0.5)
        ax.grid(True, axis="x", which="both", alpha=0.3)
        ax.set_xlabel(f"p50 ratio {pair} (> 1: {pair.split(' / ')[0]} slower)")
    fig.suptitle("GPU types compared on matched points (geometric mean, 95% interval)")
    return _save(fig, path)
