"""Old path of :mod:`analysis.tree.specs` (kept so pickled callables and old imports still work)."""

from __future__ import annotations

from analysis.tree.specs import (
    SPEC_FIELDS,
    Spec,
    gpu_specs,
)
from analysis.tree.specs import (
    _from_conf as _from_conf,
)
from analysis.tree.specs import (
    _from_runs as _from_runs,
)

__all__ = ["SPEC_FIELDS", "Spec", "gpu_specs"]
