"""GPU types (conf/gpu/<name>.yaml): the one reader of those files and the one record they become.

A run gets its GPU type as Hydra composed it (``gpu_type_from_dict`` on the composed ``gpu`` mapping); the
doctor and the analysis, which have no composed config, read the same files through ``load_gpu_types`` and
get the same record.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.config.groups import CONF_DIR, group_choices
from harness.errors import ConfigError

DEFAULT_CONTAINER_EXEC = "apptainer exec --nv"


@dataclass(frozen=True)
class GpuType:
    """A GPU type: what its NVML name contains, its SLURM options, its datasheet numbers, and the
    environment its SLURM jobs run in (``python``, ``container``: not part of how a point is measured, so
    not in the config hash; the torch and CUDA versions are on every row)."""

    name: str
    nvml_name: str | None
    slurm: dict[str, Any] | None
    spec: dict[str, Any] | None
    python: str | None = None  # the jobs' interpreter (None: the one that submits); inside the container if any
    container: str | None = None  # an image the jobs run in, with ``container_exec``
    container_exec: str = DEFAULT_CONTAINER_EXEC


def optional_text(key: str, value: Any) -> str | None:
    """A non-empty string or None; ConfigError naming ``key`` otherwise."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{key}={value!r} is not valid: give a path (a string), or null")
    return value


def container_exec(value: Any) -> str:
    """``gpu.container_exec``: a command line that shlex can split into at least one word."""
    try:
        words = shlex.split(value) if isinstance(value, str) else []
    except ValueError:
        words = []
    if not words:
        raise ConfigError(
            f"gpu.container_exec={value!r} is not valid: give the command that runs a program in "
            f"the image, e.g. gpu.container_exec='{DEFAULT_CONTAINER_EXEC}' (the image and the "
            "interpreter follow it)"
        )
    return value


def gpu_type_from_dict(d: Mapping[str, Any], choices: tuple[str, ...] | None = None) -> GpuType:
    """The record of one GPU type's mapping (a conf/gpu file, or the ``gpu`` of a composed config); with
    ``choices``, the name must be one of them."""
    name = d.get("name")
    if choices is not None and name not in choices:
        raise ConfigError(f"unknown gpu {name!r}; valid choices: {', '.join(choices)}")
    return GpuType(
        name=name,
        nvml_name=d.get("nvml_name"),
        slurm=d.get("slurm"),
        spec=d.get("spec"),
        python=optional_text("gpu.python", d.get("python")),
        container=optional_text("gpu.container", d.get("container")),
        container_exec=container_exec(d.get("container_exec", DEFAULT_CONTAINER_EXEC)),
    )


def gpu_type(name: str, conf_dir: Path = CONF_DIR) -> GpuType | None:
    """The GPU type ``name`` as its file conf/gpu/<name>.yaml says; None where there is no such file.
    ConfigError (naming the file) where the file is not valid YAML or not a valid GPU type."""
    path = conf_dir / "gpu" / f"{name}.yaml"
    if not path.is_file():
        return None
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {e}") from e
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path} is not a mapping of a GPU type's keys (name, nvml_name, slurm, spec, ...)")
    try:
        return gpu_type_from_dict({"name": name, **data})
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from e


def load_gpu_types(conf_dir: Path = CONF_DIR) -> dict[str, GpuType]:
    """Every GPU type of conf/gpu, by name."""
    return {name: gpu_type(name, conf_dir) for name in group_choices("gpu", conf_dir)}
