"""Writing the results tree: hive-partitioned Parquet, written atomically point by point, resumable.

The layout (folders and file names) is harness.results.layout's.

Durability: each point is written as soon as it is measured: its layers file first, then its points file,
each to a hidden temporary name, flushed to disk and renamed into place (atomic on POSIX), so a crash never
leaves a half-written file. The points file is the commit mark: a point counts as measured once its points
row exists. At the end of a run the pieces are merged into one file per table (the merged file is complete
on disk before any piece is removed, so a crash in between loses nothing; the pieces are then redundant).
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from pathlib import Path
from typing import Any, Iterable, Mapping

import pyarrow as pa
import pyarrow.parquet as pq

from harness.atomic import (  # noqa: F401 (write_*_atomic: their old path)
    HOST,
    TMP_PREFIX,
    write_json_atomic,
    write_parquet_atomic,
    write_text_atomic,
)
from harness.errors import StoreError
from harness.results import layout
from harness.results.layout import Partition, PointKey, point_label
from harness.results.manifest import RunManifest, read_manifest, write_manifest
from harness.results.schema import LAYERS, POINTS, to_table

log = logging.getLogger(__name__)

# Temporary files carry the writer's host and pid (harness.atomic), so that those of a dead writer can be removed.
_HOST, _TMP_PREFIX = HOST, TMP_PREFIX

# A point with one of these statuses is not measured again on resume; "error" rows are retried.
DONE_STATUSES = frozenset({"ok", "oom", "unsupported"})


def _alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ResultStore:
    """Where one run writes its points, layers and run.json, and what it finds already measured."""

    def __init__(self, root: Path, partition: Partition, run_id: str) -> None:
        self.root = root
        self.partition = partition
        self.run_id = run_id
        self.dir = partition.path(root)

    # -- opening --------------------------------------------------------------------------------------
    def open(self) -> None:
        """Create the partition folder and prove it is writable, before anything is measured."""
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            probe = self.dir / f".write-probe-{uuid.uuid4().hex}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as e:
            raise StoreError(
                f"cannot write results under {self.root}: {e.strerror or e} ({self.dir}). "
                f"Choose a writable folder with results_dir=PATH."
            ) from e

    def recover(self) -> list[str]:
        """Tidy up after runs on this host whose process died (SIGKILL, OOM killer, power loss).

        Their points are all on disk already; this merges their pieces into one file per table (as they
        would have at their end), marks their run.json ``killed``, and removes their temporary files.
        Runs of other hosts are left alone: only their own host can tell whether they are still alive.
        Returns the ids of the runs recovered.
        """
        for tmp in self.dir.glob(f".tmp-{_HOST}-*"):
            pid = tmp.name.split("-")[2 + _HOST.count("-")]
            if pid.isdigit() and not _alive(int(pid)):
                tmp.unlink(missing_ok=True)
        recovered = []
        for path in layout.run_files(self.dir):
            try:
                run = read_manifest(path)
            except (OSError, ValueError) as e:
                log.warning("cannot read %s (%s)", path, e)
                continue
            if run.run_id == self.run_id:  # this run, resumed (a requeued SLURM job)
                continue
            if run.outcome != "running" or run.hostname != _HOST or _alive(-1 if run.pid is None else run.pid):
                continue
            other = ResultStore(self.root, self.partition, run.run_id)
            other.compact()
            run.outcome, run.recovered_by = "killed", self.run_id
            other.write_run(run)
            log.warning("run %s died without finishing; its points are kept (recovered)", run.run_id)
            recovered.append(run.run_id)
        return recovered

    # -- reading what is there ------------------------------------------------------------------------
    def measured(self, config_hash: str, run_id: str | None = None, repeat: int = 0) -> set[PointKey]:
        """Points of any run in this partition (of run ``run_id`` only, if given), measured with this config
        hash by this ``repeat`` (rows written before repeats existed are repeat 0), whose status is final.

        If another process merges pieces while they are being read (a file listed is gone), the folder is
        read again, so a point is never missed and measured twice.
        """
        while True:
            try:
                return self._measured(config_hash, run_id, repeat)
            except FileNotFoundError as e:
                log.debug("a file went away while reading (%s): reading again", e)

    def _measured(self, config_hash: str, run_id: str | None, repeat: int) -> set[PointKey]:
        done: set[PointKey] = set()
        columns = ["input_size", "batch_size", "dtype", "status", "config_hash", "run_id"]
        for path in layout.table_files(self.dir, "points"):
            try:
                has_repeat = "repeat" in pq.read_schema(path).names
                t = pq.read_table(path, columns=columns + ["repeat"] * has_repeat)
            except FileNotFoundError:
                raise
            except (OSError, pa.ArrowException) as e:
                log.warning("cannot read %s (%s): its points will be measured again", path, e)
                continue
            repeats = t.column("repeat").to_pylist() if has_repeat else [None] * t.num_rows
            for size, batch, dtype, status, hash_, run, rep in zip(
                *(t.column(c).to_pylist() for c in columns), repeats
            ):
                if status in DONE_STATUSES and hash_ == config_hash and run_id in (None, run) and (rep or 0) == repeat:
                    done.add((size, batch, dtype))
        return done

    # -- writing ----------------------------------------------------------------------------------------
    def _piece(self, table: str, key: PointKey) -> Path:
        return self.dir / layout.piece_file(table, self.run_id, key)

    def _merged(self, table: str) -> Path:
        return self.dir / layout.table_file(table, self.run_id)

    def write_point(self, point: dict[str, Any], layers: Iterable[dict[str, Any]]) -> Path:
        """Write one measured point (and its layers) durably; returns the points file."""
        key = (point["input_size"], point["batch_size"], point["dtype"])
        write_parquet_atomic(to_table(layers, LAYERS), self._piece("layers", key))
        path = self._piece("points", key)
        write_parquet_atomic(to_table([point], POINTS), path)
        return path

    def trace_path(self, key: PointKey) -> Path:
        return self.dir / layout.trace_file(self.run_id, key)

    def read_run(self) -> RunManifest | None:
        """This run's manifest (run-<run id>.json), if an earlier attempt of it wrote one."""
        path = self.dir / layout.run_file(self.run_id)
        try:
            return read_manifest(path)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            log.warning("cannot read %s: %s", path, e)
            return None

    def write_run(self, run: RunManifest | Mapping[str, Any]) -> Path:
        """Write this run's manifest (a mapping is read as one, e.g. a manifest's fields in a test)."""
        if not isinstance(run, RunManifest):
            run = RunManifest.from_dict(run)
        return write_manifest(run, self.dir / layout.run_file(self.run_id))

    def compact(self) -> list[Path]:
        """Merge this run's pieces into one points and one layers file; returns the files it wrote.

        Safe to repeat after a crash at any step: a piece whose point is already in the merged file is not
        added twice, pieces are removed only once both merged files are on disk, and a layers piece whose
        point was never committed (no points row) is dropped.
        """
        pieces = {t: self._pieces(t) for t in ("points", "layers")}
        if not pieces["points"] and not pieces["layers"]:
            return []
        committed = set(pieces["points"]) | _labels(self._merged("points"))
        written = []
        for table, schema in (("layers", LAYERS), ("points", POINTS)):
            merged = self._merged(table)
            present = _labels(merged)
            parts = [pq.read_table(merged, schema=schema)] if merged.exists() else []
            for label, path in sorted(pieces[table].items()):
                if label not in committed:
                    log.warning("dropping %s: its point was never committed", path.name)
                elif label not in present:
                    parts.append(pq.read_table(path, schema=schema))
            if parts:
                order = [(c, "ascending") for c in ("batch_size", "input_size", "layer_index") if c in schema.names]
                write_parquet_atomic(pa.concat_tables(parts).sort_by(order), merged)
                written.append(merged)
        for path in [*pieces["points"].values(), *pieces["layers"].values()]:
            path.unlink()
        return written

    def _pieces(self, table: str) -> dict[str, Path]:
        prefix = layout.piece_prefix(table, self.run_id)
        return {p.name[len(prefix) : -len(".parquet")]: p for p in self.dir.glob(f"{prefix}*.parquet")}


def _labels(path: Path) -> set[str]:
    """Point labels of the rows of a points or layers file (empty if there is no file)."""
    if not path.exists():
        return set()
    t = pq.read_table(path, columns=["input_size", "batch_size", "dtype"])
    return {point_label(k) for k in zip(*(t.column(i).to_pylist() for i in range(3)))}
