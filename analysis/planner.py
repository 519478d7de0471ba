"""Old path of the plan makers, now in analysis.plans (make, find, predicted, projection, where).

Kept as an alias: SLURM jobs in flight pickle callables by module path, and callers import from here.
"""

from analysis.plans.find import from_find
from analysis.plans.make import (
    BASELINE_ORDER,
    SINGLE,
    SWITCH_FAMILY,
    choose,
    keep_host_bound_baseline,
    layer_candidates,
    switches,
)
from analysis.plans.make import host_bound_pairs as _host_bound
from analysis.plans.predicted import DEFAULT_MARGIN, predicted
from analysis.plans.projection import projection
from analysis.plans.where import WHERE_FLAGS, Where, not_held
from analysis.plans.where import at_point as _at
from analysis.plans.where import evidence as _evidence
from analysis.plans.where import only_value as _only
from analysis.plans.where import optional_str as _str

_keep_host_bound_baseline = keep_host_bound_baseline

__all__ = [
    "BASELINE_ORDER",
    "DEFAULT_MARGIN",
    "SINGLE",
    "SWITCH_FAMILY",
    "WHERE_FLAGS",
    "Where",
    "_at",
    "_evidence",
    "_host_bound",
    "_keep_host_bound_baseline",
    "_only",
    "_str",
    "choose",
    "from_find",
    "keep_host_bound_baseline",
    "layer_candidates",
    "not_held",
    "predicted",
    "projection",
    "switches",
]
