"""``training_oracle``: per train_step point, the whole step with the best per-layer choice in every direction
(switched only beyond noise), projected from the measured step of the baseline (guess, cuDNN's heuristic; torch
where guess was not measured), and its speedup over that step with a 95% interval (analysis.tables.training.oracle)."""

from __future__ import annotations

from analysis.tables.registry import Table
from analysis.tables.training import oracle

TABLE = Table(
    name="training_oracle",
    inputs=("train_points", "train_layers"),
    compute=oracle,
    position=201,
    about="the training step with the best per-layer choice per direction, against guess's measured step",
)
