"""Matching two sides' points and judging each pair and each group: pure DataFrame arithmetic.

- The key: the point (stage, gpu, model, algo, input_size, batch_size, dtype; stage left out with
  ``across_stages``) and the settings that change what is measured (harness.references' SETTINGS: backend,
  math_type, fallback_policy, cudnn_benchmark, cuda_graph). A setting null on every row of a side is
  unknown there (imported rows know few) and is left out of the key; the result says which.
- Each side is resolved with the one latest-wins rule (harness.results.read.latest) on that key.
- Per matched point: the ratio of medians B/A with its 95% interval (harness.results.uncertainty.ratio_interval:
  the delta method on log p50, each side's standard error from its stored median CI, or std and n); a side
  without an honest interval (NaN standard error: not enough samples) makes the point ``no_interval``, never
  exact. Points that stopped (or started) measuring ok are ``broke`` (``fixed``); unmatched points are
  ``only_a`` / ``only_b``.
- Per group (the key without input_size and batch_size: per gpu x model x algo, and stage, dtype, settings):
  the geometric mean of the ratios of its points with an interval, with the 95% interval of their own
  noise (harness.results.uncertainty.geomean_interval: over the points measured).
- ``judge``: the verdicts, corrected for their number (harness.results.multiplicity): one family of two
  one-sided tests (slower, faster beyond the tolerance) per point and per group with an interval, Holm at a
  family-wise error of 5%. ``slower`` means some point or group of the whole comparison is slower beyond the
  tolerance with 95% confidence, not each one at 95% on its own.
- Imported rows carry ``legacy_flags``: those that bear on latency (analysis.legacy.flags.LATENCY_FLAGS) go
  beside the verdict as ``caveats`` (e.g. "A: timing_includes_host_copies").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis.legacy.flags import LATENCY_FLAGS
from harness.references.format import SETTINGS
from harness.results import multiplicity as mt
from harness.results.layout import POINT_KEY
from harness.results.read import latest
from harness.results.uncertainty import Z95, geomean_interval, log_se, ratio_interval

POINT = list(POINT_KEY)  # the point key (harness.config.keys.point_key)
WITHIN_GROUP = ["input_size", "batch_size"]
REGRESSIONS = ("slower", "broke")
VERDICTS = ("slower", "broke", "faster", "fixed", "same", "no_interval", "not_ok", "only_a", "only_b")
COUNTED = [v for v in VERDICTS if v not in ("only_a", "only_b")]  # a group's counts of its points' verdicts
_STATS = [
    "status",
    "p50_ms",
    "ci95_low_ms",
    "ci95_high_ms",
    "std_ms",
    "n",
    "energy_per_inference_j",
    "dynamic_energy_per_inference_j",
    "run_id",
    "measured_at",
    "legacy_flags",
]
MISSING = "-"  # a null setting, as a key value (so that null matches null)


@dataclass
class Key:
    """The columns points are matched on, and the settings left out because a side does not know them."""

    columns: list[str]
    unknown: dict[str, list[str]] = field(default_factory=dict)  # setting -> the sides where it is null

    def group(self) -> list[str]:
        return [c for c in self.columns if c not in WITHIN_GROUP]

    def notes(self) -> list[str]:
        return [
            f"{s} not compared: unknown (null on every row) on side {', '.join(sides)}"
            for s, sides in self.unknown.items()
        ]


def match_key(a: pd.DataFrame, b: pd.DataFrame, across_stages: bool = False) -> Key:
    point = [c for c in POINT if not (across_stages and c == "stage")]
    unknown: dict[str, list[str]] = {}
    settings = []
    for s in SETTINGS:
        null_on = [name for name, rows in (("A", a), ("B", b)) if s not in rows or rows[s].isna().all()]
        if null_on and len(null_on) < 2:
            unknown[s] = null_on
        elif not null_on:
            settings.append(s)
    return Key([*point, *settings], unknown)


def keyed(rows: pd.DataFrame, key: Key) -> pd.DataFrame:
    """``rows`` with the key columns as plain values (categoricals as text, nulls as MISSING)."""
    out = rows.copy()
    for c in key.columns:
        col = out[c].astype(object)
        out[c] = col.where(col.notna(), MISSING)
        if c not in ("input_size", "batch_size"):
            out[c] = out[c].astype(str)
    return out


def resolve(rows: pd.DataFrame, key: Key) -> pd.DataFrame:
    """One row per point of the key: the latest measurement wins."""
    return latest(keyed(rows, key), key.columns).reset_index(drop=True)


def _flags(values: pd.Series, side: str) -> pd.Series:
    def one(v) -> str:
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return ""
        return ", ".join(f"{side}: {f}" for f in sorted(v) if f in LATENCY_FLAGS)

    return values.map(one)


def _ok(status: pd.Series, p50: pd.Series) -> pd.Series:
    return (status == "ok") & (p50.astype(float) > 0)


def compare_points(a: pd.DataFrame, b: pd.DataFrame, key: Key, between_run: float = 0.0) -> pd.DataFrame:
    """One row per point of either side (already resolved on ``key``): A's and B's statistics, the ratio
    B/A with its interval, the caveats of imported rows, and the verdicts that need no test (broke, fixed,
    not_ok, only_a, only_b, no_interval); points both sides measured ok with an interval are ``same`` until
    ``judge`` decides them. ``between_run`` (the sd of log latency between runs, see
    harness.results.uncertainty.between_run_sd) is added to each side's own standard error; a NaN standard
    error stays NaN (no interval)."""
    cols = [c for c in _STATS if c in a.columns and c in b.columns]
    left = a[[*key.columns, *cols]].assign(_a=True)
    right = b[[*key.columns, *cols]].assign(_b=True)
    se_a, se_b = (np.hypot(log_se(side), between_run) for side in (a, b))
    left["log_se"], right["log_se"] = se_a.to_numpy(), se_b.to_numpy()
    m = left.merge(right, on=key.columns, how="outer", suffixes=("_a", "_b"))
    in_a, in_b = m["_a"].notna(), m["_b"].notna()
    m = m.drop(columns=["_a", "_b"])
    ok_a = in_a & _ok(m["status_a"], m["p50_ms_a"])
    ok_b = in_b & _ok(m["status_b"], m["p50_ms_b"])
    both = ok_a & ok_b
    r = ratio_interval(m["p50_ms_b"], m["log_se_b"], m["p50_ms_a"], m["log_se_a"])
    m["ratio"] = np.where(both, r.ratio, np.nan)
    m["ratio_low"] = np.where(both, r.low, np.nan)
    m["ratio_high"] = np.where(both, r.high, np.nan)
    m["log_ratio_se"] = np.where(both, r.log_se, np.nan)
    if "energy_per_inference_j_a" in m:
        m["energy_ratio"] = np.where(both, m["energy_per_inference_j_b"] / m["energy_per_inference_j_a"], np.nan)
    if "dynamic_energy_per_inference_j_a" in m:  # above idle: what the change itself costs (columns.DEFINITIONS)
        dyn_b, dyn_a = m["dynamic_energy_per_inference_j_b"], m["dynamic_energy_per_inference_j_a"]
        m["dynamic_energy_ratio"] = np.where(both & (dyn_a > 0), dyn_b / dyn_a, np.nan)
    verdict = pd.Series("same", index=m.index, dtype=object).mask(both & m["log_ratio_se"].isna(), "no_interval")
    verdict = verdict.where(both, "not_ok")
    verdict = verdict.mask(ok_a & in_b & ~ok_b, "broke").mask(ok_b & in_a & ~ok_a, "fixed")
    verdict = verdict.mask(~in_b, "only_a").mask(~in_a, "only_b")
    m["verdict"] = verdict
    m["why"] = np.select(
        [verdict == "no_interval", verdict.isin(["broke", "fixed", "not_ok"])],
        [mt.NO_INTERVAL, "status " + m["status_a"].astype(str) + " -> " + m["status_b"].astype(str)],
        default="unmatched",
    )
    caveats = [_flags(m[f"legacy_flags_{s.lower()}"], s) for s in ("A", "B") if f"legacy_flags_{s.lower()}" in m]
    m["caveats"] = (
        pd.concat(caveats, axis=1).apply(lambda r: "; ".join(x for x in r if x), axis=1) if caveats and len(m) else ""
    )
    return m.drop(columns=[c for c in m.columns if c.startswith("legacy_flags_")])


def compare_groups(points: pd.DataFrame, key: Key) -> pd.DataFrame:
    """One row per group of matched points: the geometric mean of B/A over the points both sides measured
    ok with an interval, its 95% interval, the worst point and the caveats (the verdict and the counts of
    the points' verdicts: ``judge``). A group with no such point has no interval."""
    group = key.group()
    matched = points[~points["verdict"].isin(["only_a", "only_b"])]
    rows = []
    for values, g in matched.groupby(group, sort=True):
        both = g[g["ratio"].notna() & g["log_ratio_se"].notna()]
        gm, lo, hi = geomean_interval(np.log(both["ratio"].to_numpy()), both["log_ratio_se"].to_numpy())
        worst = both.loc[both["ratio"].idxmax()] if len(both) else None
        caveats = sorted({c for text in g["caveats"] for c in text.split("; ") if c})
        rows.append(
            dict(zip(group, values if isinstance(values, tuple) else (values,)))
            | {
                "points": len(g),
                "geomean_ratio": gm,
                "ratio_low": lo,
                "ratio_high": hi,
                "verdict": "same" if len(both) else ("no_interval" if g["ratio"].notna().any() else "not_ok"),
                "worst_ratio": np.nan if worst is None else worst["ratio"],
                "worst_at": "" if worst is None else f"s{worst['input_size']} b{worst['batch_size']}",
                "caveats": "; ".join(caveats),
            }
        )
    columns = [
        *group,
        "points",
        "geomean_ratio",
        "ratio_low",
        "ratio_high",
        "verdict",
        "worst_ratio",
        "worst_at",
        "caveats",
    ]
    return pd.DataFrame(rows, columns=columns)


def family_what(tolerance: float, points: int, groups: int) -> str:
    return (
        f"slower and faster beyond the {tolerance:.1%} tolerance, for each of {points} matched point(s) and "
        f"{groups} group(s) with an interval"
    )


def judge(
    points: pd.DataFrame, groups: pd.DataFrame, key: Key, tolerance: float, level: float = mt.LEVEL
) -> tuple[pd.DataFrame, pd.DataFrame, mt.Family]:
    """The verdicts of the points and groups ``compare_points`` and ``compare_groups`` left ``same``: Holm
    over one family of two one-sided tests per such point and group (harness.results.multiplicity.directional),
    ``slower`` / ``faster`` where the adjusted p <= ``level``. Adds ``p_value`` (the smaller one-sided p) and
    ``p_holm`` (its adjusted value), the points' ``why``, and the groups' counts of their points' verdicts."""
    pts, grp = points.copy(), groups.copy()
    p_test = (pts["verdict"] == "same").to_numpy()
    g_test = (grp["verdict"] == "same").to_numpy()
    g_center, g_se = mt.interval_log_normal(grp["ratio_low"], grp["ratio_high"], Z95)
    lr = np.concatenate([np.log(pts["ratio"].to_numpy(dtype=float)[p_test]), g_center[g_test]])
    se = np.concatenate([pts["log_ratio_se"].to_numpy(dtype=float)[p_test], g_se[g_test]])
    d = mt.directional(lr, se, tolerance, mt.HOLM, level)
    decided = d.decisions()
    n = int(p_test.sum())
    untested = int((pts["verdict"] == "no_interval").sum() + (grp["verdict"] == "no_interval").sum())
    fam = mt.Family(mt.HOLM, level, 2 * len(lr), untested, family_what(tolerance, n, int(g_test.sum())))
    for frame, mask, part in ((pts, p_test, slice(0, n)), (grp, g_test, slice(n, None))):
        frame["p_value"], frame["p_holm"] = np.nan, np.nan
        frame.loc[mask, "p_value"] = d.p_value[part]
        frame.loc[mask, "p_holm"] = d.adjusted[part]
        frame.loc[mask, "verdict"] = decided[part]
    low, high = pts["ratio_low"].to_numpy(dtype=float)[p_test], pts["ratio_high"].to_numpy(dtype=float)[p_test]
    alone = (low > 1 + tolerance) | (high < 1 / (1 + tolerance))  # the old rule: this comparison on its own
    adjusted = pd.Series(d.adjusted[:n]).map("{:.2g}".format).to_numpy(dtype=object)
    pts.loc[p_test, "why"] = np.select(
        [np.isin(decided[:n], ["slower", "faster"]), alone, (low <= 1) & (high >= 1)],
        [
            f"beyond {tolerance:.1%}: Holm-adjusted p " + adjusted + f" over {fam.tests} tests",
            f"beyond {tolerance:.1%} at 95% on its own, not after Holm over {fam.tests} tests",
            "within noise (95% CI covers 1)",
        ],
        default=f"within tolerance ({tolerance:.1%})",
    )
    order = {v: i for i, v in enumerate(VERDICTS)}
    pts["_o"] = pts["verdict"].map(order)
    pts = pts.sort_values(["_o", *key.columns], kind="stable").drop(columns="_o").reset_index(drop=True)
    group = key.group()
    at = pd.MultiIndex.from_frame(grp[group]).get_indexer(pd.MultiIndex.from_frame(pts[group])) if len(grp) else []
    for v in COUNTED:  # each group's count of its points' verdicts (unmatched points are in no group: at -1)
        mine = (np.asarray(at) >= 0) & (pts["verdict"] == v).to_numpy()
        grp[v] = np.bincount(np.asarray(at)[mine], minlength=len(grp)).astype(int)
    columns = [
        *group,
        "points",
        *COUNTED,
        "geomean_ratio",
        "ratio_low",
        "ratio_high",
        "verdict",
        "p_value",
        "p_holm",
        "worst_ratio",
        "worst_at",
        "caveats",
    ]
    return pts, grp[columns], fam


def disjoint(a: pd.DataFrame, b: pd.DataFrame, key: Key) -> str:
    """Why two resolved sides share no point, in words: the key columns whose values do not overlap."""
    parts = []
    for c in key.columns:
        va, vb = set(a[c].astype(str)), set(b[c].astype(str))
        if not va & vb:
            parts.append(f"{c} is {', '.join(sorted(va)[:6])} in A but {', '.join(sorted(vb)[:6])} in B")
    hint = (
        " (--across-stages matches points of different stages, e.g. imported legacy rows)"
        if any(p.startswith("stage ") for p in parts)
        else ""
    )
    return ("; ".join(parts) or "the points differ in their combination of these") + hint


def regressions(points: pd.DataFrame, groups: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The points and the groups that fail the comparison (slower beyond the tolerance with family-wise
    confidence, or stopped measuring ok)."""
    return points[points["verdict"].isin(REGRESSIONS)], groups[groups["verdict"] == "slower"]
