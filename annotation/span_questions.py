"""Span questions: a queue schema asked of chosen spans of each item rather than of the
whole trace, e.g. "Was this retrieval relevant?" on every RETRIEVER span.

Rules it owns:
- A span question targets spans by type and/or a name glob (``search_*``: ``*`` any text,
  ``?`` one character, ``[ab]`` one of them; case-sensitive); a span matches when every part
  given matches and the schema applies to its type (``LabelSchema.span_types``).
- The schema of a span question applies to spans, is asked of spans only (never also of the
  trace) in that queue, and once per queue.
- A queue is refused when one of its span questions matches no span of one of its traces;
  the message names the traces.
- Each matching span of an item gets its own answer: an assessment with that ``span_id``,
  written by annotation.queues through annotation.services. An item is done for a person
  once every matching span's required questions are answered (``queues.submit``), and
  agreement, disagreements and decisions are per (trace, span, name).
- Control items are refused in a queue with span questions: a known answer names no span.
"""

from dataclasses import dataclass
from fnmatch import fnmatchcase

from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, QuerySet

from traces.models import Span

from .models import LabelSchema, Queue, QueueItem, QueueSpanQuestion

MAX_NAMED_TRACES = 5


@dataclass(frozen=True)
class SpanTarget:
    """A span question before its queue exists."""

    schema: LabelSchema
    span_type: str = ""
    name_pattern: str = ""
    required: bool = True


def check_targets(targets: list[SpanTarget], trace_schemas) -> None:
    """Refuse span questions that could never be asked as given."""
    trace_pks = {schema.pk for schema in trace_schemas}
    seen = set()
    for target in targets:
        schema = target.schema
        if not (target.span_type or target.name_pattern):
            raise ValidationError(
                f"Say which spans '{schema}' is asked of: a span type, a name pattern or both.",
                code="span_target_empty",
            )
        if schema.applies_to == LabelSchema.AppliesTo.TRACE:
            raise ValidationError(
                f"'{schema}' applies to whole traces only; it cannot be asked of spans.",
                code="span_target_trace_schema",
            )
        if schema.span_types and target.span_type and target.span_type not in schema.span_types:
            raise ValidationError(
                f"'{schema}' applies to {', '.join(schema.span_types)} spans only, "
                f"not {target.span_type}.",
                code="span_target_type",
            )
        if schema.pk in trace_pks or schema.pk in seen:
            raise ValidationError(
                f"'{schema}' is asked once per queue: of the trace or of one set of spans.",
                code="span_target_twice",
            )
        seen.add(schema.pk)


def matches(question, span_type: str, name: str) -> bool:
    """Whether a span of this type and name is asked ``question`` (a target or a row)."""
    allowed = question.schema.span_types
    return (
        (not question.span_type or span_type == question.span_type)
        and (not question.name_pattern or fnmatchcase(name, question.name_pattern))
        and (not allowed or span_type in allowed)
    )


def check_traces_match(questions, traces) -> None:
    """Refuse traces on which some span question matches no span, naming them."""
    questions = list(questions)
    if not questions:
        return
    found: dict[int, set[int]] = {}
    types = {q.span_type for q in questions}
    spans = Span.objects.filter(trace__in=[t.pk for t in traces])
    if "" not in types:
        spans = spans.filter(span_type__in=types)
    for trace_pk, span_type, name in spans.values_list("trace_id", "span_type", "name"):
        for n, question in enumerate(questions):
            if matches(question, span_type, name):
                found.setdefault(trace_pk, set()).add(n)
    problems = []
    for n, question in enumerate(questions):
        missing = [t.trace_id for t in traces if n not in found.get(t.pk, ())]
        if missing:
            named = ", ".join(missing[:MAX_NAMED_TRACES])
            more = len(missing) - MAX_NAMED_TRACES
            problems.append(
                f"'{question.schema}' ({describe(question)}) matches no span of "
                f"{named}{f' and {more} more' if more > 0 else ''}"
            )
    if problems:
        raise ValidationError(
            f"{'; '.join(problems)}. Change the span type or name pattern, or choose the "
            "traces by id without the ones named.",
            code="span_target_unmatched",
        )


