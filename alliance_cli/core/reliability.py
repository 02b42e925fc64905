"""Reliability of a form's scales in a clinic's own data: Cronbach's alpha (raw and
standardized) with Feldt's 95 % interval, the mean inter-item correlation, and per item the
corrected item-total correlation and alpha if the item is deleted, after reverse keying.

Written by hand (no numpy, no scipy), except omega's one-factor model (see ``omega_total``,
the optional ``omega`` extra). Everything follows from each scale's item means and
covariance matrix over its complete cases, and those are computed exactly: every answer is
``low + step * k`` for a whole ``k``, so the sums of ``k`` and of ``k_i * k_j`` are integers.
Each item's ``k`` over the rows is held as bit planes (plane ``p`` is a big int with a bit
set in each row whose ``k`` has bit ``p``), and ``sum(k_i * k_j)`` is the sum over plane
pairs of ``popcount(plane_ip & plane_jq) << (p + q)``: a few thousand big-int ANDs for
100,000 rows of the 36-item WAI, instead of 66 million multiplications in Python.
Feldt's interval needs only the F distribution's quantiles, computed here from the
regularized incomplete beta function (Numerical Recipes' continued fraction, inverted by
bisection). The definitions are those of R's ``psych::alpha`` (Revelle), which the tests
compare against on fixtures it produced (``tests/fixtures/psych/alpha_with_psych.R``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from alliance_cli.core.words import counted

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


@dataclass(frozen=True)
class Moments:
    """A set of items over their complete cases: how many, the means, the covariances."""

    n: int
    means: list[float]
    cov: list[list[float]]  # sample covariances (n - 1), as R's cov


class _Codes(dict[Any, int]):
    """One item's answers -> k, the whole steps above the scale's minimum: a cell text the
    Scorer's answer tables know, a keyed value, or None (missing: ``self.missing``)."""

    def __init__(self, scorer: Scorer, position: int) -> None:
        super().__init__()
        self.low, self.step = scorer.low, scorer.step
        self.top = self._code(scorer.high)
        self.missing = _MISSING if self.top < _MISSING else -1
        self[None] = self.missing
        for text, value in scorer.answer_tables[position].items():
            self[text] = self.missing if value is None else self._code(value)

    def _code(self, value: float) -> int:
        k = round((value - self.low) / self.step)
        if k < 0:
            raise ValueError(f"{value} is below the scale's minimum {self.low}")
        return k

    def __missing__(self, value: Any) -> int:
        if not isinstance(value, int | float):  # (text the tables know is never looked up)
            raise ValueError(f"{value!r} is not a keyed answer")
        self[value] = k = self._code(float(value))
        return k


_MISSING = 255  # the code of a missing answer in an item's byte column (k below 255)
# byte code -> the ASCII digit of one bit: the plane, read by int(..., 2), one bit per row
_PRESENT = bytes(b"01"[code != _MISSING] for code in range(256))
_PLANES = [
    bytes(b"01"[code != _MISSING and (code >> p) & 1] for code in range(256)) for p in range(8)
]


def _planes(column: Sequence[Any], codes: _Codes) -> tuple[int, list[int]]:
    """One item over the rows: (the rows answered, as bits; the bit planes of its k)."""
    if not column:
        return 0, []
    bits = codes.top.bit_length()
    if codes.missing == _MISSING:  # one byte per row, then a translation per plane (C speed)
        raw = bytes(map(codes.__getitem__, column))
        planes = [int(raw.translate(_PLANES[p]), 2) for p in range(bits)]
        return int(raw.translate(_PRESENT), 2), planes
    ks = list(map(codes.__getitem__, column))  # more than 254 steps: k by k
    present = int(bytes(48 + (k >= 0) for k in ks), 2)
    return present, [int(bytes(48 + (k >= 0 and (k >> p) & 1) for k in ks), 2) for p in range(bits)]


