"""``competitors``: one row per point x code path that measured ok, with its p50's 95% interval. Algorithms known to
run the same code (the old system's ``implicit_gemm`` ran cuDNN's heuristic, flag ``algo_is_heuristic_choice``)
are merged into that path and named in ``same_path``, never two winners.

Each table's family is the table: its comparisons, their number and the correction are in
analysis.stats.verdicts.family_line.
"""

from __future__ import annotations

import pandas as pd

from analysis.stats.intervals import with_interval
from analysis.tables.columns import (
    POINT,
)
from analysis.tables.registry import Table

REFERENCES = ("guess", "torch")


# Legacy flag -> the code path such rows really ran.
SAME_PATH_FLAGS = {"algo_is_heuristic_choice": "guess"}


def _flagged(flags: pd.Series, flag: str) -> pd.Series:
    return flags.map(lambda f: f is not None and not (isinstance(f, float)) and flag in list(f)).astype(bool)


def competitors(points: pd.DataFrame) -> pd.DataFrame:
    """One row per point x code path among the ok points (see the module docstring)."""
    cols = [
        c
        for c in (
            *POINT,
            "algo",
            "p50_ms",
            "ci95_low_ms",
            "ci95_high_ms",
            "std_ms",
            "n",
            "energy_per_inference_j",
            # what the dynamic energy (the analysis' energy) is computed from
            "dynamic_energy_per_inference_j",
            "energy_windows",
            "energy_window_s",
            "energy_inferences",
            "idle_power_w",
            "legacy_flags",
        )
        if c in points.columns
    ]
    ok = points.loc[(points["status"] == "ok") & points["p50_ms"].notna(), cols].copy()
    ok["algo"] = ok["algo"].astype(str)
    ok["path"] = ok["algo"]
    if "legacy_flags" in ok:
        for flag, path in SAME_PATH_FLAGS.items():
            ok.loc[_flagged(ok["legacy_flags"], flag), "path"] = path
        ok = ok.drop(columns="legacy_flags")
    # Where a path has several rows at a point, the row of the algorithm named like the path measures it.
    ok["_own"] = ok["algo"] == ok["path"]
    ok = ok.sort_values([*POINT, "path", "_own", "algo"], ascending=[True] * (len(POINT) + 1) + [False, True])
    merged = ok[~ok["_own"]]  # few rows: the per-group join stays cheap on a million points
    others = (
        merged.groupby([*POINT, "path"], observed=True, sort=False)["algo"]
        .agg(lambda a: ",".join(sorted(set(a))))
        .rename("same_path")
    )
    ok = ok.drop_duplicates([*POINT, "path"]).drop(columns="_own")
    ok = ok.merge(others.reset_index(), on=[*POINT, "path"], how="left")
    ok["same_path"] = ok["same_path"].fillna("")
    ok["algo"] = ok.pop("path")
    return with_interval(ok).reset_index(drop=True)


TABLE = Table(
    name="competitors",
    inputs=("points",),
    compute=competitors,
    position=20,
    about="every code path at every point, with its interval",
)
