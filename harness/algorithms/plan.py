"""A per-layer plan: which algorithm runs each conv layer of one model, why, and what it is valid for.

A plan is a small JSON file (``python -m analysis.plan make`` writes one; ``show`` prints it)::

    {"format": "conv-harness-plan", "version": 1,
     "valid_for": {"model": "resnet18", "gpu": "local", "device_name": "...", "dtype": "float32",
                   "input_size": 32, "batch_size": 1, "cudnn_version": null, "backend": "reference"},
     "baseline": "torch",                # what a tie keeps (guess on a GPU, torch where guess was not measured)
     "made_by": "analysis.plan make results (stage sanity)",
     "layers": [                         # one entry per nn.Conv2d, in module order
       {"name": "conv1", "geometry": {"in_channels": 3, "out_channels": 64, "kernel": [7, 7], "stride": [2, 2],
                                      "padding": [3, 3], "dilation": [1, 1], "groups": 1},
        "in_hw": [32, 32], "algo": "torch", "source": "tie",
        "winner": {"algo": "gemm", "p50_ms": 0.21, "ci95_low_ms": 0.2, "ci95_high_ms": 0.22},
        "runner_up": {"algo": "torch", ...}, "baseline": {"algo": "torch", ...}}, ...]}

A training plan (``version: 2``) chooses per layer for each direction of a training step: every layer entry
also carries ``"algo_backward_data"`` and ``"algo_backward_filter"`` (``algo`` stays the forward's); its
``choice()`` is {layer: {direction: algo}}. A plan without them is written as version 1, as before, and
version-1 files load unchanged (forward only). Every layer of a training plan carries both keys.

``source`` says where a layer's choice came from: ``measured`` (the fastest beyond noise among the
algorithms measured at that layer), ``tie`` (the fastest was within noise of the baseline: the baseline is
kept, so a plan never switches on noise), ``baseline`` (nothing else was measured there, or the baseline's
own time there is host-bound, the host's issuing rather than the GPU's: no evidence to switch; the note says
which), ``find`` (cuDNN's exhaustive search) or ``predicted`` (the predictor, for a shape never measured).

Using a plan on a model whose conv layers differ (names, count or geometry) is refused, naming the first
layer that differs (``PlanMismatch``); using it for another GPU type, dtype, input size, batch size or cuDNN
version only warns (``mismatched_context``): the plan runs, but its evidence was measured elsewhere.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.algorithms import registry
from harness.algorithms.cudnn_enums import DIRECTIONS as _DIRECTION_ENUMS
from harness.algorithms.geometry import ConvGeometry
from harness.atomic import write_text_atomic
from harness.errors import InputFileError

if TYPE_CHECKING:  # torch only where a model is read (conv_layers): plans are read and written without it
    from torch import nn

FORMAT = "conv-harness-plan"
VERSION = 1  # a forward-only plan (the format before training plans; older harnesses read it)
TRAINING_VERSION = 2  # a training plan: one algorithm per layer per direction
DIRECTIONS = tuple(_DIRECTION_ENUMS)  # forward, backward_data, backward_filter
BACKWARD = DIRECTIONS[1:]
SOURCES = ("measured", "tie", "baseline", "find", "predicted")
KEY_FIELDS = ("model", "gpu", "device_name", "dtype", "input_size", "batch_size", "cudnn_version", "backend")
# Our algorithm names in the spelling of ai3's per-layer selection (swap_conv2d with a list): its
# SUPPORTED_ALGORITHMS for conv2d, and the fork with all eight cuDNN algorithms for the other three.
AI3_NAMES = {
    "implicit_gemm": "implicit gemm",
    "implicit_precomp_gemm": "implicit precomp gemm",
    "gemm": "gemm",
    "direct": "direct",
    "fft": "fft",
    "fft_tiling": "fft tiling",
    "winograd": "winograd",
    "winograd_nonfused": "winograd nonfused",
    "guess": "guess",
}


class PlanError(InputFileError):
    """A plan file that cannot be read or is malformed (the message names the file and what is wrong)."""


class PlanMismatch(PlanError):
    """A plan whose layers are not the model's conv layers (names, count or geometry)."""


def per_direction(choice: str | Mapping[str, str], default: str = "torch") -> dict[str, str]:
    """{direction: algo} for all of DIRECTIONS from one name (the same in every direction) or a mapping (a
    direction it leaves out: ``default``, the framework's own); ValueError naming the valid directions for an
    unknown one."""
    if isinstance(choice, str):
        return dict.fromkeys(DIRECTIONS, choice)
    unknown = sorted(set(choice) - set(DIRECTIONS))
    if unknown:
        raise ValueError(f"unknown direction {', '.join(map(repr, unknown))}; valid: {', '.join(DIRECTIONS)}")
    return {d: str(choice.get(d, default)) for d in DIRECTIONS}


