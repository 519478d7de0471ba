"""``speedups``: per point x algorithm x reference, speedup = reference p50 / algorithm p50, its 95% interval (delta
method on the two medians' standard errors) and a verdict corrected for the table's number of comparisons
(``corrected``): ``faster``/``slower`` where the Benjamini-Hochberg q-value of that direction is at most 5% over
the whole table (two one-sided tests per row with an interval), else ``tied``; ``no_interval`` where a side has
no honest interval (not enough samples): not tested, never exact.

Each table's family is the table: its comparisons, their number and the correction are in
analysis.stats.verdicts.family_line.
"""

from __future__ import annotations

import pandas as pd

from analysis.stats.verdicts import verdict
from analysis.tables.catalog.competitors import REFERENCES
from analysis.tables.columns import (
    POINT,
)
from analysis.tables.registry import Table
from harness.results.uncertainty import ratio_interval


def speedups(comp: pd.DataFrame, references: tuple[str, ...] = REFERENCES) -> pd.DataFrame:
    """Per point x algorithm x reference measured at that point: speedup, 95% interval, p-value, q-value and
    verdict (Benjamini-Hochberg over the whole table)."""
    frames = []
    for ref in references:
        r = comp.loc[comp["algo"] == ref, [*POINT, "p50_ms", "log_se"]]
        if r.empty:
            continue
        m = comp[comp["algo"] != ref].merge(
            r.rename(columns={"p50_ms": "ref_p50_ms", "log_se": "ref_log_se"}), on=POINT
        )
        s = ratio_interval(m["ref_p50_ms"], m["ref_log_se"], m["p50_ms"], m["log_se"])
        frames.append(
            m.assign(reference=ref, speedup=s.ratio, speedup_low=s.low, speedup_high=s.high, ratio_log_se=s.log_se)
        )
    cols = [
        *POINT,
        "algo",
        "same_path",
        "reference",
        "p50_ms",
        "ref_p50_ms",
        "speedup",
        "speedup_low",
        "speedup_high",
        "ratio_log_se",
        "p_value",
        "q_value",
        "verdict",
    ]
    if not frames:
        return pd.DataFrame(columns=cols)
    out = pd.concat(frames, ignore_index=True)
    out["p_value"], out["q_value"], out["verdict"] = verdict(out["speedup"], out["ratio_log_se"])
    return out[cols]


TABLE = Table(
    name="speedups",
    inputs=("competitors",),
    compute=speedups,
    position=30,
    about="speedups over guess and torch per point, with verdicts",
)
