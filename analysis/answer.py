"""Old path of the speedup and winner tables, now analysis/tables/catalog/ (competitors, speedups,
speedup_summary, winners, layer_speedups, layer_speedup_summary, summary) and their statistics
analysis/stats/ (intervals, verdicts); kept so pickled callables and old imports still work."""

from __future__ import annotations

from analysis.stats.intervals import with_interval
from analysis.stats.verdicts import VERDICTS, corrected, family_line, verdict
from analysis.tables.catalog.competitors import REFERENCES, SAME_PATH_FLAGS, competitors
from analysis.tables.catalog.competitors import _flagged as _flagged
from analysis.tables.catalog.layer_speedup_summary import layer_summary
from analysis.tables.catalog.layer_speedups import layer_speedups
from analysis.tables.catalog.speedup_summary import speedup_summary
from analysis.tables.catalog.speedups import speedups
from analysis.tables.catalog.summary import headline
from analysis.tables.catalog.winners import winners

_verdict = verdict

__all__ = [
    "REFERENCES",
    "SAME_PATH_FLAGS",
    "VERDICTS",
    "competitors",
    "corrected",
    "family_line",
    "headline",
    "layer_speedups",
    "layer_summary",
    "speedup_summary",
    "speedups",
    "winners",
    "with_interval",
]
