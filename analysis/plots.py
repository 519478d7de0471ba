"""Old path of the figures, now in analysis.report.plots, analysis.report.hardware_plots and
analysis.report.plot_style.

Kept as an alias module: SLURM jobs in flight pickle callables by module path, and callers import from here.
"""

from analysis.report.hardware_plots import (
    SHAPE_ORDER,
    energy_latency,
    pareto_front,
    roofline,
    support_grids,
    support_matrix,
)
from analysis.report.plot_style import (
    DPI,
    MAX_SHAPES,
    STATUS_COLORS,
    TIED,
)
from analysis.report.plot_style import algo_colors as _colors
from analysis.report.plot_style import model_gpu_panels as _model_gpu_panels
from analysis.report.plot_style import ratio_axis as _ratio_axis
from analysis.report.plot_style import save_figure as _save
from analysis.report.plots import (
    breakdown_rows,
    gpu_comparison,
    layer_breakdown,
    layer_kind,
    parity,
    ratio_against_size,
    regret,
    speedup_heatmap,
)

__all__ = [
    "DPI",
    "MAX_SHAPES",
    "SHAPE_ORDER",
    "STATUS_COLORS",
    "TIED",
    "_colors",
    "_model_gpu_panels",
    "_ratio_axis",
    "_save",
    "breakdown_rows",
    "energy_latency",
    "gpu_comparison",
    "layer_breakdown",
    "layer_kind",
    "pareto_front",
    "parity",
    "ratio_against_size",
    "regret",
    "roofline",
    "speedup_heatmap",
    "support_grids",
    "support_matrix",
]
