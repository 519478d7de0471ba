"""What the results tree already knows that a cost prediction uses: the points rows (latency and the wall
time of each phase) and each run's start-up time. The only part of harness.campaign that reads files."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harness.results import layout
from harness.results.manifest import read_manifest
from harness.results.read import dataset

log = logging.getLogger(__name__)

COLUMNS = (
    "run_id",
    "stage",
    "model",
    "algo",
    "gpu",
    "device",
    "input_size",
    "batch_size",
    "dtype",
    "layout",
    "l2",
    "direction",
    "status",
    "config_hash",
    "repeat",
    "measured_at",
    "n",
    "p50_ms",
    "ci95_low_ms",
    "ci95_high_ms",
    "energy_window_s",
    "point_wall_s",
    "phase_plan_s",
    "phase_warmup_s",
    "phase_timing_s",
    "phase_layers_s",
    "phase_energy_s",
)


@dataclass
class Evidence:
    """Points rows (``COLUMNS``; every row, not only the latest), the start-up seconds of runs per GPU type,
    and each run's stage settings (how many warmup, layer and energy passes its points ran)."""

    points: pd.DataFrame = field(default_factory=lambda: pd.DataFrame({c: [] for c in COLUMNS}))
    startup_s: dict[str, list[float]] = field(default_factory=dict)
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)


def load(root: Path) -> Evidence:
    """The evidence under ``root`` (empty where there is no tree yet)."""
    if not root.is_dir():
        return Evidence()
    try:
        rows = dataset(root).to_table(columns=list(COLUMNS)).to_pandas()
    except (OSError, ValueError) as e:  # an empty tree has no files to read a schema from
        log.debug("no points under %s: %s", root, e)
        rows = Evidence().points
    startup: dict[str, list[float]] = {}
    stages: dict[str, dict[str, Any]] = {}
    for path in layout.run_files_under(root):
        try:
            manifest = read_manifest(path)
        except (OSError, ValueError) as e:
            log.warning("run record %s unreadable (left out of the cost fit): %s", path, e)
            continue
        config = manifest.measurement_config or {}  # always written (the config only where a launcher gave it)
        if isinstance(config.get("stage"), dict):
            stages[manifest.run_id] = config["stage"]
        gpu = config.get("gpu")
        if manifest.startup_s is not None and gpu is not None:
            startup.setdefault(str(gpu), []).append(float(manifest.startup_s))
    return Evidence(rows, startup, stages)
