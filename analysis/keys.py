"""Old path of :mod:`analysis.tree.keys` (kept so pickled callables and old imports still work)."""

from __future__ import annotations

from analysis.tree.keys import (
    _category_codes as _category_codes,
)
from analysis.tree.keys import (
    layer_keys,
    mixed_radix,
    row_keys,
)

__all__ = ["layer_keys", "mixed_radix", "row_keys"]
