"""Annotation queues: building them, handing out items fairly, and reading their results.

Invariants it owns:
- An item is never given to the same person twice (QueueAssignment is unique per item and
  annotator) and never to more people than the queue's overlap at once: assigned and done
  turns count towards the overlap, skipped ones free their place. Control items
  (annotation.quality) go to every annotator once, at the queue's control rate, and are
  left out of the progress Admins see, results, agreement and disagreements; the counters
  annotators see count them like any item (``progress(..., as_annotator=True)``).
- ``next_assignment`` is safe under concurrent requests. One person's requests queue up
  behind a lock on their queue membership, so a double click cannot hand out two items;
  different people lock candidate items with SKIP LOCKED and recount after the lock, so
  they never wait on each other unless every open item is being handed out right now.
  SQLite takes the database write lock at the start of the transaction, which serialises
  the whole function there.
- Someone who has an item in progress gets that item back (resume where they left off).
- An item's schemas are the queue's schemas that apply to its trace's experiment; a queue is
  only built from schemas that apply to every experiment among its traces. Schemas asked of
  spans (annotation.span_questions) are answered once per matching span, and results
  (agreement, disagreements, decisions) are per (trace, span or none, name).
- An item is done for a person only once they have answered every schema the queue marks
  required (``required_schemas``) that applies to the item; a submission without any
  answer is refused and changes nothing.
- A session item (annotation.session_items) is labeled like a trace item on the trace that
  was the session's last turn when it was added; its answers and decisions also name the
  session under ``SESSION_KEY``, and only such answers are its answers (a trace item's are
  those naming no session).
- Every label goes through annotation.services; an Admin's adjudication is an expectation
  (for expectation schemas) or a feedback overriding one of the annotators' answers, and
  carries ``ADJUDICATION_KEY`` in its metadata so that agreement leaves it out.
- A queue with ``shared_status`` (made through MLflow's API, see annotation.review_queues)
  keeps one status per item: COMPLETE once anyone submits it, DECLINED once anyone skips
  it, PENDING again when reopened; only PENDING items are handed out or resumed.
- Agreement measures the annotators' own answers: overridden ones count, adjudications and
  deleted ones do not.
- Blind means blind everywhere: while a blind queue is open, each of its annotators sees no
  other person's human answers to the queue's schemas on any of its traces they have not
  answered yet (no finished turn there: not given to them yet, in progress, skipped or
  reopened). Every page that shows assessments (queue item, review page and its partials,
  history, session, trace list and its feedback filter, experiment overview), the exports
  and the MLflow API read with that person's token leave them out, as decided by
  ``hidden_answers`` (or its twin ``hidden_answers_condition`` where the database counts or
  filters). People who are not annotators of the queue (Admins running it, apps, judges)
  see everything.
"""

import functools
from collections import defaultdict
from dataclasses import dataclass, replace

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, IntegerField, Max, OuterRef, Q, QuerySet, Subquery
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.roles import can_write
from traces.models import Experiment, Span, now_ms

from . import services, span_questions
from .agreement import (
    Aggregate,
    aggregate,
    agreement_by_rater,
    cohen_kappa,
    fleiss_kappa,
    krippendorff_alpha,
    level_for,
)
from .models import (
    SESSION_KEY,
    Assessment,
    Kind,
    LabelSchema,
    Queue,
    QueueAssignment,
    QueueItem,
    QueueSpanQuestion,
    SourceType,
    about_session,
)

Status = QueueAssignment.Status
QUEUE_KEY = "tracemark.queue"
ADJUDICATION_KEY = "tracemark.adjudicated_in_queue"
TAKEN = (Status.ASSIGNED, Status.DONE)


# Building and running a queue


@transaction.atomic
def create_queue(
    *,
    name: str,
    traces,
    schemas,
    annotators,
    required_schemas=None,
    overlap: int = 1,
    blind: bool = True,
    control_rate: int = 0,
    accuracy_threshold: float = 0.7,
    description: str = "",
    filter_query: str = "",
    span_targets=(),
    created_by=None,
) -> Queue:
    """Create a queue whose items are ``traces`` in the order given.

    ``required_schemas`` (a subset of ``schemas``, all of them when None) must be answered
    before an item counts as done for an annotator. ``span_targets`` (``SpanTarget``s) are
    the questions asked of spans, each matching at least one span of every trace.
    """
    traces, schemas, annotators = list(traces), list(schemas), list(annotators)
    targets = list(span_targets)
    required = schemas if required_schemas is None else list(required_schemas)
    if not traces:
        raise ValidationError("A queue needs at least one trace.", code="no_traces")
    if not schemas and not targets:
        raise ValidationError("A queue needs at least one label schema.", code="no_schemas")
    if any(s.applies_to == LabelSchema.AppliesTo.SPAN for s in schemas):
        raise ValidationError(
            "A span-only schema is asked of spans: add it as a span question.", code="span_schema"
        )
    if {s.pk for s in required} - {s.pk for s in schemas}:
        raise ValidationError(
            "Required schemas must be among the queue's schemas.", code="required_not_chosen"
        )
    span_questions.check_targets(targets, schemas)
    check_schemas_apply(schemas + [t.schema for t in targets], {t.experiment_id for t in traces})
    if not annotators:
        raise ValidationError("A queue needs at least one annotator.", code="no_annotators")
    if any(not can_write(user) for user in annotators):
        raise ValidationError("Annotators must be Reviewers or Admins.", code="read_only_annotator")
    if not 1 <= overlap <= len(annotators):
        raise ValidationError(
            f"Overlap must be between 1 and the number of annotators ({len(annotators)}).",
            code="overlap_out_of_range",
        )
    if Queue.objects.filter(name=name).exists():
        raise ValidationError(f"A queue named '{name}' already exists.", code="duplicate_name")
    queue = Queue.objects.create(
        name=name,
        description=description,
        filter_query=filter_query,
        overlap=overlap,
        blind=blind,
        control_rate=control_rate,
        accuracy_threshold=accuracy_threshold,
        created_by=created_by,
    )
    queue.schemas.set(schemas + [t.schema for t in targets])
    queue.required_schemas.set(required + [t.schema for t in targets if t.required])
    queue.annotators.set(annotators)
    QueueSpanQuestion.objects.bulk_create(
        QueueSpanQuestion(
            queue=queue, schema=t.schema, span_type=t.span_type, name_pattern=t.name_pattern
        )
        for t in targets
    )
    seen = set()
    unique_traces = [t for t in traces if not (t.pk in seen or seen.add(t.pk))]
    span_questions.check_traces_match(targets, unique_traces)
    QueueItem.objects.bulk_create(
        QueueItem(queue=queue, trace=trace, position=n) for n, trace in enumerate(unique_traces, 1)
    )
    return queue


