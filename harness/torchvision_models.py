"""Torchvision classification models by name, with random weights, and the input sizes they accept.

Nothing is ever downloaded: every model is built with ``weights=None``. The smallest input size a model
accepts is found from the architecture itself, by running it on PyTorch's "meta" device (shapes only, no
memory, no arithmetic), so it is right for any torchvision model, not only the ones with a config file.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import logging
import typing
import warnings
from collections.abc import Callable
from typing import Any

import torch
import torchvision
from torch import nn

from harness.errors import ConfigError

log = logging.getLogger(__name__)

# Largest size probed when looking for a model's minimum input size.
_MAX_PROBE_SIZE = 1024


@functools.lru_cache(maxsize=1)
def available_models() -> tuple[str, ...]:
    """Names of torchvision's classification models (not detection, segmentation, video...)."""
    return tuple(sorted(torchvision.models.list_models(module=torchvision.models)))


def check_model_name(name: str) -> None:
    """Raise ConfigError naming close matches and every valid name when ``name`` is not a model."""
    names = available_models()
    if name in names:
        return
    close = difflib.get_close_matches(name, names, n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise ConfigError(
        f"unknown model {name!r}.{hint} Valid names (torchvision classification models, "
        f"e.g. model=vgg16 or model.name=regnet_y_400mf): {', '.join(names)}"
    )


# Builder arguments a user never sets: nothing is downloaded (weights=None is the harness's).
_BUILDER_ONLY = ("weights", "progress")


def keywords_taken(fn: Callable[..., Any]) -> tuple[str, ...] | None:
    """The keyword arguments ``fn`` takes, or None where it takes any (a ``**kwargs`` that goes nowhere we can
    see). A torchvision builder passes its ``**kwargs`` to the model class its return annotation names: that
    class's arguments with a default count too (those without one are the builder's: block, layers)."""
    params = inspect.signature(fn).parameters.values()
    named = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if not any(p.kind is p.VAR_KEYWORD for p in params):
        return tuple(named)
    try:
        cls = typing.get_type_hints(fn).get("return")
    except Exception:  # noqa: BLE001 - an annotation that does not resolve: nothing to inspect
        cls = None
    if not isinstance(cls, type):
        return None
    init = inspect.signature(cls.__init__).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in init):
        return None
    return (
        *named,
        *(
            p.name
            for p in init
            if p.name != "self" and p.default is not p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        ),
    )


def check_keywords(what: str, fn: Callable[..., Any], kwargs: dict[str, Any], never: tuple[str, ...] = ()) -> None:
    """Refuse a model.kwargs key that ``fn`` (the builder of ``what``) does not take, before anything is built,
    naming the ones it takes; ``never``: arguments it takes that a user may not set."""
    taken = keywords_taken(fn)
    if taken is None:
        return
    valid = tuple(k for k in dict.fromkeys(taken) if k not in never)
    for key in kwargs:
        if key not in valid:
            raise ConfigError(
                f"model.kwargs.{key}={kwargs[key]!r} is not taken by {what}; it takes: "
                f"{', '.join(valid) or 'no keyword arguments'}"
            )


def check_model_kwargs(name: str, kwargs: dict[str, Any]) -> None:
    """A torchvision model's kwargs checked against its builder and model class (``name`` already checked)."""
    if kwargs:
        check_keywords(f"model={name}", torchvision.models.get_model_builder(name), kwargs, never=_BUILDER_ONLY)


def build_model(name: str, kwargs: dict[str, Any] | None = None) -> nn.Module:
    """The torchvision model ``name`` with random weights, in eval mode, on the current default device."""
    check_model_name(name)
    with warnings.catch_warnings():
        # GoogLeNet and Inception v3 warn that their default init will change; we never use pretrained ones.
        warnings.filterwarnings("ignore", message="The default weight initialization", category=FutureWarning)
        return torchvision.models.get_model(name, weights=None, **(kwargs or {})).eval()


def meta_model(name: str, kwargs: dict[str, Any]) -> nn.Module:
    """The model with its parameters on the meta device (built there directly where the builder allows)."""
    try:
        with torch.device("meta"):
            return build_model(name, kwargs)
    except NotImplementedError:  # builders that compute with tensors (RegNet) need real ones
        return build_model(name, kwargs).to("meta")


def _accepts(model: nn.Module, size: int, channels: int = 3) -> bool:
    try:
        with torch.no_grad():
            model(torch.empty(1, channels, size, size, device="meta"))
    except (RuntimeError, ValueError, IndexError, AssertionError):
        return False
    return True


@functools.lru_cache(maxsize=64)
def min_input_size(name: str, kwargs_items: tuple[tuple[str, Any], ...] = ()) -> int | None:
    """Smallest square input size the model accepts, or None if none up to 1024 works.

    Found by bisection on the meta device, assuming that a model accepting size s accepts s + 1 (true of
    every CNN in torchvision; models that take one fixed size only, like the ViTs, give None).
    """
    hi = smallest_accepted(meta_model(name, dict(kwargs_items)))
    log.debug("minimum input size of %s: %s", name, hi)
    return hi


def smallest_accepted(model: nn.Module, channels: int = 3) -> int | None:
    """Bisection of ``min_input_size`` on a model already on the meta device."""
    if not _accepts(model, _MAX_PROBE_SIZE, channels):
        return None
    lo, hi = 0, _MAX_PROBE_SIZE  # lo fails (or is 0), hi works
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _accepts(model, mid, channels):
            hi = mid
        else:
            lo = mid
    return hi


def check_input_sizes(name: str, kwargs: dict[str, Any], sizes: tuple[int, ...]) -> None:
    """Refuse sizes below the model's minimum, naming that minimum."""
    minimum = min_input_size(name, tuple(sorted(kwargs.items())))
    if minimum is not None:  # None: a fixed-size model: a wrong size becomes an error row with PyTorch's message
        refuse_below(minimum, sizes, name)


def refuse_below(minimum: int, sizes: tuple[int, ...], what: str) -> None:
    """ConfigError naming the first size below ``minimum`` (the smallest the model ``what`` accepts)."""
    too_small = [s for s in sizes if s < minimum]
    if too_small:
        raise ConfigError(
            f"input size {too_small[0]} is below the minimum input size of {what}, which is {minimum} "
            f"(sizes asked: {list(sizes)}); choose sizes >= {minimum}, e.g. stage.sizes=[{minimum},224]"
        )
