"""How far an LLM judge agrees with people: statistics over (judge value, gold value) pairs.

Pure functions, no database. A figure that is not defined for the data (no gold positives,
a judge no better than chance for Rogan–Gladen) is ``None``, never a made-up number.

- Cohen's kappa from the confusion table, with a 95% percentile bootstrap interval. Items
  are resampled with replacement; as kappa depends only on the table, a resample of n items
  is a multinomial draw of the table's cells, made with exact binomial draws from a fixed
  seed: the same interval on every page load, in time independent of n.
- Wilson score intervals for proportions (TPR, TNR, agreement in a group).
- Rogan–Gladen corrected prevalence: the pass rate the judge would report with its errors
  taken out, (p_obs + TNR − 1) / (TPR + TNR − 1), clipped to [0, 1]; its interval comes
  from the same bootstrap (the table and the judge's pass rate over all judged items).
- Newcombe's hybrid score interval for the difference of two proportions, to flag a bias:
  a gap between the best and the worst group whose interval excludes 0.
- Numbers: mean absolute error, Spearman's rho (average ranks for ties), share within one
  step of the scale.

References: J. Cohen (1960); E. B. Wilson (1927); W. J. Rogan and B. Gladen (1978);
R. G. Newcombe, "Interval estimation for the difference between independent proportions"
(1998); J. R. Landis and G. G. Koch (1977) for the words describing kappa.
"""

import math
import random
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

Z95 = 1.959963984540054
BOOTSTRAP_SAMPLES = 1000
SEED = 20261202
Table = Mapping[tuple[Hashable, Hashable], int]  # (judge value, gold value) → items


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


def wilson(successes: int, n: int, z: float = Z95) -> Interval | None:
    """Wilson's score interval for a proportion ``successes / n``."""
    if n == 0:
        return None
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return Interval(max(0.0, centre - half), min(1.0, centre + half))


def newcombe(a: int, n_a: int, b: int, n_b: int) -> Interval | None:
    """Newcombe's hybrid score interval for ``a/n_a − b/n_b``."""
    first, second = wilson(a, n_a), wilson(b, n_b)
    if first is None or second is None:
        return None
    p, q = a / n_a, b / n_b
    d = p - q
    return Interval(
        d - math.sqrt((p - first.low) ** 2 + (second.high - q) ** 2),
        d + math.sqrt((first.high - p) ** 2 + (q - second.low) ** 2),
    )


def confusion(pairs: Sequence[tuple]) -> Counter:
    return Counter((judge, gold) for judge, gold in pairs)


def kappa(table: Table) -> float | None:
    """Cohen's kappa of the judge against gold; None when chance agreement is total."""
    n = sum(table.values())
    if n == 0:
        return None
    rows: Counter = Counter()
    cols: Counter = Counter()
    agree = 0
    for (judge, gold), count in table.items():
        rows[judge] += count
        cols[gold] += count
        if judge == gold:
            agree += count
    expected = sum(rows[c] * cols[c] for c in rows) / (n * n)
    if expected >= 1:
        return None
    return (agree / n - expected) / (1 - expected)


def rates(table: Table) -> tuple[int, int, int, int]:
    """(true positives, gold positives, true negatives, gold negatives) of a yes/no table."""
    tp = table.get((True, True), 0)
    tn = table.get((False, False), 0)
    return tp, tp + table.get((False, True), 0), tn, tn + table.get((True, False), 0)


def rogan_gladen(p_obs: float, tpr: float | None, tnr: float | None) -> float | None:
    """The judge's pass rate corrected for its errors, clipped to [0, 1]; None when the judge
    is no better than chance (TPR + TNR ≤ 1) and the correction is undefined."""
    if tpr is None or tnr is None or tpr + tnr <= 1:
        return None
    return min(1.0, max(0.0, (p_obs + tnr - 1) / (tpr + tnr - 1)))


def binomial(rng: random.Random, n: int, p: float) -> int:
    """An exact draw from Binomial(n, p): the geometric method for small n·p, else Hörmann's
    BTRS (the algorithms of Python 3.12's ``random.binomialvariate``)."""
    if p <= 0 or n == 0:
        return 0
    if p >= 1:
        return n
    if p > 0.5:
        return n - binomial(rng, n, 1 - p)
    if n * p < 10:
        x = y = 0
        c = math.log(1 - p)
        while True:
            y += math.floor(math.log(1 - rng.random()) / c) + 1
            if y > n:
                return x
            x += 1
    spq = math.sqrt(n * p * (1 - p))
    b = 1.15 + 2.53 * spq
    a = -0.0873 + 0.0248 * b + 0.01 * p
    c = n * p + 0.5
    vr = 0.92 - 4.2 / b
    alpha = (2.83 + 5.1 / b) * spq
    lpq = math.log(p / (1 - p))
    m = math.floor((n + 1) * p)
    h = math.lgamma(m + 1) + math.lgamma(n - m + 1)
    while True:
        u = rng.random() - 0.5
        us = 0.5 - abs(u)
        k = math.floor((2 * a / us + b) * u + c)
        if k < 0 or k > n:
            continue
        v = rng.random()
        if us >= 0.07 and v <= vr:
            return k
        v *= alpha / (a / (us * us) + b)
        if math.log(v) <= h - math.lgamma(k + 1) - math.lgamma(n - k + 1) + (k - m) * lpq:
            return k