def check_schemas_apply(schemas, experiment_ids: set[int]) -> None:
    """Refuse schemas scoped to experiments that leave out some of the queue's traces."""
    scopes: dict[int, set[int]] = defaultdict(set)
    rows = LabelSchema.experiments.through.objects.filter(labelschema__in=schemas).values_list(
        "labelschema_id", "experiment_id"
    )
    for schema_pk, experiment_pk in rows:
        scopes[schema_pk].add(experiment_pk)
    problems = []
    for schema in schemas:
        outside = experiment_ids - scopes[schema.pk] if scopes[schema.pk] else set()
        if outside:
            names = Experiment.objects.filter(pk__in=outside).order_by("name")
            problems.append(f"'{schema}' does not apply to {', '.join(e.name for e in names)}")
    if problems:
        raise ValidationError(
            f"{'; '.join(problems)}, where some of these traces come from. Choose schemas "
            "that apply to every experiment of the queue, or widen their experiments.",
            code="schema_not_in_experiment",
        )


def item_schemas(item: QueueItem) -> list[LabelSchema]:
    """The queue's trace questions that apply to the item's trace, each with ``required``
    set (its span questions are ``span_questions.asked_spans``)."""
    schemas = (
        LabelSchema.objects.for_experiment(item.trace.experiment_id)
        .filter(queues=item.queue_id)
        .exclude(name__in=span_questions.span_schema_names(item.queue_id))
        .annotate(
            required=Exists(
                Queue.required_schemas.through.objects.filter(
                    queue_id=item.queue_id, labelschema_id=OuterRef("pk")
                )
            )
        )
        .order_by("name")
    )
    return list(schemas)


def _active_count(item_ref) -> Subquery:
    return Coalesce(
        Subquery(
            QueueAssignment.objects.filter(item=item_ref, status__in=TAKEN)
            .values("item")
            .annotate(n=Count("pk"))
            .values("n"),
            output_field=IntegerField(),
        ),
        0,
    )


class _Full(Exception):
    """The locked candidate filled up before we got its lock; try the next one."""


@transaction.atomic
def next_assignment(*, queue: Queue, user) -> QueueAssignment | None:
    """The caller's item in progress, or a newly assigned one; None when nothing is left."""
    membership = (
        Queue.annotators.through.objects.select_for_update()
        .filter(queue_id=queue.pk, user_id=user.pk)
        .first()
    )
    if membership is None:
        raise ValidationError("You are not an annotator of this queue.", code="not_annotator")
    queue = Queue.objects.get(pk=queue.pk)
    if queue.status == Queue.Status.CLOSED:
        raise ValidationError("This queue is closed.", code="closed")
    current = in_progress(queue=queue, user=user)
    if current is not None:
        return current
    regular, controls = _open_to(queue, user)
    first, then = (controls, regular) if _control_due(queue, user) else (regular, controls)
    return _take(first, queue, user) or _take(then, queue, user)


def _open_to(queue: Queue, user) -> tuple[QuerySet[QueueItem], QuerySet[QueueItem]]:
    """The items the person may still be given: regular ones with room left under the
    overlap, and the control items they have not had."""
    mine = QueueAssignment.objects.filter(item=OuterRef("pk"), annotator=user)
    unseen = QueueItem.objects.filter(queue=queue, **_open_items(queue)).filter(~Exists(mine))
    regular = (
        unseen.filter(is_control=False)
        .annotate(taken=_active_count(OuterRef("pk")))
        .filter(taken__lt=queue.overlap)
    )
    controls = unseen.filter(is_control=True) if queue.control_rate else unseen.none()
    return regular, controls


def has_work_left(*, queue: Queue, user) -> bool:
    """Whether ``next_assignment`` would give the person an item now (without giving it)."""
    if queue.status == Queue.Status.CLOSED:
        return False
    if in_progress(queue=queue, user=user) is not None:
        return True
    return any(items.exists() for items in _open_to(queue, user))


