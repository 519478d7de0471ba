"""Composing a job's config as ``python -m harness`` would (Hydra's compose API; plain YAML where Hydra is not
installed). Kept in one module so that a project-wide composer can replace it."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.config.spec import CONF_DIR

log = logging.getLogger(__name__)


def override_value(text: str) -> str:
    """A value as a Hydra override writes it: bare where that is safe, else single-quoted."""
    if re.fullmatch(r"[\w./+-]+", text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def yaml_value(text: str) -> Any:
    """An override's value as Hydra reads it, for the values this module writes (numbers, bools, lists, strings)."""
    import yaml

    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1].replace("\\'", "'").replace("\\\\", "\\")
    return yaml.safe_load(text)


def compose_config(overrides: Sequence[str]) -> dict[str, Any]:
    """The resolved config of ``python -m harness OVERRIDES`` (Hydra's compose API, as the CLI sees it)."""
    try:
        from hydra import compose, initialize_config_dir
        from omegaconf import OmegaConf
    except ImportError:  # GPU-CHECKS.md: the measuring core runs without Hydra
        log.info("Hydra is not installed: composing conf/ with plain YAML")
        return compose_plain(overrides)
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=list(overrides))
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def compose_plain(overrides: Sequence[str], conf_dir: Path = CONF_DIR) -> dict[str, Any]:
    """conf/config.yaml with its group defaults and ``overrides`` applied, without Hydra.

    Enough for this module's overrides: group choices (``model=vgg16``) and values of existing keys
    (``stage.sizes=[224]``); tests/test_acceptance_plan.py checks it against Hydra's composition.
    """
    import yaml

    root = yaml.safe_load((conf_dir / "config.yaml").read_text())
    groups = [next(iter(d.items())) for d in root.pop("defaults") if isinstance(d, dict) and "/" not in next(iter(d))]
    root.pop("hydra", None)
    choices = {g: str(c) for g, c in groups}
    values = []
    for override in overrides:
        key, _, text = override.partition("=")
        if key in choices:
            choices[key] = text
        else:
            values.append((key, yaml_value(text)))
    cfg = {g: yaml.safe_load((conf_dir / g / f"{c}.yaml").read_text()) or {} for g, c in choices.items()} | root
    for key, value in values:
        *parents, leaf = key.split(".")
        node = cfg
        for p in parents:
            node = node[p]
        if leaf not in node:
            raise KeyError(f"override {key}: no such key in conf/")
        node[leaf] = value
    return cfg
