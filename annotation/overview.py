"""An experiment's feedback at a glance, as numbers and ready-made SVG geometry.

Counts only current feedback: not deleted, not overridden, and none that a blind queue
hides from the reader (``queues.hidden_answers_condition``): the worst-traces table would
show per trace how others answered, and with few answers the totals would too. Everything
is computed with a fixed number of grouped queries (bounds, counts per name/source/period,
counts per name/value for booleans and numbers, the traces with most negative feedback,
those traces), however many assessments there are; Python only lays out the bars.

Charts are plain SVG drawn by the template from these shapes, so they render without
JavaScript; each SVG has a title and description, each bar a ``<title>`` tooltip, and the
same figures are on the page as tables for screen readers and copying.
"""

import datetime
from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import BigIntegerField, CharField, Count, F, Func, Max, Min, Q, Value

from traces.models import Experiment, Trace

from .models import Assessment, Kind, SourceType
from .queues import hidden_answers_condition

DAY_MS = 86_400_000
MAX_PERIODS = 60
MAX_NAMES = 12
WORST_TRACES = 10
SOURCE_COLORS = {
    SourceType.HUMAN: "#2856c7",
    SourceType.LLM_JUDGE: "#b26a00",
    SourceType.CODE: "#5b6475",
}
POSITIVE = "#2e7d32"
NEGATIVE = "#c62828"
RATING = "#2856c7"
# What JSON_TYPE (SQLite) and JSONB_TYPEOF (PostgreSQL) call booleans and numbers.
BOOLEAN_TYPES = ("true", "false", "boolean")
NUMBER_TYPES = ("integer", "real", "number")

CHART_WIDTH = 640
MAX_BAR_WIDTH = 40
CHART_HEIGHT = 140
LEFT = 40
BOTTOM = 24


class JsonType(Func):
    """The JSON type of a value: booleans are 'true'/'false' on SQLite, 'boolean' on Postgres."""

    function = "JSON_TYPE"
    output_field = CharField()

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, function="JSONB_TYPEOF", **extra)


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    fill: str
    title: str


@dataclass
class Chart:
    """One SVG: bars plus the few labels its axes need."""

    id: str
    title: str
    description: str
    bars: list[Bar] = field(default_factory=list)
    labels: list[tuple[float, float, str, str]] = field(default_factory=list)
    width: int = CHART_WIDTH
    height: int = CHART_HEIGHT + BOTTOM
    left: int = LEFT
    base: int = CHART_HEIGHT


@dataclass
class NameActivity:
    name: str
    total: int
    by_source: dict[str, int]
    chart: Chart


@dataclass
class BooleanRate:
    name: str
    positive: int
    negative: int
    positive_width: float
    negative_width: float

    @property
    def total(self) -> int:
        return self.positive + self.negative

    @property
    def positive_percent(self) -> int:
        return round(100 * self.positive / self.total)


@dataclass
class Distribution:
    name: str
    total: int
    mean: float
    counts: list[tuple[str, int]]
    chart: Chart


@dataclass
class WorstTrace:
    trace: Trace
    negative: int
    positive: int


@dataclass
class Overview:
    experiment: Experiment
    total: int
    period: str
    sources: list[tuple[str, str, str]]
    activity: list[NameActivity]
    more_names: int
    rates: list[BooleanRate]
    distributions: list[Distribution]
    worst: list[WorstTrace]


def current_feedback(experiment: Experiment, *, user):
    """The experiment's current feedback that ``user`` may see."""
    return (
        Assessment.objects.live()
        .filter(trace__experiment=experiment, kind=Kind.FEEDBACK, valid=True)
        .exclude(hidden_answers_condition(user=user))
    )


