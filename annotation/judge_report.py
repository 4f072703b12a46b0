"""The judge report: each LLM judge of an experiment measured against people's gold values.

A judge is a feedback name and the judge's source id (``judge-gpt-4o`` saying
``groundedness``). Its entries are compared with the gold value of the same question
(annotation.gold), the judge's own value even where a person overrode it; a judge's newest
entry per question is compared, entries without a value (errors) are not. The judge's totals
and raw pass rate count its entries with a value in the database (a re-run counts again).
The report is read with a fixed number of queries whatever the number of entries: the
totals, the entries on questions people answered (only those can have gold), the gold
rule's rows and the schemas; everything else is computed here with annotation.judges.

Drift splits the figures by the week of the judge's entry and by the judge's version, read
from the entry's metadata key ``settings.TRACEMARK_JUDGE_VERSION_KEY``. Bias checks split
them by the length of the trace's response (thirds of the items by rank) and by trace
state. Gold values that a blind queue hides from the reader are left out, as everywhere.
"""

import datetime
import functools
import json
from collections import defaultdict
from dataclasses import dataclass, field
from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Count, Exists, OuterRef, Q
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Length
from django.utils import timezone

from traces.models import Experiment, Trace

from . import judges, queues
from .export import value_type as type_name
from .gold import Gold, gold_by_question, value_text
from .json_numbers import loads
from .judges import BiasCheck, Interval
from .models import Assessment, Kind, LabelSchema, SourceType
from .overview import CHART_HEIGHT, CHART_WIDTH, LEFT, MAX_BAR_WIDTH, Bar, Chart

MAX_LISTED = 200
MIN_GOLD = 10  # items with gold below which the verdict says nothing
MAX_CLASSES = 12  # values beyond which a confusion matrix (of scores, say) is not drawn
AGREE_COLOR = "#2856c7"


@dataclass(frozen=True, order=True)
class JudgeKey:
    name: str
    source_id: str


def same_value(a, b) -> bool:
    """Equal with the same JSON type: True is not 1, 1 is 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float | str) and isinstance(b, int | float | str):
        return type(a) is type(b) and a == b or (_is_number(a) and _is_number(b) and a == b)
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


@dataclass(slots=True)
class Pair:
    """One question a judge answered, with its gold value when there is one; ``agrees`` is
    None without gold. The trace's id and the judge's rationale, which only listed or
    exported pairs show, are read for those by ``with_details``."""

    trace_pk: int
    span_id: str | None
    assessment_pk: int
    value: object
    version: str
    created: int
    length: int
    state: str
    gold: Gold | None = None
    agrees: bool | None = None
    trace_id: str = ""
    rationale: str = ""


@dataclass
class Figures:
    """How a judge's values compare with gold over some items."""

    value_type: str
    n: int
    judged: int
    agreeing: int
    kappa: float | None
    kappa_interval: Interval | None = None
    classes: list = field(default_factory=list)
    matrix: list = field(default_factory=list)  # rows: judge's value; cells: per gold value
    tpr: float | None = None
    tpr_interval: Interval | None = None
    tnr: float | None = None
    tnr_interval: Interval | None = None
    raw_pass_rate: float | None = None
    corrected_pass_rate: float | None = None
    corrected_interval: Interval | None = None
    per_class: list = field(default_factory=list)
    mae: float | None = None
    spearman: float | None = None
    within_step: float | None = None

    @property
    def agreement(self) -> float | None:
        return self.agreeing / self.n if self.n else None

    @property
    def agreement_interval(self) -> Interval | None:
        return judges.wilson(self.agreeing, self.n)


