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
import csv
import hashlib
import io
import json
import logging
import math
import re
import sys
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analysis import layers as legacy_layers
from analysis.legacy.flags import FLAGS, LAYER_FLAGS, POINT_FLAGS
from harness import validate
from harness.algorithms import ALGORITHMS, canonical_name
from harness.cli import ArgumentParser, command
from harness.errors import ConfigError, InputFileError, OutputError
from harness.results import layout
from harness.results.layout import Partition
from harness.results.schema import LAYERS, POINTS, SCHEMA_VERSION, to_table
from harness.results.store import write_json_atomic, write_parquet_atomic

log = logging.getLogger(__name__)

STAGE = "legacy"
SOURCE = "ai3-8CuDNN@2d2955f"  # WiamSkakri/ai3-8CuDNN, Performance_Prediction_Refactored/results/
CONFIG_HASH = "legacy-ai3-2d2955f"  # one tag for every imported row: nothing here was configured by us
ENERGY_METHOD = "legacy_power_average"  # mean NVML power (1-s averaged) x time; not "nvml_counter"
N_ITERATIONS = 20  # the old README: 20 timed iterations after 10 warmup (not in the files)
BATCH_SIZE = 1
DTYPE = "float32"
SUMMARY = "_legacy-import.json"  # what an import did, beside what it wrote
DEVICE_NAMES = {"h100": "NVIDIA H100 NVL", "l40s": "NVIDIA L40S", "v100": "NVIDIA V100"}

OVERALL_COLUMNS = (
    "model",
    "algorithm",
    "batch_size",
    "input_size",
    "mean",
    "std",
    "min",
    "max",
    "median",
    "power_mean_w",
    "power_std_w",
    "power_min_w",
    "power_max_w",
    "energy_total_j",
    "energy_per_inference_j",
    "power_samples",
    "device",
)
LAYER_COLUMNS = (
    "model",
    "algorithm",
    "input_size",
    "layer",
    "in_channels",
    "out_channels",
    "kernel_size",
    "stride",
    "padding",
    "mean_ms",
    "std_ms",
    "percentage",
    "device",
)
COMBINED = "combined_overall.csv"

_NAME = re.compile(r"^(?P<stem>[a-z0-9_]+)_(?P<kind>overall|layers)_(?P<gpu>[a-z0-9]+)\.csv$")


class LegacyError(OutputError):
    """An --out the importer must not write: a file, a folder inside a results partition, or a tree with real
    runs."""


class NothingImported(InputFileError):
    """No row of the inputs could be imported (no old-system CSV among them, or none readable); nothing was
    written."""


@dataclass(frozen=True)
class Combo:
    model: str
    algo: str  # ours
    gpu: str

    @property
    def run_id(self) -> str:
        return f"legacy-{self.model}-{self.algo}-{self.gpu}"

    def partition(self) -> Partition:
        return Partition(STAGE, self.gpu, self.model, self.algo)


@dataclass
class Source:
    label: str  # "archive.tar.gz!member.csv" or "file.csv": deterministic, wherever the input lies
    name: str  # the CSV's own file name
    data: bytes


@dataclass
class Issue:
    file: str
    line: int | None  # None: the whole file
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}" if self.line is not None else f"{self.file}: {self.reason}"


@dataclass
class ImportReport:
    files_read: int = 0
    files_imported: int = 0
    points: int = 0
    layers: int = 0
    written: list[str] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)  # skipped lines and files
    unmatched_layers: int = 0
    unmatched_examples: list[str] = field(default_factory=list)
    combined_skipped: int = 0  # combined_overall.csv rows also present in a per-combination file
    combined_mismatch: int = 0  # ... whose numbers differ from that file's
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "files_read": self.files_read,
            "files_imported": self.files_imported,
            "points": self.points,
            "layers": self.layers,
            "files_written": len(self.written),
            "skipped": len(self.issues),
            "issues": [str(i) for i in self.issues],
            "unmatched_layers": self.unmatched_layers,
            "unmatched_examples": self.unmatched_examples,
            "combined_rows_skipped": self.combined_skipped,
            "combined_rows_differing": self.combined_mismatch,
            "seconds": round(self.seconds, 3),
        }


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


# -- reading inputs ----------------------------------------------------------------------------------------
def sources(paths: list[Path], report: ImportReport) -> Iterator[Source]:
    """Every CSV in the inputs (tarballs, folders, files); unreadable ones are reported."""
    for path in paths:
        if path.is_dir():
            for f in sorted(path.rglob("*.csv")):
                yield from _file(f, f.relative_to(path).as_posix(), report)
        elif path.is_file() and (path.name.endswith((".tar.gz", ".tgz", ".tar"))):
            try:
                with tarfile.open(path) as tar:
                    for member in tar:
                        if not (member.isfile() and member.name.endswith(".csv")):
                            continue
                        base = Path(member.name).name
                        f = tar.extractfile(member)
                        yield Source(f"{path.name}!{base}", base, f.read() if f else b"")
            except (OSError, tarfile.TarError, EOFError) as e:
                report.issues.append(Issue(str(path), None, f"unreadable archive: {e}"))
        elif path.is_file():
            yield from _file(path, path.name, report)
        else:
            report.issues.append(Issue(str(path), None, "no such file or folder"))


