"""Did guess and torch run the same kernels? (pure, over layers rows written with kernels=true)

"guess / torch PASS" says little where both ran the same kernels: cuDNN's heuristic behind the legacy API and
PyTorch's engine choice may well pick one kernel. A layer ran the same kernels under both when the compute
kernels of its two rows (the ``kernels`` column less layout, copy and elementwise kernels, which differ by
how each caller lays out tensors and adds the bias: harness.measure.kernels) are the same set of names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.acceptance.checks import AcceptanceCheck
from harness.acceptance.plan import MODELS
from harness.acceptance.rows import INFO, Row, _clean, _order
from harness.measure.kernels import classify_kernel

# what pairs a guess layer row with torch's: the same layer call of the same point and configuration
_PAIR = ("model", "gpu", "input_size", "batch_size", "dtype", "math_type", "layer_index")


def compute_kernels(row: Row) -> frozenset[str] | None:
    """The compute kernels a layer row names; None where it recorded none (kernels=false, an older row)."""
    names = _clean(row.get("kernels"))
    if names is None:
        return None
    names = [str(n) for n in names]
    if not names:
        return None
    return frozenset(n for n in names if classify_kernel(n).compute)


@dataclass(frozen=True)
class LayerPair:
    """One layer call under guess and under torch, and whether they ran the same compute kernels."""

    key: tuple[Any, ...]  # _PAIR's values
    layer_name: str
    guess_family: str | None
    torch_family: str | None
    same: bool


def kernel_pairs(layer_rows: Sequence[Row]) -> list[LayerPair]:
    """Each layer call measured (ok) under algo=guess and algo=torch with kernels recorded for both."""
    sides: dict[str, dict[tuple[Any, ...], Row]] = {"guess": {}, "torch": {}}
    for r in layer_rows:
        algo = r.get("algo")
        if algo in sides and r.get("status") in ("ok", "fallback") and compute_kernels(r) is not None:
            sides[algo][tuple(r.get(k) for k in _PAIR)] = r  # a later row of the same call wins
    pairs = []
    for key, g in sides["guess"].items():
        t = sides["torch"].get(key)
        if t is None:
            continue
        pairs.append(
            LayerPair(
                key,
                str(g.get("layer_name")),
                _clean(g.get("kernel_family")),
                _clean(t.get("kernel_family")),
                compute_kernels(g) == compute_kernels(t),
            )
        )
    return pairs


def check_same_kernels(layer_rows: Sequence[Row]) -> AcceptanceCheck:
    """How many layer calls ran the same compute kernels under guess and torch (information: it qualifies the
    guess / torch ratio, it is not a goal). Details: a row per point and configuration."""
    pairs = kernel_pairs(layer_rows)
    groups: dict[tuple[Any, ...], list[LayerPair]] = {}
    for p in pairs:
        groups.setdefault(p.key[:-1], []).append(p)
    models = _order((k[0] for k in groups), MODELS)
    details = []
    for key in sorted(groups, key=lambda k: (models.index(k[0]), str(k[1]), k[2] or 0, k[3] or 0, str(k[4:]))):
        ps = sorted(groups[key], key=lambda p: p.key[-1] or 0)
        differ = [p for p in ps if not p.same]
        details.append(
            {
                "model": key[0],
                "gpu": key[1],
                "input size": key[2],
                "batch": key[3],
                "config": f"{key[4]} {key[5]}",
                "same kernels": f"{len(ps) - len(differ)} of {len(ps)}",
                "differing layers": ", ".join(
                    f"{p.layer_name} (guess {p.guess_family}, torch {p.torch_family})" for p in differ[:8]
                )
                + (f" and {len(differ) - 8} more" if len(differ) > 8 else ""),
            }
        )
    same = sum(p.same for p in pairs)
    figure = (
        f"{same} of {len(pairs)} layer calls ({100 * same / len(pairs):.0f}%) ran the same compute kernels"
        if pairs
        else "no layer with kernels recorded under both guess and torch (kernels=true)"
    )
    return AcceptanceCheck(
        "guess and torch: same kernels",
        "whether guess and torch ran the same compute kernels per layer (information)",
        figure,
        INFO,
        tuple(details),
    )
