"""Aggregation of several people's answers and inter-annotator agreement. Pure functions.

Reliability data is a list of units (items), each a sequence of the values its raters gave,
``None`` where a rater gave nothing. Values must be hashable (booleans, numbers, strings).

A coefficient that is not defined for the data (a single rater, no pairable unit, no variation
at all) is ``None``, never a made-up 0 or 1: a page shows "not defined yet" instead.

References: K. Krippendorff, "Computing Krippendorff's Alpha-Reliability" (2011);
J. L. Fleiss, "Measuring nominal scale agreement among many raters" (1971);
J. Cohen, "A coefficient of agreement for nominal scales" (1960).
"""

import math
import statistics
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum


class Level(StrEnum):
    NOMINAL = "nominal"
    ORDINAL = "ordinal"
    INTERVAL = "interval"


def level_for(value_type: str, *, step: float | None = None) -> Level | None:
    """The measurement level a schema's values have, or None when agreement is meaningless.

    A numeric schema with a step is a rating scale (1–5 stars): its points are ordered but
    their distances are not known to be equal, so it is ordinal. Without a step it is a
    score on a continuous scale: interval.
    """
    if value_type in ("boolean", "categorical"):
        return Level.NOMINAL
    if value_type == "numeric":
        return Level.ORDINAL if step else Level.INTERVAL
    return None


@dataclass(frozen=True)
class Aggregate:
    """What several annotators said about one trace and name.

    ``value`` is the majority (nominal types) or the mean (numeric); None on a tie, when no
    one answered, or for structured values. ``tied`` lists the values that tie for first.
    """

    value: object = None
    count: int = 0
    missing: int = 0
    counts: dict = field(default_factory=dict)
    tied: tuple = ()
    mean: float | None = None
    stdev: float | None = None
    minimum: float | None = None
    maximum: float | None = None

    @property
    def spread(self) -> float | None:
        if self.minimum is None:
            return None
        return self.maximum - self.minimum

    @property
    def unanimous(self) -> bool:
        return self.count > 0 and len(self.counts) == 1

    @property
    def disagreement(self) -> bool:
        """At least two answers that differ."""
        return len(self.counts) > 1


def aggregate(values: Sequence, value_type: str) -> Aggregate:
    """Combine the answers of several annotators; ``None`` entries count as missing."""
    present = [v for v in values if v is not None]
    missing = len(values) - len(present)
    if value_type == "structured":
        return Aggregate(count=len(present), missing=missing)
    counts = dict(Counter(present).most_common())
    if not present:
        return Aggregate(missing=missing)
    if value_type == "numeric":
        return Aggregate(
            value=statistics.fmean(present),
            count=len(present),
            missing=missing,
            counts=counts,
            mean=statistics.fmean(present),
            stdev=statistics.pstdev(present),
            minimum=min(present),
            maximum=max(present),
        )
    top = max(counts.values())
    leaders = tuple(v for v, n in counts.items() if n == top)
    return Aggregate(
        value=leaders[0] if len(leaders) == 1 else None,
        count=len(present),
        missing=missing,
        counts=counts,
        tied=leaders if len(leaders) > 1 else (),
    )


def _pairable(units: Sequence[Sequence]) -> list[list]:
    """Units with at least two values; the others carry no information about agreement."""
    kept = []
    for unit in units:
        present = [v for v in unit if v is not None]
        if len(present) >= 2:
            kept.append(present)
    return kept


def _coincidences(units: list[list]) -> dict[tuple, float]:
    """Krippendorff's coincidence matrix o_ck: each ordered pair within a unit weighs 1/(m-1)."""
    matrix: dict[tuple, float] = {}
    for present in units:
        weight = 1 / (len(present) - 1)
        counts = Counter(present)
        for c, n_c in counts.items():
            for k, n_k in counts.items():
                pairs = n_c * (n_k - 1) if c == k else n_c * n_k
                if pairs:
                    matrix[c, k] = matrix.get((c, k), 0.0) + pairs * weight
    return matrix


