"""Many comparisons at once: one-sided p-values against a minimum effect, and their correction for number.

A report that makes hundreds of "beyond noise" claims, each at 95%, makes about 5% of them on noise alone.
This module is the one owner of the rule that controls the error over a whole family of comparisons:

- ``p_slower`` / ``p_faster``: one-sided p-values of a log ratio (new / old) with standard error ``se``
  against a minimum effect ``tolerance``: H0 "not slower by more than the tolerance", log ratio <=
  log(1 + tolerance), against "slower beyond it"; and the mirror, H0 log ratio >= -log(1 + tolerance), for
  faster. On the log scale, as every interval of harness.results.uncertainty, with Student's t (TAIL_DF) for
  the tail a correction over many tests reaches (see TAIL_DF).
- ``holm``: Holm's step-down adjusted p-values: rejecting where the adjusted p <= alpha keeps the
  probability of even one false claim in the family at most alpha (family-wise error), whatever the
  dependence between the tests. For a pass/fail verdict (``python -m analysis.compare``'s exit status).
- ``benjamini_hochberg``: the step-up adjusted p-values (q-values): rejecting where q <= q* keeps the
  expected share of false claims among the claims at most q* (false discovery rate; independent or
  positively dependent tests). For lists of findings (the report, plans).
- ``fastest_of``: the p-value of a comparison made with the fastest of c candidates (chosen by its estimate):
  c times the candidate's own, so that choosing the best-looking of several does not make noise a discovery.
- ``directional``: both one-sided tests of each comparison in one family of 2m tests (m comparisons),
  corrected together, and the decision per comparison: faster / same / slower / no_interval. With one
  comparison, Holm's first step is alpha / 2 per side: the old rule "the whole 95% interval lies beyond the
  tolerance", exactly; with m it is corrected for m.

A NaN p-value (a NaN standard error: no honest interval, "not enough samples") is no test: never a
discovery, left out of the family's size, and counted apart (``Family.untested``). A standard error of 0
(an exact value) is a test whose p-value is 0 or 1.

Adjusted p-values are computed per family: ``groups`` (one label per test) splits one array into several
families (e.g. the layers of each point), all in one vectorised pass.

Pure numpy (and pandas for grouped running extremes); nothing reads files.
"""

from __future__ import annotations

import functools
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

LEVEL = 0.05  # the error each family is held to: family-wise (Holm) or false discovery rate (BH)
HOLM = "Holm"
BH = "Benjamini-Hochberg"
METHODS = {HOLM: "family-wise error", BH: "false discovery rate"}
DECISIONS = ("faster", "same", "slower", "no_interval")  # directional()'s codes 0..3
NO_INTERVAL = "no interval (not enough samples): not tested"

# Numerical Recipes' erfcc (Press et al., 2nd ed., 6.2): a Chebyshev fit with fractional error below
# 1.2e-7 everywhere, so p-values keep 7 significant digits far in the tail; numpy has no erfc, scipy is not a
# dependency, and math.erfc elementwise holds the GIL over millions of layer rows.
_ERFCC = (
    -1.26551223,
    1.00002368,
    0.37409196,
    0.09678418,
    -0.18628806,
    0.27886807,
    -1.13520398,
    1.48851587,
    -0.82215223,
    0.17087277,
)


def erfc(x) -> np.ndarray:
    """The complementary error function, elementwise (NaN stays NaN; relative error < 1.2e-7)."""
    x = np.asarray(x, dtype=float)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.5 * a)
    poly = np.zeros_like(t)
    for c in _ERFCC[:0:-1]:
        poly = (poly + c) * t
    with np.errstate(over="ignore", under="ignore"):
        y = t * np.exp(-a * a + _ERFCC[0] + poly)
    return np.where(x >= 0, y, 2.0 - y)


def normal_sf(z) -> np.ndarray:
    """P(Z > z) for a standard normal Z, elementwise (NaN stays NaN)."""
    return 0.5 * erfc(np.asarray(z, dtype=float) / math.sqrt(2))


