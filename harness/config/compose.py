"""Hydra's composition in-process (tests, tools), its errors turned into one-line ConfigErrors.

Hydra's own errors (an override it cannot parse, a group option or key that does not exist) and OmegaConf's
(an interpolation that does not resolve: ``seed=${nothing}``) name the override in their first line; what
follows is Hydra's advice on how to see more, not about the value.
"""

from __future__ import annotations

import re
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from harness.config.spec import CONF_DIR, group_choices
from harness.errors import ConfigError


def one_line(e: Exception) -> str:
    """An error's first non-empty line (Hydra's messages go on with advice over several lines)."""
    return next((line.strip() for line in str(e).splitlines() if line.strip()), type(e).__name__)


def resolved(cfg: DictConfig) -> dict[str, Any]:
    """The composed config as a plain dict, interpolations resolved; ConfigError where one does not resolve."""
    try:
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    except OmegaConfBaseException as e:
        raise ConfigError(f"the config does not resolve: {one_line(e)}") from None


_MISSING_OPTION = re.compile(r"Could not find '(\w+)/([^']*)'")


def refusal(e: Exception) -> str:
    """Hydra's error in one line; an unknown option of a config group names the group's options."""
    missing = _MISSING_OPTION.search(str(e))
    if missing and missing.group(1) in ("stage", "model", "algo", "gpu", "launcher"):
        group, option = missing.groups()
        return f"{group}={option} is not valid; valid choices: {', '.join(group_choices(group))}"
    return f"override refused: {one_line(e)}"


def compose_config(overrides: list[str]) -> dict[str, Any]:
    """``python -m harness``'s config for ``overrides`` (without the hydra node), resolved."""
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose(config_name="config", overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as e:
        raise ConfigError(refusal(e)) from None
    return resolved(cfg)
