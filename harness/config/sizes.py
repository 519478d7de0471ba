"""Input sizes (``stage.sizes``): the forms a user may write (an int, a list, a range, or one of these as a
string, as the stage files hold them) parsed into a sorted tuple of pixels, with errors naming the value."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from harness.errors import ConfigError

log = logging.getLogger(__name__)

SIZES_FORMS = (
    "an int (stage.sizes=224), a list (stage.sizes=[224,256]) or a range of evenly spaced sizes, both ends "
    "included (stage.sizes={start:224,stop:512,num:10}); in a stage yaml file the same, quoted as a string: "
    'sizes: "[224, 256]" or sizes: "{start: 224, stop: 512, num: 10}"; or the name of a grid that chooses '
    "its sizes round by round: stage.sizes=adaptive (its parameters under stage.adaptive)"
)
ADAPTIVE = "adaptive"  # the one size grid chosen by name (harness.campaign.adaptive)
_RANGE_KEYS = ("start", "stop", "num")
_logged: set[str] = set()  # deprecation messages already logged by this process (once each, not once per job)


def resolve_sizes(sizes_value: Any, range_value: Any = None) -> tuple[int, ...]:
    """Input sizes from ``stage.sizes``: an int, a list of ints, a range ``{start, stop, num}``, or one of
    these written as a string (``"[96, 224]"``, ``"96,224"``, ``"{start: 224, stop: 512, num: 10}"``).

    The stage yaml files hold a string because Hydra replaces a string with a list, a mapping or an int on
    the command line, but refuses to replace a list with a mapping or a mapping with a list.

    A range is evenly spaced with both ends included, rounded to whole pixels. Sizes come back sorted,
    without repeats.

    ``range_value`` is the deprecated ``stage.size_range`` ({start, stop, num}): where it is not null it
    wins over ``stage.sizes`` (the user typed it) and a deprecation warning names the new spelling.
    """
    if range_value is not None:
        if not isinstance(range_value, Mapping) or set(range_value) != set(_RANGE_KEYS):
            raise ConfigError(
                f"stage.size_range={range_value!r} is not valid: it needs exactly the keys start, stop, num. "
                "stage.size_range is deprecated: write stage.sizes={start:224,stop:512,num:10}"
            )
        new = "{" + ",".join(f"{k}:{range_value[k]}" for k in _RANGE_KEYS) + "}"
        _deprecated(
            "stage.size_range is deprecated and will be removed in the next release (where set, it wins over "
            f"stage.sizes): write stage.sizes={new} instead, without stage.size_range"
        )
        return _sizes_from("stage.size_range", range_value)
    return _sizes_from("stage.sizes", sizes_value)


def _deprecated(message: str) -> None:
    if message not in _logged:
        _logged.add(message)
        log.warning(message)


def is_adaptive(value: Any) -> bool:
    """Whether ``stage.sizes`` names the adaptive grid (``adaptive``, any case, spaces ignored)."""
    return isinstance(value, str) and re.sub(r"\s+", "", value).lower() == ADAPTIVE


def _sizes_from(key: str, value: Any) -> tuple[int, ...]:
    if value is None:
        raise ConfigError(f"{key} is null: give the input sizes as {SIZES_FORMS}")
    if is_adaptive(value):
        raise ConfigError(
            f"{key}=adaptive is decided round by round by python -m harness (harness.campaign.rounds), "
            "not here: give the sizes of one round as a list"
        )
    if isinstance(value, str):
        value = _parse_sizes(key, value)
    if isinstance(value, Mapping):
        if set(value) != set(_RANGE_KEYS):
            raise ConfigError(
                f"{key}={_show(value)} is not valid: a range needs exactly the keys start, stop, num, "
                "e.g. stage.sizes={start:224,stop:512,num:10}"
            )
        start, stop, num = (as_int(f"{key}.{k}", value[k]) for k in _RANGE_KEYS)
        if num < 1 or stop < start:
            raise ConfigError(f"{key}={_show(value)} is not valid: a range needs num >= 1 and stop >= start")
        sizes = [int(round(x)) for x in np.linspace(start, stop, num)]
    elif isinstance(value, (list, tuple)):
        sizes = [as_int(key, v) for v in value]
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        sizes = [as_int(key, value)]
    else:
        raise ConfigError(f"{key}={value!r} is not valid: give the input sizes as {SIZES_FORMS}")
    if not sizes:
        raise ConfigError(f"{key} is empty: give at least one input size, e.g. stage.sizes=[224]")
    bad = [s for s in sizes if s <= 0]
    if bad:
        raise ConfigError(f"input size {bad[0]} is not valid: sizes must be positive integers (pixels)")
    return tuple(sorted(set(sizes)))


def _show(value: Mapping[str, Any]) -> str:
    return "{" + ",".join(f"{k}:{v}" for k, v in value.items()) + "}"


def _parse_sizes(key: str, text: str) -> int | list[int] | dict[str, int]:
    """The string form of ``stage.sizes``, the command line's syntax: ``224``, ``[96, 224]`` (brackets
    optional: ``96,224``) or ``{start: 224, stop: 512, num: 10}``; spaces are ignored."""

    def bad() -> ConfigError:
        return ConfigError(f"{key}={text!r} is not valid: give the input sizes as {SIZES_FORMS}")

    def number(token: str) -> int:
        if not re.fullmatch(r"[+-]?\d+", token):
            raise bad()
        return int(token)

    s = re.sub(r"\s+", "", text)
    if s.startswith("{") and s.endswith("}"):
        out: dict[str, int] = {}
        for item in s[1:-1].split(","):
            name, colon, val = item.partition(":")
            if not colon or name in out:
                raise bad()
            out[name] = number(val)
        return out
    if s.startswith("[") and s.endswith("]"):
        s = s[1:-1]
        if not s:
            return []
    items = s.split(",")
    return number(items[0]) if len(items) == 1 else [number(t) for t in items]


def as_int(key: str, value: Any) -> int:
    """``value`` as an int where it is a whole number (not a bool); ConfigError naming ``key`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise ConfigError(f"{key}={value!r} is not an integer")
    return int(value)
