"""The report's Methods paragraph: what each number is and how sure it is, generated from the data it
describes, so that a referee can paste it.

Definitions come from the results contract (harness.results.columns.DEFINITIONS); the statistics' names
from harness.results.uncertainty and harness.measure.stats; the counts (iterations, rows without an
interval, rows excluded, autocorrelation) from the rows themselves. Pure: DataFrames in, text out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.measure.stats import MIN_SAMPLES
from harness.results.columns import DEFINITIONS


def _span(n: pd.Series) -> str:
    n = n.dropna().astype(int)
    if n.empty:
        return "no"
    lo, hi = int(n.min()), int(n.max())
    return f"{lo}" if lo == hi else f"{lo} to {hi} (median {int(n.median())})"


def no_interval(rows: pd.DataFrame) -> int:
    """Rows timed but with too few iterations for a 95% interval of their median."""
    if "n" not in rows or "p50_ms" not in rows:
        return 0
    return int((rows["p50_ms"].notna() & (rows["n"].astype(float) < MIN_SAMPLES)).sum())


def autocorrelation_line(rows: pd.DataFrame, what: str) -> str | None:
    """How close to independent successive iterations were: the median lag-1 autocorrelation, and the
    share of rows beyond 2 / sqrt(n) (about 2.5% expected of independent iterations)."""
    if "lag1_autocorr" not in rows:
        return None
    have = rows[rows["lag1_autocorr"].notna() & rows["n"].notna()]
    if have.empty:
        return None
    r, n = have["lag1_autocorr"].astype(float), have["n"].astype(float)
    beyond = float((r > 2 / np.sqrt(n)).mean())
    return (
        f"successive iterations of a {what} had a median lag-1 autocorrelation of {r.median():.2f}; "
        f"{beyond:.0%} of {len(have)} {what} rows exceed 2/sqrt(n) (about 2.5% expected of independent "
        f"iterations{'; these intervals may be too narrow' if beyond > 0.1 else ''})"
    )


def l2_line(points: pd.DataFrame) -> str:
    """The cache state every number was measured at: how many points were warm and how many cold (rows older
    than the l2 column were warm, and the loader reads them so)."""
    states = points["l2"].fillna("warm") if "l2" in points else pd.Series(["warm"] * len(points), dtype=object)
    counts = states.astype(str).value_counts()  # a categorical counts its unused categories too, as 0
    said = [
        f"{int(counts[k])} points with a {k} L2 ({DEFINITIONS[f'{k} L2']})" for k in ("warm", "cold") if k in counts
    ]
    if not said:
        return "No point was timed."
    scope = "; ".join(said)
    mixed = " (compare a warm with a cold point only as such: l2 is part of the point key)" if len(said) > 1 else ""
    return f"Cache state of every latency (whole model and per layer): {scope}{mixed}."


def exclusions(points: pd.DataFrame, host_bound_layers: int) -> list[str]:
    """What was kept out of the answers, and why: host-bound layer rows; what is marked: launch-bound points."""
    out = []
    if host_bound_layers:
        out.append(
            f"{host_bound_layers} layer rows whose time includes the host's issuing (host_bound: no head start "
            f"covered them) were excluded from every layer table, plan, oracle and the predictor."
        )
    if "launch_bound" in points:
        n = int(points["launch_bound"].eq(True).sum())
        if n:
            out.append(
                f"{n} points are launch-bound (the host's issue time is at least 0.8x their p50): they are "
                f"kept and marked, their latency measures the host as much as the GPU."
            )
    return out


def oracle_correction(oracle: pd.DataFrame) -> list[str]:
    """How the oracle's layer switches were corrected (per point's layers)."""
    if oracle is None or oracle.empty or "switch_tests" not in oracle:
        return []
    return [
        f"The per-layer oracle and the plans switch a layer only where the fastest other algorithm beats the "
        f"baseline under Benjamini-Hochberg at 5% over the point's layers (its p-value multiplied by the "
        f"number of algorithms it was picked from): {int(oracle['switch_tests'].sum())} layer tests over "
        f"{len(oracle)} points, {int(oracle['switch_no_interval'].sum())} layers without an interval not tested."
    ]


def paragraph(
    points: pd.DataFrame,
    layers: pd.DataFrame,
    corrections: list[str] | None = None,
    exclusions: list[str] | None = None,
    between: list[str] | None = None,
) -> str:
    """The Methods paragraph for these resolved rows. ``corrections``, ``exclusions`` and ``between``: the
    sentences the multiple-comparison rules, the exclusions (host-bound layers, launch-bound points) and
    the between-process variance contribute, each already worded by its owner."""
    ok = points[points["status"] == "ok"] if "status" in points else points
    timed_layers = layers[layers["p50_ms"].notna()] if len(layers) else layers
    parts = [
        f"Latency is {DEFINITIONS['latency']}; points were timed for {_span(ok['n'])} iterations"
        + (" per process." if "processes" in ok and (ok["processes"] > 1).any() else "."),
    ]
    parts.append(l2_line(ok))
    if len(timed_layers):
        parts.append(
            f"Per-layer latency is {DEFINITIONS['layer latency']}; {_span(timed_layers['n'])} iterations " f"per layer."
        )
    parts.append(
        f"The interval is {DEFINITIONS['interval']}; rows holding only a mean, standard "
        f"deviation and n (imported rows, layer rows written before their interval columns) use sqrt(pi/2) std / "
        f"sqrt(n) on the log scale, widened by Student's t with n - 1 degrees of freedom. A ratio of two medians "
        f"(a speedup, B/A) has the delta-method interval on the log scale, each side's standard error from its "
        f"interval; a geometric mean of ratios is over the points measured, with the interval of their own noise "
        f"(not a claim about other input sizes)."
    )
    missing = no_interval(ok), no_interval(timed_layers)
    if any(missing):
        parts.append(
            f"Rows with fewer than {MIN_SAMPLES} iterations have no interval (not enough samples: "
            f"{missing[0]} points, {missing[1]} layer rows) and take part in no decision."
        )
    auto = [line for line in (autocorrelation_line(ok, "point"), autocorrelation_line(timed_layers, "layer")) if line]
    if auto:
        parts.append("Independence: " + "; ".join(auto) + ".")
    for sentences in (corrections, exclusions, between):
        parts += list(sentences or [])
    parts.append(
        f"Throughput is {DEFINITIONS['throughput']}. Energy per inference is "
        f"{DEFINITIONS['energy per inference']}; dynamic energy is {DEFINITIONS['dynamic energy per inference']}."
    )
    return " ".join(parts)
