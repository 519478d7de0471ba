"""Verdicts of comparisons, corrected for the number made: ``faster``, ``tied`` (within the noise; the
multiplicity module's decision ``same``), ``slower``, or ``no_interval`` (a side without an honest interval:
not tested), with the p- and Benjamini-Hochberg q-values, and the line saying how a table was corrected."""

from __future__ import annotations

import numpy as np

from harness.results import multiplicity as mt

TIED = "tied"  # the difference is within the noise


VERDICTS = ("faster", TIED, "slower", "no_interval")  # the codes of multiplicity.DECISIONS, "same" called TIED


def corrected(speedup, se, groups=None, workers: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per speedup (reference / algorithm) with the standard error of its log: the smaller one-sided p-value
    (faster or slower than the reference), its Benjamini-Hochberg q-value over the family (all rows, or
    per ``groups``: two one-sided tests per row with an interval) and the verdict as a code into VERDICTS.
    NaN se: no test, ``no_interval``. ``workers``: threads for the one family's p-values (the same values)."""
    assert [{"same": TIED}.get(c, c) for c in mt.DECISIONS] == list(VERDICTS)  # codes line up
    if groups is None:  # one family: the same values from fewer arrays of every row (millions of layer rows)
        lean = mt.smaller_bh(_log_ratio(speedup), se, workers=workers)  # a temporary: freed once read
        if lean is not None:
            return lean
    d = mt.directional(_log_ratio(speedup), se, 0.0, mt.BH, groups=groups)
    return d.p_value, d.adjusted, d.code()


def _log_ratio(speedup) -> np.ndarray:
    """log(algorithm / reference), what the tests are on (< 0: the algorithm is faster)."""
    return -np.log(np.asarray(speedup, dtype=float))


def family_line(p_value, what: str = "faster and slower, two per row with an interval") -> str:
    """How many comparisons a table's verdicts were corrected for, and how (p_value: one per row)."""
    return mt.family(p_value, mt.BH, what, tests_per_comparison=2).line()


def verdict(speedup, se) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``corrected`` with the verdicts as strings."""
    p, q, code = corrected(speedup, se)
    return p, q, np.array(VERDICTS, dtype=object)[code]


def bias_verdict(low: float, high: float) -> str:
    """Which way a geometric mean of measured / projected points, by its 95% interval: ``optimistic`` (above 1:
    the measurement slower than projected) or ``pessimistic`` (below 1) where the interval excludes 1, else
    ``within noise`` (tied with 1; the words the plan_bias table has always written)."""
    return "optimistic" if low > 1 else "pessimistic" if high < 1 else "within noise"
