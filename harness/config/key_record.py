"""The record of one config key (``Key``) and what it may do to a measured number (``Role``): the types of the
registry (harness.config.keys), apart from the table of keys (harness.config.declared_keys)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Role(str, Enum):
    POINT = "point"  # part of the point key (stage, gpu, model, algo, input_size, batch_size, dtype)
    SETTING = "setting"  # changes what is measured: hashed, recorded per row, never compared across
    HASHED = "hashed"  # changes how (how long, how checked) the same quantity is measured: hashed; newest row wins
    ENVIRONMENT = "environment"  # chooses the node or software a job runs on: recorded per row, not hashed
    NEUTRAL = "neutral"  # cannot change a measured number


@dataclass(frozen=True)
class Key:
    """One key of the composed config. ``name`` is its dotted path; a name ending in ``.*`` covers the mapping
    and any key under it (sbatch options, a model's constructor arguments)."""

    name: str
    type: str
    role: Role
    why: str
    choices: tuple[str, ...] | None = None  # valid values, where finite (config groups: conf/<group>/*.yaml)
    column: str | None = None  # the points column that records it (settings and point-key parts)
    option: str | None = None  # the analysis' filter option for a setting (--math fma)
    nullable: bool = False  # null is a valid value (an optional file, "unknown" datasheet numbers)

    def covers(self, path: str) -> bool:
        if self.name.endswith(".*"):
            stem = self.name[:-2]
            return path == stem or path.startswith(stem + ".")
        return path == self.name
