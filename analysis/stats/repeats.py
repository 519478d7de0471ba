"""Repeats of a point (the same point measured in separate processes, ``repeats=K``) pooled into one row,
and the noise between processes they reveal.

A random-effects model on the log scale: a process's log median is the point's true log median, plus an
offset of its own (another allocation, node, clock state; variance tau2), plus its within-process noise
(its row's own standard error). tau2 is estimated per model on a GPU type from every point with two or
more processes (harness.results.uncertainty.between_process); a point's pooled value is the mean of its
processes' log medians, with the standard error sqrt((tau2 + se**2) / k), t-widened for the estimate. A
point measured in one process borrows the tau2 of its GPU type where some point there had repeats (and
says so: ``between_process`` = "borrowed"); where none had, its interval holds only the noise within its
process ("within only"), and the Methods paragraph says that too.

Pure: resolved rows in (one per point per repeat), pooled rows and a table out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.results import hostbound
from harness.results.uncertainty import Z95, BetweenProcess, between_process, log_se, pooled_se

SOURCES = ("pooled", "borrowed", "within only")  # the between_process column: where a row's tau2 came from
BETWEEN_COLUMNS = [
    "gpu",
    "model",
    "table",
    "points",
    "points_repeated",
    "max_processes",
    "df",
    "between_sd",
    "within_sd",
    "between_share",
]


@dataclass
class Pooled:
    rows: pd.DataFrame  # one row per point (per layer): the repeats pooled
    between: pd.DataFrame  # per gpu x model: the between-process sd and its share of the variance


def pool(rows: pd.DataFrame, key: list[str], table: str) -> Pooled:
    """One row per ``key`` (a point, or a point's layer) from its repeats; ``table``: "points" or "layers"
    (names the rows of the between-process table). Rows are returned unchanged where no key has two."""
    if rows.empty or "repeat" not in rows or not rows.duplicated(subset=key).any():
        return Pooled(alone(rows), no_between())
    rows = rows.reset_index(drop=True)
    group = pd.Series(rows.groupby(key, observed=True, sort=False, dropna=False).ngroup(), index=rows.index)
    ok = (rows["status"] == "ok") & rows["p50_ms"].notna() if "status" in rows else rows["p50_ms"].notna()
    ok &= ~hostbound.mask(rows)  # a host-bound layer time is the host's: it joins no pool (the row stands
    # for the pooled layer only where every repeat was host-bound, and says so in its host_bound)
    y = np.log(rows["p50_ms"].astype(float).where(ok))
    se = log_se(rows).where(ok)
    per_model, per_gpu, between = _between(rows, y, se, group, table)

    latest = _latest_index(rows.assign(__ok=ok), group)
    out = rows.loc[latest].copy()
    g = pd.DataFrame({"group": group, "y": y, "se2": se**2}).loc[ok]
    k = g.groupby("group").size()
    centre = g.groupby("group")["y"].mean()
    rms = np.sqrt(g.groupby("group")["se2"].mean())
    kk = group.loc[latest]
    k_out, centre_out, rms_out = (s.reindex(kk.to_numpy()).to_numpy() for s in (k, centre, rms))
    tau_source = [
        _source(per_model, per_gpu, gpu, model, kp)
        for gpu, model, kp in zip(out["gpu"].astype(str), out["model"].astype(str), np.nan_to_num(k_out))
    ]
    se_out = np.array(
        [pooled_se(s, kp, b)[()] if b is not None else np.nan for s, kp, (_, b) in zip(rms_out, k_out, tau_source)]
    )
    measured = np.isfinite(centre_out)
    changed = measured & np.array([src != "within only" for src, _ in tau_source])
    half = Z95 * se_out
    several = changed & (np.nan_to_num(k_out) >= 2)  # a single process keeps its own median as stored
    out.loc[several, "p50_ms"] = np.exp(centre_out[several])
    out.loc[changed, "ci95_low_ms"] = np.exp(centre_out[changed] - half[changed])
    out.loc[changed, "ci95_high_ms"] = np.exp(centre_out[changed] + half[changed])
    out["processes"] = np.where(measured, k_out, 1).astype(int)  # n stays the iterations of one process
    out["between_process"] = pd.Categorical([src for src, _ in tau_source], SOURCES)
    return Pooled(out.reset_index(drop=True), between)


def alone(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows each measured in one process, with the columns ``pool`` adds (nothing to pool or borrow)."""
    return rows.assign(processes=1, between_process=pd.Categorical(["within only"] * len(rows), SOURCES))


def no_between() -> pd.DataFrame:
    """The between-process table where no point had repeats: empty."""
    return pd.DataFrame(columns=BETWEEN_COLUMNS)


def _latest_index(rows: pd.DataFrame, group: pd.Series) -> pd.Index:
    """The latest measured row of each group, else its latest row (its other columns stand for the pooled
    row); ``rows.__ok``: measured."""
    order = ["__ok", *(c for c in ("measured_at", "run_id") if c in rows.columns)]
    ordered = rows.assign(__g=group).sort_values(order, kind="stable", na_position="first")
    return ordered.drop_duplicates(subset="__g", keep="last").sort_index().index


def _between(
    rows: pd.DataFrame, y: pd.Series, se: pd.Series, group: pd.Series, table: str
) -> tuple[dict[tuple[str, str], BetweenProcess], dict[str, BetweenProcess], pd.DataFrame]:
    per_model: dict[tuple[str, str], BetweenProcess] = {}
    per_gpu: dict[str, BetweenProcess] = {}
    lines = []
    gpu, model = rows["gpu"].astype(str), rows["model"].astype(str)
    for g in sorted(gpu.unique()):
        on = gpu == g
        per_gpu[g] = between_process(y[on], se[on], group[on])
        for m in sorted(model[on].unique()):
            here = on & (model == m)
            b = between_process(y[here], se[here], group[here])
            per_model[(g, m)] = b
            sizes = group[here & y.notna()].value_counts()
            lines.append(
                [
                    g,
                    m,
                    table,
                    int(group[here].nunique()),
                    int((sizes >= 2).sum()),
                    int(sizes.max()) if len(sizes) else 0,
                    b.df,
                    float(np.sqrt(b.tau2)) if np.isfinite(b.tau2) else np.nan,
                    float(np.sqrt(b.within2)) if np.isfinite(b.within2) else np.nan,
                    b.share,
                ]
            )
    return per_model, per_gpu, pd.DataFrame(lines, columns=BETWEEN_COLUMNS)


def _source(per_model: dict, per_gpu: dict, gpu: str, model: str, k: float) -> tuple[str, BetweenProcess | None]:
    """Where a point's tau2 comes from: its own model's repeats, its GPU type's (borrowed), or nowhere."""
    own = per_model.get((gpu, model))
    if own is not None and own.df > 0 and k >= 2:
        return "pooled", own
    shared = per_gpu.get(gpu)
    if shared is not None and shared.df > 0:
        return ("pooled" if k >= 2 else "borrowed"), shared
    return "within only", None


def methods_sentences(between: pd.DataFrame, pooled_points: pd.DataFrame) -> list[str]:
    """What the Methods paragraph says about processes: how many per point, the between-process share per
    GPU type x model, which points borrowed it and which hold only their own process's noise."""
    if "processes" not in pooled_points or pooled_points.empty:
        return []
    if "status" in pooled_points:  # points that measured nothing neither pool nor borrow
        pooled_points = pooled_points[pooled_points["status"] == "ok"]
        if pooled_points.empty:
            return []
    k = pooled_points["processes"]
    src = pooled_points["between_process"].astype(str).value_counts()
    if int(k.max()) < 2:
        return [
            "Every point was measured in one process: intervals hold the noise within a process, not the "
            "noise between processes (another allocation, node or clock state); repeats=K measures each "
            "point in K processes."
        ]
    shown = between[(between["table"] == "points") & (between["df"] > 0)]
    shares = "; ".join(
        f"{r.gpu} {r.model}: between-process sd {r.between_sd:.2%} of the latency, "
        f"{r.between_share:.0%} of the variance ({r.df} df)"
        for r in shown.itertuples()
    )
    count = f"{int(k.min())} to {int(k.max())}" if k.min() != k.max() else f"{int(k.max())}"
    out = [
        f"Points were measured in {count} separate processes; the processes' log medians were "
        f"pooled by a random-effects model (between-process variance by the method of moments per model on a "
        f"GPU type, the pooled standard error sqrt((tau^2 + se^2)/k), widened by Student's t on its degrees of "
        f"freedom): {shares}."
    ]
    if src.get("borrowed", 0):
        out.append(
            f"{src['borrowed']} points measured in one process borrow the between-process variance of their "
            f"GPU type."
        )
    if src.get("within only", 0):
        out.append(f"{src['within only']} points (on GPU types without repeats) hold only their own process's noise.")
    return out