def _take(candidates, queue: Queue, user) -> QueueAssignment | None:
    """Assign the first of ``candidates`` that still has room, locking it; None if none."""
    candidates = candidates.order_by("position")
    tried: list[int] = []
    while True:
        remaining = candidates.exclude(pk__in=tried)
        item = remaining.select_for_update(skip_locked=True, of=("self",)).first()
        if item is None and remaining.exists():
            # Every open item is locked by someone else right now: wait for one.
            item = remaining.select_for_update(of=("self",)).first()
        if item is None:
            return None
        try:
            with transaction.atomic():
                taken = item.assignments.filter(status__in=TAKEN).count()
                if taken >= queue.overlap and not item.is_control:
                    raise _Full
                assignment = QueueAssignment.objects.create(item=item, annotator=user)
        except (_Full, IntegrityError):
            # Rolling back the savepoint also releases the row lock for others.
            tried.append(item.pk)
            continue
        assignment.item = item
        return assignment


def _control_due(queue: Queue, user) -> bool:
    """Whether the person's next item should be a control item: control items make up
    ``control_rate`` percent of each person's items, spread out rather than up front."""
    if not queue.control_rate:
        return False
    seen = QueueAssignment.objects.filter(item__queue=queue, annotator=user).aggregate(
        total=Count("pk"), controls=Count("pk", filter=Q(item__is_control=True))
    )
    return (seen["controls"] + 1) * 100 <= queue.control_rate * (seen["total"] + 1)


def _open_items(queue: Queue, prefix: str = "") -> dict:
    """The lookup that leaves out items a shared status has closed."""
    return {f"{prefix}status": QueueItem.Status.PENDING} if queue.shared_status else {}


def in_progress(*, queue: Queue, user) -> QueueAssignment | None:
    return (
        QueueAssignment.objects.filter(item__queue=queue, annotator=user, status=Status.ASSIGNED)
        .filter(**_open_items(queue, "item__"))
        .select_related("item__trace")
        .order_by("item__position")
        .first()
    )


def _lock_assignment(assignment: QueueAssignment) -> QueueAssignment:
    locked = (
        QueueAssignment.objects.select_for_update(of=("self",))
        .select_related("item__queue", "item__trace")
        .get(pk=assignment.pk)
    )
    if locked.item.queue.status == Queue.Status.CLOSED:
        raise ValidationError("This queue is closed.", code="closed")
    return locked


@transaction.atomic
def submit(
    *,
    assignment: QueueAssignment,
    values: dict[str, object],
    rationales: dict[str, str] | None = None,
    span_values: dict[tuple[str, str], object] | None = None,
    span_rationales: dict[tuple[str, str], str] | None = None,
    actor,
) -> list[Assessment]:
    """Record the annotator's answers (schema name → value, and an optional rationale per
    name; for span questions (span id, schema name) → value) and mark their turn done.

    An answer the annotator gave before (a reopened item, or the same trace labeled on the
    review page) is updated rather than duplicated, and counts towards the required ones.
    A ``None`` value means "no answer". Nothing is saved unless the turn can be done.
    """
    assignment = _lock_assignment(assignment)
    if assignment.annotator_id != actor.pk:
        raise ValidationError("This item is assigned to someone else.", code="not_assignee")
    if assignment.status == Status.SKIPPED:
        raise ValidationError("You skipped this item.", code="skipped")
    item = assignment.item
    schemas = {s.name: s for s in item_schemas(item)}
    unknown = [name for name in values if name not in schemas]
    if unknown:
        raise ValidationError(f"'{unknown[0]}' is not labeled on this item.", code="unknown_schema")
    asked = {
        (spot.span.span_id, schema.name): (spot.span, schema)
        for spot in span_questions.asked_spans(item)
        for schema in spot.schemas
    }
    span_values = span_values or {}
    unknown = [key for key in span_values if key not in asked]
    if unknown:
        span_id, name = unknown[0]
        raise ValidationError(
            f"'{name}' is not asked of span '{span_id}' on this item.", code="unknown_schema"
        )
    given = {name: value for name, value in values.items() if value is not None}
    span_given = {key: value for key, value in span_values.items() if value is not None}
    if not given and not span_given:
        raise ValidationError(
            "Nothing was answered, so nothing was saved. Answer the questions, then submit.",
            code="empty",
        )
    existing = {a.name: a for a in own_answers(item=item, user=actor)}
    span_existing = own_span_answers(item=item, user=actor)
    unanswered_spans: dict[str, tuple[LabelSchema, list[Span]]] = {}
    for key, (span, schema) in asked.items():
        if schema.required and key not in span_given.keys() | span_existing:
            unanswered_spans.setdefault(schema.name, (schema, []))[1].append(span)
    missing = [
        f'"{s}"' for s in schemas.values() if s.required and s.name not in given.keys() | existing
    ] + [_unanswered_on(schema, spans) for schema, spans in unanswered_spans.values()]
    if len(missing) == 1:
        raise ValidationError(f"Nothing was saved: answer {missing[0]} first.", code="required")
    if missing:
        raise ValidationError(
            [ValidationError("Nothing was saved: answer these first.", code="required")]
            + [ValidationError(line, code="required") for line in missing]
        )
    saved = []
    for name, value in given.items():
        rationale = (rationales or {}).get(name, "")
        saved.append(
            _record_answer(item, schemas[name], existing.get(name), value, rationale, actor)
        )
    for key, value in span_given.items():
        rationale = (span_rationales or {}).get(key, "")
        schema = asked[key][1]
        previous = span_existing.get(key)
        saved.append(_record_answer(item, schema, previous, value, rationale, actor, key[0]))
    assignment.status = Status.DONE
    assignment.completed_at = timezone.now()
    assignment.save(update_fields=["status", "completed_at"])
    _share_status(item, QueueItem.Status.COMPLETE, actor)
    return saved


