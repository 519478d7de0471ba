"""The run manifest: ``run-<run>.json``, what one run was and how it ended, as a record with one owner.

The runner writes it when the run starts (outcome ``running``) and again when it ends; a store recovering a
dead run marks it ``killed``; ``python -m harness.status`` and the analysis read it.

Reading is tolerant of manifests written before a field existed (it gets its default, None unless said)
and of fields this code does not know (kept in ``extra`` and written back unchanged), so that a manifest
read and written again by a newer or older harness loses nothing.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from harness.atomic import write_json_atomic

log = logging.getLogger(__name__)

# Written even where None: the runner has always written these two keys (ended_at null while running).
ALWAYS_WRITTEN = ("ended_at", "config")


@dataclass
class RunManifest:
    """One run's manifest. ``config`` is the run's resolved config (all of it): enough to rebuild the
    command that composes it again (harness.rerun)."""

    run_id: str
    schema_version: int | None = None
    started_at: str | None = None
    ended_at: str | None = None
    outcome: str | None = None  # running, completed, failed, cancelled, interrupted, killed
    config: dict[str, Any] | None = None
    measurement_config: dict[str, Any] | None = None
    config_hash: str | None = None
    device: str | None = None
    device_name: str | None = None
    repeat: int | None = None
    repeats: int | None = None
    environment: dict[str, Any] | None = None
    hostname: str | None = None
    pid: int | None = None
    attempts: int | None = None  # None in a manifest written before attempts were counted: read it as 1
    slurm_job_ids: list[Any] | None = None
    cpu_threads: int | None = None
    points_planned: int | None = None
    points_planned_keys: list[list[Any]] | None = None
    points_skipped: int | None = None
    points_by_status: dict[str, int] | None = None
    files: list[str] | None = None
    references: dict[str, Any] | None = None
    error: str | None = None
    recovered_by: str | None = None  # the run that found this one dead and marked it killed
    extra: dict[str, Any] = field(default_factory=dict)  # fields this code does not know, kept as read

    # -- reading ---------------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> RunManifest:
        """A manifest from its JSON document; a missing field gets its default, an unknown one is kept."""
        known = {f.name for f in fields(cls)} - {"extra"}
        if "run_id" not in doc:
            raise ValueError("a run manifest needs a run_id")
        return cls(
            **{k: v for k, v in doc.items() if k in known}, extra={k: v for k, v in doc.items() if k not in known}
        )

    @classmethod
    def from_json(cls, text: str) -> RunManifest:
        doc = json.loads(text)
        if not isinstance(doc, dict):
            raise ValueError("a run manifest is a JSON object")
        return cls.from_dict(doc)

    @classmethod
    def read(cls, path: Path) -> RunManifest:
        """The manifest at ``path``; OSError or ValueError (not JSON, not a manifest) where it cannot be."""
        return cls.from_json(path.read_text())

    # -- writing ---------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The JSON document: unset fields left out (as the runner always did), unknown ones kept."""
        doc = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name != "extra" and (getattr(self, f.name) is not None or f.name in ALWAYS_WRITTEN)
        }
        return self.extra | doc

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, default=str) + "\n"

    def write(self, path: Path) -> Path:
        """Write atomically (harness.atomic): ``path`` holds the old manifest or this one, never a part."""
        write_json_atomic(self.to_dict(), path)
        return path

    # -- what readers ask ------------------------------------------------------------------------------
    @property
    def attempt_count(self) -> int:
        """How many times the run started (1 for a manifest written before attempts were counted)."""
        return int(self.attempts or 1)

    def get(self, key: str, default: Any = None) -> Any:
        """A field or an unknown one by name, as the manifest's dict was read before it had a class."""
        value = self.to_dict().get(key)
        return default if value is None else value


def read_manifest(path: Path) -> RunManifest | None:
    """The manifest at ``path``, None where there is none; one that cannot be read is logged and None."""
    try:
        return RunManifest.read(path)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as e:
        log.warning("cannot read %s: %s", path, e)
        return None
