"""The one owner of composing the harness's config: in-process through Hydra (tests, tools, ``python -m
harness``'s refusals), and fast for a sweep's jobs (the launcher's ``FastComposer``).

Hydra's own errors (an override it cannot parse, a group option or key that does not exist) and OmegaConf's
(an interpolation that does not resolve: ``seed=${nothing}``) name the override in their first line; what
follows is Hydra's advice on how to see more, not about the value.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from harness.config.keys import LAUNCHER_ADDED
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
    if missing and missing.group(1) in GROUPS:
        group, option = missing.groups()
        return f"{group}={option} is not valid; valid choices: {', '.join(group_choices(group))}"
    return f"override refused: {one_line(e)}"


def compose_config(overrides: Sequence[str]) -> dict[str, Any]:
    """``python -m harness``'s config for ``overrides`` (without the hydra node), resolved."""
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose(config_name="config", overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as e:
        raise ConfigError(refusal(e)) from None
    return resolved(cfg)


def compose_configs(override_lists: Sequence[Sequence[str]]) -> list[dict[str, Any]]:
    """``compose_config`` for many override lists under one Hydra initialisation; Hydra's and OmegaConf's
    errors are raised as they are (``compose_config`` words them as a ConfigError)."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return [
            OmegaConf.to_container(compose(config_name="config", overrides=list(o)), resolve=True)  # type: ignore[misc]
            for o in override_lists
        ]


def without_hydra(cfg: DictConfig) -> DictConfig:
    """``cfg`` without its ``hydra`` node (a sweep's configs carry it; a job's config does not)."""
    with open_dict(cfg):
        cfg.pop("hydra", None)
    return cfg


def sweep_composer(load: Callable[[list[str]], DictConfig]) -> FastComposer:
    """The launcher's composer: ``load`` composes one job's overrides with Hydra (hydra node included),
    e.g. ``lambda o: config_loader.load_sweep_config(master, o)``."""

    def hydra_compose(overrides: list[str]) -> dict[str, Any]:
        return OmegaConf.to_container(without_hydra(load(overrides)), resolve=True)  # type: ignore[return-value]

    return FastComposer(without_hydra(load([])), CONF_DIR, hydra_compose)


def overrides_for(config: Mapping[str, Any], launcher_added: Sequence[str] = LAUNCHER_ADDED) -> list[str]:
    """Hydra overrides under which ``python -m harness`` composes ``config`` again (a resolved config, as a
    run manifest records it): each group's option where the config's ``name`` is one, then every value
    that differs from what those options compose (``key=value``), is missing from it (``+key=value``) or is
    not in the config (``~key``). ``launcher_added`` keys (a repeat's index) are the launcher's, not the
    command's: the command makes them again."""
    target = {k: v for k, v in config.items() if k not in launcher_added}
    choices = []
    for group in GROUPS:
        name = (target.get(group) or {}).get("name") if isinstance(target.get(group), Mapping) else None
        if isinstance(name, str) and name in group_choices(group):
            choices.append(f"{group}={name}")
    base = compose_configs([choices])[0]
    return [*choices, *_differences(base, target, "")]


def _differences(base: Mapping[str, Any], target: Mapping[str, Any], prefix: str) -> list[str]:
    out = []
    for key, value in target.items():
        path = f"{prefix}{key}"
        if key not in base:
            out.append(f"+{path}={override_value(value)}")
        elif isinstance(value, Mapping) and isinstance(base[key], Mapping):
            out += _differences(base[key], value, f"{path}.")
        elif isinstance(value, Mapping) != isinstance(base[key], Mapping):
            out += [f"~{path}", f"+{path}={override_value(value)}"]  # a mapping would be merged, not replaced
        elif value != base[key] or type(value) is not type(base[key]):
            out.append(f"{path}={override_value(value)}")
    out += [f"~{prefix}{key}" for key in base if key not in target]
    return out


def override_value(value: Any) -> str:
    """``value`` in Hydra's override grammar: strings quoted (so that ``'1'`` stays a string), null, bools,
    numbers, lists and mappings."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        quote = "'" if "'" not in value else '"'
        return quote + value.replace(quote, "\\" + quote) + quote
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{k}:{override_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(override_value(v) for v in value) + "]"
    raise TypeError(f"no override spelling for {type(value).__name__}: {value!r}")


GROUPS = ("stage", "model", "algo", "gpu", "launcher")
"""The config groups (conf/<group>/<option>.yaml) a fast composition replaces whole."""


class FastComposer:
    """Composing a sweep's job configs fast: one Hydra composition, then group files and values applied.

    Hydra recomposes the whole defaults tree for every job of a sweep (about 0.1 s each, twice: once to
    validate, once to launch): 30 s for a 162-job sweep. The harness's config is simple (five groups of flat
    yaml files, no nested defaults, no package directives), so for override lists made of group choices
    (``model=vgg16``) and value changes (``stage.sizes=[32]``) this applies them the way Hydra does: group
    choices replace their node, then values are merged in order with ``OmegaConf.update(merge=True)``.
    Anything else (``+key``, ``~key``, ``hydra.*``, an unknown group option, a key that does not exist, a
    value OmegaConf cannot merge, such as a list after a mapping for the same key) is composed by Hydra
    itself, which also gives its usual error. tests/test_compose.py checks that both ways give the same config.
    """

    def __init__(self, base: DictConfig, conf_dir: Path, hydra_compose: Callable[[list[str]], dict[str, Any]]) -> None:
        """``base``: the config composed with no job overrides (no hydra node); ``hydra_compose``: the slow
        path, composing one job's overrides with Hydra."""
        self.base = base
        self.conf_dir = conf_dir
        self.hydra_compose = hydra_compose
        self.parser = OverridesParser.create()
        self._groups: dict[tuple[str, str], DictConfig] = {}
        self.fast, self.slow = 0, 0

    def _group_node(self, group: str, option: str) -> DictConfig | None:
        key = (group, option)
        if key not in self._groups:
            path = self.conf_dir / group / f"{option}.yaml"
            if not path.is_file():
                return None
            self._groups[key] = OmegaConf.load(path)
        return copy.deepcopy(self._groups[key])

    def compose(self, overrides: list[str]) -> dict[str, Any]:
        composed = self._compose_fast(overrides)
        if composed is None:
            self.slow += 1
            return self.hydra_compose(overrides)
        self.fast += 1
        return composed

    def _compose_fast(self, overrides: list[str]) -> dict[str, Any] | None:
        parsed = self.parser.parse_overrides(overrides)
        cfg = copy.deepcopy(self.base)
        values = []
        for o in parsed:
            if o.is_delete() or o.is_add() or o.is_force_add() or o.package is not None or o.is_sweep_override():
                return None
            if o.key_or_group.startswith("hydra"):
                return None
            if o.key_or_group in GROUPS:
                node = self._group_node(o.key_or_group, str(o.value()))
                if node is None:
                    return None
                cfg[o.key_or_group] = node
            else:
                values.append(o)
        for o in values:
            if OmegaConf.select(cfg, o.key_or_group, throw_on_missing=False, default=_MISSING) is _MISSING:
                return None  # Hydra words the error
            try:
                OmegaConf.update(cfg, o.key_or_group, o.value(), merge=True)
            except OmegaConfBaseException:
                return None  # e.g. stage.sizes=[224] then stage.sizes={start:..}: Hydra words the error
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


_MISSING = object()
