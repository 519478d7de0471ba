"""Every key of the composed config, declared once: its type, its valid values where they are finite, and its
role, that is whether (and how) it can change a measured number, with the reason.

The roles decide two things. The config hash (``harness.config.spec``) holds every key that can change a
number, so that a rerun measures again what another value of it measured. The analysis keeps the rows of
different settings apart (``analysis.settings``): a setting is a key that changes what is measured, recorded
in a points column, and rows of two settings are never compared and never replace each other.

``python -m harness.config.keys`` prints the registry as a Markdown table.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Callable, Mapping
from typing import Any

from harness.config.declared_keys import KEYS  # the table, declared apart; re-exported
from harness.config.key_record import Key, Role  # re-exported: the registry's types
from harness.errors import ConfigError


class UnknownKey(KeyError):
    pass


# Keys a user's plugin declares (``declare``): checked like the harness's own, listed after them.
_DECLARED: list[Key] = []


def declare(*new: Key) -> None:
    """Declare keys that a user's plugin reads (e.g. ``declare(Key("myplugin.*", "mapping", Role.NEUTRAL,
    "my plugin's settings"))`` in the module that registers the plugin): without this, the composed config's
    check refuses them as unknown. A name the registry already covers is refused (one owner per key)."""
    for key in new:
        taken = [k.name for k in all_keys() if k.covers(key.name.removesuffix(".*")) or key.covers(k.name)]
        if taken:
            raise ValueError(f"key {key.name!r} is already declared as {taken[0]!r}")
        _DECLARED.append(key)


def all_keys() -> tuple[Key, ...]:
    return (*KEYS, *_DECLARED)


def lookup(path: str) -> Key:
    """The registry's entry for a dotted config path; UnknownKey (naming the path) where none covers it."""
    for key in all_keys():
        if key.covers(path):
            return key
    raise UnknownKey(
        f"config key {path!r} is not in harness/config/keys.py: declare its type and its role "
        f"({', '.join(r.value for r in Role)})"
    )


def of_role(role: Role) -> tuple[Key, ...]:
    return tuple(k for k in KEYS if k.role is role)


SETTINGS: tuple[Key, ...] = of_role(Role.SETTING)


def point_key() -> tuple[str, ...]:
    """The columns that identify a point across the results tree, in order: the columns of the keys whose
    role is POINT, in their order of declaration (several keys may share a column: model.name, model.path
    and model.factory all name the model). harness.results.layout.POINT_KEY is this (tests/test_results_layout.py)."""
    columns: list[str] = []
    for key in of_role(Role.POINT):
        assert key.column is not None, f"point key {key.name} names no column"
        if key.column not in columns:
            columns.append(key.column)
    return tuple(columns)


def leaves(config: dict, prefix: str = "") -> list[str]:
    """The dotted paths of a composed config's values (an empty mapping is a value: model.kwargs={})."""
    out = []
    for name, value in config.items():
        path = f"{prefix}{name}"
        if isinstance(value, dict) and value:
            out += leaves(value, path + ".")
        else:
            out.append(path)
    return out


# Keys the launcher adds to a task's config (harness.launch.submit.make_tasks), never composed by Hydra: a job's
# config carries them, so the check of a composed config accepts them by name.
LAUNCHER_ADDED = ("repeat",)


def closest(path: str) -> str | None:
    """The declared key closest to a misspelled ``path`` (an open mapping by its stem), or None."""
    names = [k.name.removesuffix(".*") for k in all_keys()]
    close = difflib.get_close_matches(path, names, n=1, cutoff=0.6)
    return close[0] if close else None


def owner(path: str) -> tuple[str, Key] | None:
    """The declared key that holds ``path`` and its own path: the key itself, an open mapping over it, or a key
    whose value is a mapping (stage.sizes={start:..}); None where nothing declares it."""
    parts = path.split(".")
    for n in range(len(parts), 0, -1):
        prefix = ".".join(parts[:n])
        try:
            return prefix, lookup(prefix)
        except UnknownKey:
            continue
    return None