def _file(path: Path, label: str, report: ImportReport) -> Iterator[Source]:
    try:
        yield Source(label, path.name, path.read_bytes())
    except OSError as e:
        report.issues.append(Issue(label, None, f"unreadable: {e.strerror or e}"))


def parse_name(name: str) -> tuple[Combo, str]:
    """``<model>_<algo>_<overall|layers>_<gpu>.csv`` -> (combination, kind); ValueError if not that."""
    m = _NAME.match(name)
    if not m:
        raise ValueError("not a <model>_<algo>_<overall|layers>_<gpu>.csv file name")
    stem = m["stem"]
    algos = sorted((a for a in ALGORITHMS if stem.endswith("_" + a)), key=len, reverse=True)
    if not algos:
        raise ValueError(f"no known algorithm at the end of {stem!r} (known: {', '.join(ALGORITHMS)})")
    algo = algos[0]
    return Combo(stem[: -len(algo) - 1], algo, m["gpu"]), m["kind"]


def _rows(src: Source, required: tuple[str, ...], report: ImportReport) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) of a CSV; a file without the required columns, or a malformed line, is reported."""
    try:
        text = src.data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        report.issues.append(Issue(src.label, None, f"not UTF-8 text: {e}"))
        return
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        report.issues.append(Issue(src.label, None, "empty file"))
        return
    except csv.Error as e:
        report.issues.append(Issue(src.label, 1, f"bad CSV header: {e}"))
        return
    header = [h.strip() for h in header]
    missing = [c for c in required if c not in header]
    if missing:
        report.issues.append(Issue(src.label, None, f"missing column(s) {', '.join(missing)}; has {', '.join(header)}"))
        return
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            report.issues.append(Issue(src.label, reader.line_num, f"bad CSV: {e}"))
            continue
        if not fields or all(not f.strip() for f in fields):
            continue
        if len(fields) != len(header):
            report.issues.append(
                Issue(
                    src.label, reader.line_num, f"{len(fields)} fields, the header has {len(header)} (truncated line?)"
                )
            )
            continue
        yield reader.line_num, dict(zip(header, (f.strip() for f in fields)))


class BadRow(ValueError):
    pass


def _num(row: dict[str, str], key: str, positive: bool = False) -> float:
    text = row[key]
    try:
        v = float(text)
    except ValueError:
        raise BadRow(f"{key}={text!r} is not a number") from None
    if not math.isfinite(v) or v < 0 or (positive and v == 0):
        raise BadRow(f"{key}={text!r} is not a {'positive' if positive else 'non-negative'} finite number")
    return v


def _int(row: dict[str, str], key: str) -> int:
    v = _num(row, key)
    if v != int(v):
        raise BadRow(f"{key}={row[key]!r} is not an integer")
    return int(v)


def _check_identity(row: dict[str, str], combo: Combo) -> None:
    """The row's model, algorithm and device agree with its file name."""
    try:
        algo = canonical_name(row["algorithm"])
    except ConfigError:
        raise BadRow(f"unknown algorithm {row['algorithm']!r}") from None
    if algo != combo.algo:
        raise BadRow(f"algorithm {row['algorithm']!r} in a file of {combo.algo}")
    if row["model"] != combo.model:
        raise BadRow(f"model {row['model']!r} in a file of {combo.model}")
    if row["device"].lower() != combo.gpu:
        raise BadRow(f"device {row['device']!r} in a file of {combo.gpu}")


def _flags(base: list[str], combo: Combo) -> list[str]:
    return base + (["algo_is_heuristic_choice"] if combo.algo == "implicit_gemm" else [])