def build(experiment: Experiment, *, user) -> Overview:
    feedback = current_feedback(experiment, user=user)
    bounds = feedback.aggregate(first=Min("create_time"), last=Max("create_time"), n=Count("id"))
    activity, more_names, period = [], 0, "day"
    if bounds["n"]:
        activity, more_names, period = _activity(feedback, bounds["first"], bounds["last"])
    rates, distributions = _values(feedback)
    return Overview(
        experiment=experiment,
        total=bounds["n"],
        period=period,
        sources=[(s.value, s.label, SOURCE_COLORS[s]) for s in SourceType],
        activity=activity,
        more_names=more_names,
        rates=rates,
        distributions=distributions,
        worst=_worst(feedback),
    )


def _day(ms: int) -> datetime.date:
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).date()


def _activity(feedback, first_ms: int, last_ms: int):
    """Counts per name, source and period; the period grows in whole days to fit 60 bars."""
    first_day = first_ms // DAY_MS
    days = last_ms // DAY_MS - first_day + 1
    days_per_period = -(-days // MAX_PERIODS)
    size = days_per_period * DAY_MS
    start = first_day * DAY_MS
    periods = -(-(last_ms - start + 1) // size)
    rows = (
        feedback.annotate(
            period=(F("create_time") - Value(start, output_field=BigIntegerField()))
            / Value(size, output_field=BigIntegerField())
        )
        .values("name", "source_type", "period")
        .annotate(n=Count("id"))
        .order_by()
    )
    counts: dict[str, dict[tuple[int, str], int]] = defaultdict(dict)
    for row in rows:
        counts[row["name"]][row["period"], row["source_type"]] = row["n"]
    ranked = sorted(counts, key=lambda name: (-sum(counts[name].values()), name))
    shown = []
    for index, name in enumerate(ranked[:MAX_NAMES]):
        by_source = {s.value: 0 for s in SourceType}
        for (_, source), n in counts[name].items():
            by_source[source] = by_source.get(source, 0) + n
        chart = _time_chart(index, name, counts[name], periods, start, size, days_per_period)
        shown.append(NameActivity(name, sum(by_source.values()), by_source, chart))
    period = "day" if days_per_period == 1 else f"{days_per_period} days"
    return shown, max(len(ranked) - MAX_NAMES, 0), period


def _time_chart(index, name, counts, periods, start, size, days_per_period) -> Chart:
    totals = defaultdict(int)
    for (period, _), n in counts.items():
        totals[period] += n
    peak = max(totals.values())
    slot = (CHART_WIDTH - LEFT) / periods
    bar_width = min(max(slot * 0.8, 1), MAX_BAR_WIDTH)
    first, last = _day(start), _day(start + (periods - 1) * size)
    span = f"{first:%Y-%m-%d} to {last:%Y-%m-%d}" if periods > 1 else f"{first:%Y-%m-%d}"
    chart = Chart(
        id=f"activity-{index}",
        title=f"{name}: feedback per {'day' if days_per_period == 1 else 'period'} by source",
        description=f"{sum(totals.values())} entries from {span}, at most {peak} in one period.",
    )
    for period in range(periods):
        y = CHART_HEIGHT
        day = _day(start + period * size)
        for source in SourceType:
            n = counts.get((period, source.value), 0)
            if not n:
                continue
            height = CHART_HEIGHT * n / peak
            y -= height
            chart.bars.append(
                Bar(
                    x=round(LEFT + period * slot, 2),
                    y=round(y, 2),
                    width=round(bar_width, 2),
                    height=round(height, 2),
                    fill=SOURCE_COLORS[source],
                    title=f"{day:%Y-%m-%d}: {n} from {source.label}",
                )
            )
    chart.labels = [
        (LEFT - 6, 10, str(peak), "end"),
        (LEFT - 6, CHART_HEIGHT, "0", "end"),
        (LEFT, CHART_HEIGHT + 16, f"{first:%Y-%m-%d}", "start"),
    ]
    if periods > 1:
        chart.labels.append((CHART_WIDTH, CHART_HEIGHT + 16, f"{last:%Y-%m-%d}", "end"))
    return chart


def _values(feedback):
    """Yes/no rates of boolean feedback and distributions of numeric feedback."""
    rows = (
        feedback.annotate(json_type=JsonType("value"))
        .filter(json_type__in=BOOLEAN_TYPES + NUMBER_TYPES)
        .values("name", "value")
        .annotate(n=Count("id"))
        .order_by()
    )
    booleans: dict[str, dict[bool, int]] = defaultdict(lambda: {True: 0, False: 0})
    numbers: dict[str, dict[float, int]] = defaultdict(lambda: defaultdict(int))
    for row in rows:
        value = row["value"]
        if isinstance(value, bool):
            booleans[row["name"]][value] += row["n"]
        else:
            numbers[row["name"]][value] += row["n"]
    rates = []
    for name in sorted(booleans):
        up, down = booleans[name][True], booleans[name][False]
        total = up + down
        rates.append(
            BooleanRate(
                name,
                up,
                down,
                round(100 * up / total, 2),
                round(100 * down / total, 2),
            )
        )
    distributions = [
        _distribution(index, name, numbers[name]) for index, name in enumerate(sorted(numbers))
    ]
    return rates, distributions


def _distribution(index: int, name: str, counts: dict[float, int]) -> Distribution:
    """Whole-number scales of up to 20 points get a bar per point; others ten equal bins."""
    values = sorted(counts)
    low, high = values[0], values[-1]
    total = sum(counts.values())
    mean = sum(value * n for value, n in counts.items()) / total
    if all(float(v).is_integer() for v in values) and high - low < 20:
        buckets = [
            (_number(point), counts.get(point, 0)) for point in range(int(low), int(high) + 1)
        ]
    else:
        width = (high - low) / 10 or 1
        binned = [0] * 10
        for value, n in counts.items():
            binned[min(int((value - low) / width), 9)] += n
        buckets = [
            (f"{_number(low + i * width)}–{_number(low + (i + 1) * width)}", n)
            for i, n in enumerate(binned)
        ]
    peak = max(n for _, n in buckets)
    slot = (CHART_WIDTH - LEFT) / len(buckets)
    bar_width = min(slot * 0.8, MAX_BAR_WIDTH * 2)
    chart = Chart(
        id=f"ratings-{index}",
        title=f"{name}: distribution of values",
        description=f"{total} values from {_number(low)} to {_number(high)}, mean {mean:.2f}.",
    )
    for index, (label, n) in enumerate(buckets):
        height = CHART_HEIGHT * n / peak
        x = LEFT + index * slot
        if n:
            chart.bars.append(
                Bar(
                    x=round(x + (slot - bar_width) / 2, 2),
                    y=round(CHART_HEIGHT - height, 2),
                    width=round(bar_width, 2),
                    height=round(height, 2),
                    fill=RATING,
                    title=f"{label}: {n}",
                )
            )
        chart.labels.append((round(x + slot / 2, 2), CHART_HEIGHT + 16, label, "middle"))
    chart.labels += [(LEFT - 6, 10, str(peak), "end"), (LEFT - 6, CHART_HEIGHT, "0", "end")]
    return Distribution(name, total, mean, buckets, chart)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}".rstrip("0")


def _worst(feedback) -> list[WorstTrace]:
    """Traces with the most thumbs-down (false) feedback, fewest thumbs-up breaking ties."""
    booleans = feedback.annotate(json_type=JsonType("value")).filter(json_type__in=BOOLEAN_TYPES)
    rows = list(
        booleans.values("trace_id")
        .annotate(
            negative=Count("id", filter=Q(value=False)), positive=Count("id", filter=Q(value=True))
        )
        .filter(negative__gt=0)
        .order_by("-negative", "positive", "trace_id")[:WORST_TRACES]
    )
    traces = Trace.objects.only("trace_id", "request_preview", "request_time").in_bulk(
        [row["trace_id"] for row in rows]
    )
    return [WorstTrace(traces[row["trace_id"]], row["negative"], row["positive"]) for row in rows]
