"""A SLURM job's ``--time`` from its predicted duration, and how it grows when the job is requeued.

The rule: predicted seconds x ``factor`` (the safety factor), rounded up to whole minutes and held between
``lower_min`` and ``upper_min``. A job array's tasks share one ``--time``, so tasks are either grouped by
their limits rounded up to a ladder of bins (``arrays="bins"``: lower x 2^k minutes, so tasks of very different
lengths go in different arrays and none waits in the queue with a limit far above its need) or put in one
array that takes its longest task's limit (``arrays="max"``).

A job that runs past its limit is requeued and resumes where it stopped (harness.launch.submit). Each
attempt gets ``growth`` times the previous attempt's limit, and the last attempt ``max_requeues`` allows gets
the upper bound, so an estimate short by any factor costs requeues, never the job or a point: the attempts
together cover first x (1 + g + g^2 + ...) and then the most the job may ask for.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from harness.errors import ConfigError

ARRAY_RULES = ("bins", "max")


@dataclass(frozen=True)
class TimeLimitPolicy:
    """How a predicted duration becomes a time limit (the launcher's ``time_*`` keys)."""

    factor: float = 2.0  # safety factor on the predicted duration
    lower_min: int = 10  # no job asks for less (start-up and the scheduler's own slack)
    upper_min: int = 1440  # nor for more (a partition's limit)
    growth: float = 2.0  # each requeue's limit: the previous one's x growth
    arrays: str = "bins"  # bins | max: how an array's tasks share one --time

    def __post_init__(self) -> None:
        check_policy(self)

    def limit_min(self, predicted_s: float) -> int:
        """The first attempt's limit in minutes for a job predicted to take ``predicted_s`` seconds."""
        if not math.isfinite(predicted_s) or predicted_s < 0:
            raise ValueError(f"predicted duration {predicted_s!r} s: must be a finite number >= 0")
        return _clamp(math.ceil(predicted_s * self.factor / 60.0), self.lower_min, self.upper_min)

    def bin_min(self, minutes: int) -> int:
        """``minutes`` rounded up to the ladder lower x 2^k (held at the upper bound)."""
        steps = max(0, math.ceil(math.log2(max(minutes, 1) / self.lower_min)))
        return min(self.upper_min, self.lower_min * 2**steps)

    def attempt_min(self, first_min: int, attempt: int, max_requeues: int) -> int:
        """The limit of attempt ``attempt`` (0: the first; ``max_requeues``: the last allowed one)."""
        if attempt >= max_requeues:
            return self.upper_min
        return _clamp(math.ceil(first_min * self.growth**attempt), self.lower_min, self.upper_min)

    def covered_min(self, first_min: int, max_requeues: int) -> int:
        """The minutes of work that all attempts of a job together can hold."""
        return sum(self.attempt_min(first_min, k, max_requeues) for k in range(max_requeues + 1))

    def array_limits(self, predicted_s: Sequence[float]) -> tuple[list[int], str]:
        """Each task's ``--time`` (minutes) for tasks submitted together, and a line saying which rule."""
        own = [self.limit_min(s) for s in predicted_s]
        if self.arrays == "max":
            top = max(own, default=self.lower_min)
            return [top] * len(own), "one array per resource group: its --time is its longest task's"
        return [self.bin_min(m) for m in own], (
            f"tasks grouped by predicted duration: arrays per --time bin ({self.lower_min} min x 2^k)"
        )


def check_policy(policy: TimeLimitPolicy) -> None:
    """A one-line ConfigError naming the bad value and what is valid."""
    p = policy
    if _bad_number(p.factor) or p.factor <= 0:
        raise ConfigError(f"launcher.time_factor={p.factor!r}: the safety factor must be a number > 0 (e.g. 2)")
    if _bad_number(p.lower_min) or p.lower_min < 1 or p.lower_min != int(p.lower_min):
        raise ConfigError(f"launcher.time_min_minutes={p.lower_min!r}: must be a whole number of minutes >= 1")
    if _bad_number(p.upper_min) or p.upper_min != int(p.upper_min) or p.upper_min < p.lower_min:
        raise ConfigError(
            f"launcher.time_max_minutes={p.upper_min!r}: must be a whole number of minutes >= "
            f"launcher.time_min_minutes={p.lower_min}"
        )
    if _bad_number(p.growth) or p.growth < 1:
        raise ConfigError(f"launcher.time_growth={p.growth!r}: the growth at each requeue must be a number >= 1")
    if p.arrays not in ARRAY_RULES:
        raise ConfigError(f"unknown launcher.time_arrays {p.arrays!r}; valid choices: {', '.join(ARRAY_RULES)}")


def _bad_number(value: object) -> bool:
    return isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))
