"""The references file: what it holds, validated from a plain document (YAML's) and turned back into one.

    format: conv-harness-references
    version: 1
    created_at: 2026-11-25T15:00:00Z
    source: {trees: [results], selection: [...], filters: {...}}     # how it was blessed (free form)
    gpus:
      h100:                                                          # the configured gpu type
        - stage: quick                                               # the point key within the gpu type
          model: resnet50
          algo: gemm
          input_size: 224
          batch_size: 1
          dtype: float32
          settings: {backend: cudnn, math_type: fma, ...}            # what changes the measurement (known ones)
          p50_ms: 3.21                                               # the reference and its uncertainty
          ci95_low_ms: 3.19
          ci95_high_ms: 3.24
          std_ms: 0.02
          n: 120
          tolerance: 0.0079                                          # relative; see analysis.bless
          energy_per_inference_j: 0.91
          measured: {run_id: ..., measured_at: ..., device_name: ..., cudnn_version: ...}   # provenance

Every problem is a ReferencesError naming the file, the place in it and what is expected.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.errors import InputFileError

FORMAT = "conv-harness-references"
VERSION = 1
# The point key within a gpu type (the gpu type is the section), and the settings that change what a point
# measures: an entry constrains only the settings it knows (imported rows know few).
KEY = ("stage", "model", "algo", "input_size", "batch_size", "dtype")
SETTINGS = ("backend", "math_type", "fallback_policy", "cudnn_benchmark", "cuda_graph")
STATUSES = ("within", "faster", "slower", "no_reference")
_NUMBERS = ("ci95_low_ms", "ci95_high_ms", "std_ms", "energy_per_inference_j")


class ReferencesError(InputFileError):
    """A references file that cannot be used, in words that say where and why."""


@dataclass(frozen=True)
class Entry:
    """One blessed point: its key, the settings it was measured with, and its statistics."""

    gpu: str
    stage: str
    model: str
    algo: str
    input_size: int
    batch_size: int
    dtype: str
    p50_ms: float
    tolerance: float
    settings: dict[str, Any] = field(default_factory=dict)
    ci95_low_ms: float | None = None
    ci95_high_ms: float | None = None
    std_ms: float | None = None
    n: int | None = None
    energy_per_inference_j: float | None = None
    measured: dict[str, Any] = field(default_factory=dict)

    def key(self) -> tuple:
        return tuple(getattr(self, k) for k in KEY)

    def label(self) -> str:
        settings = " ".join(f"{k}={v}" for k, v in self.settings.items())
        return (
            f"{self.gpu} {self.stage} {self.model} {self.algo} s{self.input_size} b{self.batch_size} "
            f"{self.dtype} {settings}"
        ).strip()

    def matches(self, row: Mapping[str, Any]) -> bool:
        """Whether ``row`` (a points row) has every setting this entry knows."""
        return all(row.get(k) == v for k, v in self.settings.items())

    def to_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {k: getattr(self, k) for k in KEY}
        doc["settings"] = dict(self.settings)
        doc |= {
            "p50_ms": self.p50_ms,
            "ci95_low_ms": self.ci95_low_ms,
            "ci95_high_ms": self.ci95_high_ms,
            "std_ms": self.std_ms,
            "n": self.n,
            "tolerance": self.tolerance,
            "energy_per_inference_j": self.energy_per_inference_j,
            "measured": dict(self.measured),
        }
        return doc


@dataclass
class References:
    """A whole file: entries per gpu type, and where they came from."""

    gpus: dict[str, list[Entry]]
    created_at: str | None = None
    source: dict[str, Any] = field(default_factory=dict)
    path: str | None = None  # where it was read from, for messages
    _index: dict[tuple, list[Entry]] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for gpu, entries in self.gpus.items():
            for e in entries:
                self._index.setdefault((gpu, *e.key()), []).append(e)

    def lookup(self, gpu: str, row: Mapping[str, Any]) -> Entry | None:
        """The entry for a points row of ``gpu``: same key, every setting the entry knows equal to the row's
        (the most specific where several do)."""
        candidates = self._index.get((gpu, *(row.get(k) for k in KEY)), [])
        fitting = [e for e in candidates if e.matches(row)]
        return max(fitting, key=lambda e: len(e.settings)) if fitting else None

    def entries(self) -> int:
        return sum(len(v) for v in self.gpus.values())

    def to_doc(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "created_at": self.created_at,
            "source": self.source,
            "gpus": {gpu: [e.to_doc() for e in entries] for gpu, entries in sorted(self.gpus.items())},
        }


def parse(doc: Any, where: str = "references") -> References:
    """Validate a document (as YAML loads it) into References, or raise ReferencesError."""
    if not isinstance(doc, Mapping):
        raise ReferencesError(f"{where}: not a references file (expected a mapping with format: {FORMAT})")
    if doc.get("format") != FORMAT:
        raise ReferencesError(
            f"{where}: format is {doc.get('format')!r}, expected {FORMAT!r} (write one with "
            f"python -m analysis.bless)"
        )
    if doc.get("version") != VERSION:
        raise ReferencesError(
            f"{where}: version {doc.get('version')!r} is not one this harness reads " f"(valid: {VERSION})"
        )
    gpus = doc.get("gpus")
    if not isinstance(gpus, Mapping) or not gpus:
        raise ReferencesError(f"{where}: gpus must be a mapping of gpu type -> list of entries, and not empty")
    out: dict[str, list[Entry]] = {}
    for gpu, entries in gpus.items():
        if not isinstance(entries, list):
            raise ReferencesError(f"{where}: gpus.{gpu} must be a list of entries")
        parsed = [_entry(str(gpu), e, f"{where}: gpus.{gpu}[{i}]") for i, e in enumerate(entries)]
        seen: dict[tuple, int] = {}
        for i, e in enumerate(parsed):
            ident = (e.key(), tuple(sorted(e.settings.items(), key=lambda kv: kv[0])))
            if ident in seen:
                raise ReferencesError(
                    f"{where}: gpus.{gpu}[{i}] repeats the point of gpus.{gpu}[{seen[ident]}] " f"({e.label()})"
                )
            seen[ident] = i
        out[str(gpu)] = parsed
    source = doc.get("source") or {}
    if not isinstance(source, Mapping):
        raise ReferencesError(f"{where}: source must be a mapping")
    created = doc.get("created_at")
    return References(out, None if created is None else str(created), dict(source), where)


def _entry(gpu: str, e: Any, where: str) -> Entry:
    if not isinstance(e, Mapping):
        raise ReferencesError(f"{where}: an entry must be a mapping with {', '.join(KEY)}, p50_ms, tolerance")
    missing = [k for k in (*KEY, "p50_ms", "tolerance") if e.get(k) is None]
    if missing:
        raise ReferencesError(f"{where}: missing {', '.join(missing)}")
    for k in ("stage", "model", "algo", "dtype"):
        if not isinstance(e[k], str) or not e[k]:
            raise ReferencesError(f"{where}.{k}: expected a name, got {e[k]!r}")
    ints = {k: _count(e[k], f"{where}.{k}") for k in ("input_size", "batch_size")}
    settings = e.get("settings") or {}
    if not isinstance(settings, Mapping):
        raise ReferencesError(f"{where}.settings: expected a mapping of {', '.join(SETTINGS)}")
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        raise ReferencesError(f"{where}.settings: unknown {', '.join(map(str, unknown))}; valid: {', '.join(SETTINGS)}")
    numbers = {k: _number(e.get(k), f"{where}.{k}", optional=True) for k in _NUMBERS}
    n = e.get("n")
    measured = e.get("measured") or {}
    if not isinstance(measured, Mapping):
        raise ReferencesError(f"{where}.measured: expected a mapping")
    return Entry(
        gpu=gpu,
        stage=e["stage"],
        model=e["model"],
        algo=e["algo"],
        dtype=e["dtype"],
        **ints,
        p50_ms=_number(e["p50_ms"], f"{where}.p50_ms", positive=True),
        tolerance=_number(e["tolerance"], f"{where}.tolerance"),
        settings={k: v for k, v in settings.items() if v is not None},
        n=None if n is None else _count(n, f"{where}.n"),
        measured={str(k): v for k, v in measured.items()},
        **numbers,
    )


def _count(v: Any, where: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
        raise ReferencesError(f"{where}: expected a positive integer, got {v!r}")
    return v


def _number(v: Any, where: str, *, positive: bool = False, optional: bool = False) -> float | None:
    if v is None and optional:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0 or (positive and v == 0):
        raise ReferencesError(f"{where}: expected a {'positive' if positive else 'non-negative'} number, got {v!r}")
    return float(v)