@dataclass(frozen=True)
class Evidence:
    """One algorithm's latency at a layer: its median and 95% interval (ms)."""

    algo: str
    p50_ms: float | None
    ci95_low_ms: float | None = None
    ci95_high_ms: float | None = None


@dataclass(frozen=True)
class PlanLayer:
    name: str
    geometry: ConvGeometry
    algo: str
    source: str
    in_hw: tuple[int, int] | None = None  # the layer's own input height and width where the plan was made
    winner: Evidence | None = None
    runner_up: Evidence | None = None
    baseline: Evidence | None = None
    note: str | None = None
    # a training plan's choices for the backward directions (None in a forward-only plan; ``algo``: forward's)
    algo_backward_data: str | None = None
    algo_backward_filter: str | None = None

    @property
    def is_training(self) -> bool:
        return self.algo_backward_data is not None or self.algo_backward_filter is not None

    def algos(self) -> dict[str, str]:
        """{direction: algo} (a forward-only layer: its forward algorithm alone)."""
        if not self.is_training:
            return {"forward": self.algo}
        return {
            "forward": self.algo,
            "backward_data": str(self.algo_backward_data),
            "backward_filter": str(self.algo_backward_filter),
        }


@dataclass(frozen=True)
class PlanKey:
    """What a plan is valid for."""

    model: str
    gpu: str | None = None
    device_name: str | None = None
    dtype: str = "float32"
    input_size: int | None = None
    batch_size: int | None = None
    cudnn_version: str | None = None
    backend: str | None = None


@dataclass(frozen=True)
class Plan:
    key: PlanKey
    layers: tuple[PlanLayer, ...]
    baseline: str = "torch"
    made_by: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. the plan's own projection of the model latency

    @property
    def is_training(self) -> bool:
        """Whether the plan chooses per direction (a training plan, version 2)."""
        return any(layer.is_training for layer in self.layers)

    def choice(self) -> dict[str, str] | dict[str, dict[str, str]]:
        """What ``swap`` takes: {module path: algorithm}, or for a training plan {module path: {direction:
        algorithm}}."""
        if self.is_training:
            return {layer.name: layer.algos() for layer in self.layers}
        return {layer.name: layer.algo for layer in self.layers}

    def algorithms(self) -> tuple[str, ...]:
        """The distinct algorithms the plan runs (in any direction), in order of first use."""
        return tuple(dict.fromkeys(a for layer in self.layers for a in layer.algos().values()))

    def digest(self) -> str:
        """Hash of what decides what runs (model, layer names, geometry, algorithms): the same choices made
        from other evidence hash the same; any other choice hashes differently. A forward-only plan hashes
        as before training plans existed."""
        layers = [
            [la.name, _geometry_dict(la.geometry), la.algo]
            + ([la.algo_backward_data, la.algo_backward_filter] if la.is_training else [])
            for la in self.layers
        ]
        what = {"model": self.key.model, "layers": layers}
        return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": TRAINING_VERSION if self.is_training else VERSION,
            "plan_hash": self.digest(),
            "valid_for": asdict(self.key),
            "baseline": self.baseline,
            "made_by": self.made_by,
            **({"extra": self.extra} if self.extra else {}),
            "layers": [_layer_dict(layer) for layer in self.layers],
        }

    @classmethod
    def from_dict(cls, d: Any, where: str = "plan") -> Plan:
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise PlanError(f'{where}: not a plan file (no "format": "{FORMAT}")')
        version = d.get("version")
        if version not in (VERSION, TRAINING_VERSION):
            raise PlanError(
                f"{where}: plan version {version!r}; this harness reads versions {VERSION} (forward) "
                f"and {TRAINING_VERSION} (training)"
            )
        key = d.get("valid_for")
        if not isinstance(key, dict) or not key.get("model"):
            raise PlanError(f'{where}: "valid_for" must hold at least the model')
        unknown = set(key) - set(KEY_FIELDS)
        if unknown:
            raise PlanError(f"{where}: unknown keys in valid_for: {sorted(unknown)}; valid: {', '.join(KEY_FIELDS)}")
        layers = d.get("layers")
        if not isinstance(layers, list) or not layers:
            raise PlanError(f'{where}: "layers" must be a non-empty list, one entry per conv layer')
        parsed = tuple(_layer_from(x, i, where) for i, x in enumerate(layers))
        _check_directions(parsed, version, where)
        return cls(
            PlanKey(**key),
            parsed,
            str(d.get("baseline", "torch")),
            str(d.get("made_by", "")),
            dict(d.get("extra") or {}),
        )


