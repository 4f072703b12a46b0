"""Feedback on traces as the trace list shows and filters it.

``traces`` never imports ``annotation``: annotation builds on traces, not the reverse.
The list still has to show feedback badges and filter on feedback, so this module reaches
assessments through Trace's reverse relation ``assessments`` — the ORM hands us the
related model — and reads only its stable columns: name, kind, value, valid, deleted_at
and annotator. Writing stays annotation.services' business.

Who may see which assessment is annotation's rule too (blind queues hide others' answers
from someone who still has to give theirs). Rather than import it, this module calls the
function that settings.TRACEMARK_HIDDEN_ANSWERS names, the way auth resolves
AUTHENTICATION_BACKENDS: given a user, it returns a condition on assessment rows matching
the ones hidden from them. Badges and the feedback filter leave those rows out inside
their own query, so hiding costs no extra query. (Moving the list into annotation instead
would take its filters along, which export and the review page's neighbours share.)
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Count, Exists, OuterRef, Q
from django.utils.module_loading import import_string

from .models import Trace

FEEDBACK = "feedback"


def assessments():
    """The Assessment model's manager, found through Trace.assessments."""
    return Trace._meta.get_field("assessments").related_model._default_manager


def current_feedback():
    """Feedback that counts now: not deleted and not overridden by a newer judgement."""
    return assessments().filter(kind=FEEDBACK, deleted_at__isnull=True, valid=True)


def visible_feedback(user):
    """Current feedback ``user`` may see now: what blind queues hide from them left out."""
    hidden = import_string(settings.TRACEMARK_HIDDEN_ANSWERS)(user=user)
    return current_feedback().exclude(hidden)


def value_candidates(text: str) -> list:
    """The JSON values a typed value may mean: "true" finds true and "true", "4" finds 4.

    Ratings stored as 4.0 are matched by "4" as well, because SQLite compares JSON as text.
    """
    candidates = [text]
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        candidates.append(lowered == "true")
    else:
        try:
            number = float(text)
        except ValueError:
            return candidates
        if number.is_integer():
            candidates.append(int(number))
        candidates.append(number)
    return candidates


# How many matching assessments the feedback filters collect before they leave the search
# to the database (see narrowed_to).
COLLECT_AT_MOST = 1000


def narrowed_to(matching) -> Q | Exists:
    """A condition on Trace rows: the trace has one of the ``matching`` assessments.

    Where those are few, their traces are collected first and looked up by key. Where they
    are many, an EXISTS lets PostgreSQL walk the list's index and stop at a page of
    matches. PostgreSQL cannot tell the two apart by itself: it plans the EXISTS expecting
    matches spread evenly, and where there are none (an experiment without that feedback,
    a person who reviewed little) it would check every trace, seconds at a million.
    """
    collected = list(matching.order_by().values_list("trace_id", flat=True)[: COLLECT_AT_MOST + 1])
    if len(collected) <= COLLECT_AT_MOST:
        return Q(pk__in=collected)
    return Exists(matching.filter(trace=OuterRef("pk")))


def has_feedback(name: str, value: str | None = None, *, user, experiment=None) -> Q | Exists:
    """A condition on Trace rows: current feedback ``name`` that ``user`` may see, with
    ``value`` when given; a hidden answer must not be found by filtering on it either.
    ``experiment``, when the list is narrowed to one, bounds what is collected
    (assessment_live_feedback_idx)."""
    feedback = visible_feedback(user).filter(name=name)
    if value is not None:
        matches = Q()
        for candidate in value_candidates(value):
            matches |= Q(value=candidate)
        feedback = feedback.filter(matches)
    if experiment is not None:
        feedback = feedback.filter(experiment=experiment)
    return narrowed_to(feedback)


def reviewed_by(user, *, experiment=None) -> Q | Exists:
    """A condition on Trace rows: ``user`` has a live assessment (any kind) on the trace."""
    mine = assessments().filter(annotator=user, deleted_at=None)
    if experiment is not None:
        mine = mine.filter(experiment=experiment)
    return narrowed_to(mine)


@dataclass
class Badge:
    """One feedback name on one trace: how many, thumbs up/down, mean of numeric values."""

    name: str
    count: int = 0
    up: int = 0
    down: int = 0
    numeric_total: float = 0
    numeric_count: int = 0

    @property
    def mean(self) -> float | None:
        return self.numeric_total / self.numeric_count if self.numeric_count else None

    def add(self, value, n: int) -> None:
        self.count += n
        if value is True:
            self.up += n
        elif value is False:
            self.down += n
        elif isinstance(value, int | float):
            self.numeric_total += value * n
            self.numeric_count += n


def summarize(rows: Iterable[tuple[int, str, object, int]]) -> dict[int, list[Badge]]:
    """Badges per trace pk, sorted by name, from (trace pk, name, value, count) rows."""
    badges: dict[int, dict[str, Badge]] = defaultdict(dict)
    for trace_pk, name, value, n in rows:
        badges[trace_pk].setdefault(name, Badge(name)).add(value, n)
    return {pk: sorted(by_name.values(), key=lambda b: b.name) for pk, by_name in badges.items()}


def attach_badges(traces: list[Trace], *, user) -> None:
    """Set ``feedback_badges`` on each trace with one grouped query, whatever the page size,
    counting only the feedback ``user`` may see."""
    rows = (
        visible_feedback(user)
        .filter(trace__in=[trace.pk for trace in traces])
        .values_list("trace_id", "name", "value")
        .annotate(n=Count("id"))
        .order_by()
    )
    badges = summarize(rows)
    for trace in traces:
        trace.feedback_badges = badges.get(trace.pk, [])
