"""The ``model`` config node, validated once: a torchvision name, a model file or a factory function.

    model.name=resnet50                                   torchvision, random weights (source torchvision)
    model.name=resnet50 model.path=weights.pt             a state_dict of that architecture (state_dict)
    model.path=net.pt | net.pt2 | net.ts.pt | net.onnx    a pickled module, a torch.export program,
                                                          TorchScript, ONNX (module, export, torchscript, onnx)
    model.factory=package.module:function model.kwargs={...}   the user's own code (factory)

The name of a file or factory model (its partition folder, ``model=`` in every row) is the file's stem or the
function's name; ``model_source`` and ``model_hash`` (the file's sha256; for a factory, that of the source file
defining it) on every row keep two models of one name apart.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import ConfigError


@dataclass(frozen=True)
class ModelSpec:
    name: str  # the model's name in the results: torchvision name, file stem or factory function name
    kwargs: dict[str, Any] = field(default_factory=dict)
    source: str = "torchvision"  # harness.model_files.SOURCES
    path: Path | None = None  # absolute
    factory: str | None = None  # package.module:function
    arch: str | None = None  # a state_dict's torchvision architecture (model.name)
    input_channels: int | None = None  # given by the user; else read from the model
    content_hash: str | None = None  # sha256 of the file (factory: of its source file)

    def identity(self) -> dict[str, Any]:
        """What identifies the model in the config hash (a torchvision model: name and kwargs, as always)."""
        base = {"name": self.name, "kwargs": self.kwargs}
        if self.source == "torchvision":
            return base
        return base | {
            "source": self.source,
            "arch": self.arch,
            "factory": self.factory,
            "input_channels": self.input_channels,
            "hash": self.content_hash,
        }

    def describe(self) -> str:
        """How the user named the model, for messages."""
        if self.path is not None:
            return f"model.path={self.path}"
        if self.factory is not None:
            return f"model.factory={self.factory}"
        return f"model={self.name}"


def _label(text: str) -> str:
    """A partition-safe name: characters other than letters, digits, ``.``, ``_`` and ``-`` become ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", text) or "model"


def model_spec_from_dict(d: Mapping[str, Any]) -> ModelSpec:
    from harness import model_factory, model_files

    # torchvision: kept out of config-only paths
    from harness.torchvision_models import check_keywords, check_model_kwargs, check_model_name

    name, kwargs = str(d["name"]), dict(d.get("kwargs") or {})
    path, factory, channels = d.get("path"), d.get("factory"), d.get("input_channels")
    if channels is not None and (isinstance(channels, bool) or not isinstance(channels, int) or channels < 1):
        raise ConfigError(f"model.input_channels={channels!r} is not valid: a positive integer, e.g. 3, or null")
    if path is not None and factory is not None:
        raise ConfigError(f"model.path={path} and model.factory={factory}: give one of them")
    if path is None and factory is None:
        check_model_name(name)
        check_model_kwargs(name, kwargs)
        if channels is not None:
            raise ConfigError(
                f"model.input_channels={channels}: torchvision models take 3 channels; "
                "model.input_channels is for model.path or model.factory models"
            )
        return ModelSpec(name=name, kwargs=kwargs)
    if factory is not None:
        factory = str(factory)
        digest = model_factory.factory_hash(factory)
        check_keywords(f"model.factory={factory}", model_factory.factory_function(factory), kwargs)
        return ModelSpec(
            name=_label(factory.rpartition(":")[2]),
            kwargs=kwargs,
            source="factory",
            factory=factory,
            input_channels=channels,
            content_hash=digest,
        )
    if not isinstance(path, (str, Path)) or not str(path):
        raise ConfigError(f"model.path={path!r} is not valid: give the path of a model file, or null")
    file = Path(str(path)).expanduser().resolve()
    info = model_files.inspect_file(file, name, kwargs)
    if info.source != "state_dict" and kwargs:
        raise ConfigError(
            f"model.kwargs={kwargs}: a {info.source} file is built as saved; model.kwargs are for a "
            "state_dict's torchvision architecture or a model.factory"
        )
    return ModelSpec(
        name=_label(file.stem),
        kwargs=kwargs,
        source=info.source,
        path=file,
        arch=name if info.source == "state_dict" else None,
        input_channels=channels,
        content_hash=info.content_hash,
    )


def check_model_takes(model: ModelSpec, algo: str) -> None:
    """What the file's kind alone rules out: a TorchScript program runs ``algo=torch`` only (a torch.export
    program is checked when the job loads it: whether its convolutions can be swapped depends on its code)."""
    from harness.model_files import TORCHSCRIPT_WHY
    from harness.models import not_swappable

    if model.source == "torchscript" and algo != "torch":
        raise not_swappable(algo, model, TORCHSCRIPT_WHY)
