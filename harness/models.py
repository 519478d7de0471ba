"""Torchvision classification models by name, with random weights, and the input sizes they accept.

Nothing is ever downloaded: every model is built with ``weights=None``. The smallest input size a model
accepts is found from the architecture itself, by running it on PyTorch's "meta" device (shapes only, no
memory, no arithmetic), so it is right for any torchvision model, not only the ones with a config file.
"""

from __future__ import annotations

import difflib
import functools
import logging
import warnings
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


def _accepts(model: nn.Module, size: int) -> bool:
    try:
        with torch.no_grad():
            model(torch.empty(1, 3, size, size, device="meta"))
    except (RuntimeError, ValueError, IndexError, AssertionError):
        return False
    return True


@functools.lru_cache(maxsize=64)
def min_input_size(name: str, kwargs_items: tuple[tuple[str, Any], ...] = ()) -> int | None:
    """Smallest square input size the model accepts, or None if none up to 1024 works.

    Found by bisection on the meta device, assuming that a model accepting size s accepts s + 1 (true of
    every CNN in torchvision; models that take one fixed size only, like the ViTs, give None).
    """
    model = meta_model(name, dict(kwargs_items))
    if not _accepts(model, _MAX_PROBE_SIZE):
        return None
    lo, hi = 0, _MAX_PROBE_SIZE  # lo fails (or is 0), hi works
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _accepts(model, mid):
            hi = mid
        else:
            lo = mid
    log.debug("minimum input size of %s: %d", name, hi)
    return hi


def check_input_sizes(name: str, kwargs: dict[str, Any], sizes: tuple[int, ...]) -> None:
    """Refuse sizes below the model's minimum, naming that minimum."""
    minimum = min_input_size(name, tuple(sorted(kwargs.items())))
    if minimum is None:
        return  # a fixed-size model: a wrong size becomes an error row with PyTorch's own message
    too_small = [s for s in sizes if s < minimum]
    if too_small:
        raise ConfigError(
            f"input size {too_small[0]} is below the minimum input size of {name}, which is {minimum} "
            f"(sizes asked: {list(sizes)}); choose sizes >= {minimum}, e.g. stage.sizes=[{minimum},224]"
        )
