"""Session items: queue items that are whole multi-turn sessions.

Rules it owns:
- A session item is labeled on the session's last trace (latest request time, then trace id)
  as it was when the item was added. Its answers and decisions are stored there through
  annotation.queues, like any item's, and name the session under ``queues.SESSION_KEY``; so
  progress, agreement, disagreements, decisions, blind mode, control items and exports treat
  it as one item, and the session page shows the answers as the session's. An answer about
  the session is a target of its own: a person's answer about that last trace (from the
  review page or a trace item) is neither shown as nor turned into their session answer,
  and each is one per person (annotation.services).
- A session item is asked the queue's trace-level questions; a queue with span questions
  takes no sessions, since its item page shows the conversation rather than a span tree.
- One item per session in a queue: a session added again, or whose last trace is already an
  item of the queue, is left as it is.
- A session that gains turns after it was added keeps its item on the trace it was added
  with, so that every annotator answers about the same conversation and earlier answers stay
  comparable. The item page shows the turns up to that trace and says how many came later;
  adding the session to another queue labels the longer conversation.
"""

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Max, OuterRef, Q, Subquery

from traces.models import Trace

from . import queues
from .models import Queue, QueueItem

# The turns a session item shows, the latest ones when a session is longer.
CONVERSATION_TURNS = 200
# A session item shows the conversation, not one trace's span tree.
NO_SPAN_QUESTIONS = "Sessions are labeled as conversations; span questions cannot be asked of them."


def last_traces(session_ids) -> dict[str, Trace]:
    """Session id → the session's last trace, for the sessions that have traces, in one
    query along the session index."""
    latest = (
        Trace.objects.filter(session=OuterRef("session"))
        .order_by("-request_time", "-trace_id")
        .values("pk")[:1]
    )
    rows = Trace.objects.filter(session__in=list(session_ids), pk=Subquery(latest))
    return {trace.session: trace for trace in rows}


def sessions_of(traces, limit: int) -> list[str]:
    """The sessions of ``traces`` (an ordered queryset) in their order, at most ``limit``."""
    found: dict[str, None] = {}
    for session in traces.exclude(session="").values_list("session", flat=True).iterator():
        found.setdefault(session)
        if len(found) == limit:
            break
    return list(found)


def _last_traces_of_all(session_ids: list[str]) -> dict[str, Trace]:
    traces = last_traces(session_ids)
    unknown = [s for s in session_ids if s not in traces]
    if unknown:
        raise ValidationError(
            f"No traces in session {', '.join(unknown[:5])}.", code="unknown_session"
        )
    return traces


@transaction.atomic
def create_session_queue(*, session_ids, **options) -> Queue:
    """A queue (``queues.create_queue``'s options) with one item per session, in order."""
    if options.get("span_targets"):
        raise ValidationError(NO_SPAN_QUESTIONS, code="session_span_question")
    session_ids = list(dict.fromkeys(session_ids))
    traces = _last_traces_of_all(session_ids)
    queue = queues.create_queue(traces=[traces[s] for s in session_ids], **options)
    sessions = {traces[s].pk: s for s in session_ids}
    items = list(queue.items.all())
    for item in items:
        item.session_id = sessions[item.trace_id]
    QueueItem.objects.bulk_update(items, ["session_id"])
    return queue


@transaction.atomic
def add_sessions(*, queue: Queue, session_ids) -> list[QueueItem]:
    """Append one item per session not in the queue yet; returns the new items."""
    queue = Queue.objects.select_for_update().get(pk=queue.pk)
    session_ids = list(dict.fromkeys(session_ids))
    if not session_ids:
        raise ValidationError("Give at least one session id.", code="no_sessions")
    if queue.span_questions.exists():
        raise ValidationError(NO_SPAN_QUESTIONS, code="session_span_question")
    traces = _last_traces_of_all(session_ids)
    queues.check_schemas_apply(
        list(queue.schemas.all()), {trace.experiment_id for trace in traces.values()}
    )
    present = queue.items.values_list("session_id", "trace_id")
    taken = {value for pair in present for value in pair}
    new = [s for s in session_ids if s not in taken and traces[s].pk not in taken]
    start = queue.items.aggregate(last=Max("position"))["last"] or 0
    return QueueItem.objects.bulk_create(
        QueueItem(queue=queue, trace=traces[s], session_id=s, position=start + n)
        for n, s in enumerate(new, 1)
    )


# The item page's conversation


@dataclass(frozen=True)
class Turn:
    number: int
    trace: Trace


@dataclass(frozen=True)
class Conversation:
    session_id: str
    turns: list[Turn]
    earlier_turns: int  # not shown, past CONVERSATION_TURNS
    later_turns: int  # added to the session after the item


def conversation(item: QueueItem) -> Conversation | None:
    """A session item's turns up to its trace, oldest first; None for a trace item.

    Two queries: the turns shown and a count of the session's turns around them."""
    if not item.session_id:
        return None
    last = item.trace
    session = Trace.objects.filter(session=item.session_id)
    until = Q(request_time__lt=last.request_time) | Q(
        request_time=last.request_time, trace_id__lte=last.trace_id
    )
    shown = list(session.filter(until).order_by("-request_time", "-trace_id")[:CONVERSATION_TURNS])
    shown.reverse()
    counts = session.aggregate(before=Count("pk", filter=until), after=Count("pk", filter=~until))
    earlier = counts["before"] - len(shown)
    turns = [Turn(number=earlier + n, trace=trace) for n, trace in enumerate(shown, 1)]
    return Conversation(item.session_id, turns, earlier, counts["after"])