def _check_directions(layers: tuple[PlanLayer, ...], version: int, where: str) -> None:
    """A version-2 plan chooses every backward direction of every layer; a version-1 plan none."""
    keys = " and ".join(f'"algo_{d}"' for d in BACKWARD)
    for i, layer in enumerate(layers):
        both = layer.algo_backward_data is not None and layer.algo_backward_filter is not None
        if version == VERSION and layer.is_training:
            raise PlanError(
                f"{where}: layers[{i}] ({layer.name}) has {keys}, which only a version-{TRAINING_VERSION} "
                f"(training) plan has; this file says version {VERSION}"
            )
        if version == TRAINING_VERSION and not both:
            raise PlanError(f"{where}: layers[{i}] ({layer.name}): a training plan's layer needs {keys}")


def _geometry_dict(g: ConvGeometry) -> dict[str, Any]:
    return {f.name: list(v) if isinstance(v := getattr(g, f.name), tuple) else v for f in fields(g)}


def _layer_dict(layer: PlanLayer) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": layer.name,
        "geometry": _geometry_dict(layer.geometry),
        "in_hw": list(layer.in_hw) if layer.in_hw else None,
        "algo": layer.algo,
        **({f"algo_{d}": a for d, a in layer.algos().items() if d != "forward"} if layer.is_training else {}),
        "source": layer.source,
    }
    for part in ("winner", "runner_up", "baseline"):
        ev = getattr(layer, part)
        out[part] = asdict(ev) if ev is not None else None
    if layer.note:
        out["note"] = layer.note
    return out


def _layer_from(x: Any, i: int, where: str) -> PlanLayer:
    known = registry.names()  # at call time: algorithms registered since import count
    if not isinstance(x, dict):
        raise PlanError(f"{where}: layers[{i}] is not a mapping")
    try:
        g = x["geometry"]
        geometry = ConvGeometry(
            int(g["in_channels"]),
            int(g["out_channels"]),
            _pair(g["kernel"]),
            _pair(g["stride"]),
            _pair(g["padding"]),
            _pair(g["dilation"]),
            int(g["groups"]),
        )
        name, algo, source = str(x["name"]), str(x["algo"]), str(x.get("source", "measured"))
    except (KeyError, TypeError, ValueError) as e:
        raise PlanError(
            f"{where}: layers[{i}] is malformed ({type(e).__name__}: {e}); each layer needs name, "
            "geometry (in_channels, out_channels, kernel, stride, padding, dilation, groups) and algo"
        ) from None
    backward = {d: None if x.get(f"algo_{d}") is None else str(x[f"algo_{d}"]) for d in BACKWARD}
    for what, a in (("algo", algo), *((f"algo_{d}", b) for d, b in backward.items() if b is not None)):
        if a not in known:
            raise PlanError(f"{where}: layers[{i}] ({name}): unknown {what} {a!r}; valid: {', '.join(known)}")
    if source not in SOURCES:
        raise PlanError(f"{where}: layers[{i}] ({name}): unknown source {source!r}; valid: {', '.join(SOURCES)}")
    evidence = {
        p: Evidence(**x[p]) if isinstance(x.get(p), dict) else None for p in ("winner", "runner_up", "baseline")
    }
    in_hw = tuple(int(v) for v in x["in_hw"]) if x.get("in_hw") else None
    return PlanLayer(
        name,
        geometry,
        algo,
        source,
        in_hw,
        note=x.get("note"),
        **evidence,
        **{f"algo_{d}": b for d, b in backward.items()},
    )


def _pair(v: Any) -> tuple[int, int]:
    return (int(v[0]), int(v[1])) if isinstance(v, (list, tuple)) else (int(v), int(v))


