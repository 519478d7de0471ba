"""Files written whole or not at all: to a hidden temporary name, flushed to disk, renamed into place (atomic
on POSIX), so a crash or a full disk never leaves a half-written file. Used by the results store, plans and
reference files alike, so it lives below all of them."""

from __future__ import annotations

import json
import os
import socket
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

# Temporary files carry the writer's host and pid, so that those of a dead writer can be found and removed.
HOST = socket.gethostname()
TMP_PREFIX = f".tmp-{HOST}-{os.getpid()}-"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, write: Any) -> None:
    """Call ``write(tmp_path)``, flush it to disk, then rename it to ``path`` in one step."""
    tmp = path.with_name(f"{TMP_PREFIX}{uuid.uuid4().hex}-{path.name}")
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def write_parquet_atomic(table: pa.Table, path: Path) -> None:
    atomic_write(path, lambda tmp: pq.write_table(table, tmp))


def write_text_atomic(text: str, path: Path) -> None:
    """``path`` holds either its old content or all of ``text``, never a part (a crash, a full disk)."""
    atomic_write(path, lambda tmp: tmp.write_text(text))


def write_json_atomic(doc: dict[str, Any], path: Path) -> None:
    write_text_atomic(json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n", path)
