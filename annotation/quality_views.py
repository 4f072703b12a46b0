"""Measuring a queue's people (see annotation.quality): the Admin's control-item editor,
the assignments download with pace and accuracy, and the item page's activity heartbeat."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_http_methods, require_POST

from accounts.roles import admin_required, write_required

from . import quality, span_questions
from .export import write_csv
from .models import Queue, QueueAssignment, QueueItem
from .queue_forms import ActivityForm, ControlAnswerForms, ControlItemForm

ASSIGNMENT_COLUMNS = [
    "queue",
    "position",
    "trace_id",
    "session_id",
    "control_item",
    "annotator",
    "status",
    "skip_reason",
    "assigned_at",
    "shown_at",
    "completed_at",
    "active_seconds",
    "control_correct",
    "control_compared",
]


@require_http_methods(["GET", "POST"])
@login_required
@admin_required
def control_item(request, queue_id, position):
    item = get_object_or_404(
        QueueItem.objects.select_related("queue", "trace"), queue_id=queue_id, position=position
    )
    schemas = list(item.queue.schemas.all())
    suggested = quality.suggested_answers(item)
    data = request.POST or None
    kind = ControlItemForm(data, initial={"control": "true" if item.is_control else "false"})
    answers = ControlAnswerForms(schemas, data=data, known=suggested)
    if request.method == "POST" and kind.is_valid() and answers.is_valid():
        chosen = answers.values() if kind.cleaned_data["control"] else {}
        known = {name: value for name, value in chosen.items() if value is not None}
        if kind.cleaned_data["control"] and not known:
            messages.error(request, "Give at least one known answer for a control item.")
        else:
            try:
                quality.set_control_answers(item=item, answers=known, actor=request.user)
            except ValidationError as exc:
                messages.error(request, " ".join(exc.messages))
            else:
                state = "a control item" if known else "an ordinary item"
                messages.success(request, f"Item {position} is {state}.")
                return redirect("annotation:queue-detail", queue_id)
    context = {
        "queue": item.queue,
        "item": item,
        "kind_form": kind,
        "forms": answers,
        "refusal": None
        if span_questions.allows_control_items(item.queue)
        else span_questions.NO_CONTROL_ITEMS,
    }
    return render(request, "annotation/queue_control.html", context)


@require_POST
@login_required
@write_required
def item_activity(request, queue_id, position):
    """The item page's signs of life: a heartbeat while its tab is visible and in use, and
    the tab hidden, idle or back; 204, nothing to swap."""
    assignment = get_object_or_404(
        QueueAssignment,
        item__queue_id=queue_id,
        item__position=position,
        annotator=request.user,
    )
    form = ActivityForm(request.POST)
    if not form.is_valid():
        return HttpResponse(status=400)
    quality.record_activity(assignment, **form.cleaned_data)
    return HttpResponse(status=204)


@require_http_methods(["GET"])
@login_required
@admin_required
def assignments_download(request, queue_id):
    queue = get_object_or_404(Queue, pk=queue_id)
    records = quality.assignment_records(queue)
    stream = write_csv(ASSIGNMENT_COLUMNS, records, bom=False, raw=False)
    response = StreamingHttpResponse(stream, content_type="text/csv; charset=utf-8")
    filename = f"tracemark_queue_{queue.pk}_assignments_{timezone.localdate():%Y-%m-%d}.csv"
    response["Content-Disposition"] = content_disposition_header(True, filename)
    return response