@dataclass
class JudgeReport:
    """A judge's figures; drift is computed when first read, as only the judge page shows
    it."""

    key: JudgeKey
    figures: Figures
    verdict: str
    biases: list[BiasCheck]
    pairs: list[Pair]
    step: float | None = None
    schema: LabelSchema | None = None

    @functools.cached_property
    def by_week(self) -> list[tuple[str, Figures]]:
        return _split(self.pairs, lambda p: _week(p.created), self.figures.value_type, self.step)

    @functools.cached_property
    def by_version(self) -> list[tuple[str, Figures]]:
        return _split(
            self.pairs, lambda p: p.version or "(none)", self.figures.value_type, self.step
        )

    @functools.cached_property
    def charts(self) -> list[Chart]:
        title = f"{self.key.name} by {self.key.source_id}: per"
        found = [_drift_chart("drift-week", f"{title} week", self.by_week)]
        if len(self.by_version) > 1:
            found.append(_drift_chart("drift-version", f"{title} version", self.by_version))
        return found

    @property
    def query(self) -> str:
        """The judge's query string on the judge page and the pairs download."""
        return urlencode({"name": self.key.name, "source": self.key.source_id})

    @property
    def flags(self) -> list[BiasCheck]:
        return [check for check in self.biases if check.flagged]

    @functools.cached_property
    def disagreeing(self) -> list[Pair]:
        """Newest first."""
        return _newest_first(pair for pair in self.pairs if pair.agrees is False)

    @functools.cached_property
    def without_gold(self) -> list[Pair]:
        """Complete only in a report built ``with_open``."""
        return _newest_first(pair for pair in self.pairs if pair.gold is None)

    @property
    def open_count(self) -> int:
        """Judged items without gold."""
        return self.figures.judged - self.figures.n


def _newest_first(pairs) -> list[Pair]:
    return sorted(pairs, key=lambda p: (-p.created, p.assessment_pk))


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def value_type_of(schema: LabelSchema | None, values: list) -> str:
    """The schema's type, else what the values look like: boolean, numeric or categorical."""
    if schema is not None and schema.value_type in ("boolean", "numeric", "categorical"):
        return schema.value_type
    if values and all(isinstance(v, bool) for v in values):
        return "boolean"
    if values and all(_is_number(v) for v in values):
        return "numeric"
    return "categorical"


_SCALARS = frozenset({str, int, float, bool})


def _hashable(value):
    return value if type(value) in _SCALARS else json.dumps(value)


@dataclass(frozen=True)
class Totals:
    """A judge's entries with a value, counted in the database: all, yes/no ones, yes."""

    judged: int
    booleans: int
    passed: int


def figures(
    pairs: list[Pair], value_type: str, *, step: float | None, totals: Totals | None = None
) -> Figures:
    """The figures over ``pairs``; those with gold are compared. With ``totals`` (the
    judge's counts over everything it scored) come the bootstrap intervals and the pass
    rates; drift and bias groups do without."""
    golden = [p for p in pairs if p.gold is not None]
    table = judges.confusion((_hashable(p.value), _hashable(p.gold.value)) for p in golden)
    result = Figures(
        value_type=value_type,
        n=len(golden),
        judged=totals.judged if totals else len(pairs),
        agreeing=sum(1 for p in golden if p.agrees),
        kappa=judges.kappa(table),
    )
    if totals is None:
        return result
    result.kappa_interval = judges.kappa_interval(table) if result.kappa is not None else None
    classes = sorted({c for cell in table for c in cell}, key=lambda c: (str(type(c)), c))
    if value_type == "boolean":
        classes = [True, False]
    if len(classes) <= MAX_CLASSES:
        result.classes = classes
        result.matrix = [(j, [table.get((j, g), 0) for g in classes]) for j in classes]
    if value_type == "boolean":
        _boolean(result, table, totals)
    elif value_type == "categorical":
        result.per_class = judges.per_class(table, classes)
    numbers = [
        (p.value, p.gold.value)
        for p in (golden if value_type == "numeric" else ())
        if _is_number(p.value) and _is_number(p.gold.value)
    ]
    if numbers:
        result.mae = judges.mean_absolute_error(numbers)
        result.spearman = judges.spearman(numbers)
        result.within_step = judges.within_step(numbers, step or 1)
    return result