def _distance(level: Level, marginals: dict) -> callable:
    """The squared difference function δ²(c, k) for a level; ordinal needs the marginals."""
    if level == Level.NOMINAL:
        return lambda c, k: 0.0 if c == k else 1.0
    if level == Level.INTERVAL:
        return lambda c, k: float(c - k) ** 2
    ranks = sorted(marginals)
    cumulative, running = {}, 0.0
    for value in ranks:
        cumulative[value] = running  # sum of n_g for g below value
        running += marginals[value]

    def ordinal(c, k):
        low, high = (c, k) if c <= k else (k, c)
        between = cumulative[high] + marginals[high] - cumulative[low]
        return (between - (marginals[low] + marginals[high]) / 2) ** 2

    return ordinal


def krippendorff_alpha(units: Sequence[Sequence], level: Level = Level.NOMINAL) -> float | None:
    """Krippendorff's alpha for any number of raters, with missing values allowed."""
    level = Level(level)
    matrix = _coincidences(_pairable(units))
    marginals: dict[Hashable, float] = {}
    for (c, _k), weight in matrix.items():
        marginals[c] = marginals.get(c, 0.0) + weight
    total = sum(marginals.values())
    if total <= 1:
        return None
    delta = _distance(level, marginals)
    observed = sum(weight * delta(c, k) for (c, k), weight in matrix.items())
    expected = sum(marginals[c] * marginals[k] * delta(c, k) for c in marginals for k in marginals)
    if expected == 0:
        return None
    return 1 - (total - 1) * observed / expected


def cohen_kappa(pairs: Sequence[tuple]) -> float | None:
    """Cohen's kappa for two raters; ``pairs`` holds (rater 1, rater 2) per unit.

    Units where either rater gave nothing are left out.
    """
    complete = [(a, b) for a, b in pairs if a is not None and b is not None]
    if not complete:
        return None
    n = len(complete)
    observed = sum(1 for a, b in complete if a == b) / n
    first = Counter(a for a, _ in complete)
    second = Counter(b for _, b in complete)
    expected = sum(first[c] * second[c] for c in first) / (n * n)
    if math.isclose(expected, 1.0):
        return None
    return (observed - expected) / (1 - expected)


def fleiss_kappa(units: Sequence[Sequence]) -> float | None:
    """Fleiss' kappa: defined when every unit has the same number (two or more) of ratings.

    The raters need not be the same people from unit to unit. Units with fewer than two
    ratings are left out; if the rest differ in their number of ratings, kappa is undefined.
    """
    kept = _pairable(units)
    if not kept or len({len(unit) for unit in kept}) != 1:
        return None
    raters = len(kept[0])
    n_units = len(kept)
    totals: Counter = Counter()
    agreement = 0.0
    for unit in kept:
        counts = Counter(unit)
        totals.update(counts)
        agreement += (sum(n * n for n in counts.values()) - raters) / (raters * (raters - 1))
    observed = agreement / n_units
    expected = sum((n / (n_units * raters)) ** 2 for n in totals.values())
    if math.isclose(expected, 1.0):
        return None
    return (observed - expected) / (1 - expected)


def agreement_by_rater(units: Sequence[Mapping]) -> dict[Hashable, tuple[int, int]]:
    """For each rater, (agreeing, compared): how many of the other raters' answers on the
    same units matched theirs. Reads as "agreed with the others on x of y comparisons"."""
    result: dict[Hashable, tuple[int, int]] = {}
    for unit in units:
        present = {rater: value for rater, value in unit.items() if value is not None}
        for rater, value in present.items():
            others = [v for r, v in present.items() if r != rater]
            agreeing, compared = result.get(rater, (0, 0))
            result[rater] = (agreeing + sum(v == value for v in others), compared + len(others))
    return result