# How many span ids a refusal names before it only counts the rest.
SPANS_NAMED = 3


def _unanswered_on(schema: LabelSchema, spans: list[Span]) -> str:
    """One line for a span question left unanswered on ``spans``: how many, their names and
    the first few span ids, however many spans it matched."""
    if len(spans) == 1:
        return f'"{schema}" on {spans[0].name} (span {spans[0].span_id})'
    names = list(dict.fromkeys(span.name for span in spans))
    named = ", ".join(names[:SPANS_NAMED]) + (", …" if len(names) > SPANS_NAMED else "")
    ids = ", ".join(span.span_id for span in spans[:SPANS_NAMED])
    more = f" and {len(spans) - SPANS_NAMED} more" if len(spans) > SPANS_NAMED else ""
    return f'"{schema}" on {len(spans)} spans named {named} ({ids}{more})'


def _share_status(item: QueueItem, status: str, actor) -> None:
    if item.queue.shared_status and item.status != status:
        record_status(item, status, actor.get_username().lower())


def record_status(item: QueueItem, status: str, username: str) -> None:
    """Store an item's shared status and who set it (nobody for PENDING)."""
    moment = now_ms()
    done = status != QueueItem.Status.PENDING
    item.status = status
    item.completed_by = username if done else ""
    item.completed_time = moment if done else None
    item.last_update_time = moment
    item.save(update_fields=["status", "completed_by", "completed_time", "last_update_time"])


def _record_answer(item, schema, previous, value, rationale, actor, span_id=None) -> Assessment:
    if previous is not None:
        return services.update_assessment(
            assessment_id=previous.assessment_id,
            value=value,
            rationale=rationale,
            metadata=_item_metadata(item, {}),
            actor=actor,
        )
    log = services.log_expectation if schema.kind == Kind.EXPECTATION else services.log_feedback
    return log(
        trace=item.trace,
        span_id=span_id,
        name=schema.name,
        value=value,
        rationale=rationale,
        source_id=actor.get_username(),
        metadata=_item_metadata(item, {QUEUE_KEY: str(item.queue_id)}),
        actor=actor,
    )


def _item_metadata(item: QueueItem, metadata: dict) -> dict:
    """An answer's metadata, naming the session when the item is one."""
    return {**metadata, SESSION_KEY: item.session_id} if item.session_id else metadata


def _own(item: QueueItem, user):
    """The person's live human answers to the queue's questions on the item (its trace, or
    its session), control item or not (``_labels`` leaves control items out, which only
    results must)."""
    span_names = span_questions.span_schema_names(item.queue_id)
    trace_names = LabelSchema.objects.filter(queues=item.queue_id).exclude(name__in=span_names)
    own = (
        Assessment.objects.live()
        .filter(
            Q(span_id__isnull=True, name__in=trace_names.values("name"))
            | Q(span_id__isnull=False, name__in=span_names),
            trace_id=item.trace_id,
            annotator=user,
            source_type=SourceType.HUMAN,
        )
        .exclude(metadata__has_key=ADJUDICATION_KEY)
    )
    # A session item's answers are about the session, apart from those about its last turn.
    return own.about_session(item.session_id)


def own_answers(*, item: QueueItem, user) -> list[Assessment]:
    """The person's live trace-level answers to the queue's schemas on this item."""
    return list(_own(item, user).filter(span_id__isnull=True))


def own_span_answers(*, item: QueueItem, user) -> dict[tuple[str, str], Assessment]:
    """The person's live answers to the queue's span questions on this item, by (span id,
    name)."""
    return {(a.span_id, a.name): a for a in _own(item, user).filter(span_id__isnull=False)}


@dataclass(frozen=True)
class Blinding:
    """Where a blind queue hides a queue item: its queue's name, the item's position, and
    whether the person has had a turn at it (else the item is not theirs to open yet)."""

    queue_id: int
    queue_name: str
    position: int
    has_turn: bool = False


@dataclass(frozen=True)
class HiddenAnswers:
    """What one person may not see yet: per trace pk, the names whose answers by others stay
    hidden, and the blind queues hiding them. Judges' and code's entries, and the person's
    own, are never hidden."""

    user_id: int
    names: dict[int, frozenset[str]]
    blindings: dict[int, tuple[Blinding, ...]]

    def hides(self, assessment: Assessment) -> bool:
        return (
            assessment.source_type == SourceType.HUMAN
            and assessment.annotator_id != self.user_id
            and assessment.name in self.names.get(assessment.trace_id, ())
        )

    def blindings_for(self, trace_pk: int) -> tuple[Blinding, ...]:
        return self.blindings.get(trace_pk, ())


def _blind_items(user):
    """The items that hide answers from the person: those of open blind queues they annotate
    where they have no finished turn."""
    answered = QueueAssignment.objects.filter(
        item=OuterRef("pk"), annotator_id=user.pk, status=Status.DONE
    )
    return QueueItem.objects.filter(
        queue__blind=True, queue__status=Queue.Status.OPEN, queue__annotators=user.pk
    ).exclude(Exists(answered))


