"""Reliability of a form's scales in a clinic's own data: Cronbach's alpha (raw and
standardized) with Feldt's 95 % interval, the mean inter-item correlation, and per item the
corrected item-total correlation and alpha if the item is deleted, after reverse keying.

Written by hand (no numpy, no scipy): the arithmetic is a few sums of squares, and Feldt's
interval needs only the F distribution's quantiles, computed here from the regularized
incomplete beta function (Numerical Recipes' continued fraction, inverted by bisection).
The definitions are those of R's ``psych::alpha`` (Revelle), which the tests compare
against on fixtures it produced (``tests/fixtures/psych/alpha_with_psych.R``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from alliance_cli.core.scorer import Scorer


@dataclass(frozen=True)
class ItemStat:
    """One item of a scale: its mean and SD, how it goes with the rest of the scale."""

    item: str
    mean: float
    sd: float
    r_drop: float  # correlation with the sum of the scale's other items (corrected)
    alpha_if_deleted: float  # raw alpha of the scale without this item


@dataclass(frozen=True)
class ScaleReliability:
    """One scale's reliability in a sample."""

    scale: str
    n: int  # complete cases: rows with every item of the scale answered
    items: int
    alpha: float  # raw (from covariances)
    std_alpha: float  # standardized (from correlations)
    ci_low: float  # Feldt's 95 % interval of the raw alpha
    ci_high: float
    average_r: float  # the mean inter-item correlation
    item_stats: tuple[ItemStat, ...]
    omega: float | None = None  # McDonald's omega total, one factor (None: extra missing)
    total_mean: float = 0.0  # the scale's sum of keyed items: its mean and SD in the sample
    total_sd: float = 0.0

    def score_mean_sd(self, metric: str) -> tuple[float, float]:
        """The scale score's mean and SD in the sample, in the instrument's metric (the mean
        of the items, or their sum): what local norms keep."""
        scale = 1 / self.items if metric == "mean" else 1.0
        return self.total_mean * scale, self.total_sd * scale

    def against(self) -> list[str]:
        """Items that run against their scale, in plain words (a reverse key or a column)."""
        return [
            f"item {s.item} runs against its scale (r = {s.r_drop:.2f}): check its reverse "
            "key or its column"
            for s in self.item_stats
            if s.r_drop < 0
        ]


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


def _cov(a: Sequence[float], b: Sequence[float], ma: float, mb: float) -> float:
    return math.fsum((x - ma) * (y - mb) for x, y in zip(a, b, strict=True)) / (len(a) - 1)


def _alpha(cov: list[list[float]], which: Sequence[int]) -> float:
    """Raw alpha of the items ``which`` from their covariance matrix."""
    k = len(which)
    total = math.fsum(cov[i][j] for i in which for j in which)
    diagonal = math.fsum(cov[i][i] for i in which)
    return k / (k - 1) * (1 - diagonal / total) if k > 1 and total > 0 else float("nan")


def scale_reliability(
    scale: str, item_ids: Sequence[str], rows: Sequence[Sequence[float]]
) -> ScaleReliability:
    """Reliability of one scale from complete rows of keyed answers (one column per item)."""
    n, k = len(rows), len(item_ids)
    if n < 3 or k < 2:
        raise ValueError(f"{scale}: needs 3 complete rows and 2 items (has {n} and {k})")
    columns = [[row[j] for row in rows] for j in range(k)]
    means = [_mean(c) for c in columns]
    cov = [[_cov(columns[i], columns[j], means[i], means[j]) for j in range(k)] for i in range(k)]
    sds = [math.sqrt(cov[i][i]) for i in range(k)]
    if any(sd == 0 for sd in sds):
        constant = [item_ids[i] for i in range(k) if sds[i] == 0]
        raise ValueError(f"{scale}: item {', '.join(constant)} has the same answer in every row")
    corr = [[cov[i][j] / (sds[i] * sds[j]) for j in range(k)] for i in range(k)]
    average_r = _mean([corr[i][j] for i in range(k) for j in range(k) if i != j])
    alpha = _alpha(cov, range(k))
    std_alpha = k * average_r / (1 + (k - 1) * average_r)
    stats = []
    totals = [math.fsum(row) for row in rows]
    total_mean = _mean(totals)
    total_sd = math.sqrt(_cov(totals, totals, total_mean, total_mean))
    for i in range(k):
        rest = [t - row[i] for t, row in zip(totals, rows, strict=True)]
        m_rest = _mean(rest)
        sd_rest = math.sqrt(_cov(rest, rest, m_rest, m_rest))
        r_drop = _cov(columns[i], rest, means[i], m_rest) / (sds[i] * sd_rest)
        others = [j for j in range(k) if j != i]
        stats.append(ItemStat(item_ids[i], means[i], sds[i], r_drop, _alpha(cov, others)))
    low, high = feldt_interval(alpha, n, k)
    return ScaleReliability(
        scale, n, k, alpha, std_alpha, low, high, average_r, tuple(stats), omega_total(rows),
        total_mean, total_sd,
    )  # fmt: skip


