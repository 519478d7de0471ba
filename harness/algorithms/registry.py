"""The algorithm registry: one record per algorithm, and every list of algorithm names derived from it.

Adding an algorithm is one ``Algorithm`` record (``register``) and one config file (``config_text``) in
conf/algo/. The built-in records are in harness/algorithms/builtin.py, registered when this package is
imported; ``ALGORITHMS`` and ``CUDNN_ALGORITHMS`` (harness.algorithms) and the reference backend's choices are
read from here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.algorithms.cudnn_enums import DIRECTIONS
from harness.algorithms.geometry import ConvGeometry

if TYPE_CHECKING:  # torch only in the factories' types: the names and records import without torch
    import torch

    Runner = Callable[[torch.Tensor], torch.Tensor]
    # (weight, bias, geometry, input (h, w)) -> a callable computing the layer for inputs of that size; the
    # factory of an algorithm whose reference_layouts go beyond nchw is also called with layout="nhwc"
    RunnerFactory = Callable[[torch.Tensor, torch.Tensor | None, ConvGeometry, tuple[int, int]], Runner]
    # (weight, geometry, input (h, w), layout) -> the gradient's runner (harness.algorithms.reference_backward):
    # backward_data run(grad_out) -> grad_input, backward_filter run(x, grad_out) -> grad_weight
    BackwardFactory = Callable[[torch.Tensor, ConvGeometry, tuple[int, int], str], Callable[..., torch.Tensor]]

log = logging.getLogger(__name__)

LAYOUTS = ("NCHW", "NHWC")
SupportRule = Callable[[ConvGeometry], str | None]

KINDS = ("cudnn", "heuristic", "search", "baseline", "reference")


@dataclass(frozen=True)
class CudnnAlgo:
    """An algorithm's cuDNN enum in one direction, and the tensor layouts it is measured with there."""

    direction: str  # forward, backward_data or backward_filter (cudnn_enums.DIRECTIONS)
    name: str  # cuDNN's name in that direction's enum, lower case: "implicit_gemm", "algo_0"
    layouts: tuple[str, ...] = ("NCHW",)

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ValueError(f"unknown direction {self.direction!r}; valid: {', '.join(DIRECTIONS)}")
        if self.name not in DIRECTIONS[self.direction][0]:
            raise ValueError(f"{self.name!r} is not in cuDNN's {self.direction} enum")
        if not set(self.layouts) <= set(LAYOUTS):
            raise ValueError(f"unknown layout in {self.layouts}; valid: {', '.join(LAYOUTS)}")

    @property
    def value(self) -> int:
        """The enum's integer value (what is passed to cuDNN)."""
        return DIRECTIONS[self.direction][0][self.name]

    @property
    def enum(self) -> str:
        """The C name: CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM."""
        prefix = DIRECTIONS[self.direction][2]
        return prefix + self.name.removeprefix("algo_").upper()


