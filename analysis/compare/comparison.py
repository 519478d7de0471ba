"""The Comparison record: what ``analysis.compare.pipeline`` builds and ``analysis.compare.report`` renders
(its own module so the dependency goes one way: pipeline -> report -> comparison)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from analysis.compare import noise, verdicts
from analysis.compare.sides import Sides
from harness.results.multiplicity import Family


@dataclass
class Comparison:
    sides: Sides
    tolerance: float
    key: verdicts.Key
    points: pd.DataFrame  # one row per point of either side, with its verdict
    groups: pd.DataFrame  # one row per gpu x model x algo (x stage, dtype, settings)
    noise_pairs: pd.DataFrame  # run-to-run pairs of identical settings, per tree
    noise: list[noise.NoiseSummary]
    family: Family  # what the verdicts were corrected for (Holm over the points and groups)
    between_run: float = 0.0  # sd of log latency between runs, added to each side's standard error
    between_run_source: str = ""
    files: list[Path] = field(default_factory=list)

    def regressions(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        return verdicts.regressions(self.points, self.groups)

    @property
    def failed(self) -> bool:
        """Whether some point or group is slower beyond the tolerance with family-wise confidence, or broke."""
        p, g = self.regressions()
        return bool(len(p) or len(g))

    def __str__(self) -> str:
        """A short summary (like torch.utils.benchmark's Measurement): what was compared and the verdict counts."""
        counts = self.points["verdict"].value_counts() if "verdict" in self.points else pd.Series(dtype=int)
        verdicts_text = ", ".join(f"{n} {v}" for v, n in counts.items()) or "no points"
        outcome = "FAIL" if self.failed else "PASS"
        return (
            f"Comparison: B = {self.sides.b.label} against A = {self.sides.a.label}\n"
            f"  tolerance {self.tolerance:.0%}, {len(self.points)} point(s), {len(self.groups)} group(s)\n"
            f"  verdicts: {verdicts_text}\n"
            f"  {outcome}"
        )

    def __repr__(self) -> str:
        return f"<Comparison B={self.sides.b.label!r} vs A={self.sides.a.label!r}, {len(self.points)} points>"
