"""GPU SKUs (conf/skus.yaml): the one reader of the datasheet table, a device matched to its SKU, and the peaks
a run's roofline uses.

Peaks come from the SKU NVML detects, never from the GPU type's name: ``gpu=h100`` is any H100 (SXM, NVL or
PCIe: peaks differ by up to 1.9x), ``gpu=local`` any device. ``gpu.spec.*`` (conf/gpu, null by default) is an
explicit override, field by field: for a device the table does not know (state its datasheet's numbers) or
a site that caps clocks or power and wants roofs at the capped rates. A device that matches no SKU, with no
override, has no known peaks: the roofline columns stay null and the rows say so (``peaks_source``), rather
than borrowing another board's numbers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.config.groups import CONF_DIR
from harness.errors import ConfigError

PEAK_FIELDS = ("fp32_tflops", "tf32_tflops", "fp16_tflops", "mem_bw_gbs", "tdp_w")
SKU_FILE = "skus.yaml"
GIB = 1024**3


@dataclass(frozen=True)
class Sku:
    """One board as its datasheet describes it."""

    key: str  # e.g. h100_sxm
    name: str
    nvml_names: tuple[str, ...]  # regular expressions, matched whole, ignoring case
    memory_gib: tuple[float, float]  # [min, max] of NVML's total memory
    peaks: dict[str, float | None]  # PEAK_FIELDS, dense
    source: str  # the datasheet

    def matches(self, nvml_name: str, memory_bytes: int | None) -> bool:
        """Whether a device of this NVML name (and memory total, where known) is this SKU."""
        if not any(re.fullmatch(p, nvml_name.strip(), re.IGNORECASE) for p in self.nvml_names):
            return False
        low, high = self.memory_gib
        return memory_bytes is None or low <= memory_bytes / GIB <= high


@dataclass(frozen=True)
class Peaks:
    """The peaks a run's roofline uses and where they came from."""

    spec: dict[str, float | None] | None  # PEAK_FIELDS (roofline.verdict's ``spec``); None: no known peaks
    source: str  # "datasheet", "config", "datasheet+config" or "unknown"
    sku: str | None  # the matched SKU's key
    why: str  # one line for the log and the doctor

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _sku(key: str, d: Any, path: Path) -> Sku:
    if not isinstance(d, Mapping):
        raise ConfigError(f"{path}: {key} is not a mapping (name, nvml_names, memory_gib, peaks, source)")
    missing = [k for k in ("name", "nvml_names", "memory_gib", "peaks", "source") if d.get(k) is None]
    if missing:
        raise ConfigError(f"{path}: {key} lacks {', '.join(missing)}")
    peaks = d["peaks"]
    if not isinstance(peaks, Mapping) or set(peaks) != set(PEAK_FIELDS):
        raise ConfigError(f"{path}: {key}.peaks must give exactly {', '.join(PEAK_FIELDS)} (null where none)")
    for field, value in peaks.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
            raise ConfigError(f"{path}: {key}.peaks.{field}={value!r} is not a positive number or null")
    if peaks["fp32_tflops"] is None or peaks["mem_bw_gbs"] is None:
        raise ConfigError(f"{path}: {key}.peaks needs fp32_tflops and mem_bw_gbs")
    memory = d["memory_gib"]
    if not (isinstance(memory, list) and len(memory) == 2 and 0 < memory[0] <= memory[1]):
        raise ConfigError(f"{path}: {key}.memory_gib={memory!r} is not [min, max] in GiB")
    names = d["nvml_names"]
    if not isinstance(names, list) or not names:
        raise ConfigError(f"{path}: {key}.nvml_names must be a list of regular expressions")
    for pattern in names:
        try:
            re.compile(pattern)
        except (re.error, TypeError) as e:
            raise ConfigError(f"{path}: {key}.nvml_names: {pattern!r} is not a regular expression ({e})") from None
    return Sku(key, str(d["name"]), tuple(names), (float(memory[0]), float(memory[1])), dict(peaks), str(d["source"]))


def load_skus(conf_dir: Path = CONF_DIR) -> tuple[Sku, ...]:
    """Every SKU of conf/skus.yaml; ConfigError naming the file and the entry where one is not valid."""
    path = conf_dir / SKU_FILE
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"{path} cannot be read as YAML: {e}") from e
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path} is not a mapping of SKUs")
    return tuple(_sku(key, d, path) for key, d in data.items())


def match_sku(nvml_name: str | None, memory_bytes: int | None, skus: tuple[Sku, ...]) -> Sku | None:
    """The one SKU a device is; None where none matches (or, an error in the table, several)."""
    if not nvml_name:
        return None
    found = [s for s in skus if s.matches(nvml_name, memory_bytes)]
    return found[0] if len(found) == 1 else None


def overrides(spec: Mapping[str, Any] | None) -> dict[str, float]:
    """The fields of ``gpu.spec`` that are set (not null): an explicit override of the detected SKU's."""
    return {k: v for k, v in (spec or {}).items() if k in PEAK_FIELDS and v is not None}


def resolve_peaks(sku: Sku | None, spec: Mapping[str, Any] | None, device: str) -> Peaks:
    """The peaks of a device: its SKU's, each field ``gpu.spec`` sets replacing the SKU's (``device``: its name,
    for the message)."""
    given = overrides(spec)
    if sku is None and not given:
        return Peaks(
            None,
            "unknown",
            None,
            f"no known peaks for {device}: it matches no SKU of conf/{SKU_FILE} and gpu.spec gives none; "
            "the roofline columns stay null",
        )
    if sku is None:
        merged = {k: given.get(k) for k in PEAK_FIELDS}
        return Peaks(merged, "config", None, f"peaks of {device} from gpu.spec ({', '.join(sorted(given))})")
    merged = sku.peaks | given
    source = "datasheet+config" if given else "datasheet"
    why = f"{device} is {sku.name} ({sku.key}): peaks from {sku.source.split(';')[0]}"
    if given:
        why += f"; gpu.spec overrides {', '.join(sorted(given))}"
    return Peaks(merged, source, sku.key, why)
