"""Measuring a queue's people: control items with known answers, accuracy on them, and pace.

Invariants it owns:
- A control item is a queue item an Admin gave known answers to (ControlAnswer). It is
  handed out like any item and looks like any item to the annotator; every annotator gets
  it once, whatever the overlap, and it never counts towards the queue's results,
  agreement, disagreements or exports of the queue, nor the progress Admins see
  (annotation.queues leaves it out); the counters annotators see count it like any item.
- Accuracy is the share of an annotator's answers on control items that equal the known
  answer (numbers within half the schema's step), with n, per queue.
- Active time accrues over stretches of signs of life from the item page (shown, a
  heartbeat sent while the tab is visible and used, the answer or skip). The page closes a
  stretch when its tab is hidden (counting up to then) or a minute passes without input
  (counting nothing since the last heartbeat), and opens a new one when it is seen or used
  again, counting nothing of the time in between; a gap longer than ``ACTIVE_GAP`` counts
  nothing either, should a closing sign be lost. So time while the tab is hidden never
  counts.
"""

import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import F
from django.utils import timezone

from . import span_questions
from .models import (
    Assessment,
    ControlAnswer,
    Kind,
    LabelSchema,
    Queue,
    QueueAssignment,
    QueueItem,
    SourceType,
    about_session,
)
from .validation import check_against_schema

Status = QueueAssignment.Status
# Longer than the page's heartbeat interval (15 s), with room for a slow request.
ACTIVE_GAP = timedelta(seconds=45)
# Fewer control answers than this say too little to warn about anyone.
MIN_CONTROL_ANSWERS = 3


# Control items


@transaction.atomic
def set_control_answers(*, item: QueueItem, answers: dict[str, object], actor) -> QueueItem:
    """Make ``item`` a control item with these known answers (schema name → value); an
    empty ``answers`` makes it an ordinary item again."""
    item = QueueItem.objects.select_for_update().select_related("queue").get(pk=item.pk)
    if answers:
        span_questions.refuse_control_items(item.queue)
    schemas = {s.name: s for s in item.queue.schemas.all()}
    for name, value in answers.items():
        schema = schemas.get(name)
        if schema is None:
            raise ValidationError(f"'{name}' is not labeled in this queue.", code="unknown_schema")
        check_against_schema(schema, kind=schema.kind, value=value, span_id=None)
    item.control_answers.all().delete()
    ControlAnswer.objects.bulk_create(
        ControlAnswer(item=item, schema=schemas[name], value=value, created_by=actor)
        for name, value in answers.items()
    )
    item.is_control = bool(answers)
    item.save(update_fields=["is_control"])
    return item


def suggested_answers(item: QueueItem) -> dict[str, object]:
    """Known answers to start a control item from: the item's current control answers, else
    an Admin's decision or an expectation already on the trace, per schema name."""
    current = {c.schema.name: c.value for c in item.control_answers.select_related("schema")}
    if current:
        return current
    names = list(item.queue.schemas.values_list("name", flat=True))
    found = (
        Assessment.objects.live()
        .filter(trace_id=item.trace_id, name__in=names, span_id__isnull=True, valid=True)
        .exclude(source_type=SourceType.LLM_JUDGE)
        .order_by("create_time", "pk")
    )
    suggested: dict[str, object] = {}
    for assessment in found:
        if assessment.kind == Kind.EXPECTATION or assessment.overrides_id is not None:
            suggested[assessment.name] = assessment.value
    return suggested


def matches(schema: LabelSchema, given, known) -> bool:
    """Whether an answer equals the known one; numbers within half the schema's step."""
    numeric = schema.value_type == LabelSchema.ValueType.NUMERIC
    if numeric and _is_number(given) and _is_number(known):
        return abs(given - known) <= (schema.step or 0) / 2 + 1e-9
    return given == known and isinstance(given, bool) == isinstance(known, bool)


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class Accuracy:
    correct: int
    n: int

    @property
    def share(self) -> float | None:
        return self.correct / self.n if self.n else None

    @property
    def too_few(self) -> bool:
        """Too few answers to warn about anyone, whatever the share."""
        return self.n < MIN_CONTROL_ANSWERS

    @property
    def needed(self) -> int:
        return MIN_CONTROL_ANSWERS


