"""`python -m analysis.legacy PATH... --out results-legacy/`: the old system's CSV results as a results tree.

PATH is the published tarball (ai3-performance-prediction-results.tar.gz), a folder of its CSVs, or CSV
files. Every row becomes a row of our schema (harness/results/schema.py) under
``<out>/stage=legacy/gpu=<gpu>/model=<model>/algo=<algo>/``, with two extra columns on both tables:

- ``provenance``: where the row came from (``ai3-8CuDNN@2d2955f <archive>!<file>:<line>``);
- ``legacy_flags``: every known flaw of the old system (its README) that applies to the row, by name
  (FLAGS below), so that nothing about these numbers is hidden.

The points table also keeps the old power columns (``power_std_w``, ``power_min_w``, ``power_max_w``,
``power_samples``, ``energy_total_j``) and the layers table ``legacy_percentage`` (the layer's mean as a
percentage of the model's mean, as the old files wrote it); all are schema columns, null on our own rows.
What the old files do not hold stays null (a layer's median, p95/p99, confidence intervals, memory).

Idempotent: one model x algorithm x GPU combination is one run, whose id (``legacy-<model>-<algo>-<gpu>``)
and file names (``points-<run>.parquet``, ``layers-<run>.parquet``, ``run-<run>.json``) depend only on the
combination, so importing again overwrites the same files atomically. A malformed line is reported with
its file and line and skipped; a malformed file (unknown name, missing column, unreadable) is reported and
skipped; the rest is imported. An --out inside (or equal to) a results tree holding other stages is refused.

Exit status: 0 when everything imported, 1 when something was skipped (reported), 2 when nothing could be.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from analysis.legacy.flags import FLAGS, LAYER_FLAGS, POINT_FLAGS

# moved to records, sources and rows; their names stay importable from here (the old module), the private
# ones under their old names
from analysis.legacy.records import (
    BATCH_SIZE,
    CONFIG_HASH,
    DEVICE_NAMES,
    DTYPE,
    ENERGY_METHOD,
    LAYER_COLUMNS,
    N_ITERATIONS,
    OVERALL_COLUMNS,
    SOURCE,
    STAGE,
    SUMMARY,
    Combo,
    ImportReport,
    Issue,
    LegacyError,
    NothingImported,
    Source,
)
from analysis.legacy.rows import (
    BadRow,
    check_identity,
    flags_for,
    integer,
    layer_row,
    number,
    point_row,
)
from analysis.legacy.rows import check_identity as _check_identity
from analysis.legacy.rows import flags_for as _flags
from analysis.legacy.rows import integer as _int
from analysis.legacy.rows import number as _num
from analysis.legacy.sources import (
    COMBINED,
    FILE_NAME,
    file_sources,
    parse_name,
    read_rows,
    sources,
)
from analysis.legacy.sources import FILE_NAME as _NAME
from analysis.legacy.sources import file_sources as _file
from analysis.legacy.sources import read_rows as _rows
from harness import validate
from harness.algorithms import canonical_name
from harness.cli import ArgumentParser, command
from harness.errors import ConfigError
from harness.results import layout
from harness.results.schema import LAYERS, POINTS, to_table
from harness.results.store import write_json_atomic, write_parquet_atomic

log = logging.getLogger(__name__)

__all__ = [
    "BATCH_SIZE",
    "BadRow",
    "COMBINED",
    "CONFIG_HASH",
    "Combo",
    "DEVICE_NAMES",
    "DTYPE",
    "ENERGY_METHOD",
    "FILE_NAME",
    "FLAGS",
    "ImportReport",
    "Importer",
    "Issue",
    "LAYER_COLUMNS",
    "LAYER_FLAGS",
    "LegacyError",
    "N_ITERATIONS",
    "NothingImported",
    "OVERALL_COLUMNS",
    "POINT_FLAGS",
    "SOURCE",
    "STAGE",
    "SUMMARY",
    "Source",
    "_NAME",
    "_check_identity",
    "_file",
    "_flags",
    "_int",
    "_num",
    "_rows",
    "check_identity",
    "check_out",
    "file_sources",
    "flags_for",
    "import_legacy",
    "integer",
    "layer_row",
    "main",
    "number",
    "parse_name",
    "parser",
    "point_row",
    "read_rows",
    "sources",
]


# -- where to write ----------------------------------------------------------------------------------------
def check_out(out: Path) -> None:
    """Refuse an --out inside or equal to a results tree holding stages other than legacy, or inside a
    partition folder: real runs are never touched."""
    o = out.resolve()
    for folder in [o, *o.parents]:
        if layout.is_partition_folder(folder.name):
            raise LegacyError(f"--out {out} is inside a results partition ({folder}); choose a folder of its own")
        if not folder.is_dir():
            continue
        others = [stage for stage in layout.stages_under(folder) if stage != STAGE]
        if others:
            raise LegacyError(
                f"--out {out}: {folder} is a results tree with real runs (stages {', '.join(others)}); "
                f"legacy imports go to a folder of their own (e.g. --out results-legacy)"
            )
    if out.exists() and not out.is_dir():
        raise LegacyError(f"--out {out} exists and is not a folder")


# -- importing ------------------------------------------------------------------------------------------
class Importer:
    def __init__(self, out: Path) -> None:
        check_out(out)
        self.out = out
        self.report = ImportReport()
        self.runs: dict[str, dict[str, Any]] = {}  # run_id -> what this import wrote for it

    def _prov(self, src: Source, line: int) -> str:
        return f"{SOURCE} {src.label}:{line}"

    def points_file(self, src: Source, combo: Combo, rows: Iterator[tuple[int, dict[str, str]]]) -> list[dict]:
        out, seen = [], {}
        for line, row in rows:
            try:
                r = point_row(row, combo, self._prov(src, line))
            except BadRow as e:
                self.report.issues.append(Issue(src.label, line, str(e)))
                continue
            if self._first(
                src,
                line,
                seen,
                (r["input_size"], r["batch_size"]),
                f"input size {r['input_size']} batch {r['batch_size']}",
            ):
                out.append(r)
        return out

    def _first(self, src: Source, line: int, seen: dict, key: tuple, what: str) -> bool:
        """True the first time ``key`` is seen in a file; a repeat is reported (the first line is kept)."""
        if key in seen:
            self.report.issues.append(
                Issue(src.label, line, f"{what} again (first at line {seen[key]}); " f"kept the first")
            )
            return False
        seen[key] = line
        return True

    def layers_file(self, src: Source, combo: Combo) -> list[dict]:
        out, seen = [], {}
        for line, row in read_rows(src, LAYER_COLUMNS, self.report):
            try:
                r = layer_row(row, combo, self._prov(src, line))
            except BadRow as e:
                self.report.issues.append(Issue(src.label, line, str(e)))
                continue
            if isinstance(r, str):
                self.report.unmatched_layers += 1
                if len(self.report.unmatched_examples) < 10:
                    self.report.unmatched_examples.append(f"{src.label}:{line}: {r}")
                continue
            if self._first(
                src,
                line,
                seen,
                (r["input_size"], r["layer_name"]),
                f"layer {r['layer_name']} at size {r['input_size']}",
            ):
                out.append(r)
        sums: dict[int, float] = {}
        for r in out:
            sums[r["input_size"]] = sums.get(r["input_size"], 0.0) + r["mean_ms"]
        for r in out:
            total = sums[r["input_size"]]
            r["share_of_model"] = r["mean_ms"] / total if total > 0 else None
        return sorted(out, key=lambda r: (r["input_size"], r["layer_index"]))

    def write(self, combo: Combo, kind: str, rows: list[dict], src: Source) -> None:
        folder = combo.partition().path(self.out)
        folder.mkdir(parents=True, exist_ok=True)
        name = "points" if kind == "overall" else "layers"
        schema = POINTS if name == "points" else LAYERS
        path = folder / layout.table_file(name, combo.run_id)
        rows = sorted(rows, key=lambda r: (r["batch_size"], r["input_size"], r.get("layer_index", 0)))
        write_parquet_atomic(to_table(rows, schema), path)
        self.report.written.append(str(path))
        if name == "points":
            self.report.points += len(rows)
        else:
            self.report.layers += len(rows)
        doc = self.runs.setdefault(combo.run_id, self._run_doc(combo, folder))
        doc["sources"][name] = {"file": src.label, "sha256": hashlib.sha256(src.data).hexdigest(), "rows": len(rows)}

    def _run_doc(self, combo: Combo, folder: Path) -> dict[str, Any]:
        path = folder / layout.run_file(combo.run_id)
        try:
            doc = json.loads(path.read_text())  # an earlier import of the other table of this combination
        except (OSError, ValueError):
            doc = {}
        from analysis.tree.specs import (
            _from_conf,  # the GPU's datasheet, where analysis.specs looks first
        )
        from harness.config.spec import CONF_DIR

        spec = _from_conf(combo.gpu, CONF_DIR)
        return {
            "run_id": combo.run_id,
            "stage": STAGE,
            "outcome": "imported",
            "importer": "analysis.legacy",
            "source": SOURCE,
            "device_name": DEVICE_NAMES.get(combo.gpu),
            "config": {
                "gpu": {"name": combo.gpu, "spec": spec},
                "model": {"name": combo.model},
                "algo": combo.algo,
                "stage": STAGE,
            },
            "flags": {k: FLAGS[k] for k in flags_for(sorted(set(POINT_FLAGS) | set(LAYER_FLAGS)), combo)},
            "sources": dict(doc.get("sources", {})),
        }

    def run(self, paths: list[Path]) -> ImportReport:
        t0 = time.perf_counter()
        combined: list[Source] = []
        per_file: dict[Combo, dict[tuple[int, int], dict]] = {}
        for src in sources(paths, self.report):
            self.report.files_read += 1
            if src.name == COMBINED:
                combined.append(src)
                continue
            try:
                combo, kind = parse_name(src.name)
            except ValueError as e:
                self.report.issues.append(Issue(src.label, None, f"skipped: {e}"))
                continue
            if kind == "overall":
                rows = self.points_file(src, combo, read_rows(src, OVERALL_COLUMNS, self.report))
                per_file[combo] = {(r["input_size"], r["batch_size"]): r for r in rows}
            else:
                rows = self.layers_file(src, combo)
            if rows:
                self.write(combo, kind, rows, src)
                self.report.files_imported += 1
            elif not any(i.file == src.label and i.line is None for i in self.report.issues):
                self.report.issues.append(Issue(src.label, None, "no valid rows: nothing written"))
        for src in combined:
            self.combined_file(src, per_file)
        if not self.report.points and not self.report.layers:
            raise NothingImported(self._nothing_imported(paths))
        self._write_runs()
        self.report.seconds = time.perf_counter() - t0
        if self.report.written:  # nothing imported: no tree to describe (and an existing one keeps its summary)
            write_json_atomic(self.report.summary(), self.out / SUMMARY)
        return self.report

    def _nothing_imported(self, paths: list[Path]) -> str:
        issues = self.report.issues
        why = (
            f"{len(issues)} file(s) or line(s) skipped, the first: {issues[0]}" if issues else "no CSV file among them"
        )
        return (
            f"nothing imported from {', '.join(map(str, paths))}: {why}; give the old system's tarball, a folder "
            f"of its CSVs, or CSV files"
        )

    def _write_runs(self) -> None:
        for run_id, doc in self.runs.items():
            combo = Combo(doc["config"]["model"]["name"], doc["config"]["algo"], doc["config"]["gpu"]["name"])
            write_json_atomic(doc, combo.partition().path(self.out) / layout.run_file(run_id))

    def combined_file(self, src: Source, per_file: dict[Combo, dict]) -> None:
        """combined_overall.csv: rows of combinations that came with their own overall file are checked
        against it and skipped; the others are imported as that combination's points."""
        groups: dict[Combo, list[tuple[int, dict[str, str]]]] = {}
        for line, row in read_rows(src, OVERALL_COLUMNS, self.report):
            try:
                combo = Combo(row["model"], canonical_name(row["algorithm"]), row["device"].lower())
            except ConfigError:
                self.report.issues.append(Issue(src.label, line, f"unknown algorithm {row['algorithm']!r}"))
                continue
            groups.setdefault(combo, []).append((line, row))
        imported = False
        for combo, lines in sorted(groups.items(), key=lambda kv: kv[0].run_id):
            rows = self.points_file(src, combo, iter(lines))
            if combo in per_file:
                self.report.combined_skipped += len(rows)
                own = per_file[combo]
                for r in rows:
                    o = own.get((r["input_size"], r["batch_size"]))
                    if o is None or any(o[k] != r[k] for k in ("mean_ms", "p50_ms", "energy_per_inference_j")):
                        self.report.combined_mismatch += 1
                continue
            if rows:
                self.write(combo, "overall", rows, src)
                imported = True
        self.report.files_imported += int(imported)


