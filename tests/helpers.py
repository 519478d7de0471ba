"""Building RunSpecs in-process through Hydra's compose API (the same config the CLI sees)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from harness.spec import CONF_DIR, RunSpec, run_spec_from_dict


def compose_config(*overrides: str) -> dict[str, Any]:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=list(overrides))
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def make_spec(results: Path, *overrides: str) -> RunSpec:
    return run_spec_from_dict(compose_config(f"results_dir={results}", *overrides))