def hidden_answers(*, user, traces) -> HiddenAnswers:
    """Others' human answers ``user`` may not see on ``traces`` yet, in one query.

    On a trace of an open blind queue they annotate, others' human answers to that queue's
    schemas stay hidden from them wherever they are shown, Admins included, until they
    submit their own answer there or the queue closes.
    """
    turns = QueueAssignment.objects.filter(item=OuterRef("pk"), annotator_id=user.pk)
    rows = (
        _blind_items(user)
        .filter(trace__in=[trace.pk for trace in traces])
        .annotate(has_turn=Exists(turns))
        .order_by("queue__name")
        .values_list(
            "trace_id", "queue_id", "queue__name", "position", "has_turn", "queue__schemas__name"
        )
    )
    names: dict[int, set[str]] = defaultdict(set)
    blindings: dict[int, dict[int, Blinding]] = defaultdict(dict)
    for trace_pk, queue_id, queue_name, position, has_turn, name in rows:
        names[trace_pk].add(name)
        blindings[trace_pk][queue_id] = Blinding(queue_id, queue_name, position, has_turn)
    return HiddenAnswers(
        user_id=user.pk,
        names={pk: frozenset(found) for pk, found in names.items()},
        blindings={pk: tuple(found.values()) for pk, found in blindings.items()},
    )


def hidden_answers_condition(*, user) -> Q:
    """``hidden_answers``' rule as a condition on Assessment rows, for what counts, filters or
    loads assessments inside its own query: the trace list's badges and feedback filter
    (through settings.TRACEMARK_HIDDEN_ANSWERS, since traces cannot import annotation), the
    experiment overview, the exports, and the API's reads and search filters. It adds no
    query of its own: the hidden entries' ids are an uncorrelated subquery, which the
    database evaluates once (and estimates as cheap) rather than once per row.

    The subquery is written out (``_hidden_sql``, the same rule as ``_blind_items`` and
    ``hidden_answers``): built through the ORM it took ~2 ms of Python and, as one join of
    seven tables, 5-9 ms of planning on every API read, most of a small request's time."""
    if user.pk is None:
        return Q(pk__in=[])
    params = [SourceType.HUMAN, user.pk, True, Queue.Status.OPEN, user.pk, user.pk, Status.DONE]
    return Q(pk__in=RawSQL(_hidden_sql(), params))  # noqa: S611 (every value is a parameter)


def hides(assessment: Assessment, *, user) -> bool:
    """Whether a blind queue hides this one assessment (or a row with its ``pk``,
    ``source_type`` and ``annotator_id``) from ``user``. Only someone else's human answer
    can be hidden, so the person's own entries and judges' cost no query."""
    if assessment.source_type != SourceType.HUMAN or assessment.annotator_id == user.pk:
        return False
    return Assessment.objects.filter(hidden_answers_condition(user=user), pk=assessment.pk).exists()


@functools.cache
def _hidden_sql() -> str:
    """Others' human answers to an open blind queue's questions on its items, for a person
    who annotates the queue and has not finished the item."""
    tables = {
        "assessment": Assessment._meta.db_table,
        "item": QueueItem._meta.db_table,
        "queue": Queue._meta.db_table,
        "annotators": Queue.annotators.through._meta.db_table,
        "schemas": Queue.schemas.through._meta.db_table,
        "schema": LabelSchema._meta.db_table,
        "assignment": QueueAssignment._meta.db_table,
    }
    # The queues and the schema names are subqueries rather than joins, so the planner
    # weighs three tables at a time, not seven: ~1 ms of planning instead of 5-9 on every
    # read that hides answers, for the same rows.
    return (  # noqa: S608 (only the models' table names are put in the text)
        "SELECT h.id FROM {assessment} h"
        " JOIN {item} i ON i.trace_id = h.trace_id"
        " WHERE h.source_type = %s AND (h.annotator_id IS NULL OR h.annotator_id <> %s)"
        " AND i.queue_id IN (SELECT q.id FROM {queue} q JOIN {annotators} qa"
        " ON qa.queue_id = q.id WHERE q.blind = %s AND q.status = %s AND qa.user_id = %s)"
        " AND EXISTS (SELECT 1 FROM {schemas} qs JOIN {schema} s ON s.id = qs.labelschema_id"
        " WHERE qs.queue_id = i.queue_id AND s.name = h.name)"
        " AND NOT EXISTS (SELECT 1 FROM {assignment} d"
        " WHERE d.item_id = i.id AND d.annotator_id = %s AND d.status = %s)"
    ).format(**tables)


def others_answers(*, item: QueueItem, user) -> list[Assessment]:
    return list(
        _labels(item.queue)
        .filter(trace_id=item.trace_id)
        .exclude(annotator=user)
        .select_related("annotator")
    )


