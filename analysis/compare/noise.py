"""The noise floor: how much the same point moves between runs when nothing that matters changed.

Identical settings: the same point key and settings (the comparison's key), the same ``config_hash`` (how
it is measured), the same device and software (device_name, torch/CUDA/cuDNN/driver versions) and the same
harness code (commit and, where the tree was dirty, the hash of its difference; rows older than the hash
column match on the commit alone); the host may differ (another node of the same type is part of the noise
a user meets).
Within such a group, each run is paired with the one before it (by ``measured_at``): the run-to-run ratio
later / earlier. Its spread is the floor under every other claim: a tolerance below it calls noise a change.

``between_run_sd`` is that extra noise as a standard deviation of log latency (harness.results.uncertainty.
between_run_sd); the comparison adds it to each side's standard error (``--noise-floor``).

``ci_excludes_one`` checks the per-point confidence intervals: with nothing changed, the 95% interval of
a run-to-run ratio should exclude 1 about 5% of the time; far more means the within-run CIs miss
between-run noise (clocks, other load), and a comparison should use a tolerance at least the floor's p95.

Pure: DataFrames in, DataFrames and a summary out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from analysis.compare.verdicts import Key, keyed
from harness.results.uncertainty import between_run_sd, log_se, ratio_interval

IDENTICAL = [
    "config_hash",
    "device_name",
    "torch_version",
    "cuda_version",
    "cudnn_version",
    "driver_version",
    "git_commit",
    "git_diff_hash",  # the same commit with different uncommitted changes is different code
]
GOAL = 0.03  # DESIGN/GPU-CHECKS: the same point in two runs within 3% on a GPU


@dataclass(frozen=True)
class NoiseSummary:
    """The distribution of run-to-run ratios of one tree (percent figures are |ratio - 1|)."""

    tree: str
    pairs: int
    points: int
    ratio_p05: float = np.nan
    ratio_median: float = np.nan
    ratio_p95: float = np.nan
    abs_median_pct: float = np.nan
    abs_p95_pct: float = np.nan
    abs_max_pct: float = np.nan
    within_goal: float = np.nan  # share of pairs within GOAL
    ci_excludes_one: float = np.nan  # share of pairs whose 95% interval excludes 1 (expected ~0.05)
    between_run_sd: float = np.nan  # sd of log latency between runs beyond the rows' own CIs

    def line(self) -> str:
        if not self.pairs:
            return f"{self.tree}: no point measured more than once with identical settings: no noise floor"
        return (
            f"{self.tree}: {self.pairs} run-to-run pairs over {self.points} points: ratio later/earlier "
            f"median {self.ratio_median:.3f}, 5-95% {self.ratio_p05:.3f}-{self.ratio_p95:.3f}; |change| median "
            f"{self.abs_median_pct:.1f}%, p95 {self.abs_p95_pct:.1f}%, max {self.abs_max_pct:.1f}%; "
            f"{self.within_goal:.0%} within {GOAL:.0%}; 95% CI excludes 1 in {self.ci_excludes_one:.0%} "
            f"(~5% expected if the per-point CIs held all the noise); between-run sd beyond the CIs "
            f"{self.between_run_sd:.3f} (log)"
        )

    def as_dict(self) -> dict:
        return asdict(self)


def run_pairs(rows: pd.DataFrame, key: Key) -> pd.DataFrame:
    """Each ok measurement paired with the previous one of the same point under identical settings."""
    ok = rows[(rows["status"] == "ok") & (rows["p50_ms"].astype(float) > 0)]
    ok = keyed(ok, key).assign(_se=log_se(ok).to_numpy())
    same = [*key.columns, *[c for c in IDENTICAL if c in ok.columns]]
    ident = ok[same].astype(object).where(ok[same].notna(), "-").astype(str)
    ok = ok.assign(_g=pd.util.hash_pandas_object(ident, index=False).to_numpy())
    ok = ok.sort_values(["_g", "measured_at", "run_id"], kind="stable")
    prev = ok.groupby("_g", sort=False)[["p50_ms", "_se", "run_id", "measured_at"]].shift(1)
    pairs = ok.assign(
        earlier_p50_ms=prev["p50_ms"],
        earlier_se=prev["_se"],
        earlier_run=prev["run_id"],
        earlier_at=prev["measured_at"],
    )
    pairs = pairs[pairs["earlier_p50_ms"].notna()]
    r = ratio_interval(
        pairs["p50_ms"], pairs["_se"].fillna(0.0), pairs["earlier_p50_ms"], pairs["earlier_se"].fillna(0.0)
    )
    out = pairs[[*key.columns, "run_id", "measured_at", "earlier_run", "earlier_at", "earlier_p50_ms", "p50_ms"]]
    out = out.rename(columns={"run_id": "later_run", "measured_at": "later_at", "p50_ms": "later_p50_ms"})
    return out.assign(ratio=r.ratio, ratio_low=r.low, ratio_high=r.high, log_ratio_se=r.log_se).reset_index(drop=True)


def floor(pairs: pd.DataFrame) -> float:
    """The between-run sd of log latency from run-to-run pairs (NaN with too few; harness.results.uncertainty)."""
    return between_run_sd(np.log(pairs["ratio"].to_numpy(dtype=float)), pairs["log_ratio_se"].to_numpy(dtype=float))


def summarize(pairs: pd.DataFrame, tree: str, key: Key) -> NoiseSummary:
    if pairs.empty:
        return NoiseSummary(tree, 0, 0)
    ratio = pairs["ratio"].to_numpy(dtype=float)
    change = np.abs(ratio - 1) * 100
    excludes = ((pairs["ratio_low"] > 1) | (pairs["ratio_high"] < 1)).mean()
    p05, p50, p95 = np.quantile(ratio, [0.05, 0.5, 0.95])
    return NoiseSummary(
        tree,
        len(pairs),
        len(pairs[key.columns].drop_duplicates()),
        float(p05),
        float(p50),
        float(p95),
        float(np.median(change)),
        float(np.quantile(change, 0.95)),
        float(change.max()),
        float((change <= GOAL * 100).mean()),
        float(excludes),
        floor(pairs),
    )