def describe(question) -> str:
    """e.g. "RETRIEVER spans named search_*"."""
    kind = f"{question.span_type} spans" if question.span_type else "spans"
    return f"{kind} named {question.name_pattern}" if question.name_pattern else kind


def questions_of(queue: Queue) -> list[QueueSpanQuestion]:
    """The queue's span questions, each schema with ``required`` set, by schema name."""
    required = Queue.required_schemas.through.objects.filter(
        queue_id=queue.pk, labelschema_id=OuterRef("pk")
    )
    rows = QueueSpanQuestion.objects.filter(queue=queue).select_related("schema")
    schemas = {
        s.pk: s
        for s in LabelSchema.objects.filter(pk__in=[r.schema_id for r in rows]).annotate(
            required=Exists(required)
        )
    }
    for row in rows:
        row.schema = schemas[row.schema_id]
    return list(rows)


def span_schema_names(queue) -> QuerySet:
    """Names of the queue's schemas asked of spans (``queue`` or its pk), as a subquery."""
    return QueueSpanQuestion.objects.filter(queue=queue).values("schema__name")


@dataclass(frozen=True)
class AskedSpan:
    """A span of an item and the schemas asked of it, in the span tree's order."""

    span: Span
    schemas: list[LabelSchema]


def asked_spans(item: QueueItem) -> list[AskedSpan]:
    """Every span of the item some span question matches, with its questions."""
    questions = questions_of(item.queue)
    if not questions:
        return []
    heads = Span.objects.filter(trace_id=item.trace_id).values_list("pk", "span_type", "name")
    asked = {}
    for pk, span_type, name in heads:
        schemas = [q.schema for q in questions if matches(q, span_type, name)]
        if schemas:
            asked[pk] = schemas
    spans = Span.objects.filter(pk__in=asked).select_related("trace")
    return [AskedSpan(span, asked[span.pk]) for span in spans]


def asked_spans_by_item(queue: Queue, items) -> None:
    """Set ``asked_spans`` on each item: the spans its span questions ask, in start order, for
    lists of items; two or three queries for any number of items."""
    items = list(items)
    questions = questions_of(queue) if items else []
    asked: dict[int, list[Span]] = {}
    if questions:
        spans = Span.objects.filter(trace_id__in={i.trace_id for i in items}).only(
            "trace_id", "span_id", "name", "span_type", "start_time_ns"
        )
        for span in spans:
            if any(matches(q, span.span_type, span.name) for q in questions):
                asked.setdefault(span.trace_id, []).append(span)
    for item in items:
        item.asked_spans = asked.get(item.trace_id, [])


def spans_by_id(pairs) -> dict[tuple[int, str], Span]:
    """The spans named by (trace pk, span id) pairs, for lists of span answers: one query."""
    pairs = set(pairs)
    if not pairs:
        return {}
    spans = Span.objects.filter(
        trace_id__in={trace for trace, _ in pairs}, span_id__in={span for _, span in pairs}
    ).only("trace_id", "span_id", "name", "span_type")
    return {key: span for span in spans if (key := (span.trace_id, span.span_id)) in pairs}


NO_CONTROL_ITEMS = (
    "This queue asks span questions, so it has no control items: a known answer names no "
    "span. Use a queue of trace questions to measure annotators."
)


def allows_control_items(queue: Queue) -> bool:
    """Whether the queue (or its pk) may have control items: not when it asks span questions."""
    return not QueueSpanQuestion.objects.filter(queue=queue).exists()


def refuse_control_items(queue: Queue) -> None:
    if not allows_control_items(queue):
        raise ValidationError(NO_CONTROL_ITEMS, code="span_questions_control")