@transaction.atomic
def skip(*, assignment: QueueAssignment, reason: str, actor) -> QueueAssignment:
    """Give the item back with a reason; someone else can take the place."""
    assignment = _lock_assignment(assignment)
    if assignment.annotator_id != actor.pk:
        raise ValidationError("This item is assigned to someone else.", code="not_assignee")
    if assignment.status != Status.ASSIGNED:
        raise ValidationError("Only an item in progress can be skipped.", code="not_in_progress")
    if not reason.strip():
        raise ValidationError("Say why you skip this item.", code="reason_required")
    assignment.status = Status.SKIPPED
    assignment.skip_reason = reason.strip()
    assignment.completed_at = timezone.now()
    assignment.save(update_fields=["status", "skip_reason", "completed_at"])
    _share_status(assignment.item, QueueItem.Status.DECLINED, actor)
    return assignment


@transaction.atomic
def reassign(*, assignment: QueueAssignment, to_user) -> QueueAssignment:
    """Hand an unfinished turn to another annotator of the queue."""
    assignment = _lock_assignment(assignment)
    if assignment.status == Status.DONE:
        raise ValidationError("A finished answer cannot be reassigned.", code="done")
    queue = assignment.item.queue
    if not queue.annotators.filter(pk=to_user.pk).exists():
        raise ValidationError(
            f"{to_user.get_username()} is not an annotator.", code="not_annotator"
        )
    if assignment.item.assignments.filter(annotator=to_user).exists():
        raise ValidationError(
            f"{to_user.get_username()} already had this item.", code="already_assigned"
        )
    assignment.annotator = to_user
    assignment.status = Status.ASSIGNED
    assignment.skip_reason = ""
    assignment.completed_at = None
    assignment.assigned_at = timezone.now()
    assignment.save(
        update_fields=["annotator", "status", "skip_reason", "completed_at", "assigned_at"]
    )
    return assignment


@transaction.atomic
def reopen_item(*, item: QueueItem) -> QueueItem:
    """Send a finished item back to the people who answered it, to look at it again."""
    item = QueueItem.objects.select_for_update().get(pk=item.pk)
    if not item.assignments.exists():
        raise ValidationError(
            f"Item {item.position} is not handed out yet: there is nothing to reopen.",
            code="not_handed_out",
        )
    item.assignments.filter(status=Status.DONE).update(status=Status.ASSIGNED, completed_at=None)
    item.reopened = True
    item.save(update_fields=["reopened"])
    if item.queue.shared_status and item.status != QueueItem.Status.PENDING:
        record_status(item, QueueItem.Status.PENDING, "")
    return item


def set_status(*, queue: Queue, status: str) -> Queue:
    """Close a queue (no more labeling) or open it again."""
    queue.status = Queue.Status(status)
    queue.save(update_fields=["status"])
    return queue


# Progress


@dataclass(frozen=True)
class AnnotatorProgress:
    user: object
    assigned: int
    done: int
    skipped: int
    last_activity: object
    agreeing: int = 0
    compared: int = 0

    @property
    def agreement(self) -> float | None:
        return self.agreeing / self.compared if self.compared else None


@dataclass(frozen=True)
class QueueProgress:
    items: int
    complete_items: int | None  # None where it would tell control items apart
    labels_needed: int
    labels_done: int
    mine: int
    others: int
    skipped: int

    @property
    def percent(self) -> int:
        return round(100 * self.labels_done / self.labels_needed) if self.labels_needed else 100


def progress(queue: Queue, user=None, *, as_annotator: bool = False) -> QueueProgress:
    """Counts for the progress bar; ``mine``/``others`` split done turns around ``user``.

    The queue's results leave control items out. What an annotator sees (``as_annotator``)
    counts them like any item they are handed, each needing an answer from every annotator,
    so that no count moves differently after a control item; it has no complete items,
    since a control item is complete only once everyone answered it.
    """
    with_controls = as_annotator and queue.control_rate > 0
    items = QueueItem.objects.filter(queue=queue)
    turns = QueueAssignment.objects.filter(item__queue=queue)
    if not with_controls:
        items, turns = items.filter(is_control=False), turns.filter(item__is_control=False)
    user_id = user.pk if user is not None else None
    totals = turns.aggregate(
        done=Count("pk", filter=Q(status=Status.DONE)),
        mine=Count("pk", filter=Q(status=Status.DONE, annotator_id=user_id)),
        skipped=Count("pk", filter=Q(status=Status.SKIPPED)),
    )
    counts = items.aggregate(
        regular=Count("pk", filter=Q(is_control=False)),
        controls=Count("pk", filter=Q(is_control=True)),
    )
    needed = counts["regular"] * queue.overlap
    if with_controls and counts["controls"]:
        needed += counts["controls"] * queue.annotators.count()
    complete = None
    if not as_annotator:
        complete = (
            items.annotate(done=Count("assignments", filter=Q(assignments__status=Status.DONE)))
            .filter(done__gte=queue.overlap)
            .count()
        )
    return QueueProgress(
        items=counts["regular"] + counts["controls"],
        complete_items=complete,
        labels_needed=needed,
        labels_done=totals["done"],
        mine=totals["mine"],
        others=totals["done"] - totals["mine"],
        skipped=totals["skipped"],
    )


