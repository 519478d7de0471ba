"""Warnings worth a reader's attention, as one table: which points, what, and why it matters.

Pure: takes the resolved points (and the load report) and returns a DataFrame with one row per finding.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from analysis.legacy.flags import FLAGS
from analysis.load import LoadReport

# NVML clock-event reasons that are not a slowdown: an idle GPU, or clocks an administrator pinned.
BENIGN_REASONS = frozenset({"", "none", "GpuIdle", "ApplicationsClocksSetting", "DisplayClockSetting"})
COLUMNS = ["kind", "stage", "gpu", "model", "algo", "input_size", "batch_size", "detail"]


@dataclass(frozen=True)
class Thresholds:
    cv: float = 0.05  # a point whose coefficient of variation exceeds this is noisy
    energy_window_s: float = 1.0  # an energy window shorter than this is dominated by counter granularity


def _rows(points: pd.DataFrame, mask: pd.Series, kind: str, detail: pd.Series) -> pd.DataFrame:
    sel = points.loc[mask, ["stage", "gpu", "model", "algo", "input_size", "batch_size"]].copy()
    sel.insert(0, "kind", kind)
    sel["detail"] = detail[mask].astype(str)
    return sel


def findings(points: pd.DataFrame, report: LoadReport | None = None, limits: Thresholds = Thresholds()) -> pd.DataFrame:
    """Noisy points, throttling, verification failures, short energy windows, missed CI targets, and a gpu
    type seen on more than one device."""
    ok = points["status"] == "ok"
    parts = []
    cv = points["cv"]
    parts.append(_rows(points, ok & (cv > limits.cv), "high cv", "cv " + cv.map("{:.3f}".format) + f" > {limits.cv:g}"))
    reasons = points["throttle_reasons"].fillna("none").astype(str)
    bad = reasons.map(lambda r: bool(set(r.split(",")) - BENIGN_REASONS))
    parts.append(_rows(points, bad, "throttling", "NVML reasons: " + reasons))
    error = points["error"].fillna("").astype(str)
    failed = (points["verified"] == False) | error.str.startswith("verification failed")  # noqa: E712
    parts.append(
        _rows(
            points,
            failed,
            "verification failed",
            "max_rel_err " + points["max_rel_err"].map(lambda v: f"{v:.3g}" if pd.notna(v) else "?"),
        )
    )
    window = points["energy_window_s"]
    measured = points["energy_method"].fillna("none") != "none"
    parts.append(
        _rows(
            points,
            ok & measured & (window < limits.energy_window_s),
            "energy window short",
            "window " + window.map("{:.2f}".format) + f" s < {limits.energy_window_s:g} s",
        )
    )
    missed = ok & (points["target_met"] == False)  # noqa: E712
    parts.append(
        _rows(
            points,
            missed,
            "CI target not met",
            "stopped by an iteration or time bound, n " + points["n"].astype("Int64").astype(str),
        )
    )
    names = points.groupby("gpu", observed=True)["device_name"].nunique()
    for gpu in names[names > 1].index:
        seen = sorted(points.loc[points["gpu"] == gpu, "device_name"].dropna().unique())
        parts.append(
            pd.DataFrame(
                [{"kind": "several devices", "gpu": gpu, "detail": f"gpu={gpu} measured on: {'; '.join(seen)}"}]
            )
        )
    parts += _legacy_flags(points)
    if report is not None:
        for bad_file in report.bad_files:
            parts.append(pd.DataFrame([{"kind": "unreadable file", "detail": f"{bad_file.path}: {bad_file.error}"}]))
        for model, names in report.separated_models.items():
            parts.append(
                pd.DataFrame(
                    [
                        {
                            "kind": "one name, several models",
                            "model": model,
                            "detail": f"rows of {len(names)} model files kept apart as {', '.join(names)}",
                        }
                    ]
                )
            )
    parts = [p for p in parts if not p.empty]
    if not parts:
        return pd.DataFrame(columns=COLUMNS)
    return pd.concat(parts, ignore_index=True).reindex(columns=COLUMNS)


def _legacy_flags(points: pd.DataFrame) -> list[pd.DataFrame]:
    """Imported rows carry the old system's known flaws by name (analysis.legacy.flags.FLAGS): one finding per
    flag and gpu, with how many points carry it, so a reader of the report sees them before any number."""
    if "legacy_flags" not in points or points["legacy_flags"].isna().all():
        return []
    flags = points[["stage", "gpu", "legacy_flags"]].dropna(subset=["legacy_flags"]).explode("legacy_flags")
    flags = flags.dropna(subset=["legacy_flags"])
    counts = flags.groupby(["legacy_flags", "stage", "gpu"], observed=True).size().reset_index(name="points")
    return (
        [
            pd.DataFrame(
                [
                    {
                        "kind": f"legacy: {r.legacy_flags}",
                        "stage": r.stage,
                        "gpu": r.gpu,
                        "detail": f"{r.points} points: "
                        f"{FLAGS.get(r.legacy_flags, 'a flaw of the system that measured them')}",
                    }
                    for r in counts.itertuples(index=False)
                ]
            )
        ]
        if len(counts)
        else []
    )


def summary(found: pd.DataFrame) -> pd.DataFrame:
    """Findings counted by kind, with one example each."""
    if found.empty:
        return pd.DataFrame(columns=["kind", "count", "example"])
    text = lambda c: found[c].astype(object).fillna("").astype(str)  # noqa: E731 - categoricals refuse ""
    where = (
        text("model") + " " + text("algo") + " size " + found["input_size"].astype("Int64").astype(str) + ": "
    ).where(found["model"].notna(), "")
    g = (found.assign(example=where + found["detail"].astype(str))).groupby("kind", sort=False)
    out = pd.DataFrame({"count": g.size(), "example": g["example"].first()}).reset_index()
    return out.sort_values("count", ascending=False).reset_index(drop=True)
