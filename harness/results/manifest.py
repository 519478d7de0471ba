"""A run's manifest: ``run-<run id>.json`` in its leaf, what the run was and how it ended.

The runner writes it when a run starts (outcome ``running``) and again when it ends; a run that died is
marked ``killed`` by the next run of its host (ResultStore.recover); ``python -m harness.status`` reads it
(outcome, attempts, planned points) and rebuilds a failed run's command from its config.

Manifests written by older versions lack fields added since: ``from_dict`` gives those their defaults and
keeps keys it does not know in ``extra``, which ``to_dict`` writes back unchanged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from harness.atomic import write_json_atomic

log = logging.getLogger(__name__)


@dataclass
class RunManifest:
    run_id: str
    schema_version: int | None = None
    started_at: str | None = None
    ended_at: str | None = None  # None while the run goes on
    outcome: str | None = None  # running, completed, interrupted, cancelled, failed, killed...
    config: dict[str, Any] | None = None  # the composed config the run was given (resolved)
    measurement_config: dict[str, Any] | None = None
    config_hash: str | None = None
    device: str | None = None
    device_name: str | None = None
    repeat: int | None = None
    repeats: int | None = None
    environment: dict[str, Any] | None = None
    hostname: str | None = None
    pid: int | None = None
    points_planned: int | None = None
    points_planned_keys: list[list[Any]] | None = None  # absent from manifests of older versions
    attempts: int = 1  # > 1: the same run resumed (a requeued SLURM job)
    slurm_job_ids: list[Any] | None = None
    cpu_threads: int | None = None
    startup_s: float | None = None  # wall seconds from the job's start to its first point (model, device, idle power)
    error: str | None = None
    points_skipped: int | None = None
    points_by_status: dict[str, int] | None = None
    files: list[str] | None = None
    references: dict[str, Any] | None = None
    recovered_by: str | None = None  # the run that marked this one killed
    source: dict[str, Any] | None = None  # the code's stamp (harness.measure.source.SourceStamp), where known
    hardware: dict[str, Any] | None = None  # the device's inventory and the peaks used (harness.measure.hardware)
    extra: dict[str, Any] = field(default_factory=dict)  # keys this version does not know, kept as they are

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> RunManifest:
        known = {f.name for f in fields(cls)} - {"extra"}
        values = {k: v for k, v in doc.items() if k in known}
        if values.get("attempts") is None:
            values.pop("attempts", None)
        return cls(**values, extra={k: v for k, v in doc.items() if k not in known})

    def to_dict(self) -> dict[str, Any]:
        """The JSON document: fields that hold a value (``ended_at`` always: null while running), then extra."""
        doc = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name != "extra" and (getattr(self, f.name) is not None or f.name == "ended_at")
        }
        return doc | self.extra


def write_manifest(manifest: RunManifest, path: Path) -> Path:
    write_json_atomic(manifest.to_dict(), path)
    return path


def read_manifest(path: Path) -> RunManifest:
    """The manifest at ``path``; OSError or ValueError (not JSON, not an object, no run_id) where unreadable."""
    doc = json.loads(path.read_text())
    if not isinstance(doc, dict) or not isinstance(doc.get("run_id"), str):
        raise ValueError("not a run manifest (no run_id)")
    return RunManifest.from_dict(doc)
