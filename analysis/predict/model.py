"""The models: the calibrated roofline (``Baseline``) and the gradient-boosted ratio to it (``Booster``),
and the threads they may use.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

# Beyond this, training rows are subsampled (a fit costs seconds, not minutes, on half a million layer rows).
MAX_TRAIN_ROWS = 50_000


def free_cores() -> int:
    """The cores this process may use that other work leaves free: the CPUs it may run on minus the
    1-minute load average (rounded), at least 1. OpenMP threads beyond that spin against the other work
    (on a 2-core login node with one core busy, two threads made the fit many times slower than one)."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        busy = os.getloadavg()[0]
    except OSError:
        busy = 0.0
    return max(1, min(usable, round(usable - busy)))


# -- the models ---------------------------------------------------------------------------------------------
@dataclass
class Baseline:
    """raw x a per-GPU scale: the median of y / raw on the training rows (the global median for a GPU the
    training rows lack)."""

    scales: dict[str, float] = field(default_factory=dict)
    overall: float = 1.0

    def fit(self, data: pd.DataFrame) -> Baseline:
        ratio = data["y"] / data["raw"]
        self.overall = float(ratio.median())
        self.scales = {str(g): float(v) for g, v in ratio.groupby(data["gpu"], observed=True).median().items()}
        return self

    def predict(self, data: pd.DataFrame) -> np.ndarray:
        scale = data["gpu"].map(self.scales).astype(float).fillna(self.overall)
        return (data["raw"] * scale).to_numpy(dtype=float)


@dataclass
class Booster:
    """Gradient-boosted trees on log(y / baseline), on top of the calibrated baseline."""

    numeric: list[str]
    categorical: list[str]
    max_train_rows: int = MAX_TRAIN_ROWS
    threads: int | None = None  # OpenMP threads for the trees (None: free_cores() when fitting)
    seed: int = 0
    baseline: Baseline = field(default_factory=Baseline)
    categories: dict[str, list[str]] = field(default_factory=dict)
    used: list[str] = field(default_factory=list)  # numeric features with a value in the training rows
    model: Any = None

    def _matrix(self, data: pd.DataFrame) -> pd.DataFrame:
        x = data[self.used].astype(float).copy()
        for c in self.categorical:
            x[c] = pd.Categorical(data[c], categories=self.categories[c]).codes.astype(float)
            x.loc[x[c] < 0, c] = np.nan
        return x

    def fit(self, data: pd.DataFrame) -> Booster:
        from sklearn.ensemble import HistGradientBoostingRegressor

        if len(data) > self.max_train_rows:
            data = data.sample(self.max_train_rows, random_state=self.seed)
        self.baseline = Baseline().fit(data)
        data = data.assign(log_baseline=np.log10(self.baseline.predict(data)))
        self.categories = {c: sorted(data[c].astype(str).unique()) for c in self.categorical}
        self.used = [c for c in self.numeric if data[c].notna().any()]  # all-NaN columns break the binner
        x = self._matrix(data)
        target = np.log(data["y"].to_numpy() / self.baseline.predict(data))
        mask = [c in self.categorical for c in x.columns]
        self.model = HistGradientBoostingRegressor(
            max_iter=300,
            learning_rate=0.1,
            max_leaf_nodes=31,
            min_samples_leaf=10,
            categorical_features=mask,
            early_stopping=False,
            random_state=self.seed,
        )
        with threadpool_limits(self.threads or free_cores()):
            self.model.fit(x, target)
        return self

    def predict(self, data: pd.DataFrame) -> np.ndarray:
        base = self.baseline.predict(data)
        x = self._matrix(data.assign(log_baseline=np.log10(base)))
        with threadpool_limits(self.threads or free_cores()):
            return base * np.exp(self.model.predict(x))