def moments(encoded: Sequence[tuple[int, list[int]]], low: float, step: float) -> Moments:
    """Means and covariances of items (each as ``_planes`` encodes its column) over the rows
    where every one of them is answered; answers are ``low + step * k``, k whole."""
    complete = -1
    for present, _ in encoded:
        complete &= present
    complete = max(complete, 0)
    n = complete.bit_count()
    planes = [[plane & complete for plane in item] for _, item in encoded]
    sums = [sum(plane.bit_count() << p for p, plane in enumerate(item)) for item in planes]
    means = [low + step * s / n if n else math.nan for s in sums]
    k = len(encoded)
    cov = [[math.nan] * k for _ in range(k)]
    for i in range(k):
        for j in range(i, k):
            products = sum(
                (a & b).bit_count() << (p + q)
                for p, a in enumerate(planes[i])
                for q, b in enumerate(planes[j])
            )
            if n > 1:  # exact integers, one division: n * sum(k_i k_j) - sum(k_i) sum(k_j)
                value = step * step * (n * products - sums[i] * sums[j]) / (n * (n - 1))
                cov[i][j] = cov[j][i] = value
    return Moments(n, means, cov)


def _alpha(cov: list[list[float]], which: Sequence[int]) -> float:
    """Raw alpha of the items ``which`` from their covariance matrix."""
    k = len(which)
    total = math.fsum(cov[i][j] for i in which for j in which)
    diagonal = math.fsum(cov[i][i] for i in which)
    return k / (k - 1) * (1 - diagonal / total) if k > 1 and total > 0 else float("nan")


def scale_reliability(
    scale: str, item_ids: Sequence[str], m: Moments, omega: bool = True
) -> ScaleReliability:
    """Reliability of one scale from its items' moments over the complete cases (omega
    only when asked for and the extra is installed)."""
    n, k = m.n, len(item_ids)
    if n < 3 or k < 2:
        short = [f"{counted(n, 'complete row')} of the 3 it needs"] if n < 3 else []
        short += [f"{counted(k, 'item')} of the 2 it needs"] if k < 2 else []
        raise ValueError(f"{scale}: has {' and '.join(short)}")
    cov, means = m.cov, m.means
    sds = [math.sqrt(max(cov[i][i], 0.0)) for i in range(k)]
    if any(sd == 0 for sd in sds):
        constant = [item_ids[i] for i in range(k) if sds[i] == 0]
        items = (
            f"item {constant[0]} has"
            if len(constant) == 1
            else (f"items {', '.join(constant[:-1])} and {constant[-1]} have")
        )
        raise ValueError(f"{scale}: {items} the same answer in every row")
    corr = [[cov[i][j] / (sds[i] * sds[j]) for j in range(k)] for i in range(k)]
    average_r = _mean([corr[i][j] for i in range(k) for j in range(k) if i != j])
    alpha = _alpha(cov, range(k))
    std_alpha = k * average_r / (1 + (k - 1) * average_r)
    with_total = [math.fsum(row) for row in cov]  # each item's covariance with the sum
    total_var = math.fsum(with_total)
    stats = []
    for i in range(k):
        rest_var = total_var - 2 * with_total[i] + cov[i][i]  # the sum of the other items
        r_drop = (with_total[i] - cov[i][i]) / (sds[i] * math.sqrt(rest_var))
        others = [j for j in range(k) if j != i]
        stats.append(ItemStat(item_ids[i], means[i], sds[i], r_drop, _alpha(cov, others)))
    low, high = feldt_interval(alpha, n, k)
    fitted = omega_total(corr) if omega else None
    return ScaleReliability(
        scale, n, k, alpha, std_alpha, low, high, average_r, tuple(stats), fitted,
        math.fsum(means), math.sqrt(total_var),
    )  # fmt: skip


OMEGA_ESTIMATOR = (
    "one-factor minres (psych::fa's objective and gradient, minimised by scipy's L-BFGS-B),"
    " as psych::omega(nfactors = 1)"
)