def resample(rng: random.Random, table: Table) -> dict:
    """One bootstrap resample of the items behind ``table``, as a table."""
    left = sum(table.values())
    weight = left
    drawn = {}
    for cell, count in table.items():
        k = binomial(rng, left, count / weight) if weight else 0
        drawn[cell] = k
        left -= k
        weight -= count
    return drawn


def percentile_interval(values: Sequence[float]) -> Interval | None:
    if not values:
        return None
    ordered = sorted(values)
    last = len(ordered) - 1
    return Interval(ordered[round(0.025 * last)], ordered[round(0.975 * last)])


def kappa_interval(table: Table, samples: int = BOOTSTRAP_SAMPLES) -> Interval | None:
    rng = random.Random(SEED)
    found = (kappa(resample(rng, table)) for _ in range(samples))
    return percentile_interval([k for k in found if k is not None])


def corrected_interval(
    table: Table, passed: int, judged: int, samples: int = BOOTSTRAP_SAMPLES
) -> Interval | None:
    """Bootstrap interval of the Rogan–Gladen rate: the gold table and the judge's passes
    over all ``judged`` items resampled together."""
    if not judged:
        return None
    rng = random.Random(SEED)
    found = []
    for _ in range(samples):
        tp, positives, tn, negatives = rates(resample(rng, table))
        p_obs = binomial(rng, judged, passed / judged) / judged
        corrected = rogan_gladen(
            p_obs, tp / positives if positives else None, tn / negatives if negatives else None
        )
        if corrected is not None:
            found.append(corrected)
    return percentile_interval(found)


def per_class(table: Table, classes: Sequence) -> list[tuple[object, float | None, float | None]]:
    """(class, precision, recall) of the judge for each class."""
    found = []
    for c in classes:
        hits = table.get((c, c), 0)
        said = sum(n for (judge, _), n in table.items() if judge == c)
        truly = sum(n for (_, gold), n in table.items() if gold == c)
        found.append((c, hits / said if said else None, hits / truly if truly else None))
    return found


def _ranks(values: Sequence[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(pairs: Sequence[tuple[float, float]]) -> float | None:
    """Spearman's rho: Pearson's correlation of the average ranks; None without variation."""
    if len(pairs) < 2:
        return None
    xs = _ranks([x for x, _ in pairs])
    ys = _ranks([y for _, y in pairs])
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    if not sxx or not syy:
        return None
    return sxy / math.sqrt(sxx * syy)


def mean_absolute_error(pairs: Sequence[tuple[float, float]]) -> float | None:
    return sum(abs(x - y) for x, y in pairs) / len(pairs) if pairs else None


def within_step(pairs: Sequence[tuple[float, float]], step: float) -> float | None:
    if not pairs:
        return None
    return sum(abs(x - y) <= step + 1e-9 for x, y in pairs) / len(pairs)


KAPPA_WORDS = [
    (0.8, "almost perfect"),
    (0.6, "substantial"),
    (0.4, "moderate"),
    (0.2, "fair"),
    (0.0, "slight"),
]


def kappa_word(value: float) -> str:
    """Landis and Koch's words for a kappa."""
    return next((word for bound, word in KAPPA_WORDS if value > bound), "poor")


@dataclass(frozen=True)
class GroupAgreement:
    label: str
    agreeing: int
    n: int
    interval: Interval | None

    @property
    def rate(self) -> float | None:
        return self.agreeing / self.n if self.n else None


@dataclass(frozen=True)
class BiasCheck:
    """Agreement per group; ``flagged`` when the gap between the best and the worst group
    has a 95% interval that excludes 0."""

    title: str
    groups: list[GroupAgreement]
    gap: Interval | None
    worst: GroupAgreement | None

    @property
    def flagged(self) -> bool:
        return self.gap is not None and self.gap.low > 0


def bias_check(title: str, groups: Sequence[tuple[str, int, int]], min_items: int = 5) -> BiasCheck:
    """``groups`` holds (label, agreeing, n); groups with no items are left out, and those
    with fewer than ``min_items`` are shown but not compared."""
    shown = [GroupAgreement(label, a, n, wilson(a, n)) for label, a, n in groups if n]
    compared = [group for group in shown if group.n >= min_items]
    if len(compared) < 2:
        return BiasCheck(title, shown, None, None)
    best = max(compared, key=lambda g: g.rate)
    worst = min(compared, key=lambda g: g.rate)
    gap = newcombe(best.agreeing, best.n, worst.agreeing, worst.n)
    return BiasCheck(title, shown, gap, worst)


def terciles(lengths: Sequence[int]) -> list[int]:
    """Which third (0, 1, 2) each item falls in when ranked by length; equal lengths stay
    together, in the third of their middle rank."""
    ordered = sorted(lengths)
    n = len(ordered)
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for rank, length in enumerate(ordered):
        first.setdefault(length, rank)
        last[length] = rank
    third = {x: min(2, int(3 * (first[x] + last[x]) / 2 // n)) for x in first}
    return [third[x] for x in lengths]
