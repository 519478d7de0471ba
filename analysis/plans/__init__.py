"""Per-layer plans, by question: which algorithm per conv layer at a point.

- ``where``: the point (``Where``) and picking its rows out of a results tree's tables;
- ``make``: the fastest measured beyond noise per layer (``choose``);
- ``find``: what cuDNN's exhaustive search picked in an algo=find run (``from_find``);
- ``predicted``: the latency predictor's choice for a point never measured (``predicted``);
- ``projection``: a measured plan's projected latency;
- ``cli``: ``python -m analysis.plans`` (make, show, export; ``python -m analysis.plan`` is its old name).

The plan itself (file format, ``Plan``) is harness.algorithms.plan's.
"""

from analysis.plans.find import from_find
from analysis.plans.make import BASELINE_ORDER, SINGLE, SWITCH_FAMILY, choose, layer_candidates, switches
from analysis.plans.predicted import DEFAULT_MARGIN, predicted
from analysis.plans.projection import projection
from analysis.plans.where import WHERE_FLAGS, Where, not_held

__all__ = [
    "BASELINE_ORDER",
    "DEFAULT_MARGIN",
    "SINGLE",
    "SWITCH_FAMILY",
    "WHERE_FLAGS",
    "Where",
    "choose",
    "from_find",
    "layer_candidates",
    "not_held",
    "predicted",
    "projection",
    "switches",
]