@dataclass(frozen=True)
class Algorithm:
    """One algorithm the harness can measure, as every part of the harness needs to know it.

    ``kind`` says what measures it: ``cudnn`` (one fixed cuDNN algorithm, ``cudnn`` says which per direction),
    ``heuristic`` (cuDNN's guess), ``search`` (cuDNN's Find), ``baseline`` (the framework's own convolution)
    or ``reference`` (only the plain-PyTorch implementation). ``reference`` builds the CPU implementation and
    ``supports`` says why a layer cannot run it (None if it can); ``tolerance`` is the relative error against
    ``F.conv2d`` in float32 that the reference implementation is held to; ``reference_layouts`` are the memory
    layouts (harness.algorithms.memory_layout) its reference computes in.
    """

    name: str
    kind: str
    description: str
    cudnn: tuple[CudnnAlgo, ...] = ()
    reference: RunnerFactory | None = None
    supports: SupportRule | None = None
    ai3: str | None = None  # the name aithree (ai3) accepts for conv2d, where it has this algorithm
    tolerance: float = 1e-4
    in_sweep: bool = False  # one of CUDNN_ALGORITHMS: the cuDNN sweep (the eight and guess)
    reference_layouts: tuple[str, ...] = ("nchw",)
    # the reference's backward in each direction (None: a forward reference only, the direction unsupported);
    # it computes in reference_layouts and keeps the forward's supports rule
    reference_backward_data: BackwardFactory | None = None
    reference_backward_filter: BackwardFactory | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown kind {self.kind!r}; valid: {', '.join(KINDS)}")
        if not self.name.isidentifier() or self.name != self.name.lower():
            raise ValueError(f"an algorithm's name is a lower-case identifier, not {self.name!r}")

    def cudnn_for(self, direction: str = "forward") -> CudnnAlgo | None:
        """The cuDNN enum of this algorithm in ``direction`` (None where cuDNN has none)."""
        return next((c for c in self.cudnn if c.direction == direction), None)

    def reason_unsupported(self, g: ConvGeometry, layout: str = "nchw") -> str | None:
        """None if the reference implementation can run layer ``g`` in ``layout``, else why not."""
        if self.reference is None:
            return f"{self.name} has no reference implementation (only {', '.join(reference_names())})"
        if layout not in self.reference_layouts:
            return (
                f"{self.name}'s reference computes in {', '.join(self.reference_layouts)} only, "
                f"not in layout={layout}"
            )
        return self.supports(g) if self.supports else None


_REGISTRY: dict[str, Algorithm] = {}


def register(algo: Algorithm, *, replace: bool = False) -> Algorithm:
    """Add ``algo`` (after those registered before it); a name taken is refused unless ``replace``."""
    if algo.name in _REGISTRY and not replace:
        raise ValueError(f"algorithm {algo.name!r} is already registered")
    _REGISTRY[algo.name] = algo
    _refresh()
    log.debug("registered algorithm %s (%s)", algo.name, algo.kind)
    return algo


def unregister(name: str) -> Algorithm:
    """Remove the algorithm ``name`` and return its record; KeyError if none."""
    algo = _REGISTRY.pop(name)
    _refresh()
    return algo


def get(name: str) -> Algorithm:
    """The record of ``name``; KeyError naming the known ones otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown algorithm {name!r}; known: {', '.join(_REGISTRY)}") from None


def algorithms() -> tuple[Algorithm, ...]:
    """Every record, in registration order."""
    return tuple(_REGISTRY.values())


def names() -> tuple[str, ...]:
    """Every algorithm's name, in registration order: ALGORITHMS."""
    return tuple(_REGISTRY)


def sweep_names() -> tuple[str, ...]:
    """The cuDNN sweep: the fixed algorithms and the heuristic (CUDNN_ALGORITHMS)."""
    return tuple(a.name for a in _REGISTRY.values() if a.in_sweep)


def reference_names() -> tuple[str, ...]:
    """The algorithms with a reference (CPU) implementation."""
    return tuple(a.name for a in _REGISTRY.values() if a.reference is not None)


def config_text(name: str) -> str:
    """The conf/algo/<name>.yaml for ``name``: its description as a comment, and its name."""
    algo = get(name)
    comment = "".join(f"# {line}\n" for line in algo.description.splitlines())
    return f"{comment}name: {algo.name}\n"


def _refresh() -> None:
    """Keep the tuples of harness.algorithms (read by name at call time) in step with the registry."""
    import sys

    package = sys.modules.get("harness.algorithms")
    if package is not None and hasattr(package, "ALGORITHMS"):
        package.ALGORITHMS = names()
        package.CUDNN_ALGORITHMS = sweep_names()
        package.ALIASES = aliases()


def aliases() -> dict[str, str]:
    """The spellings of the system this harness replaces ("implicit precomp gemm"), and "-" for "_"."""
    return {n.replace("_", " "): n for n in _REGISTRY} | {n.replace("_", "-"): n for n in _REGISTRY}
