"""Staging protects GPU hours: a quick or full job for a combination whose sanity stage failed is refused.

"Failed": the latest row of some sanity point of the same model x algorithm x GPU type has status
"error" (a crash, or output that failed verification). No sanity record at all is only a warning.
"""

from __future__ import annotations

import logging

import pyarrow as pa
import pyarrow.parquet as pq

from harness.config.spec import RunSpec
from harness.errors import ConfigError
from harness.results.store import Partition

log = logging.getLogger(__name__)


class StageGateError(ConfigError):
    """The sanity stage of this combination failed."""


def sanity_failures(spec: RunSpec) -> list[dict]:
    """The latest sanity row of each point of this combination whose status is "error"."""
    leaf = Partition("sanity", spec.gpu.name, spec.model.name, spec.algo).path(spec.results_dir)
    columns = ["input_size", "batch_size", "dtype", "status", "error", "measured_at"]
    latest: dict[tuple, dict] = {}
    for path in sorted(leaf.glob("points-*.parquet")):
        try:
            rows = pq.read_table(path, columns=columns).to_pylist()
        except (OSError, pa.ArrowException) as e:
            log.warning("cannot read %s: %s", path, e)
            continue
        for row in rows:
            key = (row["input_size"], row["batch_size"], row["dtype"])
            if key not in latest or row["measured_at"] >= latest[key]["measured_at"]:
                latest[key] = row
    if not latest:
        return [{}]  # no record: the caller warns
    return [r for r in latest.values() if r["status"] == "error"]


def check_stage_gate(spec: RunSpec, force: bool = False) -> None:
    if spec.stage.name == "sanity":
        return
    failures = sanity_failures(spec)
    combo = f"model={spec.model.name} algo={spec.algo} gpu={spec.gpu.name}"
    if failures == [{}]:
        log.warning("no sanity record for %s under %s: run stage=sanity first to catch a broken "
                    "combination in minutes", combo, spec.results_dir)
        return
    if failures and not force:
        first = failures[0]
        raise StageGateError(
            f"stage={spec.stage.name} refused: the sanity stage of {combo} failed ({len(failures)} point(s); "
            f"input size {first['input_size']}: {first['error']}). Fix it and run stage=sanity again, or "
            f"add force=true to run anyway."
        )
    if failures:
        log.warning("force=true: running stage=%s although the sanity stage of %s failed", spec.stage.name, combo)
