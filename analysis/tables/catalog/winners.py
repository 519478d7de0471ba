"""``winners``: per point the fastest path and every path tied with it (95% intervals overlap); a point whose
fastest is tied with others has no sole winner.

Each table's family is the table: its comparisons, their number and the correction are in
analysis.stats.verdicts.family_line.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.stats.intervals import tied_with_fastest
from analysis.tables.catalog.competitors import REFERENCES
from analysis.tables.columns import (
    POINT,
)
from analysis.tables.registry import Table


def winners(comp: pd.DataFrame) -> pd.DataFrame:
    """Per point: the fastest path, every path tied with it, whether it is the sole winner, the margin over
    the fastest path outside the tie (the runner-up beyond noise), and where guess and torch stand."""
    c = comp.copy()
    c["tied"] = tied_with_fastest(c["p50_ms"], c["low_ms"], c["high_ms"], [c[k] for k in POINT])
    c = c.sort_values([*POINT, "p50_ms", "algo"])
    g = c.groupby(POINT, observed=True, sort=False)
    first = g.nth(0).set_index(POINT)
    tie = c[c["tied"]].groupby(POINT, observed=True, sort=False)["algo"].agg(lambda a: ", ".join(sorted(a)))
    n_tied = c[c["tied"]].groupby(POINT, observed=True, sort=False).size()
    outside = c[~c["tied"]].groupby(POINT, observed=True, sort=False).nth(0).set_index(POINT)
    out = pd.DataFrame(index=first.index)
    out["fastest"] = first["algo"]
    out["fastest_p50_ms"] = first["p50_ms"]
    out["tied_with_fastest"] = tie
    out["n_tied"] = n_tied
    out["sole_winner"] = out["n_tied"] == 1
    out["winner"] = np.where(out["sole_winner"], out["fastest"], "tie")
    out["runner_up_beyond_noise"] = outside["algo"]
    out["margin_beyond_noise"] = outside["p50_ms"] / first["p50_ms"] - 1
    out["algos"] = g.size()
    for ref in REFERENCES:
        r = c[c["algo"] == ref].set_index(POINT)
        out[f"{ref}_is_fastest_or_tied"] = r["tied"].reindex(out.index)
    return out.reset_index().sort_values(POINT).reset_index(drop=True)


TABLE = Table(
    name="winners",
    inputs=("competitors",),
    compute=winners,
    position=50,
    about="the fastest path per point and the paths tied with it",
)