# The reference distribution of (log ratio - margin) / se: Student's t with TAIL_DF degrees of freedom, not the
# normal. A standard error from order-statistic intervals is itself noisy, so the ratio has heavier tails than
# a normal: simulated at n = 20 and 60 iterations per side (cv 2%), |z| > 4 happened 6x as often as a normal
# says (3.5e-4 against 6.3e-5), as often as under t with 29-33 df, and beyond 4.5 as under t with 27-30.
# Holm over hundreds of tests decides in that far tail (z ~ 4), where the normal made an unchanged campaign
# fail in 9% of simulations instead of 5%; t with 20 df keeps the tail on the safe side (tests/
# test_multiplicity.py, the A/A campaigns). Even, so that its distribution function is a finite series.
TAIL_DF = 20


def student_sf(t, df: int = TAIL_DF) -> np.ndarray:
    """P(T > t) for Student's T with an even number ``df`` of degrees of freedom, elementwise (NaN stays NaN):
    P(|T| <= t) = sin(a) * sum_j c_j cos(a)**(2j), j < df/2, a = arctan(t / sqrt(df)), c_0 = 1,
    c_j = c_(j-1) (2j - 1) / (2j) (Abramowitz and Stegun 26.7.3)."""
    t = np.asarray(t, dtype=float)
    return _sf_from_upper(t, _upper_tail(t, df))


