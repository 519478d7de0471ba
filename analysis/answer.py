"""The question the harness exists for: how much faster than cuDNN's own choice (``guess``) and than the
framework (``torch``) is each algorithm, and is the difference beyond noise?

Pure functions from the resolved points/layers to DataFrames (statistics in ``harness.results.uncertainty``):

- ``competitors``: one row per point x code path that measured ok, with its p50's 95% interval. Algorithms
  known to run the same code (the old system's ``implicit_gemm`` ran cuDNN's heuristic, flag
  ``algo_is_heuristic_choice``) are merged into that path and named in ``same_path``, never two winners.
- ``speedups``: per point x algorithm x reference, speedup = reference p50 / algorithm p50, its 95% interval (delta
  method on the two medians' standard errors) and a verdict corrected for the table's number of comparisons
  (``corrected``): ``faster``/``slower`` where the Benjamini-Hochberg q-value of that direction is at most 5%
  over the whole table (two one-sided tests per row with an interval), else ``tied``; ``no_interval`` where a
  side has no honest interval (not enough samples): not tested, never exact.
- ``speedup_summary``: per (stage, gpu, model, dtype, algorithm, reference): the geometric-mean speedup over
  the points with an interval, with the 95% interval of their measurement noise (uncertainty.geomean_interval),
  how many points were faster / tied / slower / without an interval, and ``beyond_noise``: Benjamini-Hochberg
  over the table's rows (from each interval, normal on the log scale).
- ``winners``: per point the fastest path and every path tied with it (95% intervals overlap); a point
  whose fastest is tied with others has no sole winner.
- ``layer_speedups``: per layer row, the speedup over the reference's run of the same layer at the same
  point, with its interval and verdict, Benjamini-Hochberg over the whole table (layer rows carry their
  median's interval, or mean/std/n: standard errors from those); a host-bound row (harness.results.hostbound)
  is on neither side.

Each table's family is the table: its comparisons, their number and the correction are in ``family_line``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.keys import layer_keys
from analysis.tables import POINT
from harness.results import hostbound
from harness.results import multiplicity as mt
from harness.results.uncertainty import (
    Z95,
    geomean_interval,
    log_se,
    ratio_interval,
    row_interval,
    tied_with_fastest,
)

REFERENCES = ("guess", "torch")
# Legacy flag -> the code path such rows really ran.
SAME_PATH_FLAGS = {"algo_is_heuristic_choice": "guess"}
VERDICTS = ("faster", "tied", "slower", "no_interval")  # codes of multiplicity.DECISIONS, "same" called "tied"


def _flagged(flags: pd.Series, flag: str) -> pd.Series:
    return flags.map(lambda f: f is not None and not (isinstance(f, float)) and flag in list(f)).astype(bool)


def with_interval(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` plus ``log_se`` and the p50's 95% interval ``low_ms``/``high_ms`` (the stored distribution-free
    interval where the row has one, else normal on the log scale from ``log_se``)."""
    lo, hi = row_interval(rows)
    return rows.assign(log_se=log_se(rows), low_ms=lo, high_ms=hi)


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