def progress_by_annotator(queue: Queue) -> list[AnnotatorProgress]:
    counts = {
        row["annotator"]: row
        for row in QueueAssignment.objects.filter(item__queue=queue, item__is_control=False)
        .values("annotator")
        .annotate(
            assigned=Count("pk", filter=Q(status=Status.ASSIGNED)),
            done=Count("pk", filter=Q(status=Status.DONE)),
            skipped=Count("pk", filter=Q(status=Status.SKIPPED)),
            last=Max("completed_at"),
        )
    }
    agreement = agreement_by_rater([unit for units in _units(queue).values() for unit in units])
    rows = []
    for user in queue.annotators.order_by("username"):
        row = counts.get(user.pk, {})
        agreeing, compared = agreement.get(user.pk, (0, 0))
        rows.append(
            AnnotatorProgress(
                user=user,
                assigned=row.get("assigned", 0),
                done=row.get("done", 0),
                skipped=row.get("skipped", 0),
                last_activity=row.get("last"),
                agreeing=agreeing,
                compared=compared,
            )
        )
    return rows


# Results: aggregation, agreement, disagreements, adjudication


def _answers_counted(queue: Queue):
    """Human answers, deleted ones included, to the queue's questions on its non-control
    traces, by its annotators: on the trace for trace questions, on a span for span
    questions. Where they were given (here, another queue, the review page) does not matter."""
    span_names = span_questions.span_schema_names(queue)
    return Assessment.objects.filter(
        Q(span_id__isnull=True, name__in=queue.schemas.exclude(name__in=span_names).values("name"))
        | Q(span_id__isnull=False, name__in=span_names),
        # A session item counts the answers about its session, a trace item those about the
        # trace: a person's answer about the session's last turn is not one about the session.
        trace__queue_items__session_id=about_session(),
        trace__queue_items__queue=queue,
        trace__queue_items__is_control=False,
        annotator__in=queue.annotators.all(),
        source_type=SourceType.HUMAN,
    )


def _labels(queue: Queue):
    """The live answers the queue's results count (``_answers_counted``)."""
    return _answers_counted(queue).live()


def answers_given_elsewhere(queue: Queue) -> int:
    """How many of the answers the queue's results count were not given in this queue (on
    the review page, in another queue, or before this queue existed)."""
    counts = (
        _labels(queue)
        .exclude(metadata__has_key=ADJUDICATION_KEY)
        .aggregate(
            counted=Count("pk", distinct=True),
            here=Count("pk", distinct=True, filter=Q(**{f"metadata__{QUEUE_KEY}": str(queue.pk)})),
        )
    )
    return counts["counted"] - counts["here"]


def queue_entries(queue: Queue) -> Q:
    """The assessments a queue's export holds: the answers its results count and its
    decisions, in any state (the export's options choose which states)."""
    return Q(pk__in=_answers_counted(queue).values("pk")) | Q(
        pk__in=_all_decisions(queue).values("pk")
    )


Question = tuple[int, str | None, str]  # trace pk, span id (None: the trace), name


def _answers(labels) -> dict[Question, dict[int, object]]:
    """(trace pk, span id, name) → {annotator pk: value} from a queryset of labels;
    adjudications and structured values (which are not compared) are left out."""
    answers: dict[Question, dict[int, object]] = defaultdict(dict)
    rows = (
        labels.exclude(metadata__has_key=ADJUDICATION_KEY)
        .order_by("create_time", "pk")
        .values_list("trace_id", "span_id", "name", "annotator_id", "value")
    )
    for trace_id, span_id, name, annotator_id, value in rows:
        if not isinstance(value, dict | list):
            answers[trace_id, span_id, name][annotator_id] = value
    return answers


def _units(queue: Queue) -> dict[str, list[dict[int, object]]]:
    """Schema name → one {annotator: value} unit per item (and span) that has answers."""
    units: dict[str, list[dict[int, object]]] = defaultdict(list)
    for (_trace, _span, name), unit in _answers(_labels(queue)).items():
        units[name].append(unit)
    return units


def agreement_by_annotator() -> dict[int, tuple[int, int]]:
    """Annotator pk → (agreeing, compared) over every stored human trace-level answer to a
    schema'd name, in or out of queues: how often the others who answered agreed."""
    labels = Assessment.objects.live().filter(
        name__in=LabelSchema.objects.exclude(
            value_type__in=[LabelSchema.ValueType.TEXT, LabelSchema.ValueType.STRUCTURED]
        ).values("name"),
        annotator__isnull=False,
        source_type=SourceType.HUMAN,
        span_id__isnull=True,
    )
    return agreement_by_rater(list(_answers(labels).values()))


@dataclass(frozen=True)
class SchemaAgreement:
    schema: LabelSchema
    level: str | None
    items: int
    pairable_items: int
    raters: int
    alpha: float | None
    cohen: float | None
    fleiss: float | None


def queue_agreement(queue: Queue) -> list[SchemaAgreement]:
    """Per schema: Krippendorff's alpha at the schema's level, Cohen's kappa when exactly two
    people answered, Fleiss' kappa when every compared item has the same number of answers."""
    units = _units(queue)
    results = []
    for schema in queue.schemas.all():
        schema_units = units.get(schema.name, [])
        raters = sorted({r for unit in schema_units for r in unit})
        rows = [[unit.get(r) for r in raters] for unit in schema_units]
        level = level_for(schema.value_type, step=schema.step)
        results.append(
            SchemaAgreement(
                schema=schema,
                level=level,
                items=len(rows),
                pairable_items=sum(1 for row in rows if sum(v is not None for v in row) >= 2),
                raters=len(raters),
                alpha=krippendorff_alpha(rows, level) if level else None,
                cohen=cohen_kappa([tuple(row) for row in rows])
                if level and len(raters) == 2
                else None,
                fleiss=fleiss_kappa(rows) if level else None,
            )
        )
    return results


