"""Building RunSpecs in-process through Hydra's compose API (the same config the CLI sees)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.config import compose as config_compose
from harness.config.spec import RunSpec, run_spec_from_dict


def compose_config(*overrides: str) -> dict[str, Any]:
    """harness.config.compose's composition, Hydra's errors raised as they are."""
    return compose_configs([list(overrides)])[0]


def compose_configs(override_lists: list[list[str]]) -> list[dict[str, Any]]:
    """``compose_config`` for many override lists under one Hydra initialisation."""
    return config_compose.compose_configs(override_lists)


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def make_spec(results: Path, *overrides: str) -> RunSpec:
    """A RunSpec for the CPU (``device=cpu``, also where a CUDA GPU exists), unless the overrides choose a
    device (``device=...``) or a GPU type (``gpu=...``, which refuses device=cpu)."""
    if not any(_key(o) in ("device", "gpu") for o in overrides):
        overrides = ("device=cpu", *overrides)
    return run_spec_from_dict(compose_config(f"results_dir={results}", *overrides))