def write(plan: Plan, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(json.dumps(plan.to_dict(), indent=1) + "\n", path)
    return path


def read(path: str | Path) -> Plan:
    path = Path(path)
    try:
        d = json.loads(path.read_text())
    except FileNotFoundError:
        raise PlanError(f"plan {path}: no such file") from None
    except (OSError, json.JSONDecodeError) as e:
        raise PlanError(f"plan {path}: cannot be read ({e})") from None
    return Plan.from_dict(d, f"plan {path}")


def conv_layers(model: nn.Module) -> list[tuple[str, nn.Conv2d]]:
    """The model's nn.Conv2d modules in module order (the order of a plan and of ai3's list)."""
    from torch import nn

    return [(name, m) for name, m in model.named_modules() if type(m) is nn.Conv2d]


def check_model(plan: Plan, model: nn.Module) -> None:
    """Refuse (PlanMismatch) a plan whose layers are not ``model``'s conv layers, naming the first that differs."""
    convs = conv_layers(model)
    for i, layer in enumerate(plan.layers):
        if i >= len(convs):
            raise PlanMismatch(
                f"plan for {plan.key.model} does not fit this model: plan layer {i} ({layer.name}) "
                f"is beyond the model's {len(convs)} conv layers"
            )
        name, conv = convs[i]
        if name != layer.name:
            raise PlanMismatch(
                f"plan for {plan.key.model} does not fit this model: conv layer {i} is {name} in "
                f"the model and {layer.name} in the plan"
            )
        geometry = ConvGeometry.of(conv)
        if geometry != layer.geometry:
            raise PlanMismatch(
                f"plan for {plan.key.model} does not fit this model: conv layer {i} ({name}) is "
                f"{geometry.describe()} in the model and {layer.geometry.describe()} in the plan"
            )
    if len(convs) > len(plan.layers):
        raise PlanMismatch(
            f"plan for {plan.key.model} does not fit this model: the model's conv layer "
            f"{len(plan.layers)} ({convs[len(plan.layers)][0]}) is not in the plan "
            f"({len(plan.layers)} layers, the model has {len(convs)})"
        )


def mismatched_context(plan: Plan, **here: Any) -> list[str]:
    """What differs between where the plan was made and where it is used (``here``: KEY_FIELDS values; a
    value that is None on either side is not compared). One sentence per difference, for a warning."""
    out = []
    for k, v in here.items():
        mine = getattr(plan.key, k)
        if mine is not None and v is not None and str(mine) != str(v):
            out.append(f"the plan was made for {k}={mine}, this run has {k}={v}")
    return out


def ai3_algorithms(plan: Plan, torch_as: str = "guess") -> list[str]:
    """One ai3 algorithm name per conv layer, in module order (``ai3.swap_conv2d(model, this_list)``).

    ai3 has no "leave this layer to PyTorch": a layer the plan keeps on ``torch`` is written as
    ``torch_as`` (default ``guess``, cuDNN's heuristic, what PyTorch's convolution runs with
    cudnn.benchmark off)."""
    names = {**AI3_NAMES, "torch": torch_as}
    return [names[layer.algo] for layer in plan.layers]


CSV_COLUMNS = (
    "index",
    "name",
    "geometry",
    "in_hw",
    "algo",
    "source",
    "winner",
    "winner_p50_ms",
    "winner_ci95",
    "runner_up",
    "runner_up_p50_ms",
    "runner_up_ci95",
    "baseline",
    "baseline_p50_ms",
    "note",
)
TRAINING_CSV_COLUMNS = (*CSV_COLUMNS[:5], *(f"algo_{d}" for d in BACKWARD), *CSV_COLUMNS[5:])


def csv_columns(plan: Plan) -> tuple[str, ...]:
    """The CSV's columns: a training plan's also say the backward directions' algorithms, after ``algo``."""
    return TRAINING_CSV_COLUMNS if plan.is_training else CSV_COLUMNS


def csv_rows(plan: Plan) -> Iterable[dict[str, Any]]:
    def ci(ev: Evidence | None) -> str:
        return (
            f"{ev.ci95_low_ms:.4g}..{ev.ci95_high_ms:.4g}"
            if ev and ev.ci95_low_ms is not None and ev.ci95_high_ms is not None
            else ""
        )

    for i, layer in enumerate(plan.layers):
        w, r, b = layer.winner, layer.runner_up, layer.baseline
        yield {
            "index": i,
            "name": layer.name,
            "geometry": layer.geometry.describe(),
            "in_hw": "x".join(map(str, layer.in_hw)) if layer.in_hw else "",
            "algo": layer.algo,
            **({f"algo_{d}": a for d, a in layer.algos().items() if d != "forward"} if layer.is_training else {}),
            "source": layer.source,
            "winner": w.algo if w else "",
            "winner_p50_ms": w.p50_ms if w else "",
            "winner_ci95": ci(w),
            "runner_up": r.algo if r else "",
            "runner_up_p50_ms": r.p50_ms if r else "",
            "runner_up_ci95": ci(r),
            "baseline": b.algo if b else "",
            "baseline_p50_ms": b.p50_ms if b else "",
            "note": layer.note or "",
        }


def write_csv(plan: Plan, path: str | Path) -> Path:
    path = Path(path)
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=csv_columns(plan))
        w.writeheader()
        w.writerows(csv_rows(plan))
    return path
