"""Checks of the values users type, shared by every command line and the Python API (issue 27).

Each validator takes the value (text from a command line, or a Python value) and returns it converted, or
raises ``InvalidValue``: a ``ConfigError`` (so Python callers catch a ``HarnessError``) that is also an
``argparse.ArgumentTypeError`` (so argparse turns it into ``argument --opt: <message>``, exit status 2).
The message is one line: the value and what is valid; ``option=`` puts the option's name first for callers
outside argparse (argparse names the option itself).

Path validators never write: an output folder that does not exist yet is accepted when it can be created
(its nearest existing ancestor is a writable folder), so a refused command leaves nothing behind, not even
an empty folder. An empty path is always refused: ``Path("")`` is the current folder, never what was meant.

``Parser`` is ``argparse.ArgumentParser`` whose usage errors are one line on stderr (``error: ...``), exit 2.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NoReturn

from harness.errors import ConfigError

BOOLEANS = {"true": True, "false": False}


class InvalidValue(ConfigError, argparse.ArgumentTypeError):
    """A value that is not valid for its option; the message names the value and what is valid."""


def _refuse(option: str | None, value: Any, valid: str) -> NoReturn:
    shown = "''" if value == "" else repr(value) if isinstance(value, str) and value.strip() != value else str(value)
    raise InvalidValue(f"{option + ' ' if option else ''}{shown} is not valid: {valid}")


def boolean(value: Any, option: str | None = None) -> bool:
    """true or false (any case), or a bool; never Python truth (``no`` is not false, it is refused)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in BOOLEANS:
        return BOOLEANS[value.lower()]
    _refuse(option, value, "give true or false")


def _number(value: Any, option: str | None, kind: type, minimum: float, strict: bool) -> Any:
    bound = f"{'>' if strict else '>='} {minimum:g}"
    valid = f"give {'an integer' if kind is int else 'a number'} {bound}"
    if isinstance(value, bool):
        _refuse(option, value, valid)
    try:
        number = kind(value) if isinstance(value, str) else value
    except ValueError:
        _refuse(option, value, valid)
    if not isinstance(number, (int, float)) or not math.isfinite(number) or (kind is int and number != int(number)):
        _refuse(option, value, valid)
    if number < minimum or (strict and number == minimum):
        _refuse(option, value, valid)
    return kind(number)


def positive_int(value: Any, option: str | None = None) -> int:
    return _number(value, option, int, 0, strict=True)


def non_negative_int(value: Any, option: str | None = None) -> int:
    return _number(value, option, int, 0, strict=False)


def positive_float(value: Any, option: str | None = None) -> float:
    return _number(value, option, float, 0, strict=True)


def non_negative_float(value: Any, option: str | None = None) -> float:
    return _number(value, option, float, 0, strict=False)


def text(value: Any, option: str | None = None) -> str:
    """Any text but the empty one (an empty filter or name would silently mean "all" or "none")."""
    if not isinstance(value, str) or not value.strip():
        _refuse(option, value, "give a non-empty value")
    return value


class choice:
    """One of ``valid`` (an argparse ``type=`` too: ``type=choice(("a", "b"))``); ``valid`` lists them."""

    def __init__(self, valid: Iterable[str]) -> None:
        self.valid = tuple(valid)
        self.__name__ = "choice"  # argparse names the type in its own messages

    def __call__(self, value: Any, option: str | None = None) -> str:
        if value not in self.valid:
            _refuse(option, value, f"valid choices: {', '.join(self.valid)}")
        return value


class auto_or:
    """``auto``, or what ``number`` accepts (e.g. ``--noise-floor auto|SD``)."""

    def __init__(self, number: Callable[[Any, str | None], Any]) -> None:
        self.number = number
        self.__name__ = f"auto_or_{number.__name__}"

    def __call__(self, value: Any, option: str | None = None) -> Any:
        if value == "auto":
            return value
        try:
            return self.number(value)
        except InvalidValue as e:
            _refuse(option, value, "give auto or " + str(e).split(": ", 1)[1].removeprefix("give "))


def path(value: Any, option: str | None = None) -> Path:
    """A path, never the empty one; whether it exists is the command's business."""
    if value is None or (isinstance(value, (str, os.PathLike)) and not str(value).strip()):
        _refuse(option, value, "give a path (an empty one would be the current folder)")
    return Path(value)


def input_path(value: Any, option: str | None = None) -> Path:
    """An existing file or folder this process can read."""
    p = path(value, option)
    if not p.exists():
        _refuse(option, value, "it does not exist")
    if not os.access(p, os.R_OK | (os.X_OK if p.is_dir() else 0)):
        _refuse(option, value, "it cannot be read (permissions)")
    return p


def _creatable(p: Path) -> str | None:
    """Why the folder ``p`` cannot be created or written, or None: its nearest existing ancestor decides."""
    here = p.absolute()
    while not here.exists():
        here = here.parent
    if not here.is_dir():
        return f"{here} is a file, not a folder"
    if not os.access(here, os.W_OK | os.X_OK):
        return f"{here} is not writable"
    return None


def output_folder(value: Any, option: str | None = None) -> Path:
    """A folder to write into: writable, or creatable (the command creates it when it writes)."""
    p = path(value, option)
    if p.exists() and not p.is_dir():
        _refuse(option, value, "it is a file; give a folder")
    problem = _creatable(p)
    if problem:
        _refuse(option, value, f"{problem}; give a writable folder")
    return p


def output_file(value: Any, option: str | None = None) -> Path:
    """A file to write: not a folder, in a folder that is writable or creatable."""
    p = path(value, option)
    if p.is_dir():
        _refuse(option, value, "it is a folder; give a file name")
    if p.exists() and not os.access(p, os.W_OK):
        _refuse(option, value, "it is not writable")
    problem = _creatable(p.parent)
    if problem:
        _refuse(option, value, f"{problem}; give a file in a writable folder")
    return p
