"""Point and layer rows as plain dicts (from the runner or a DataFrame read back), and the small formatters the
checks share."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from harness.acceptance.plan import Config

PASS, FAIL, INFO = "PASS", "FAIL", "INFO"
Row = dict[str, Any]


def _first_line(text: str | None, limit: int = 300) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def as_rows(data: Any) -> list[Row]:
    """Rows as dicts, from a list of dicts or a pandas DataFrame; NaN and pandas' NA become None."""
    records = data.to_dict("records") if hasattr(data, "to_dict") and hasattr(data, "columns") else list(data)
    return [{k: _clean(v) for k, v in r.items()} for r in records]


def _clean(v: Any) -> Any:
    if hasattr(v, "item") and not isinstance(v, (list, tuple, dict, str, bytes)) and getattr(v, "ndim", 0) == 0:
        v = v.item()  # numpy scalars
    if v is None or (isinstance(v, float) and math.isnan(v)) or type(v).__name__ in ("NAType", "NaTType"):
        return None
    return v


def _num(row: Mapping[str, Any], key: str) -> float | None:
    v = _clean(row.get(key))
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def config_label(row: Mapping[str, Any]) -> str:
    layout = str(row.get("layout") or "nchw")  # rows older than the column: nchw
    return Config(str(row.get("dtype")), str(row.get("math_type")), str(row.get("fallback_policy")), layout).label


def point_label(row: Mapping[str, Any]) -> str:
    return (
        f"{row.get('model')} {row.get('algo')} {row.get('input_size')} px b{row.get('batch_size')} "
        f"[{config_label(row)}]"
    )


def _ok(rows: Iterable[Row]) -> list[Row]:
    return [r for r in rows if r.get("status") == "ok"]


def _g(v: float | None, digits: int = 4) -> str:
    return "-" if v is None else f"{v:.{digits}g}"


def _ratio(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.2f}%"


def _order(values: Iterable[Any], preferred: Sequence[Any] = ()) -> list[Any]:
    seen = list(dict.fromkeys(v for v in values))
    return [v for v in preferred if v in seen] + sorted((v for v in seen if v not in preferred), key=str)


def capture_cell(rows: Sequence[Row]) -> str:
    """How rows of one cell were timed: "captured" (every one a CUDA graph's replays), else "eager k/n" with the
    first capture error; "-" without rows."""
    if not rows:
        return "-"
    captured = sum(_clean(r.get("cuda_graph")) is True for r in rows)
    if captured == len(rows):
        return "captured"
    why = next((_first_line(r.get("graph_error"), 80) for r in rows if r.get("graph_error")), "")
    return f"eager {len(rows) - captured}/{len(rows)}" + (f": {why}" if why else "")