def check_known(config: Mapping[str, Any]) -> None:
    """Refuse a key of the composed config that the registry does not declare (Hydra's ``+key=value`` adds
    any key, and nothing would read it), naming the closest declared key."""
    for path in leaves(dict(config)):
        if path in LAUNCHER_ADDED or owner(path) is not None or _holds_declared(path):
            continue  # _holds_declared: an empty mapping whose keys are declared (stage.slurm={})
        near = closest(path)
        hint = f"; did you mean {near}?" if near else ""
        raise ConfigError(
            f"unknown key {path!r}: nothing reads it{hint} (every key: python -m "
            "harness.config.keys; a plugin's keys: harness.config.keys.declare)"
        )


def _holds_declared(path: str) -> bool:
    return any(k.name.startswith(path + ".") for k in all_keys())


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_float(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_path(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


# A type of the registry that can be checked, and what is valid, in words.
_TYPES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "int": (_is_int, "give an integer"),
    "float": (_is_float, "give a number"),
    "mapping of float": (_is_float, "give a number"),  # a value under the mapping (tolerance.float32)
    "bool": (lambda v: isinstance(v, bool), "valid choices: true, false"),
    "str": (lambda v: isinstance(v, str), "give a string"),
    "path": (_is_path, "give a path (a non-empty string)"),
    "positive int | auto": (
        lambda v: v == "auto" or (_is_int(v) and v >= 1),
        "valid choices: auto, or a positive integer",
    ),
    "bool | auto": (lambda v: v == "auto" or isinstance(v, bool), "valid choices: auto, true, false"),
    "int | list[int]": (
        lambda v: _is_int(v) or (isinstance(v, list) and all(_is_int(x) for x in v)),
        "give an integer or a list of integers",
    ),
}


def checkable(key: Key) -> bool:
    """Whether ``check`` checks values of ``key`` (its type is one of _TYPES, or it lists its choices)."""
    return key.type in _TYPES or key.choices is not None


def check(path: str, value: Any) -> Any:
    """``value`` if it has the type and is among the choices that the registry declares for ``path``; else
    ConfigError naming the key, the value and what is valid. Ranges (positive, below another key) are the
    config's border's (harness.config.spec)."""
    key = lookup(path)
    if value is None:
        if key.nullable:
            return value
        raise ConfigError(f"{path}=null is not valid; {_valid(key)}")
    test = _TYPES.get(key.type)
    if test is not None and key.type in ("bool", "bool | auto"):  # their choices are the type's
        if not test[0](value):
            raise ConfigError(f"{path}={value!r} is not valid; {_valid(key)}")
        return value
    if key.choices is not None and value not in key.choices:
        raise ConfigError(f"unknown {path} {value!r}; valid choices: {', '.join(key.choices)}")
    if test is not None and not test[0](value):
        raise ConfigError(f"{path}={value!r} is not valid; {_valid(key)}")
    return value


def _valid(key: Key) -> str:
    if key.type in _TYPES:
        what = _TYPES[key.type][1]
    elif key.choices is not None:
        what = f"valid choices: {', '.join(key.choices)}"
    else:
        what = f"give a {key.type}"
    return what + (", or null" if key.nullable else "")


def check_config(config: Mapping[str, Any]) -> None:
    """The composed config against the registry: every key declared, every checkable value valid."""
    check_known(config)
    checked: set[str] = set()
    for path in leaves(dict(config)):
        held = owner(path)
        if held is None or held[0] in checked or not checkable(held[1]):
            continue
        checked.add(held[0])
        check(held[0], _value_at(config, held[0]))


def _value_at(config: Mapping[str, Any], path: str) -> Any:
    value: Any = config
    for part in path.split("."):
        value = value[part]
    return value


def markdown() -> str:
    rows = ["| key | type | role | valid values | column | why |", "|---|---|---|---|---|---|"]
    for k in all_keys():
        rows.append(
            f"| `{k.name}` | {k.type} | {k.role.value} | {', '.join(k.choices) if k.choices else ''} | "
            f"{k.column or ''} | {k.why} |"
        )
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown())
