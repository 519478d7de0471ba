"""Old path of the sweep's fast composition: it lives in harness/config/compose.py (kept for old imports)."""

from __future__ import annotations

from harness.config.compose import GROUPS, FastComposer

__all__ = ["GROUPS", "FastComposer"]