def corrected(speedup, se, groups=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per speedup (reference / algorithm) with the standard error of its log: the smaller one-sided p-value
    (faster or slower than the reference), its Benjamini-Hochberg q-value over the family (all rows, or
    per ``groups``: two one-sided tests per row with an interval) and the verdict as a code into VERDICTS.
    NaN se: no test, ``no_interval``."""
    assert [{"same": "tied"}.get(c, c) for c in mt.DECISIONS] == list(VERDICTS)  # codes line up
    d = mt.directional(-np.log(np.asarray(speedup, dtype=float)), se, 0.0, mt.BH, groups=groups)
    return d.p_value, d.adjusted, d.code()


def family_line(p_value, what: str = "faster and slower, two per row with an interval") -> str:
    """How many comparisons a table's verdicts were corrected for, and how (p_value: one per row)."""
    return mt.family(p_value, mt.BH, what, tests_per_comparison=2).line()


def _verdict(speedup, se) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``corrected`` with the verdicts as strings."""
    p, q, code = corrected(speedup, se)
    return p, q, np.array(VERDICTS, dtype=object)[code]


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
    out["p_value"], out["q_value"], out["verdict"] = _verdict(out["speedup"], out["ratio_log_se"])
    return out[cols]


def speedup_summary(sp: pd.DataFrame) -> pd.DataFrame:
    """Geometric-mean speedup per (stage, gpu, model, dtype, algo, reference) over the sizes and batches with
    an interval, with the 95% interval of their own noise, and the verdict counts; ``beyond_noise``: the
    interval's Benjamini-Hochberg q-value (over the table's rows, two one-sided tests each) is at most 5%."""
    key = ["stage", "gpu", "model", "dtype", "algo", "reference"]
    cols = [*key, "points", "geomean_speedup", "low", "high", "p_value", "q_value", "beyond_noise", *VERDICTS]
    if sp.empty:
        return pd.DataFrame(columns=cols)
    rows = []
    lr = np.log(sp["speedup"].to_numpy(dtype=float))
    se = sp["ratio_log_se"].to_numpy(dtype=float)
    verdict = sp["verdict"].to_numpy(dtype=object)
    for k, idx in sp.groupby(key, observed=True, sort=True).indices.items():
        known = idx[~np.isnan(se[idx])]
        g, lo, hi = geomean_interval(lr[known], se[known])
        counts = pd.Series(verdict[idx]).value_counts()
        rows.append(
            {
                **dict(zip(key, k)),
                "points": len(idx),
                "geomean_speedup": g,
                "low": lo,
                "high": hi,
                **{v: int(counts.get(v, 0)) for v in VERDICTS},
            }
        )
    out = pd.DataFrame(rows)
    center, se_log = mt.interval_log_normal(out["low"], out["high"], Z95)
    p, q, code = corrected(np.exp(center), se_log)
    out["p_value"], out["q_value"] = p, q
    out["beyond_noise"] = (code == 0) | (code == 2)
    return out[cols]


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


def layer_speedups(layers: pd.DataFrame, reference: str = "guess") -> pd.DataFrame:
    """Per layer row whose algorithm and the reference both timed the layer at the GPU's pace (neither row
    host-bound): the speedup over the reference on that layer, its 95% interval, p-value, q-value and verdict
    (Benjamini-Hochberg over the whole table; a row without an interval: ``no_interval``)."""
    key = [*POINT, "layer_index"]
    cols = [
        c
        for c in (*key, "algo", "layer_name", "p50_ms", "ci95_low_ms", "ci95_high_ms", "std_ms", "n")
        if c in layers.columns
    ]
    timed = layers.loc[layers["p50_ms"].notna() & (layers["p50_ms"] > 0) & ~hostbound.mask(layers), cols]
    se = log_se(timed).to_numpy(dtype=float)
    is_ref = (timed["algo"] == reference).to_numpy()
    (layer,) = layer_keys([timed], POINT)  # the point's layer as one integer: millions of rows join on it
    refs, others = np.flatnonzero(is_ref), np.flatnonzero(~is_ref)
    ref_of = pd.Index(layer[refs])
    if not ref_of.is_unique:  # a layer the reference timed twice: every pairing, as a merge gives
        ref = timed.iloc[refs][key].assign(ref_p50_ms=timed["p50_ms"].to_numpy()[refs], ref_log_se=se[refs])
        m = timed.iloc[others].assign(log_se=se[others]).merge(ref, on=key)
        mine, ref_p50, ref_se = m["log_se"].to_numpy(), m["ref_p50_ms"].to_numpy(), m["ref_log_se"].to_numpy()
        out = m.drop(
            columns=[c for c in ("ci95_low_ms", "ci95_high_ms", "std_ms", "n", "log_se", "ref_log_se") if c in m]
        )
    else:
        pos = ref_of.get_indexer(layer[others])
        keep = others[pos >= 0]
        pos = refs[pos[pos >= 0]]
        p50 = timed["p50_ms"].to_numpy(dtype=float)
        mine, ref_p50, ref_se = se[keep], p50[pos], se[pos]
        out = (
            timed.iloc[keep]
            .drop(columns=[c for c in ("ci95_low_ms", "ci95_high_ms", "std_ms", "n") if c in timed])
            .reset_index(drop=True)
        )
        out["ref_p50_ms"] = ref_p50
    s = ratio_interval(ref_p50, ref_se, out["p50_ms"].to_numpy(dtype=float), mine)
    p, q, code = corrected(s.ratio, s.log_se)
    # a row per layer (millions): the two labels as categoricals, not a string each
    n = len(out)
    return out.assign(
        reference=pd.Categorical.from_codes(np.zeros(n, np.int8), [reference]),
        speedup=s.ratio,
        speedup_low=s.low,
        speedup_high=s.high,
        p_value=p,
        q_value=q,
        verdict=pd.Categorical.from_codes(code, list(VERDICTS)),
    )


def layer_summary(ls: pd.DataFrame) -> pd.DataFrame:
    """Per (gpu, dtype, algorithm) over every layer row: how many layers are faster / tied / slower than the
    reference beyond noise (the verdicts of ``layer_speedups``: corrected over its whole table) or have no
    interval, and the geometric-mean speedup on the faster ones."""
    key = ["gpu", "dtype", "algo", "reference"]
    if ls.empty:
        return pd.DataFrame(columns=[*key, "layers", *VERDICTS, "faster_share", "geomean_gain_when_faster"])
    counts = ls.groupby([*key, "verdict"], observed=True).size().unstack("verdict", fill_value=0)
    counts.columns = [str(c) for c in counts.columns]  # categorical or string verdicts alike
    counts = counts.reindex(columns=list(VERDICTS), fill_value=0)
    counts.columns.name = None
    counts["layers"] = counts.sum(axis=1)
    counts["faster_share"] = counts["faster"] / counts["layers"]
    faster = ls[ls["verdict"] == "faster"]
    gain = np.exp(np.log(faster["speedup"]).groupby([faster[k] for k in key], observed=True).mean())
    counts["geomean_gain_when_faster"] = gain.reindex(counts.index)
    return counts.reset_index()[[*key, "layers", *VERDICTS, "faster_share", "geomean_gain_when_faster"]]


def headline(summary: pd.DataFrame, wins: pd.DataFrame) -> pd.DataFrame:
    """Per (stage, gpu, model, dtype): the sole winner seen most often, how many points are ties, and per
    reference the algorithm with the largest geometric-mean speedup above 1 beyond noise (speedup_summary's
    ``beyond_noise``: corrected over its table; "none beyond noise" when none), with its interval; and how
    often guess is the fastest or tied with it."""
    key = ["stage", "gpu", "model", "dtype"]
    rows = []
    for k, grp in wins.groupby(key, observed=True, sort=True):
        row: dict = {**dict(zip(key, k)), "points": len(grp)}
        sole = grp.loc[grp["sole_winner"], "fastest"].astype(str).value_counts()
        row["most_often_sole_winner"] = sole.index[0] if len(sole) else None
        row["times_sole_winner"] = int(sole.iloc[0]) if len(sole) else 0
        row["tied_points"] = int((~grp["sole_winner"]).sum())
        for ref in REFERENCES:
            s = summary[
                (summary["reference"] == ref)
                & np.logical_and.reduce([summary[c].astype(str) == str(v) for c, v in zip(key, k)])
            ]
            above = s[s["beyond_noise"].astype(bool) & (s["geomean_speedup"] > 1)].sort_values(
                ["geomean_speedup", "algo"], ascending=[False, True]
            )
            top = above.iloc[0] if len(above) else None
            row[f"best_vs_{ref}"] = top["algo"] if top is not None else (None if s.empty else "none beyond noise")
            row[f"speedup_vs_{ref}"] = top["geomean_speedup"] if top is not None else np.nan
            row[f"speedup_vs_{ref}_low"] = top["low"] if top is not None else np.nan
            row[f"speedup_vs_{ref}_high"] = top["high"] if top is not None else np.nan
        known = grp["guess_is_fastest_or_tied"].dropna()
        row["guess_fastest_or_tied_share"] = float(known.astype(bool).mean()) if len(known) else np.nan
        rows.append(row)
    return pd.DataFrame(rows)