def _upper_tail(t: np.ndarray, df: int) -> np.ndarray:
    """P(T > |t|) (the series of ``student_sf``; an infinite t gives 1/2, which ``_sf_from_upper`` replaces).
    It depends on |t| only: the two one-sided tests of a comparison, at t and -t, share it."""
    if df < 2 or df % 2:
        raise ValueError(f"df={df}: the series needs an even number of degrees of freedom, 2 or more")
    a = np.arctan(np.abs(np.where(np.isinf(t), 0.0, t)) / math.sqrt(df))
    c2, term, total = np.cos(a) ** 2, np.ones_like(a), np.ones_like(a)
    for j in range(1, df // 2):  # in place: tens of millions of entries (the same operations, in order)
        np.multiply(term, c2, out=term)
        np.multiply(term, 2 * j - 1, out=term)
        np.divide(term, 2 * j, out=term)
        np.add(total, term, out=total)
    inside = np.sin(a) * total  # P(|T| <= |t|)
    # far in the tail the rounded sum can pass 1: a p-value of -1e-16, on which the step-up's q-values of tied
    # tests came out unequal (BH assumes p >= 0); it is 0
    return np.maximum((1.0 - inside) / 2, 0.0)


def _sf_from_upper(t: np.ndarray, upper: np.ndarray) -> np.ndarray:
    sf = np.where(t >= 0, upper, 1.0 - upper)
    return np.where(np.isposinf(t), 0.0, np.where(np.isneginf(t), 1.0, sf))


def p_above(log_ratio, se, margin) -> np.ndarray:
    """One-sided p-value of H0 "the true log ratio <= margin" against "> margin", from an estimate
    ``log_ratio`` normal with standard error ``se``. NaN where either is NaN or se < 0 (no test);
    se == 0 (exact): 0 where log_ratio > margin, else 1."""
    return student_sf(_z(log_ratio, se, margin))


def _z(log_ratio, se, margin) -> np.ndarray:
    """(log_ratio - margin) / se, with the exact and untestable cases of ``p_above``."""
    lr = np.asarray(log_ratio, dtype=float)
    s = np.asarray(se, dtype=float)
    m = np.asarray(margin, dtype=float)
    lr, s, m = np.broadcast_arrays(lr, s, m)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(s > 0, (lr - m) / np.where(s > 0, s, 1.0), np.where(lr > m, np.inf, -np.inf))
    return np.where(np.isnan(lr) | np.isnan(s) | (s < 0), np.nan, z)


# Comparisons per slice of _p_both: the z statistics and the series hold a dozen temporary arrays, 1.3 GB for
# 14,000,000 comparisons at once.
CHUNK = 1 << 20


def _p_both(log_ratio, se, tolerance: float) -> tuple[np.ndarray, np.ndarray]:
    """``p_slower`` and ``p_faster`` of the same comparisons, equal to theirs bit for bit, a slice of CHUNK at a
    time. Where the two statistics are each other's negation (tolerance 0), the t distribution's series is
    computed once for both: over a table's millions of layer rows it is most of the tests' time."""
    margin = math.log1p(tolerance)
    lr, s = np.broadcast_arrays(np.asarray(log_ratio, dtype=float), np.asarray(se, dtype=float))
    shape, lr, s = lr.shape, lr.ravel(), s.ravel()
    slower, faster = np.empty(lr.size), np.empty(lr.size)
    for a in range(0, lr.size, CHUNK):
        z_slower, z_faster = (
            _z(lr[a : a + CHUNK], s[a : a + CHUNK], margin),
            _z(-lr[a : a + CHUNK], s[a : a + CHUNK], margin),
        )
        if np.array_equal(np.abs(z_slower), np.abs(z_faster), equal_nan=True):
            upper = _upper_tail(z_slower, TAIL_DF)
            slower[a : a + CHUNK], faster[a : a + CHUNK] = (
                _sf_from_upper(z_slower, upper),
                _sf_from_upper(z_faster, upper),
            )
        else:
            slower[a : a + CHUNK], faster[a : a + CHUNK] = student_sf(z_slower), student_sf(z_faster)
    return slower.reshape(shape), faster.reshape(shape)


def p_slower(log_ratio, se, tolerance: float = 0.0) -> np.ndarray:
    """p of H0 "not slower by more than ``tolerance``" (log ratio new/old <= log(1 + tolerance))."""
    return p_above(log_ratio, se, math.log1p(tolerance))


def p_faster(log_ratio, se, tolerance: float = 0.0) -> np.ndarray:
    """p of H0 "not faster by more than ``tolerance``" (log ratio new/old >= -log(1 + tolerance))."""
    return p_above(-np.asarray(log_ratio, dtype=float), se, math.log1p(tolerance))


def fastest_of(p, candidates) -> np.ndarray:
    """The p-value of "the fastest of ``candidates`` is faster than the reference", where the fastest was
    picked by its estimate: min(1, candidates x its own one-sided p). Valid whatever the dependence: under
    the null that no candidate is faster, P(p_fastest <= t) <= P(min over candidates <= t) <= candidates x t
    (Bonferroni); and the chance of switching to a candidate that is not faster stays at most t. NaN stays
    NaN; fewer than one candidate is no test."""
    p = np.asarray(p, dtype=float)
    c = np.asarray(candidates, dtype=float)
    return np.where(c >= 1, np.minimum(1.0, p * c), np.nan)


def interval_log_normal(low, high, z: float) -> tuple[np.ndarray, np.ndarray]:
    """The centre and standard error on the log scale of a symmetric-on-the-log interval [low, high] of
    confidence ``z`` (1.96 for 95%): the midpoint of the logs and half their width over z. For intervals
    that come without a standard error (a geometric mean's); NaN where the interval is not
    positive and ordered."""
    lo, hi = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    ok = (lo > 0) & (hi >= lo)
    with np.errstate(divide="ignore", invalid="ignore"):
        llo, lhi = np.log(np.where(ok, lo, np.nan)), np.log(np.where(ok, hi, np.nan))
    return (llo + lhi) / 2, (lhi - llo) / (2 * z)


def _sorted_within(p: np.ndarray, groups) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The tested entries (finite p) ordered by (family, p): their positions in ``p``, family codes, rank
    (1-based) within the family and the family's size."""
    tested = np.flatnonzero(~np.isnan(p))
    if groups is None:
        codes = np.zeros(len(p), dtype=np.int64)
    else:
        codes = pd.factorize(pd.Series(np.asarray(groups)), use_na_sentinel=False)[0].astype(np.int64)
    order = tested[np.lexsort((p[tested], codes[tested]))]
    fam = codes[order]
    if not len(fam):
        return order, fam, fam, fam
    start = np.r_[True, fam[1:] != fam[:-1]]
    first = np.maximum.accumulate(np.where(start, np.arange(len(fam)), 0))
    return order, fam, np.arange(len(fam)) - first + 1, np.bincount(fam)[fam]


def holm(p, groups=None) -> np.ndarray:
    """Holm's step-down adjusted p-values per family (see the module docstring); NaN stays NaN."""
    p = np.asarray(p, dtype=float).ravel()
    out = np.full(p.shape, np.nan)
    order, fam, rank, size = _sorted_within(p, groups)
    if len(order):
        raw = np.minimum(1.0, (size - rank + 1) * p[order])
        out[order] = pd.Series(raw).groupby(fam, sort=False).cummax().to_numpy()
    return out


def _raw_in_place(p_sorted: np.ndarray, tests: int, first_rank: int) -> np.ndarray:
    """Benjamini-Hochberg's raw values min(1, p tests / rank) of ascending p-values whose ranks start at
    ``first_rank``, in place, a slice at a time (no arange of every rank beside millions of p-values)."""
    for a in range(0, len(p_sorted), CHUNK):
        part = p_sorted[a : a + CHUNK]
        np.multiply(part, tests, out=part)
        np.divide(part, np.arange(first_rank + a, first_rank + a + len(part), dtype=np.float64), out=part)
        np.minimum(part, 1.0, out=part)
    return p_sorted


def benjamini_hochberg(p, groups=None) -> np.ndarray:
    """Benjamini-Hochberg step-up adjusted p-values (q-values) per family; NaN stays NaN."""
    p = np.asarray(p, dtype=float).ravel()
    out = np.full(p.shape, np.nan)
    if groups is None:  # one family (a table's millions of layer tests): one sort, no grouping
        # Tied p-values get one q-value whatever their order (the step-up's running minimum reaches the last of
        # them), so the sort need not be stable: 1.5 s instead of 3.7 s for 28,000,000 tests
        order = ascending(p)
        raw = _raw_in_place(p[order], len(order), 1)
        out[order] = np.minimum.accumulate(raw[::-1])[::-1]
        return out
    order, fam, rank, size = _sorted_within(p, groups)
    if len(order):
        raw = np.minimum(1.0, p[order] * size / rank)
        back = pd.Series(raw[::-1]).groupby(fam[::-1], sort=False).cummin().to_numpy()[::-1]
        out[order] = back
    return out


ADJUST = {HOLM: holm, BH: benjamini_hochberg}


def rejected(adjusted, level: float = LEVEL) -> np.ndarray:
    """Where an adjusted p-value (Holm's or BH's) claims a discovery at ``level``; NaN never does."""
    a = np.asarray(adjusted, dtype=float)
    return ~np.isnan(a) & (a <= level)


@dataclass(frozen=True)
class Family:
    """What a set of claims was corrected for: how many tests, how many comparisons had no interval, the
    correction and its level, and what the family is (in words)."""

    method: str
    level: float
    tests: int
    untested: int
    what: str

    def line(self) -> str:
        return (
            f"{self.tests} one-sided tests ({self.what}), corrected by {self.method} for a "
            f"{METHODS[self.method]} of {self.level:.0%}; {self.untested} comparison(s) with no interval "
            f"(not enough samples) not tested"
        )


@dataclass(frozen=True)
class Directional:
    """Both one-sided tests of each comparison, corrected together (arrays, one entry per comparison)."""

    p_slower: np.ndarray
    p_faster: np.ndarray
    adjusted_slower: np.ndarray
    adjusted_faster: np.ndarray
    level: float

    @property
    def p_value(self) -> np.ndarray:
        """The smaller one-sided p: the direction the estimate leans (NaN: no test)."""
        return np.fmin(self.p_slower, self.p_faster)

    @property
    def adjusted(self) -> np.ndarray:
        """The adjusted p of that direction."""
        return np.fmin(self.adjusted_slower, self.adjusted_faster)

    def code(self) -> np.ndarray:
        """Per comparison, a code into DECISIONS: 0 faster, 1 same, 2 slower, 3 no interval."""
        slower, faster = rejected(self.adjusted_slower, self.level), rejected(self.adjusted_faster, self.level)
        untested = np.isnan(self.p_slower) | np.isnan(self.p_faster)
        return np.select([untested, slower, faster], [3, 2, 0], default=1).astype(np.int8)

    def decisions(self) -> np.ndarray:
        return np.array(DECISIONS, dtype=object)[self.code()]


def directional(
    log_ratio, se, tolerance: float = 0.0, method: str = BH, level: float = LEVEL, groups=None
) -> Directional:
    """Per comparison (log ratio new/old, standard error): p_slower and p_faster against ``tolerance``,
    adjusted by ``method`` over one family of 2m one-sided tests per group (``groups``: one label per
    comparison, None for one family)."""
    ps, pf = _p_both(log_ratio, se, tolerance)
    untested = np.isnan(ps) | np.isnan(pf)
    ps, pf = np.where(untested, np.nan, ps).ravel(), np.where(untested, np.nan, pf).ravel()
    paired = _bh_of_complements(ps, pf) if method == BH and groups is None else None
    if paired is not None:
        return Directional(ps, pf, *paired, level)
    g = None if groups is None else np.concatenate([np.asarray(groups)] * 2)
    adj = ADJUST[method](np.concatenate([ps, pf]), g)
    return Directional(ps, pf, adj[: len(ps)], adj[len(ps) :], level)


def _bh_of_complements(ps: np.ndarray, pf: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``benjamini_hochberg`` of the one family ``ps`` + ``pf``, bit for bit, where each comparison's two
    p-values are x and 1 - x (as ``_p_both`` computes them at tolerance 0); None where they are not.

    Then the smaller ones, sorted, are the family's first half in order, and the larger ones are the same
    comparisons in reverse order: one sort of m values instead of 2m (the sorted family is the same sequence,
    so the same q-values; tied values share theirs whatever their order). 28,000,000 tests: 1.5 s less."""
    low, high = np.fmin(ps, pf), np.fmax(ps, pf)
    tested = np.flatnonzero(~np.isnan(low))
    if not len(tested):
        return None
    low_t = low[tested]
    if not np.array_equal(high[tested], 1.0 - low_t) or low_t.max() > high[tested].min():
        return None
    del low_t
    order = ascending(low)
    m = len(order)
    raw = _raw_in_place(np.concatenate([low[order], high[order[::-1]]]), 2 * m, 1)  # the whole family, ascending
    del low, high
    q = np.minimum.accumulate(raw[::-1])[::-1]
    del raw
    q_low, q_high = np.full(len(ps), np.nan), np.full(len(ps), np.nan)
    q_low[order], q_high[order[::-1]] = q[:m], q[m:]
    slower_is_low = ps <= pf
    return np.where(slower_is_low, q_low, q_high), np.where(slower_is_low, q_high, q_low)


def smaller_bh(
    log_ratio, se, level: float = LEVEL, workers: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """What a table keeps of ``directional(log_ratio, se, 0.0, BH)``, one family: per comparison the smaller
    one-sided p-value, its q-value and the decision code (``Directional.p_value``, ``.adjusted``, ``.code()``),
    bit for bit, holding about half as many arrays of every comparison (14,000,000 layer rows: 1.3 GB at the
    peak of the whole ``Directional``). None where the p-values are not pairs of complements (see
    ``_bh_of_complements``) or ``level`` is 1/2 or more: then ``directional``.

    Why it can: the larger p of a pair is 1 - the smaller, so its q-value is at least 1/2 (its raw value
    p 2m / rank is, at a rank within 2m), never a rejection below 1/2, and the smaller p's q-value is the running
    minimum over the smaller ones' raw values and the least of the larger ones' (a number): the larger p-values
    and their q-values are never held.

    ``workers``: threads computing the slices' p-values (each slice alone, into its own rows: the same values
    whatever the number; numpy's loops release the GIL)."""
    if level >= 0.5:
        return None
    lr, s = np.broadcast_arrays(np.asarray(log_ratio, dtype=float), np.asarray(se, dtype=float))
    lr, s = lr.ravel(), s.ravel()
    if ((lr == 0) & (s == 0)).any():  # an exact comparison of equal values: p 1 both ways, known before any test
        return None
    n = lr.size
    low, slower_is_low = np.empty(n), np.empty(n, dtype=bool)

    one = functools.partial(_smaller_of_slice, lr, s, low, slower_is_low)
    starts = range(0, n, CHUNK)
    if workers > 1 and len(starts) > 1:
        with ThreadPoolExecutor(workers) as pool:
            bounds = list(pool.map(one, starts))
    else:
        bounds = [one(a) for a in starts]
    del one  # it holds the inputs, which are let go below
    if any(b is None for b in bounds):
        return None
    highest_low = max((b[0] for b in bounds), default=-np.inf)
    lowest_high = min((b[1] for b in bounds), default=np.inf)
    if highest_low > lowest_high:
        return None
    del log_ratio, se, lr, s  # the inputs are not read again: a caller that passed a temporary frees it here
    order = ascending(low, workers)  # ties in any order share their q-value
    m = len(order)
    raw = low[order]
    larger = _least_raw_of_complements(raw)  # before raw is scaled in place
    _raw_in_place(raw, 2 * m, 1)
    backwards = raw[::-1]
    np.minimum.accumulate(backwards, out=backwards)  # the step-up's running minimum, in place
    q_sorted = np.minimum(raw, larger, out=raw)
    q = np.full(n, np.nan)
    q[order] = q_sorted
    rejected = q_sorted <= level
    del raw, q_sorted, backwards  # freed before the codes are made
    code = np.full(n, 3, dtype=np.int8)  # no interval
    code[order] = np.where(rejected, np.where(slower_is_low[order], np.int8(2), np.int8(0)), np.int8(1))
    return low, q, code


def ascending(values: np.ndarray, workers: int = 1) -> np.ndarray:
    """The positions of the values that are not NaN, in ascending order of value (ties in any order). With
    ``workers`` > 1 and more than 2 CHUNK values, the values are split at quantiles of a sample into ``workers``
    ranges, each range's positions sorted in a thread of its own and the ranges put end to end: the 14,000,000
    p-values of a campaign's ``layer_speedups`` took 1.7 s in one sort, the one step of that table no thread
    shared."""
    n = len(values)
    if workers <= 1 or n <= 2 * CHUNK:
        order = np.argsort(values)  # NaN sorts last
        return order[: n - int(np.isnan(values).sum())]
    sample = values[:: max(1, n // 10_000)]
    sample = sample[~np.isnan(sample)]
    # cuts among the sampled values themselves ("lower"): interpolating between infinities gave NaN cuts, which
    # no value is on either side of
    quantiles = np.linspace(0, 1, workers + 1)[1:-1]
    cuts = np.unique(np.quantile(sample, quantiles, method="lower")) if len(sample) else sample
    if not len(cuts):  # nothing tested in the sample: one range
        return ascending(values, 1)

    def sort(k: int) -> np.ndarray:
        """The positions of range k's values (at most cuts[k], above cuts[k - 1]; NaN in none), ascending."""
        inside = values <= cuts[k] if k < len(cuts) else values > cuts[-1]
        if 0 < k < len(cuts):
            inside &= values > cuts[k - 1]
        rows = np.flatnonzero(inside)
        del inside
        return rows[np.argsort(values[rows])]

    with ThreadPoolExecutor(min(workers, len(cuts) + 1)) as pool:
        return np.concatenate(list(pool.map(sort, range(len(cuts) + 1))))


def _smaller_of_slice(lr, s, low, slower_is_low, a: int) -> tuple[float, float] | None:
    """smaller_bh's slice [a, a + CHUNK): its smaller p-values into ``low`` (and which test gave each into
    ``slower_is_low``); its highest smaller and lowest larger p-value; None where its p-values are not pairs of
    complements."""
    ps, pf = _p_both(lr[a : a + CHUNK], s[a : a + CHUNK], 0.0)
    tested = ~(np.isnan(ps) | np.isnan(pf))
    lo, hi = np.fmin(ps, pf), np.fmax(ps, pf)
    lo[~tested] = np.nan
    if not np.array_equal(hi[tested], 1.0 - lo[tested]):
        return None
    low[a : a + CHUNK], slower_is_low[a : a + CHUNK] = lo, ps <= pf
    return (lo[tested].max(), hi[tested].min()) if tested.any() else (-np.inf, np.inf)


def _least_raw_of_complements(smaller_sorted: np.ndarray) -> float:
    """The least raw value min(1, p 2m / rank) of the larger p-values (1 - each of the m smaller ones, ascending
    from rank m + 1), a slice at a time: the running minimum of the whole family at rank m + 1, which every
    smaller p-value's q-value is capped by."""
    m, least = len(smaller_sorted), np.inf
    mirrored = smaller_sorted[::-1]
    for a in range(0, m, CHUNK):
        least = min(least, float(_raw_in_place(1.0 - mirrored[a : a + CHUNK], 2 * m, m + a + 1).min()))
    return least


def family(p, method: str, what: str, level: float = LEVEL, tests_per_comparison: int = 1) -> Family:
    """The Family of an array of per-comparison p-values (NaN: untested)."""
    p = np.asarray(p, dtype=float)
    tested = int((~np.isnan(p)).sum())
    return Family(method, level, tests_per_comparison * tested, int(p.size - tested), what)