@dataclass(frozen=True)
class Disagreement:
    item: QueueItem
    schema: LabelSchema
    answers: list  # (annotator, value), by username
    summary: Aggregate
    decision: Assessment | None
    span_id: str | None = None
    span: Span | None = None


def disagreements(queue: Queue, *, viewer=None) -> list[Disagreement]:
    """Items and schemas where at least two annotators answered differently; with ``viewer``,
    leaving out those whose answers the queue still hides from them (a member who decides)."""
    answers = _answers(_labels(queue))
    items = {i.trace_id: i for i in queue.items.select_related("trace")}
    if viewer is not None:
        hidden = hidden_answers(user=viewer, traces=[i.trace for i in items.values()])
        answers = {
            question: unit
            for question, unit in answers.items()
            if question[2] not in hidden.names.get(question[0], ())
        }
    schemas = {s.name: s for s in queue.schemas.all()}
    people = {u.pk: u for u in queue.annotators.all()}
    decisions = {(a.trace_id, a.span_id, a.name): a for a in _decisions(queue).filter(valid=True)}
    found = []
    for (trace_id, span_id, name), unit in answers.items():
        schema = schemas[name]
        summary = aggregate(list(unit.values()), schema.value_type)
        if not summary.disagreement:
            continue
        found.append(
            Disagreement(
                item=items[trace_id],
                schema=schema,
                answers=sorted(
                    ((people[pk], value) for pk, value in unit.items()),
                    key=lambda pair: pair[0].get_username(),
                ),
                summary=summary,
                decision=decisions.get((trace_id, span_id, name)),
                span_id=span_id,
            )
        )
    spans = span_questions.spans_by_id((d.item.trace_id, d.span_id) for d in found if d.span_id)
    found = [replace(d, span=spans.get((d.item.trace_id, d.span_id))) for d in found]
    return sorted(found, key=lambda d: (d.item.position, d.span_id or "", d.schema.name))


def answers_to_decide(
    *, item: QueueItem, schema: LabelSchema, span_id: str | None = None
) -> list[Assessment]:
    """Every annotator's own answer on an item (or one of its spans), the ones a decision
    overrode included, for the Admin deciding it: value, rationale and author."""
    return sorted(
        _labels(item.queue)
        .filter(trace_id=item.trace_id, span_id=span_id, name=schema.name)
        .exclude(metadata__has_key=ADJUDICATION_KEY)
        .select_related("annotator"),
        key=lambda answer: (answer.annotator.get_username(), answer.create_time),
    )


def _all_decisions(queue: Queue):
    return Assessment.objects.filter(
        trace__queue_items__queue=queue, **{f"metadata__{ADJUDICATION_KEY}": str(queue.pk)}
    )


def _decisions(queue: Queue):
    return _all_decisions(queue).live()


@transaction.atomic
def adjudicate(
    *,
    item: QueueItem,
    schema: LabelSchema,
    value,
    rationale: str = "",
    span_id: str | None = None,
    actor,
) -> Assessment:
    """Record an Admin's decision for an item (or one of its spans, ``span_id``) and schema;
    a second decision updates the first
    (or, by another Admin, overrides it: an expectation decided by someone else stays theirs).

    For an expectation schema the decision is an expectation. For a feedback schema it
    overrides one annotator's answer: the Admin's own if they answered, else the earliest
    answer that differs from the decision, so the decision becomes the valid feedback.
    """
    queue = item.queue
    previous = (
        _decisions(queue)
        .filter(trace_id=item.trace_id, span_id=span_id, name=schema.name, valid=True)
        .first()
    )
    metadata = _item_metadata(item, {ADJUDICATION_KEY: str(queue.pk)})
    # Another Admin's feedback decision stays theirs: this one overrides it.
    theirs = previous is not None and previous.annotator_id != actor.pk
    if previous is not None and not (theirs and previous.kind == Kind.FEEDBACK):
        return services.update_assessment(
            assessment_id=previous.assessment_id, value=value, rationale=rationale, actor=actor
        )
    if schema.kind == Kind.EXPECTATION:
        return services.log_expectation(
            trace=item.trace,
            span_id=span_id,
            name=schema.name,
            value=value,
            rationale=rationale,
            source_id=actor.get_username(),
            metadata=metadata,
            actor=actor,
        )
    target = previous or _decision_target(queue, item, schema, span_id, value, actor)
    return services.override_feedback(
        assessment_id=target.assessment_id,
        value=value,
        rationale=rationale,
        source_id=actor.get_username(),
        metadata=metadata,
        actor=actor,
    )


def _decision_target(queue, item, schema, span_id, value, actor) -> Assessment:
    """The answer a first decision overrides: the deciding Admin's own, else the earliest
    that differs from the decision, else the earliest."""
    answers = list(
        _labels(queue)
        .filter(
            trace_id=item.trace_id,
            span_id=span_id,
            name=schema.name,
            kind=Kind.FEEDBACK,
            valid=True,
        )
        .order_by("create_time", "pk")
    )
    target = next((a for a in answers if a.annotator_id == actor.pk), None) or next(
        (a for a in answers if a.value != value), None
    )
    if target is None and answers:
        target = answers[0]
    if target is None:
        raise ValidationError("There is no answer to decide on.", code="nothing_to_decide")
    return target
