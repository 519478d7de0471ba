"""A job's model: loaded once (torchvision by name, or the user's file or factory) and checked against the
algorithm and sizes asked, before anything is measured.

The torchvision side lives in harness.torchvision_models and the file side in harness.model_files; this
module sits above both, so the arrows go one way. It also re-exports the torchvision names, which were
defined here before (pickled callables and old imports keep working).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import torch

from harness import model_factory, model_files
from harness.errors import ConfigError
from harness.torchvision_models import (  # noqa: F401 - re-exported: the old home of these names
    _BUILDER_ONLY,
    _MAX_PROBE_SIZE,
    _accepts,
    available_models,
    build_model,
    check_input_sizes,
    check_keywords,
    check_model_kwargs,
    check_model_name,
    keywords_taken,
    meta_model,
    min_input_size,
    refuse_below,
    smallest_accepted,
)

if TYPE_CHECKING:
    from harness.config.model import ModelSpec
    from harness.model_files import LoadedModel

log = logging.getLogger(__name__)


def load_model(spec: ModelSpec, seed: int) -> LoadedModel:
    """The model of one job, built once (its random weights seeded by ``seed``): a torchvision model by name,
    or the user's file or factory (harness.model_files)."""
    torch.manual_seed(seed)
    if spec.source == "torchvision":
        return model_files.LoadedModel(
            build_model(spec.name, spec.kwargs),
            "torchvision",
            3,
            meta_factory=lambda: meta_model(spec.name, spec.kwargs),
        )
    if spec.source == "factory":
        return model_factory.load_factory(spec.factory, spec.kwargs, spec.input_channels)
    if model_files.content_hash(spec.path) != spec.content_hash:
        raise ConfigError(
            f"{spec.describe()} changed after its config was checked (its sha256 differs): "
            "run again, so that its rows carry the hash of what was measured"
        )
    return model_files.load_file(spec.path, spec.source, spec.arch, spec.kwargs, spec.input_channels)


def check_model(
    loaded: LoadedModel, spec: ModelSpec, algo: str, sizes: tuple[int, ...], batch_sizes: tuple[int, ...]
) -> None:
    """Refuse, before anything is measured, an algorithm the model's convolutions cannot take, and sizes or
    batch sizes the model does not accept (naming the ones it does)."""
    what = spec.describe()
    if algo != "torch" and not loaded.swappable:
        raise not_swappable(algo, spec, loaded.not_swappable_why)
    if loaded.fixed_batch is not None and set(batch_sizes) != {loaded.fixed_batch}:
        raise ConfigError(
            f"{what} takes only batch size {loaded.fixed_batch} (fixed in the file; batch sizes "
            f"asked: {list(batch_sizes)}): use batch_size={loaded.fixed_batch}, or export it with a "
            f"dynamic batch dimension"
        )
    if loaded.fixed_size is not None:
        if set(sizes) != {loaded.fixed_size}:
            raise ConfigError(
                f"{what} takes only input size {loaded.fixed_size} (fixed in the file; sizes asked: "
                f"{list(sizes)}): use stage.sizes=[{loaded.fixed_size}], or export it with dynamic "
                f"height and width"
            )
        return
    if spec.source == "torchvision":
        check_input_sizes(spec.name, spec.kwargs, sizes)
        return
    meta = loaded.meta()
    minimum = smallest_accepted(meta, loaded.input_channels) if meta is not None else None
    if meta is not None and minimum is None:
        log.warning(
            "%s does not run on a %d-channel input of any size up to %d on the meta device: if %d is not "
            "its number of input channels, give model.input_channels",
            what,
            loaded.input_channels,
            _MAX_PROBE_SIZE,
            loaded.input_channels,
        )
    if minimum is not None:
        refuse_below(minimum, sizes, what)


def not_swappable(algo: str, spec: ModelSpec, why: str | None) -> ConfigError:
    return ConfigError(
        f"algo={algo} cannot run on {spec.describe()}: {why}. Only algo=torch (the framework's own "
        f"convolution) measures it; nothing was measured"
    )
