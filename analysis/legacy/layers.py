"""Old path of :mod:`analysis.layers` (kept so pickled callables and old imports still work)."""

from __future__ import annotations

from analysis.layers import Trace, TracedLayer, trace

__all__ = ["Trace", "TracedLayer", "trace"]
