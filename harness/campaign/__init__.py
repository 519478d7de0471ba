"""Campaigns over many points: the adaptive size grid (adaptive.py: which sizes next, and why)."""
