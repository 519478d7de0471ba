"""The answer tables: pure functions from the resolved points/layers DataFrames to DataFrames, one module each
under ``catalog/`` registered in ``registry`` (``registry.compute_all``: every table), sharing the columns of
``columns``.

Conventions: a latency is a point's (or a layer's) p50 in ms; only "ok" points compete for best; a speedup
is the reference's latency over the algorithm's (> 1: faster than the reference); a margin is the
runner-up's latency over the winner's, minus one. Nothing here reads or writes files.

This package is also the old module ``analysis.tables``: its names stay importable from here.
"""

from __future__ import annotations

from analysis.stats.tests import switch_test
from analysis.tables.catalog.algorithms import algorithms
from analysis.tables.catalog.best import best
from analysis.tables.catalog.coverage import _status_order as _status_order
from analysis.tables.catalog.coverage import coverage
from analysis.tables.catalog.edp import edp
from analysis.tables.catalog.failures import failures
from analysis.tables.catalog.gpus import gpu_pairs
from analysis.tables.catalog.layer_shapes import layer_shapes
from analysis.tables.catalog.oracle import oracle
from analysis.tables.catalog.support import support
from analysis.tables.columns import BASELINES, GEOMETRY, POINT, SHAPE, STATUSES, SUPPORT, shape_label, span, timed

_span = span
_switch_p = switch_test

__all__ = [
    "BASELINES",
    "GEOMETRY",
    "POINT",
    "SHAPE",
    "STATUSES",
    "SUPPORT",
    "algorithms",
    "best",
    "coverage",
    "edp",
    "failures",
    "gpu_pairs",
    "layer_shapes",
    "oracle",
    "shape_label",
    "support",
    "timed",
]