OMEGA_ESTIMATOR = "one-factor minres (factor_analyzer), as psych::omega(nfactors = 1)"


def omega_total(rows: Sequence[Sequence[float]]) -> float | None:
    """McDonald's omega total from a one-factor model fitted by minres (the optional
    ``omega`` extra, factor_analyzer): (sum of loadings)^2 over itself plus the sum of
    uniquenesses, on the correlations. None when the extra is not installed."""
    try:
        import numpy as np
        from factor_analyzer import FactorAnalyzer  # type: ignore[import-untyped]
    except ImportError:
        return None
    fa = FactorAnalyzer(n_factors=1, rotation=None, method="minres")
    fa.fit(np.asarray(rows, dtype=float))
    loadings = float(fa.loadings_[:, 0].sum())
    unique = float(fa.get_uniquenesses().sum())
    return loadings**2 / (loadings**2 + unique)


def feldt_interval(alpha: float, n: int, k: int, level: float = 0.95) -> tuple[float, float]:
    """Feldt's interval of alpha (as ``psych::alpha.ci``): 1 - (1 - alpha) * F quantiles with
    n - 1 and (n - 1)(k - 1) degrees of freedom."""
    df1, df2 = n - 1, (n - 1) * (k - 1)
    tail = (1 - level) / 2
    return (
        1 - (1 - alpha) * f_quantile(1 - tail, df1, df2),
        1 - (1 - alpha) * f_quantile(tail, df1, df2),
    )


def f_quantile(p: float, d1: float, d2: float) -> float:
    """The p quantile of the F distribution (bisection on its CDF, to 1e-12)."""
    lo, hi = 0.0, 1.0
    while f_cdf(hi, d1, d2) < p:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        if f_cdf(mid, d1, d2) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-13 * max(1.0, hi):
            break
    return (lo + hi) / 2


def f_cdf(x: float, d1: float, d2: float) -> float:
    """P(F <= x) for F with d1 and d2 degrees of freedom."""
    if x <= 0:
        return 0.0
    return incomplete_beta(d1 * x / (d1 * x + d2), d1 / 2, d2 / 2)


def incomplete_beta(x: float, a: float, b: float) -> float:
    """The regularized incomplete beta function I_x(a, b)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    ln_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1) / (a + b + 2):
        return math.exp(ln_front) * _beta_fraction(x, a, b) / a
    return 1 - math.exp(ln_front) * _beta_fraction(1 - x, b, a) / b


def _beta_fraction(x: float, a: float, b: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1, a - 1
    c, d = 1.0, 1 - qab * x / qap
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1 + aa * d
        d = 1 / (d if abs(d) > tiny else tiny)
        c = 1 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1 + aa * d
        d = 1 / (d if abs(d) > tiny else tiny)
        c = 1 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-15:
            break
    return h


def form_reliability(
    scorer: Scorer, answers: Sequence[Mapping[str, Any]], problems: list[str] | None = None
) -> list[ScaleReliability]:
    """Each scale of a form (subscales, then the total) in rows of raw answers by item id:
    reverse keys applied, complete cases only (a row missing any of a scale's items is left
    out of that scale). A scale that cannot be computed (one item, fewer than 3 complete
    rows, an item with one answer in every row) is left out, its reason appended to
    ``problems`` (raised when ``problems`` is None)."""
    out = []
    for plan in scorer.plans:
        ids = [scorer.item_ids[p] for p in plan.positions]
        if len(ids) < 2:  # a one-line scale (the SRS's four): no alpha to compute, not an error
            continue
        rows = []
        for row in answers:
            values = [row.get(i) for i in ids]
            present = [float(v) for v in values if v is not None]
            if len(present) == len(values):
                rows.append(
                    [scorer.keyed(p, v) for p, v in zip(plan.positions, present, strict=True)]
                )
        try:
            out.append(scale_reliability(plan.id, ids, rows))
        except ValueError as exc:
            if problems is None:
                raise
            problems.append(str(exc))
    return out
