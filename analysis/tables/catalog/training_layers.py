"""``training_layers``: per layer of each point measured in a direction other than forward (a train_step point,
or a backward-only one), per direction of its conv calls, the fastest algorithm with its 95% interval and every
algorithm tied with it (analysis.tables.training.best_per_layer)."""

from __future__ import annotations

from analysis.tables.registry import Table
from analysis.tables.training import best_per_layer

TABLE = Table(
    name="training_layers",
    inputs=("train_layers",),
    compute=best_per_layer,
    position=200,
    about="per layer and direction of a training step, the fastest algorithm and those tied with it",
)
