"""A run's command, rebuilt from its manifest: the overrides that compose exactly the config it recorded.

A run manifest (harness.results.manifest) keeps the run's whole resolved config. The overrides that give
it back are the config groups it chose (``stage=quick gpu=h100 algo=per_layer model=resnet18``, where
conf/ has that option) and then every value that differs from what those groups compose to
(``plan=/p/plan.json model.path=/m/net.pt stage.sizes=[32,48] results_dir=...``): a key the composed
config lacks is added (``+key=value``), one the run did not have is removed (``~key``). Composing them
again gives the same config, hence the same spec and config hash, plan and model files included.

``repeat`` is left out: it is the task's index among ``repeats``, which the sweep sets itself.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from typing import Any

from harness.config.groups import group_choices

GROUPS = ("stage", "gpu", "algo", "model", "launcher")
NOT_OVERRIDDEN = frozenset({"repeat", "hydra"})
_BARE = re.compile(r"[A-Za-z_/.][\w./+-]*")
_WORDS = frozenset({"null", "true", "false", "none", "nan", "inf"})

Composer = Callable[[list[str]], dict[str, Any]]


def hydra_value(value: Any) -> str:
    """A value as a Hydra override writes it, read back as the same value (a string stays a string)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(hydra_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{hydra_value(v)}" for k, v in value.items()) + "}"
    text = str(value)
    if _BARE.fullmatch(text) and text.lower() not in _WORDS:
        return text
    return "'" + text.replace("'", "\\'") + "'"  # Hydra: a backslash is an escape only before a quote


def group_overrides(config: dict[str, Any]) -> list[str]:
    """``group=option`` for each config group whose recorded name is one of conf/'s options."""
    chosen = []
    for group in GROUPS:
        node = config.get(group)
        name = node.get("name") if isinstance(node, dict) else None
        if isinstance(name, str) and name in group_choices(group):
            chosen.append(f"{group}={name}")
    return chosen


def value_overrides(base: dict[str, Any], config: dict[str, Any], prefix: str = "") -> list[str]:
    """The overrides that turn ``base`` into ``config`` (nested dicts key by key)."""
    out = []
    for key, value in config.items():
        path = f"{prefix}{key}"
        if not prefix and key in NOT_OVERRIDDEN:
            continue
        if key not in base:
            out.append(f"+{path}={hydra_value(value)}")
        elif isinstance(value, dict) and isinstance(base[key], dict):
            out += value_overrides(base[key], value, f"{path}.")
        elif value != base[key] or type(value) is not type(base[key]):
            out.append(f"{path}={hydra_value(value)}")
    out += [f"~{prefix}{key}" for key in base if key not in config and not (not prefix and key in NOT_OVERRIDDEN)]
    return out


def overrides_for(config: dict[str, Any], compose: Composer) -> list[str]:
    """The overrides of ``python -m harness`` that compose ``config`` (a manifest's resolved config)."""
    groups = group_overrides(config)
    return groups + value_overrides(compose(groups), config)


def command_for(config: dict[str, Any], compose: Composer, *, multirun: bool = True) -> str:
    """``python -m harness [-m] OVERRIDES``, shell-quoted; ``-m`` submits it as a sweep of one."""
    return shlex.join(["python", "-m", "harness", *(["-m"] if multirun else []), *overrides_for(config, compose)])
