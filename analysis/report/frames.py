"""The answer tables of an analysis (analysis.tables: one registry), per setting and
combined, and written under the output folder as Parquet and CSV."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from analysis.errors import AnalysisError
from analysis.tables import registry
from analysis.tables.catalog.plan_comparison import torch_settings
from analysis.threads import workers
from analysis.tree import Filters, Results, by_setting, directions, read_points, widths
from analysis.tree.settings import Setting

table_workers = workers  # its old name here (analysis.threads.workers)


def compute_tables(res: Results, torch_rows: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
    """Every registered table (analysis.tables.registry) from resolved points and layers (pure);
    ``torch_rows``: torch per cudnn_benchmark setting (plan_comparison.torch_settings) for the per-layer
    plans' comparison. Each table starts as soon as its inputs are done, so the tables over millions of
    layer rows run beside the point tables (benchmarks/analysis_scale.py measures it)."""
    return registry.compute_all(res.points, res.layers, torch_rows, workers=table_workers())


# Tables with a row per layer: Parquet only (a CSV of millions of rows costs more than the rest together).
PARQUET_ONLY = frozenset({"layer_speedups"})


def torch_rows_for(roots: list[Path], filters: Filters, res: Results) -> pd.DataFrame | None:
    """torch's unresolved rows, read only where per_layer points are to be compared (see ``torch_of``)."""
    if not (res.points["algo"].astype(str) == "per_layer").any() or (filters.algo and "torch" not in filters.algo):
        return None
    try:
        rows, _ = read_points(roots, replace(filters, algo=("torch",)))
    except AnalysisError:
        return None  # no torch rows: the comparison goes without
    return directions.forward_points(rows)  # the plans compared are forward ones


def torch_of(rows: pd.DataFrame | None, setting: Setting) -> pd.DataFrame | None:
    """torch's rows per cudnn_benchmark setting (plan_comparison.torch_settings) among those of ``setting`` in every
    other setting: a plan is compared with torch as the framework runs by default and with cudnn.benchmark."""
    if rows is None:
        return None
    return torch_settings(rows[setting.mask(rows, ignore=("cudnn_benchmark",))])


@dataclass
class Part:
    """The results of one setting and their tables: what the analysis compares (``res``: its forward points
    and their layers, what the figures and the predictor read; the tables also had the training rows)."""

    setting: Setting
    res: Results
    frames: dict[str, pd.DataFrame]


def tables_by_setting(res: Results, torch_rows: pd.DataFrame | None) -> list[Part]:
    """compute_tables for each setting of the results (analysis.load.by_setting): no table compares rows of
    two settings."""
    return [Part(s, directions.forward(r), compute_tables(r, torch_of(torch_rows, s))) for s, r in by_setting(res)]


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
        df = widths.as_int32(df)  # the layers' small integers as an int32 load gives them (analysis.tree.widths)
        df.to_parquet(folder / f"{name}.parquet", index=False)
        written.append(folder / f"{name}.parquet")
        if name not in PARQUET_ONLY:
            df.to_csv(folder / f"{name}.csv", index=False)
            written.append(folder / f"{name}.csv")
    return written