# -- rows ------------------------------------------------------------------------------------------------
def point_row(row: dict[str, str], combo: Combo, provenance: str) -> dict[str, Any]:
    """One overall row as a points row. BadRow if a value is malformed."""
    _check_identity(row, combo)
    size, batch = _int(row, "input_size"), _int(row, "batch_size")
    if size <= 0 or batch <= 0:
        raise BadRow(f"input_size {size} / batch_size {batch} must be positive")
    mean, std, lo, hi, med = (_num(row, k, positive=k != "std") for k in ("mean", "std", "min", "max", "median"))
    if not lo <= med <= hi or not lo <= mean <= hi:
        raise BadRow(f"min {lo} <= median {med}, mean {mean} <= max {hi} does not hold")
    power, energy, total = (_num(row, k) for k in ("power_mean_w", "energy_per_inference_j", "energy_total_j"))
    try:
        tr = legacy_layers.trace(combo.model, size, batch)
    except Exception as e:  # noqa: BLE001 - a size the architecture refuses
        raise BadRow(f"cannot trace {combo.model} at input size {size}: {type(e).__name__}: {e}") from None
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": combo.run_id,
        "stage": STAGE,
        "model": combo.model,
        "algo": combo.algo,
        "gpu": combo.gpu,
        "device": "cuda",
        "device_name": DEVICE_NAMES.get(combo.gpu),
        "input_size": size,
        "batch_size": batch,
        "dtype": DTYPE,
        "status": "ok",
        "backend": "cudnn",
        "n": N_ITERATIONS,
        "mean_ms": mean,
        "std_ms": std,
        "cv": std / mean,
        "min_ms": lo,
        "p50_ms": med,
        "max_ms": hi,
        "throughput_ips": batch / (mean / 1e3),
        "flops": tr.flops,
        "params": tr.params,
        "energy_per_inference_j": energy,
        "energy_method": ENERGY_METHOD,
        "energy_window_s": total / power if power > 0 else None,
        "energy_inferences": round(total / energy) if energy > 0 else None,
        "power_mean_w": power,
        "conv_layers": len(tr.layers),
        "config_hash": CONFIG_HASH,
        "provenance": provenance,
        "legacy_flags": _flags(list(POINT_FLAGS), combo),
        "power_std_w": _num(row, "power_std_w"),
        "power_min_w": _num(row, "power_min_w"),
        "power_max_w": _num(row, "power_max_w"),
        "power_samples": _int(row, "power_samples"),
        "energy_total_j": total,
    }


def layer_row(row: dict[str, str], combo: Combo, provenance: str) -> dict[str, Any] | str:
    """One layer row as a layers row; a string (why) when the layer matches no traced conv."""
    _check_identity(row, combo)
    size = _int(row, "input_size")
    if size <= 0:
        raise BadRow(f"input_size {size} must be positive")
    geo_legacy = {k: _int(row, k) for k in ("in_channels", "out_channels", "kernel_size", "stride", "padding")}
    mean, std, pct = _num(row, "mean_ms"), _num(row, "std_ms"), _num(row, "percentage")
    name = row["layer"]
    try:
        tr = legacy_layers.trace(combo.model, size, BATCH_SIZE)
    except Exception as e:  # noqa: BLE001 - a size the architecture refuses
        return f"cannot trace {combo.model} at {size}: {type(e).__name__}: {e}"
    layer = tr.layers.get(name)
    if layer is None:
        return f"no conv module {name!r} in torchvision's {combo.model}"
    g = layer.geometry
    ours = {
        "in_channels": g["in_channels"],
        "out_channels": g["out_channels"],
        "kernel_size": g["kernel_h"],
        "stride": g["stride_h"],
        "padding": g["pad_h"],
    }
    square = g["kernel_h"] == g["kernel_w"] and g["stride_h"] == g["stride_w"] and g["pad_h"] == g["pad_w"]
    if ours != geo_legacy or not square:
        return f"{name}: old geometry {geo_legacy} differs from torchvision's {g}"
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": combo.run_id,
        "stage": STAGE,
        "model": combo.model,
        "algo": combo.algo,
        "gpu": combo.gpu,
        "device_name": DEVICE_NAMES.get(combo.gpu),
        "input_size": size,
        "batch_size": BATCH_SIZE,
        "dtype": DTYPE,
        "layer_index": layer.index,
        "layer_name": name,
        **g,
        "in_h": layer.in_shape[2],
        "in_w": layer.in_shape[3],
        "out_h": layer.out_shape[2],
        "out_w": layer.out_shape[3],
        "algo_requested": combo.algo,
        "algo_used": None,
        "backend": "cudnn",
        "status": "ok",
        "mean_ms": mean,
        "std_ms": std,
        "flops": layer.flops,
        "bytes": layer.bytes,
        "arithmetic_intensity": layer.flops / layer.bytes,
        "provenance": provenance,
        "legacy_flags": _flags(list(LAYER_FLAGS), combo),
        "legacy_percentage": pct,
    }


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
        for line, row in _rows(src, LAYER_COLUMNS, self.report):
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
        from analysis.specs import (
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
            "flags": {k: FLAGS[k] for k in _flags(sorted(set(POINT_FLAGS) | set(LAYER_FLAGS)), combo)},
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
                rows = self.points_file(src, combo, _rows(src, OVERALL_COLUMNS, self.report))
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
        for line, row in _rows(src, OVERALL_COLUMNS, self.report):
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
