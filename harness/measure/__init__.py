"""Measuring one point: timing, the layer pass, energy, memory, FLOPs and roofline, provenance."""