def _boolean(result: Figures, table, totals: Totals) -> None:
    tp, positives, tn, negatives = judges.rates(table)
    result.tpr = tp / positives if positives else None
    result.tpr_interval = judges.wilson(tp, positives)
    result.tnr = tn / negatives if negatives else None
    result.tnr_interval = judges.wilson(tn, negatives)
    passed, judged = totals.passed, totals.booleans
    if judged:
        result.raw_pass_rate = passed / judged
        result.corrected_pass_rate = judges.rogan_gladen(
            result.raw_pass_rate, result.tpr, result.tnr
        )
        if result.corrected_pass_rate is not None:
            result.corrected_interval = judges.corrected_interval(table, passed, judged)


def verdict(result: Figures) -> str:
    """One line saying how far the judge can be trusted."""
    if result.kappa is None or result.n < MIN_GOLD:
        return f"not enough gold to say (n={result.n})"
    word = judges.kappa_word(result.kappa)
    interval = result.kappa_interval
    spread = f", {interval.low:.2f}–{interval.high:.2f}" if interval else ""
    figures_text = f"{word} (κ {result.kappa:.2f}{spread}), n={result.n}"
    if interval is not None and interval.low > 0:
        return f"agrees with people beyond chance: {figures_text}"
    return f"no agreement beyond chance shown: {figures_text}"


DAY_MS = 86_400_000


@functools.cache
def _week_of_day(day: int) -> str:
    year, week, _ = (datetime.date(1970, 1, 1) + datetime.timedelta(days=day)).isocalendar()
    return f"{year}-W{week:02d}"


