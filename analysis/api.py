"""The analysis from plain Python: a results tree as DataFrames, and a per-layer plan made from it.

    import analysis
    tree = analysis.load_tree("results", model="resnet18")   # .points, .layers (pandas), .report
    plan = analysis.make_plan(tree, "resnet18", input_size=32)
    plan                                                      # one line per conv layer

The same code paths as ``python -m analysis`` and ``python -m analysis.plan make``: repeats resolved and
pooled as there, the same checks and the same errors (AnalysisError names the bad value and the choices).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

from analysis.errors import AnalysisError
from analysis.plans import Where, choose
from analysis.tree import Filters, Results, directions, load, one_setting
from harness.algorithms import canonical_name
from harness.algorithms import plan as plans
from harness.algorithms.geometry import ConvGeometry

FILTERS = tuple(f.name for f in fields(Filters))


def load_tree(roots: str | Path | Sequence[str | Path], **filters: str | Sequence[str]) -> Results:
    """Read one or more results trees (``results/``, or copies from several clusters) as resolved DataFrames.

    ``filters``: partition values and settings to keep, as the command line's ``--model resnet18 --gpu h100``
    (a value or a list of values; the keys: ``FILTERS``).
    """
    unknown = sorted(set(filters) - set(FILTERS))
    if unknown:
        raise AnalysisError(f"filter {unknown[0]!r} is not valid; valid choices: {', '.join(FILTERS)}")
    given = {k: (v,) if isinstance(v, str) else tuple(v) for k, v in filters.items()}
    return load(roots, Filters(**given))


def make_plan(
    tree: Results,
    model: str,
    input_size: int,
    *,
    batch_size: int = 1,
    dtype: str = "float32",
    gpu: str | None = None,
    stage: str | None = None,
    algos: Sequence[str] = (),
    baseline: str | None = None,
) -> plans.Plan:
    """The per-layer plan for one point of ``tree`` (measured layers; ties keep the baseline), as
    ``python -m analysis.plan make`` makes it. Run it with ``harness.swap(model, plan)`` or write it with
    ``harness.write_plan(plan, path)`` for ``python -m harness algo=per_layer plan=PATH``."""
    from harness.models import meta_model  # torch: the model's conv layers (load_tree does without it)

    res = directions.forward(one_setting(tree, "make_plan"))  # a forward plan: the forward rows
    where = Where(model, input_size, batch_size, dtype, gpu, stage)
    modules = [(name, ConvGeometry.of(m)) for name, m in plans.conv_layers(meta_model(model, {}))]
    made_by = f"analysis.make_plan ({where.describe()})"
    chosen = tuple(canonical_name(a) for a in algos)
    return choose(
        res.points, res.layers, where, modules, made_by, chosen, canonical_name(baseline) if baseline else None
    )
