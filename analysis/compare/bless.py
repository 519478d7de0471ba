"""`python -m analysis.bless TREE [--select SEL ...] --out refs.yaml`: bless measurements as references.

Every point of the selection that measured ok becomes an entry of a references file (harness.references,
per gpu type): its key (stage, model, algo, input_size, batch_size, dtype and the settings it was measured
with), p50 with the median's 95% confidence interval, std and n, energy, provenance, and a tolerance. A
point measured more than once gives its latest row (harness.results.read.latest). A run checks against the
file with ``python -m harness references=refs.yaml``.

Tolerance: ``--tolerance X`` for every entry, else each reference's own: the relative half-width of its
median's 95% interval (exp(1.96 x se of log p50) - 1, harness.results.uncertainty.log_se), and DEFAULT_TOLERANCE
where the row holds no uncertainty. That CI holds only the noise within one run: where the selection holds
points measured in several runs with identical settings, the noise between runs they show
(harness.results.uncertainty.between_run_sd, as in ``python -m analysis.compare``) is added to each se first.
``stage.reference_tolerance`` in a run's config overrides the file's tolerances.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.compare import noise
from analysis.compare.verdicts import match_key
from analysis.errors import AnalysisError
from analysis.tree import Filters, read_points, selection
from harness import validate
from harness.cli import ArgumentParser, command
from harness.references import Entry, References, save
from harness.references.format import KEY, SETTINGS
from harness.results.read import latest
from harness.results.uncertainty import interval, log_se

log = logging.getLogger(__name__)
DEFAULT_TOLERANCE = 0.05
PROVENANCE = (
    "run_id",
    "measured_at",
    "device_name",
    "torch_version",
    "cuda_version",
    "cudnn_version",
    "driver_version",
    "git_commit",
    "hostname",
)


def _plain(v: Any) -> Any:
    """A value as YAML writes it plainly: None for nulls, Python numbers, ISO text for times."""
    if v is None or v is pd.NaT or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, (pd.Timestamp, datetime)):
        return v.isoformat()
    if isinstance(v, np.generic):
        return v.item()
    return v


def own_tolerance(rows: pd.DataFrame, between_run: float = 0.0) -> pd.Series:
    """Each row's tolerance from its own median CI, widened by the noise between runs (module docstring)."""
    se = log_se(rows)
    _, high = interval(np.zeros(len(rows)), np.hypot(se, between_run))
    return pd.Series(high - 1, index=rows.index).fillna(DEFAULT_TOLERANCE)


def between_run(points: pd.DataFrame) -> tuple[float, noise.NoiseSummary]:
    """The between-run sd of log latency the selection shows (0 where it has too few repeated points)."""
    key = match_key(points, points)
    pairs = noise.run_pairs(points, key)
    sd = noise.floor(pairs)
    return (0.0 if np.isnan(sd) else sd), noise.summarize(pairs, "the selection", key)


def references(
    points: pd.DataFrame,
    tolerance: float | None = None,
    source: dict[str, Any] | None = None,
    between_run_sd: float = 0.0,
) -> References:
    """Entries from points rows (unresolved): ok rows, the latest of each key and settings. Pure."""
    ok = points[(points["status"] == "ok") & (points["p50_ms"].astype(float) > 0)].copy()
    for c in (*KEY, "gpu", *SETTINGS):
        ok[c] = ok[c].astype(object)
    key = ["gpu", *KEY, *SETTINGS]
    resolved = latest(ok, key).sort_values(["gpu", *KEY], kind="stable")
    tol = own_tolerance(resolved, between_run_sd) if tolerance is None else pd.Series(tolerance, index=resolved.index)
    gpus: dict[str, list[Entry]] = {}
    for (_, row), t in zip(resolved.iterrows(), tol):
        r = {k: _plain(v) for k, v in row.items()}
        gpus.setdefault(str(r["gpu"]), []).append(
            Entry(
                gpu=str(r["gpu"]),
                stage=str(r["stage"]),
                model=str(r["model"]),
                algo=str(r["algo"]),
                input_size=int(r["input_size"]),
                batch_size=int(r["batch_size"]),
                dtype=str(r["dtype"]),
                p50_ms=float(r["p50_ms"]),
                tolerance=round(float(t), 6),
                settings={s: r[s] for s in SETTINGS if r.get(s) is not None},
                ci95_low_ms=r.get("ci95_low_ms"),
                ci95_high_ms=r.get("ci95_high_ms"),
                std_ms=r.get("std_ms"),
                n=None if r.get("n") is None else int(r["n"]),
                energy_per_inference_j=r.get("energy_per_inference_j"),
                measured={k: str(r[k]) for k in PROVENANCE if r.get(k) is not None},
            )
        )
    created = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    return References(gpus, created, source or {})


def parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="python -m analysis.bless",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=selection.GRAMMAR,
    )
    p.add_argument(
        "trees",
        nargs="+",
        metavar="TREE",
        type=validate.input_path,
        help="results tree(s) holding the measurements to bless",
    )
    p.add_argument(
        "--select",
        action="append",
        default=[],
        metavar="SELECTION",
        type=validate.text,
        help="keep only these rows, e.g. run_id=RUN or measured_at=2026-11-01.. (repeat: all must hold)",
    )
    Filters.add_arguments(p)
    p.add_argument(
        "--tolerance",
        type=validate.non_negative_float,
        default=None,
        help="relative tolerance of every entry (default: each reference's own, from its CI)",
    )
    p.add_argument("--out", required=True, type=validate.output_file, help="the references file to write (YAML)")
    p.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    return p


@command
def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    filters = Filters.from_arguments(args)
    sels = [selection.parse(s) for s in args.select]
    trees = [Path(t) for t in args.trees]
    rows, _ = read_points(trees, filters)
    rows = selection.select(rows, sels, " + ".join(map(str, trees)))
    sd, floor = between_run(rows)
    source = {
        "trees": [str(t) for t in trees],
        "selection": [s.label() for s in sels],
        "filters": {k: list(v) for k, v in filters.items()},
        "tolerance": "fixed"
        if args.tolerance is not None
        else "own 95% CI half-width" + (f", between-run sd {sd:.4f} added" if sd else ""),
    }
    refs = references(rows, args.tolerance, source, sd)
    if not refs.entries():
        raise AnalysisError(f"no point of the selection measured ok ({len(rows)} rows, none ok): nothing to bless")
    path = save(refs, args.out)
    skipped = int((rows["status"] != "ok").sum())
    per_gpu = ", ".join(f"{gpu}: {len(e)}" for gpu, e in sorted(refs.gpus.items()))
    print(
        f"blessed {refs.entries()} points ({per_gpu}) into {path}"
        + (f"; {skipped} rows not ok, left out" if skipped else "")
    )
    if floor.pairs:
        print(f"run-to-run noise of {floor.line()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