def _week(ms: int) -> str:
    """The ISO week (UTC) of a time in milliseconds, e.g. 2026-W01."""
    return _week_of_day(ms // DAY_MS)


def _split(pairs: list[Pair], label, value_type: str, step) -> list[tuple[str, Figures]]:
    groups: dict[str, list[Pair]] = defaultdict(list)
    for pair in pairs:
        groups[label(pair)].append(pair)
    return [(name, figures(groups[name], value_type, step=step)) for name in sorted(groups)]


def _bias_checks(pairs: list[Pair]) -> list[BiasCheck]:
    golden = [p for p in pairs if p.gold is not None]
    thirds = judges.terciles([p.length for p in golden])
    by_third: dict[int, list[Pair]] = defaultdict(list)
    for pair, third in zip(golden, thirds, strict=True):
        by_third[third].append(pair)
    length_groups = []
    for third, word in enumerate(("short", "medium", "long")):
        group = by_third.get(third, [])
        lengths = [p.length for p in group] or [0]
        label = f"{word} responses ({min(lengths)}–{max(lengths)} characters)"
        length_groups.append((label, sum(1 for p in group if p.agrees), len(group)))
    states = [
        (state, sum(1 for p in golden if p.state == state and p.agrees), len(found))
        for state in Trace.State.values
        if (found := [p for p in golden if p.state == state])
    ]
    return [
        judges.bias_check("Agreement by response length", length_groups),
        judges.bias_check("Agreement by trace state", states),
    ]


def _drift_chart(chart_id: str, title: str, groups: list[tuple[str, Figures]]) -> Chart:
    """Agreement with gold per group as bars from 0 to 100%; groups without gold are gaps."""
    shown = groups
    slot = (CHART_WIDTH - LEFT) / max(len(shown), 1)
    width = min(slot * 0.8, MAX_BAR_WIDTH)
    chart = Chart(
        id=chart_id,
        title=title,
        description="Share of items where the judge gave the gold value, per group: "
        + "; ".join(
            f"{label} {f.agreement:.0%} of {f.n}" if f.n else f"{label} no gold"
            for label, f in shown
        ),
    )
    for index, (label, f) in enumerate(shown):
        x = LEFT + index * slot
        if f.n:
            height = CHART_HEIGHT * f.agreement
            kappa = f", κ {f.kappa:.2f}" if f.kappa is not None else ""
            chart.bars.append(
                Bar(
                    x=round(x + (slot - width) / 2, 2),
                    y=round(CHART_HEIGHT - height, 2),
                    width=round(width, 2),
                    height=round(height, 2),
                    fill=AGREE_COLOR,
                    title=f"{label}: {f.agreement:.0%} agreement over {f.n}{kappa}",
                )
            )
        if len(shown) <= 12 or index in (0, len(shown) - 1):
            chart.labels.append((round(x + slot / 2, 2), CHART_HEIGHT + 16, label, "middle"))
    chart.labels += [(LEFT - 6, 10, "100%", "end"), (LEFT - 6, CHART_HEIGHT, "0", "end")]
    return chart


def _judge_entries(experiment: Experiment, key: JudgeKey | None):
    entries = Assessment.objects.live().filter(
        trace__experiment=experiment,
        source_type=SourceType.LLM_JUDGE,
        kind=Kind.FEEDBACK,
        value__isnull=False,
    )
    if key is not None:
        entries = entries.filter(name=key.name, source_id=key.source_id)
    return entries.order_by()


def _totals(entries) -> dict[JudgeKey, Totals]:
    rows = entries.values("name", "source_id").annotate(
        judged=Count("id"),
        booleans=Count("id", filter=Q(value=True) | Q(value=False)),
        passed=Count("id", filter=Q(value=True)),
    )
    return {
        JudgeKey(row["name"], row["source_id"]): Totals(
            row["judged"], row["booleans"], row["passed"]
        )
        for row in rows
    }


def _pair_rows(entries):
    version_key = settings.TRACEMARK_JUDGE_VERSION_KEY
    return (
        entries.annotate(
            value_json=value_text(),
            judge_version=KeyTextTransform(version_key, "metadata"),
            length=Length("trace__response_preview"),
        )
        .order_by()
        .values_list(
            "name",
            "source_id",
            "trace_id",
            "span_id",
            "id",
            "value_json",
            "judge_version",
            "create_time",
            "length",
            "trace__state",
        )
    )


def build(
    experiment: Experiment, *, user, key: JudgeKey | None = None, with_open: bool = False
) -> list[JudgeReport]:
    """Reports for the experiment's judges (or one), in four queries.

    Only the entries on questions people answered are loaded (the others cannot have gold),
    the judges' totals are counted in the database; ``with_open`` loads every entry, for
    ``without_gold``."""
    entries = _judge_entries(experiment, key)
    totals = _totals(entries)
    if not totals:
        return []
    if not with_open:
        people = Assessment.objects.filter(
            trace_id=OuterRef("trace_id"),
            name=OuterRef("name"),
            source_type=SourceType.HUMAN,
            deleted_at__isnull=True,
        )
        entries = entries.filter(Exists(people))
    newest: dict[tuple, Pair] = {}
    for name, source_id, trace_pk, span_id, pk, value, version, created, *trace in _pair_rows(
        entries
    ):
        question = (name, source_id, trace_pk, span_id)
        known = newest.get(question)
        if known is None or known.created < created:
            length, state = trace
            newest[question] = Pair(
                trace_pk, span_id, pk, loads(value), version or "", created, length or 0, state
            )
    names = sorted({judge.name for judge in totals})
    gold = gold_by_question(
        Assessment.objects.filter(trace__experiment=experiment, name__in=names).exclude(
            queues.hidden_answers_condition(user=user)
        )
    )
    by_judge: dict[tuple[str, str], list[Pair]] = defaultdict(list)  # (name, source id)
    for (name, source_id, trace_pk, span_id), pair in newest.items():
        found = gold.get((trace_pk, span_id, name))
        if found is not None:
            pair.gold, pair.agrees = found, same_value(pair.value, found.value)
        by_judge[name, source_id].append(pair)
    schemas = {s.name: s for s in LabelSchema.objects.filter(name__in=names)}
    return [
        _report(
            judge, by_judge[judge.name, judge.source_id], schemas.get(judge.name), totals[judge]
        )
        for judge in sorted(totals)
    ]


DETAIL_BATCH = 2_000


def with_details(pairs: list[Pair]) -> list[Pair]:
    """``pairs`` (a page's or a batch's worth) with their trace ids and rationales, read in
    one query."""
    details = {
        pk: (trace_id, rationale)
        for pk, trace_id, rationale in Assessment.objects.filter(
            pk__in=[pair.assessment_pk for pair in pairs]
        ).values_list("pk", "trace__trace_id", "rationale")
    }
    for pair in pairs:
        pair.trace_id, pair.rationale = details[pair.assessment_pk]
    return pairs


def _report(
    key: JudgeKey, pairs: list[Pair], schema: LabelSchema | None, totals: Totals
) -> JudgeReport:
    value_type = value_type_of(schema, [p.value for p in pairs])
    if schema is None and totals.booleans == totals.judged:
        value_type = "boolean"
    step = schema.step if schema is not None else None
    overall = figures(pairs, value_type, step=step, totals=totals)
    return JudgeReport(
        key=key,
        figures=overall,
        verdict=verdict(overall),
        biases=_bias_checks(pairs),
        pairs=pairs,
        step=step,
        schema=schema,
    )


ITEM_CHOICES = {"disagreeing": "disagree with gold", "without_gold": "have no gold value yet"}


def queue_for_judge(
    *, report: JudgeReport, items: str, annotators, overlap: int, created_by
) -> queues.Queue:
    """A queue of the traces where the judge disagrees with gold (or has none), labeled with
    the judge's schema, through ``queues.create_queue``."""
    schema = LabelSchema.objects.filter(name=report.key.name).first()
    if schema is None:
        raise ValidationError(
            f"Define a schema named '{report.key.name}' first: a queue asks a schema's question.",
            code="no_schema",
        )
    chosen = report.disagreeing if items == "disagreeing" else report.without_gold
    traces = Trace.objects.in_bulk([pair.trace_pk for pair in chosen])
    stamp = timezone.localtime().strftime("%Y-%m-%d %H:%M")
    return queues.create_queue(
        name=f"{report.key.name} by {report.key.source_id}: items that {ITEM_CHOICES[items]}, "
        f"{stamp}",
        description=f"Made from the judge report of {report.key.source_id}.",
        traces=[traces[pair.trace_pk] for pair in chosen if pair.trace_pk in traces],
        schemas=[schema],
        annotators=annotators,
        overlap=overlap,
        created_by=created_by,
    )


def gold_expectations(report: JudgeReport) -> dict[int, dict]:
    """The gold values of the judge's disagreements, per trace pk and named after the
    judge's question: the expectations of the dataset records made from them. A trace's
    span-level disagreements share the trace's record; the newest gold value is kept."""
    found: dict[int, dict] = {}
    for pair in reversed(report.disagreeing):
        found[pair.trace_pk] = {report.key.name: pair.gold.value}
    return found


PAIR_COLUMNS = [
    "trace_id",
    "span_id",
    "name",
    "judge",
    "judge_version",
    "judge_value",
    "judge_value_type",
    "judge_rationale",
    "gold_value",
    "gold_value_type",
    "gold_source",
    "gold_rationale",
    "agrees",
]


def pair_records(reports: list[JudgeReport]):
    """One record per judged question that has gold: what alignment tools read."""
    for report in reports:
        golden = _newest_first(p for p in report.pairs if p.gold is not None)
        for first in range(0, len(golden), DETAIL_BATCH):
            yield from _pair_records(report, with_details(golden[first : first + DETAIL_BATCH]))


def _pair_records(report: JudgeReport, pairs: list[Pair]):
    for pair in pairs:
        yield {
            "trace_id": pair.trace_id,
            "span_id": pair.span_id,
            "name": report.key.name,
            "judge": report.key.source_id,
            "judge_version": pair.version,
            "judge_value": pair.value,
            "judge_value_type": type_name(pair.value),
            "judge_rationale": pair.rationale,
            "gold_value": pair.gold.value,
            "gold_value_type": type_name(pair.gold.value),
            "gold_source": str(pair.gold.source),
            "gold_rationale": pair.gold.rationale,
            "agrees": pair.agrees,
        }
