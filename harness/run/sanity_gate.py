"""Staging protects GPU hours: a quick or full job for a combination whose sanity stage failed is refused.

"Failed": the latest row of some sanity point of the same model x algorithm x GPU type has status
"error" (a crash, or output that failed verification). No sanity record at all is only a warning.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from harness.config.spec import RunSpec
from harness.errors import ConfigError
from harness.results.read import latest_leaf_points

log = logging.getLogger(__name__)


class StageGateError(ConfigError):
    """The sanity stage of this combination failed."""


def sanity_failures(spec: RunSpec) -> list[dict]:
    """The latest sanity row of each point of this combination whose status is "error"."""
    leaf = replace(spec.partition(), stage="sanity").path(spec.results_dir)
    rows, problems = latest_leaf_points(leaf, ["status", "error"])
    for problem in problems:
        log.warning("%s: %s", leaf, problem)
    if rows.empty:
        return [{}]  # no record: the caller warns
    return rows[rows["status"] == "error"].to_dict("records")


def check_stage_gate(spec: RunSpec, force: bool = False) -> None:
    if spec.stage.name == "sanity":
        return
    failures = sanity_failures(spec)
    combo = f"model={spec.model.name} algo={spec.algo} gpu={spec.gpu.name}"
    if failures == [{}]:
        log.warning(
            "no sanity record for %s under %s: run stage=sanity first to catch a broken " "combination in minutes",
            combo,
            spec.results_dir,
        )
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