def accuracy_by_annotator(queue: Queue) -> dict[int, Accuracy]:
    """Annotator pk → their accuracy on the queue's control items, in two queries."""
    known = {
        (c.item.trace_id, c.item.session_id, c.schema.name): (c.schema, c.value)
        for c in ControlAnswer.objects.filter(item__queue=queue).select_related("item", "schema")
    }
    if not known:
        return {}
    given = (
        _with_session(Assessment.objects.live())
        .filter(
            trace_id__in={trace_id for trace_id, _, _ in known},
            name__in={name for _, _, name in known},
            source_type=SourceType.HUMAN,
            span_id__isnull=True,
            annotator__queue_assignments__item__queue=queue,
            annotator__queue_assignments__item__trace_id=F("trace_id"),
            annotator__queue_assignments__status=Status.DONE,
        )
        .values_list("annotator_id", "trace_id", "about_session", "name", "value")
    )
    tally: dict[int, list[int]] = {}
    for annotator_id, trace_id, session, name, value in given:
        if (trace_id, session, name) not in known:
            continue  # about the session's last turn, not the session item, or the reverse
        schema, expected = known[trace_id, session, name]
        counts = tally.setdefault(annotator_id, [0, 0])
        counts[0] += matches(schema, value, expected)
        counts[1] += 1
    return {pk: Accuracy(correct, n) for pk, (correct, n) in tally.items()}


def _with_session(assessments):
    """Annotate the session an answer is about ("" for its trace), as session items store it."""
    return assessments.annotate(about_session=about_session())


def below_threshold(queue: Queue, accuracy: Accuracy | None) -> bool:
    share = accuracy.share if accuracy is not None else None
    return share is not None and not accuracy.too_few and share < queue.accuracy_threshold


# Pace


class Activity(models.TextChoices):
    """What a sign of life from the item page says about the time since the last one."""

    ACTIVE = "active", "in use all along"  # the item shown, a heartbeat, the answer or skip
    RESUMED = "resumed", "not in use until now"  # the tab shown again, or used after idling
    HIDDEN = "hidden", "in use until now, hidden from now on"
    IDLE = "idle", "left without input since the last sign"


def record_activity(
    assignment: QueueAssignment, *, now: datetime | None = None, state: str = Activity.ACTIVE
) -> None:
    """A sign of life from the item page: ACTIVE and HIDDEN add the time since the last sign
    when a stretch is open and the gap is short; HIDDEN and IDLE close the stretch, ACTIVE
    and RESUMED open one."""
    now = now or timezone.now()
    updates = {"seen_at": None if state in (Activity.HIDDEN, Activity.IDLE) else now}
    counts = state in (Activity.ACTIVE, Activity.HIDDEN) and assignment.seen_at is not None
    if assignment.shown_at is None:
        updates["shown_at"] = now
    elif counts and now - assignment.seen_at <= ACTIVE_GAP:
        gained = int((now - assignment.seen_at).total_seconds() * 1000)
        updates["active_ms"] = F("active_ms") + max(gained, 0)
    QueueAssignment.objects.filter(pk=assignment.pk, status=Status.ASSIGNED).update(**updates)


@dataclass(frozen=True)
class Pace:
    answered: int
    skipped: int
    median_seconds: float | None
    items_per_hour: float | None

    @property
    def skip_rate(self) -> float | None:
        finished = self.answered + self.skipped
        return self.skipped / finished if finished else None


