"""Exports of a package imported on first use (PEP 562's module ``__getattr__``): ``import harness`` and the
names of ``harness.algorithms`` stay free of torch until something that needs it is read."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

# name -> the module that defines it (the same name there), or (module, its name there)
Exports = Mapping[str, str | tuple[str, str]]


def export(namespace: dict[str, Any], name: str, exports: Exports) -> Any:
    """``name`` of the package whose globals are ``namespace``, imported from where ``exports`` says and kept
    there (the next read is a plain attribute); an AttributeError for a name it does not export."""
    where = exports.get(name)
    if where is None:
        raise AttributeError(f"module {namespace['__name__']!r} has no attribute {name!r}")
    module, attr = where if isinstance(where, tuple) else (where, name)
    value = getattr(importlib.import_module(module), attr)
    namespace[name] = value
    return value
