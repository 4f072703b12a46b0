"""A multi-turn session: every turn with what people, judges and code said about it, and
the answers about the whole session (given on a session queue item, see
annotation.session_items), which are stored on a turn but shown apart.

It shows traces with their assessments, so it lives in annotation (``traces`` never imports
``annotation``), and a blind queue hides others' answers here as on the review page.
"""

from django.contrib.auth.decorators import login_required
from django.db.models import Prefetch
from django.http import Http404
from django.shortcuts import render
from django.views.decorators.http import require_GET

from traces import feedback
from traces.models import Trace

from . import queues
from .models import Assessment, Kind

SESSION_TURNS_LIMIT = 500


def _shown_assessments() -> Prefetch:
    """Every live assessment on a turn (overridden ones included), with who made it."""
    live = Assessment.objects.live().select_related("annotator")
    return Prefetch(
        "assessments",
        queryset=live.order_by("name", "create_time", "id"),
        to_attr="shown_assessments",
    )


def _is_about(assessment: Assessment, session_id: str) -> bool:
    """Whether an entry answers a question about the whole session (a session item's)."""
    return assessment.metadata.get(queues.SESSION_KEY) == session_id


@require_GET
@login_required
def session_detail(request, session_id):
    """Every turn of a session, oldest first, each with the feedback the reader may see.

    Query shape, the same for 1 or 500 turns: the turns, their assessments with annotators,
    and the answers blind queues hide from the reader.
    """
    turns = list(
        Trace.objects.filter(session=session_id)
        .order_by("request_time", "trace_id")
        .prefetch_related(_shown_assessments())[: SESSION_TURNS_LIMIT + 1]
    )
    if not turns:
        raise Http404("No traces in this session.")
    truncated = len(turns) > SESSION_TURNS_LIMIT
    turns = turns[:SESSION_TURNS_LIMIT]
    hidden = queues.hidden_answers(user=request.user, traces=turns)
    about_session = []
    for trace in turns:
        shown = [a for a in trace.shown_assessments if not hidden.hides(a)]
        about_session += [a for a in shown if _is_about(a, session_id)]
        trace.shown_assessments = [a for a in shown if not _is_about(a, session_id)]
        trace.blindings = hidden.blindings_for(trace.pk)
    badges = feedback.summarize(
        (trace.pk, a.name, a.value, 1)
        for trace in turns
        for a in trace.shown_assessments
        if a.kind == Kind.FEEDBACK and a.valid
    )
    for trace in turns:
        trace.feedback_badges = badges.get(trace.pk, [])
    context = {
        "session_id": session_id,
        "turns": turns,
        "truncated": truncated,
        "about_session": about_session,
    }
    return render(request, "annotation/session_detail.html", context)