def omega_total(corr: Sequence[Sequence[float]]) -> float | None:
    """McDonald's omega total from a one-factor minres model of the items' correlations, as
    ``psych::omega(nfactors = 1)``; None when the ``omega`` extra (numpy, scipy) is missing.

    The fit is psych's ``fa(fm = "minres")``: the uniquenesses minimise the sum of squared
    off-diagonal residuals of the first eigenvector's model, from 1 - SMC, with psych's
    analytic gradient, bounds (0.005 to 1), parameter scale (0.01) and stopping rule, by the
    same L-BFGS-B (scipy's, the Fortran code R's ``optim`` also wraps). Omega total is
    psych's: (sum of R - sum of uniquenesses) / sum of R.
    """
    try:
        import numpy as np
        from scipy.optimize import minimize  # type: ignore[import-untyped]
    except ImportError:
        return None
    r = np.asarray(corr, dtype=float)
    k = len(r)
    lower = np.tril_indices(k, -1)
    scale = 0.01  # optim's parscale: L-BFGS-B works on uniqueness / 0.01

    def first_factor(psi: Any, floor: float) -> Any:
        """Loadings of one factor: the first eigenvector of R with 1 - psi on its diagonal."""
        values, vectors = np.linalg.eigh(r - np.diag(psi))
        return vectors[:, -1] * math.sqrt(max(values[-1], floor))

    def residual(x: Any) -> float:
        psi = x * scale
        loadings = first_factor(psi, 100 * eps)
        off = (r - np.outer(loadings, loadings))[lower]
        return float(off @ off)

    def gradient(x: Any) -> Any:
        psi = x * scale
        loadings = first_factor(psi, 0.0)
        return (loadings * loadings + psi - 1) * scale

    eps = float(np.finfo(float).eps)  # psych's smc: pseudo-inverse, clipped to [0, 1]
    smc = np.clip(1 - 1 / np.diag(np.linalg.pinv(r, rcond=math.sqrt(eps))), 0.0, 1.0)
    upper = max(float(smc.max()), 1.0)
    fit = minimize(
        residual, (1 - smc) / scale, jac=gradient, method="L-BFGS-B",
        bounds=[(0.005 / scale, upper / scale)] * k,
        options={"maxcor": 5, "maxiter": 100, "ftol": 1e7 * eps, "gtol": 0.0},
    )  # fmt: skip
    loadings = first_factor(fit.x * scale, 0.0)
    unique = float((1 - loadings * loadings).sum())
    total = float(r.sum())
    return (total - unique) / total


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


def keyed_rows(scorer: Scorer, answers: Sequence[Mapping[str, Any]]) -> list[list[float | None]]:
    """Rows of raw answers by item id (as the history keeps them) as keyed answers in the
    form's item order, None where missing."""
    ids = list(enumerate(scorer.item_ids))
    return [
        [None if (v := row.get(i)) is None else scorer.keyed(p, float(v)) for p, i in ids]
        for row in answers
    ]


def form_reliability(
    scorer: Scorer,
    rows: Sequence[Sequence[str | float | None]],
    problems: list[str] | None = None,
    omega: bool = True,
) -> list[ScaleReliability]:
    """Each scale of a form (subscales, then the total) in rows of answers in item order
    (each a cell text the Scorer's answer tables know, or a keyed value; None where
    missing): complete cases only (a row missing any of a scale's items
    is left out of that scale). A scale that cannot be computed (one item, fewer than 3
    complete rows, an item with one answer in every row) is left out, its reason appended
    to ``problems`` (raised when ``problems`` is None)."""
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(scorer.item_ids)
    try:
        encoded = [_planes(column, _Codes(scorer, p)) for p, column in enumerate(columns)]
    except ValueError as exc:
        if problems is None:
            raise
        problems.append(str(exc))
        return []
    out = []
    for plan in scorer.plans:
        ids = [scorer.item_ids[p] for p in plan.positions]
        if len(ids) < 2:  # a one-line scale (the SRS's four): no alpha to compute, not an error
            continue
        try:
            m = moments([encoded[p] for p in plan.positions], scorer.low, scorer.step)
            out.append(scale_reliability(plan.id, ids, m, omega))
        except ValueError as exc:
            if problems is None:
                raise
            problems.append(str(exc))
    return out
