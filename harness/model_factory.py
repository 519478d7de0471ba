"""Models built by a factory function in the user's own code (``model.factory=package.module:function``):
importing it, hashing its source file (its code decides the model) and building the model."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import nn

from harness.errors import ConfigError
from harness.model_files import LoadedModel, _channels, _meta_copy, content_hash, first_conv_channels


def factory_function(spec: str) -> Callable[..., Any]:
    """``package.module:function`` imported (the current folder is on the import path)."""
    mod_name, colon, fn_name = spec.partition(":")
    if not colon or not mod_name or not fn_name.isidentifier():
        raise ConfigError(
            f"model.factory={spec!r} is not valid: write package.module:function, "
            f"e.g. model.factory=mynets:tiny_cnn (mynets.py in the current folder)"
        )
    try:
        module = importlib.import_module(mod_name)
    except Exception as e:  # noqa: BLE001 - ImportError, or an error in the user's module
        raise ConfigError(f"model.factory={spec}: cannot import {mod_name} ({type(e).__name__}: {e})") from None
    fn = getattr(module, fn_name, None)
    if not callable(fn):
        raise ConfigError(f"model.factory={spec}: {mod_name} has no function {fn_name}")
    return fn


def factory_hash(spec: str) -> str:
    """sha256 of the source file that defines the factory's module (its code decides the model)."""
    fn = factory_function(spec)
    try:
        source = inspect.getsourcefile(fn) or inspect.getsourcefile(inspect.getmodule(fn))
    except TypeError:  # a built-in, or a callable defined in no file
        source = None
    if source is None:
        raise ConfigError(f"model.factory={spec}: its source file cannot be found, so it cannot be hashed")
    return content_hash(Path(source))


def load_factory(spec: str, kwargs: dict[str, Any], input_channels: int | None) -> LoadedModel:
    fn = factory_function(spec)
    try:
        model = fn(**kwargs)
    except Exception as e:  # noqa: BLE001
        raise ConfigError(f"model.factory={spec} with model.kwargs={kwargs} failed: {type(e).__name__}: {e}") from None
    if not isinstance(model, nn.Module):
        raise ConfigError(f"model.factory={spec} returned a {type(model).__name__}, not an nn.Module")
    return LoadedModel(
        model.eval(),
        "factory",
        _channels(f"model.factory={spec}", first_conv_channels(model), input_channels),
        meta_factory=_meta_copy(model),
    )
