"""A sweep's predicted cost per task, from the results trees its tasks write to (read once each), with a cost
model fitted per GPU type (harness.campaign.cost). Used by the dry run and by a submission's time limits."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from harness.campaign import evidence as evidence_module
from harness.campaign.cost import CostModel, LatencyBook, TaskCost, predict_task
from harness.config.spec import RunSpec

if TYPE_CHECKING:  # the launcher's record of a task; harness.launch imports this package, not the reverse
    from harness.launch.submit import Task


def device_type(spec: RunSpec) -> str:
    """The device a job of ``spec`` will measure on (cuda for a named GPU type), as the runner resolves it."""
    if spec.device in ("cpu", "cuda"):
        return spec.device
    return "cuda" if spec.gpu.nvml_name is not None or torch.cuda.is_available() else "cpu"


def predict(tasks: Iterable[Task]) -> list[TaskCost]:
    """Each task's predicted cost, from the results tree it writes to (read once per tree), a model per GPU type."""
    tasks = list(tasks)
    found: dict[Path, evidence_module.Evidence] = {}
    models: dict[tuple[Path, str], CostModel] = {}
    books: dict[Path, LatencyBook] = {}
    costs = []
    for task in tasks:
        spec = task.spec.resolved_for(device_type(task.spec))
        root = spec.results_dir
        if root not in found:
            found[root] = evidence_module.load(root)
            books[root] = LatencyBook.of(found[root].points)
        ev = found[root]
        if (root, spec.gpu.name) not in models:
            rows = ev.points[ev.points["gpu"] == spec.gpu.name]
            models[root, spec.gpu.name] = CostModel.fit(rows, ev.stages, ev.startup_s.get(spec.gpu.name, []))
        costs.append(predict_task(spec, models[root, spec.gpu.name], books[root]))
    return costs