def import_legacy(paths: list[str | Path], out: str | Path) -> ImportReport:
    """Import the old CSVs under ``paths`` into the results tree ``out``; returns what happened. An ``out``
    that cannot be written, or an empty one, is refused (harness.errors.ConfigError) before anything is read."""
    paths = [Path(p) for p in paths]
    return Importer(validate.output_folder(out, "--out")).run(paths)


def parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m analysis.legacy", description=__doc__.splitlines()[0])
    p.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        type=validate.input_path,
        help="the tarball, a folder of its CSVs, or CSV files",
    )
    p.add_argument(
        "--out",
        default="results-legacy",
        type=validate.output_folder,
        help="the results tree to write (default %(default)s; never a tree holding real runs)",
    )
    p.add_argument(
        "--show",
        type=validate.non_negative_int,
        default=20,
        help="how many skipped lines to list (default %(default)s)",
    )
    return p


@command
def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    rep = import_legacy(args.paths, args.out)
    print(
        f"imported {rep.points} points and {rep.layers} layer rows from {rep.files_imported} of "
        f"{rep.files_read} files into {args.out} in {rep.seconds:.1f} s"
    )
    if rep.combined_skipped:
        print(
            f"{COMBINED}: {rep.combined_skipped} rows already in per-combination files (skipped), "
            f"{rep.combined_mismatch} of them differ"
        )
    if rep.unmatched_layers:
        print(
            f"{rep.unmatched_layers} layer rows match no conv module of the torchvision model (not imported); " f"e.g.:"
        )
        for ex in rep.unmatched_examples[:5]:
            print(f"  {ex}")
    if rep.issues:
        print(f"{len(rep.issues)} lines/files skipped:", file=sys.stderr)
        for issue in rep.issues[: args.show]:
            print(f"  {issue}", file=sys.stderr)
        if len(rep.issues) > args.show:
            print(f"  ... and {len(rep.issues) - args.show} more (all in {args.out / SUMMARY})", file=sys.stderr)
    return 1 if rep.issues or rep.unmatched_layers else 0
