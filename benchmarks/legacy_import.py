"""Benchmark: import the old system's whole result set, then load it and compute the analysis tables.

    python benchmarks/legacy_import.py [TARBALL] [--keep DIR]

Each phase runs in a process of its own so that its peak memory (ru_maxrss) is its own:
1. ``analysis.legacy.importer.import_legacy`` of the tarball into a temporary folder (or --keep DIR);
2. ``analysis.load.load`` of that tree + ``analysis.pipeline.compute_tables`` (every answer table).
Prints wall time and peak resident memory of each phase.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT = (
    Path(__file__).resolve().parents[1].parent / "shared/data/ai3-legacy/ai3-performance-prediction-results.tar.gz"
)


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def phase_import(tarball: str, out: str) -> dict:
    from analysis.legacy.importer import import_legacy

    t = time.perf_counter()
    rep = import_legacy([tarball], out)
    return {
        "phase": "import",
        "wall_s": time.perf_counter() - t,
        "peak_mib": _peak_mib(),
        "points": rep.points,
        "layers": rep.layers,
        "skipped": len(rep.issues),
        "unmatched_layers": rep.unmatched_layers,
        "combined_rows_skipped": rep.combined_skipped,
        "combined_rows_differing": rep.combined_mismatch,
    }


def phase_analysis(out: str) -> dict:
    from analysis.pipeline import compute_tables
    from analysis.tree import load

    t = time.perf_counter()
    res = load(out)
    t_load = time.perf_counter() - t
    frames = compute_tables(res)
    t_all = time.perf_counter() - t
    return {
        "phase": "load+tables",
        "wall_s": t_all,
        "load_s": t_load,
        "tables_s": t_all - t_load,
        "peak_mib": _peak_mib(),
        "points": len(res.points),
        "layers": len(res.layers),
        "tables": {k: len(v) for k, v in frames.items()},
    }


def _child(args: list[str]) -> dict:
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"phase {args[0]} failed ({proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("tarball", nargs="?", default=str(DEFAULT))
    p.add_argument("--keep", metavar="DIR", help="import into DIR (kept) instead of a temporary folder")
    p.add_argument("--phase", choices=["import", "analysis"], help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.phase == "import":
        print(json.dumps(phase_import(args.tarball, args.out)))
        return 0
    if args.phase == "analysis":
        print(json.dumps(phase_analysis(args.out)))
        return 0
    with tempfile.TemporaryDirectory(prefix="legacy-bench-") as tmp:
        out = args.keep or str(Path(tmp) / "results-legacy")
        imp = _child(["--phase", "import", "--out", out, args.tarball])
        ana = _child(["--phase", "analysis", "--out", out])
    print(
        f"import   : {imp['wall_s']:7.1f} s wall, peak RSS {imp['peak_mib']:7.0f} MiB  "
        f"({imp['points']} points, {imp['layers']} layer rows, {imp['skipped']} skipped, "
        f"{imp['unmatched_layers']} unmatched layers)"
    )
    print(
        f"analysis : {ana['wall_s']:7.1f} s wall (load {ana['load_s']:.1f} s + tables {ana['tables_s']:.1f} s), "
        f"peak RSS {ana['peak_mib']:7.0f} MiB  ({ana['points']} points, {ana['layers']} layers after load)"
    )
    print(json.dumps({"import": imp, "analysis": ana}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