def pace(assignments) -> Pace:
    """Pace over ``(status, active_ms)`` pairs of finished and unfinished turns.

    Time comes only from turns with active time recorded (the item page's signs of life): a
    turn with none was not measured, not instant, so it counts toward neither the median
    nor items per hour; with none measured both are None.
    """
    done = [ms for status, ms in assignments if status == Status.DONE]
    skipped = sum(1 for status, _ in assignments if status == Status.SKIPPED)
    timed = [ms for ms in done if ms > 0]
    spent_ms = sum(ms for status, ms in assignments if status != Status.ASSIGNED)
    return Pace(
        answered=len(done),
        skipped=skipped,
        median_seconds=statistics.median(timed) / 1000 if timed else None,
        items_per_hour=len(timed) / (spent_ms / 3_600_000) if timed else None,
    )


def pace_by_annotator(queue: Queue) -> tuple[Pace, dict[int, Pace]]:
    """The queue's pace and each annotator's, from one query over its assignments."""
    rows = list(
        QueueAssignment.objects.filter(item__queue=queue).values_list(
            "annotator_id", "status", "active_ms"
        )
    )
    by_person: dict[int, list[tuple[str, int]]] = {}
    for annotator_id, status, active_ms in rows:
        by_person.setdefault(annotator_id, []).append((status, active_ms))
    overall = pace([(status, ms) for _, status, ms in rows])
    return overall, {pk: pace(turns) for pk, turns in by_person.items()}


@dataclass(frozen=True)
class QueueQuality:
    """One annotator in one queue, for the annotator page."""

    queue: Queue
    pace: Pace
    accuracy: Accuracy | None
    warn: bool


def quality_of(person) -> list[QueueQuality]:
    """The person's pace and control accuracy in every queue they have turns in."""
    queues = Queue.objects.filter(items__assignments__annotator=person).distinct()
    rows = []
    for queue in queues.order_by("name"):
        turns = QueueAssignment.objects.filter(item__queue=queue, annotator=person)
        accuracy = accuracy_by_annotator(queue).get(person.pk)
        rows.append(
            QueueQuality(
                queue=queue,
                pace=pace(turns.values_list("status", "active_ms")),
                accuracy=accuracy,
                warn=below_threshold(queue, accuracy),
            )
        )
    return rows


def assignment_records(queue: Queue):
    """One record per turn in the queue, for the assignments download: who, which item (its
    trace and, for a session item, its session), when it was shown and finished, active
    seconds and, on control items, how many answers matched the known ones."""
    known: dict[int, list[tuple[LabelSchema, object]]] = {}
    for control in ControlAnswer.objects.filter(item__queue=queue).select_related("schema"):
        known.setdefault(control.item_id, []).append((control.schema, control.value))
    given = {
        (annotator_id, trace_id, session, name): value
        for annotator_id, trace_id, session, name, value in _with_session(Assessment.objects.live())
        .filter(
            trace__queue_items__queue=queue,
            trace__queue_items__is_control=True,
            source_type=SourceType.HUMAN,
            span_id__isnull=True,
        )
        .values_list("annotator_id", "trace_id", "about_session", "name", "value")
    }
    turns = (
        QueueAssignment.objects.filter(item__queue=queue)
        .select_related("item__trace", "annotator")
        .order_by("item__position", "assigned_at")
    )
    for turn in turns.iterator(chunk_size=2000):
        item = turn.item
        compared = correct = 0
        for schema, expected in known.get(item.pk, []):
            answer = given.get((turn.annotator_id, item.trace_id, item.session_id, schema.name))
            if turn.status == Status.DONE and answer is not None:
                compared += 1
                correct += matches(schema, answer, expected)
        yield {
            "queue": queue.name,
            "position": item.position,
            "trace_id": item.trace.trace_id,
            "session_id": item.session_id,
            "control_item": item.is_control,
            "annotator": turn.annotator.get_username(),
            "status": turn.status,
            "skip_reason": turn.skip_reason,
            "assigned_at": _iso(turn.assigned_at),
            "shown_at": _iso(turn.shown_at),
            "completed_at": _iso(turn.completed_at),
            "active_seconds": round(turn.active_ms / 1000, 1),
            "control_correct": correct if item.is_control else None,
            "control_compared": compared if item.is_control else None,
        }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
