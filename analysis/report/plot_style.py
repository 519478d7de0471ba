"""The figures' shared style: the Agg backend (no display needed), font sizes, colours, a ratio axis,
model x gpu panels, and saving a figure as PNG and SVG (analysis.report.plots and .hardware_plots)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402

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


def algo_colors(algos: list[str]) -> dict[str, tuple]:
    cmap = plt.get_cmap("tab10" if len(algos) <= 10 else "tab20")
    return {a: cmap(i % cmap.N) for i, a in enumerate(sorted(algos))}


def ratio_axis(axis) -> None:
    """A log-scaled ratio axis labelled in plain numbers at 1, 2, 5 x powers of ten (0.5, 1, 2, ...), not
    "2 x 10^0" at every minor tick."""
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def model_gpu_panels(df: pd.DataFrame, axes: np.ndarray, models: list[str], gpus: list[str]):
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


def save_figure(fig: plt.Figure, path: Path) -> Path:
    """The PNG (for the HTML report) and an SVG beside it (vector, for a paper). Every figure uses the
    constrained layout (legends "outside" it, inside the figure): laid out once while the PNG is drawn,
    then frozen, so the SVG is drawn without laying out again (text layout is most of a figure's cost)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, pil_kwargs={"compress_level": 3})
    fig.set_layout_engine("none")
    fig.savefig(path.with_suffix(".svg"))
    plt.close(fig)
    return path
