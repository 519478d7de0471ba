"""Building RunSpecs in-process through Hydra's compose API (the same config the CLI sees)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from harness.config.spec import CONF_DIR, RunSpec, run_spec_from_dict


def compose_config(*overrides: str) -> dict[str, Any]:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=list(overrides))
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def compose_configs(override_lists: list[list[str]]) -> list[dict[str, Any]]:
    """``compose_config`` for many override lists under one Hydra initialisation."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return [
            OmegaConf.to_container(compose(config_name="config", overrides=list(o)), resolve=True)
            for o in override_lists
        ]  # type: ignore[misc]


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def make_spec(results: Path, *overrides: str) -> RunSpec:
    """A RunSpec for the CPU (``device=cpu``, also where a CUDA GPU exists), unless the overrides choose a
    device (``device=...``) or a GPU type (``gpu=...``, which refuses device=cpu)."""
    if not any(_key(o) in ("device", "gpu") for o in overrides):
        overrides = ("device=cpu", *overrides)
    return run_spec_from_dict(compose_config(f"results_dir={results}", *overrides))
