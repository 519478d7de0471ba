"""The adaptive grid's journal in the results tree: one JSON file per campaign, what each round asked for
and why, and where it stands (harness.campaign.rounds writes it; harness.status reads it).

    <root>/stage=<stage>/_rounds/adaptive-<campaign id>.json

Under a folder whose name starts with ``_``, which the Parquet readers skip (layout.reader_ignore_prefixes).
Written atomically: a killed writer leaves the previous journal whole.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.atomic import write_json_atomic
from harness.errors import InputFileError
from harness.results import layout

JOURNAL_VERSION = 1
FOLDER = "_rounds"
PREFIX = "adaptive-"


def journal_path(root: Path, stage: str, campaign_id: str) -> Path:
    return Path(root) / f"stage={stage}" / FOLDER / f"{PREFIX}{campaign_id}.json"


def read_journal(path: Path) -> dict[str, Any] | None:
    """The journal at ``path``, or None where there is none yet; InputFileError naming a broken one."""
    if not path.exists():
        return None
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise InputFileError(f"adaptive grid journal {path} cannot be read: {e}") from None
    if not isinstance(doc, dict) or doc.get("version") != JOURNAL_VERSION:
        raise InputFileError(f"adaptive grid journal {path} is not a version {JOURNAL_VERSION} journal")
    return doc


def write_journal(doc: dict[str, Any], path: Path) -> None:
    doc["version"] = JOURNAL_VERSION
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(doc, path)


def journals(root: Path) -> list[Path]:
    """Every adaptive grid journal under ``root``, sorted."""
    return sorted(p for stage in layout.stages_under(Path(root)) for p in journal_folder(root, stage).glob("*.json"))


def journal_folder(root: Path, stage: str) -> Path:
    return Path(root) / f"stage={stage}" / FOLDER


def summary(doc: dict[str, Any]) -> dict[str, Any]:
    """What status shows of a journal: rounds, sizes added after the first, points in the tree, GPU-hours
    spent and left (as the rows say: harness.campaign.rounds.point_cost_s), how it ended."""
    rounds = doc.get("rounds", [])
    last = rounds[-1] if rounds else {}
    stopped = doc.get("stopped") or {}
    spent = stopped.get("spent_gpu_h", last.get("spent_gpu_h_before"))
    budget = (doc.get("grid") or {}).get("budget_gpu_h")
    return {
        "campaign": doc.get("campaign"),
        "stage": doc.get("stage"),
        "rounds": len(rounds),
        "state": "stopped" if stopped else (last.get("state") or "new"),
        "sizes_added": sum(len(v) for r in rounds[1:] for v in r.get("sizes", {}).values()),
        "points": stopped.get("points", last.get("points_before")),
        "spent_gpu_h": spent,
        "budget_gpu_h": budget,
        "budget_left_gpu_h": None if budget is None or spent is None else max(0.0, budget - spent),
        "stop": stopped.get("reasons"),
    }
