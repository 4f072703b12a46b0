"""Queue pages. Admins build queues, watch progress and agreement, reassign, reopen, close
and adjudicate; Reviewers (and Admins) who are annotators of a queue label its items.

Outsiders get 404 for a queue they are not part of; Viewers get 403 everywhere here.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Prefetch
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from accounts.roles import admin_required, is_admin, write_required
from traces.span_detail import describe_span, show_value
from traces.tree import TYPE_LABELS, opening_span, tree_context

from . import quality, queues, session_items, span_questions
from .forms import ReviewQueryForm, form_for
from .models import LabelSchema, Queue, QueueAssignment, QueueItem
from .queue_forms import LabelForms, QueueForm, QueueStatusForm, ReassignForm, SkipForm
from .span_question_forms import SpanLabelForms, span_question_formset, span_targets

Status = QueueAssignment.Status
ITEMS_PER_PAGE = 100


def _get_queue_for_user(request, queue_id) -> Queue:
    queue = get_object_or_404(Queue, pk=queue_id)
    if not is_admin(request.user) and not queue.annotators.filter(pk=request.user.pk).exists():
        raise Http404("No such queue.")
    return queue


def _get_assignment_for_user(request, queue_id, position) -> QueueAssignment:
    return get_object_or_404(
        QueueAssignment.objects.select_related("item__queue", "item__trace__experiment"),
        item__queue_id=queue_id,
        item__position=position,
        annotator=request.user,
    )


def _go_on(request, queue):
    """After an answer or a skip: the next item, or the queue page when nothing is left."""
    try:
        assignment = queues.next_assignment(queue=queue, user=request.user)
    except ValidationError as exc:
        messages.info(request, exc.message)
        return redirect("annotation:queue-detail", queue.pk)
    if assignment is None:
        messages.success(request, "Nothing left for you in this queue. Thank you!")
        return redirect("annotation:queue-detail", queue.pk)
    return redirect("annotation:queue-item", queue.pk, assignment.item.position)


@require_GET
@login_required
@write_required
def queue_list(request):
    admin = is_admin(request.user)
    mine = Queue.objects.filter(annotators=request.user)
    visible = Queue.objects.all() if admin else mine
    member_of = set(mine.values_list("pk", flat=True))
    rows = [
        {
            "queue": queue,
            "progress": queues.progress(queue, request.user, as_annotator=not admin),
            "member": queue.pk in member_of,
        }
        for queue in visible
    ]
    return render(request, "annotation/queue_list.html", {"rows": rows})


@require_http_methods(["GET", "POST"])
@login_required
@admin_required
def queue_create(request):
    initial = {
        "filter_query": request.GET.get("filter", ""),
        "whole_sessions": request.GET.get("sessions") == "1",
    }
    form = QueueForm(request.POST or None, request=request, initial=initial)
    span_forms = span_question_formset(request.POST or None)
    if request.method == "POST" and form.is_valid() and span_forms.is_valid():
        data = form.cleaned_data
        create, items = (
            (session_items.create_session_queue, {"session_ids": data["sessions"]})
            if data["by_session"]
            else (queues.create_queue, {"traces": data["traces"]})
        )
        try:
            queue = create(
                **items,
                name=data["name"],
                description=data["description"],
                schemas=data["schemas"],
                required_schemas=data["required_schemas"],
                annotators=data["annotators"],
                overlap=data["overlap"],
                blind=data["blind"],
                control_rate=data["control_rate"],
                accuracy_threshold=data["accuracy_threshold"] / 100,
                filter_query=data["filter_query"] if data["source"] == "filter" else "",
                span_targets=span_targets(span_forms),
                created_by=request.user,
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(
                request, f"Queue '{queue.name}' created with {queue.items.count()} items."
            )
            return redirect("annotation:queue-detail", queue.pk)
    context = {"form": form, "span_forms": span_forms, "span_types": TYPE_LABELS}
    return render(request, "annotation/queue_form.html", context)


@require_GET
@login_required
@write_required
@vary_on_headers("HX-Request")
def queue_detail(request, queue_id):
    queue = _get_queue_for_user(request, queue_id)
    mine = list(
        QueueAssignment.objects.filter(item__queue=queue, annotator=request.user)
        .exclude(status=Status.ASSIGNED)
        .select_related("item__trace")
        .order_by("item__position")
    )
    admin = is_admin(request.user)
    member = queue.annotators.filter(pk=request.user.pk).exists()
    current = queues.in_progress(queue=queue, user=request.user)
    context = {
        "queue": queue,
        "progress": queues.progress(queue, request.user, as_annotator=not admin),
        "member": member,
        "current": current,
        "work_left": member and (current or queues.has_work_left(queue=queue, user=request.user)),
        "mine": mine,
    }
    if admin:
        context.update(_admin_context(queue, request.GET.get("page")))
    template_name = "annotation/queue_detail.html"
    if request.htmx and not request.htmx.boosted:
        template_name += "#queue-progress"
    else:
        listed = [a.item for a in mine] + list(context.get("items") or [])
        span_questions.asked_spans_by_item(queue, listed)
    return render(request, template_name, context)


def _admin_context(queue, page) -> dict:
    assignments = QueueAssignment.objects.select_related("annotator").order_by("assigned_at")
    items = Paginator(
        queue.items.select_related("trace").prefetch_related(
            Prefetch("assignments", queryset=assignments)
        ),
        ITEMS_PER_PAGE,
    ).get_page(page)
    disagreements = queues.disagreements(queue)
    overall_pace, pace = quality.pace_by_annotator(queue)
    accuracy = quality.accuracy_by_annotator(queue)
    return {
        "by_annotator": [
            {
                "progress": row,
                "pace": pace.get(row.user.pk),
                "accuracy": accuracy.get(row.user.pk),
                "warn": quality.below_threshold(queue, accuracy.get(row.user.pk)),
            }
            for row in queues.progress_by_annotator(queue)
        ],
        "pace": overall_pace,
        "controls": queue.items.filter(is_control=True).count(),
        "control_items_allowed": span_questions.allows_control_items(queue),
        "agreement": queues.queue_agreement(queue),
        "answers_elsewhere": queues.answers_given_elsewhere(queue),
        "items": items,
        "open_disagreements": sum(1 for d in disagreements if d.decision is None),
        "disagreements": len(disagreements),
        "reassign_to": list(queue.annotators.filter(is_active=True).order_by("username")),
    }


@require_POST
@login_required
@write_required
def queue_next(request, queue_id):
    return _go_on(request, _get_queue_for_user(request, queue_id))


def _trace_view(trace, span, tree_options) -> dict:
    """The review page's view of the trace: span tree, selected span, request and response."""
    return {
        "trace": trace,
        **tree_context(trace, span, **tree_options),
        "detail": describe_span(span) if span else None,
    }


@require_http_methods(["GET", "POST"])
@login_required
@write_required
@vary_on_headers("HX-Request", "HX-Target")
def queue_item(request, queue_id, position):
    try:
        assignment = _get_assignment_for_user(request, queue_id, position)
    except Http404:
        # An annotator who opens an item not handed to them (a shared or bookmarked link)
        # learns how items come, rather than meeting a bare "not found".
        if not QueueItem.objects.filter(
            queue_id=queue_id, position=position, queue__annotators=request.user
        ).exists():
            raise
        messages.info(
            request,
            f"Item {position} is not yours to label yet: items are handed out in order, "
            "one at a time. Label next item gives you yours.",
        )
        return redirect("annotation:queue-detail", queue_id)
    item, queue = assignment.item, assignment.item.queue
    schemas = queues.item_schemas(item)
    answers = {a.name: a for a in queues.own_answers(item=item, user=request.user)}
    forms = LabelForms(schemas, data=request.POST or None, answers=answers)
    span_answers = queues.own_span_answers(item=item, user=request.user)
    span_forms = SpanLabelForms(item, data=request.POST or None, answers=span_answers)
    errors = []
    if assignment.status == Status.ASSIGNED:
        quality.record_activity(assignment)
    if request.method == "POST" and forms.is_valid() and span_forms.is_valid():
        try:
            queues.submit(
                assignment=assignment,
                values=forms.values(),
                rationales=forms.rationales(),
                span_values=span_forms.values(),
                span_rationales=span_forms.rationales(),
                actor=request.user,
            )
        except ValidationError as exc:
            errors = exc.messages
        else:
            return _go_on(request, queue)
    hidden = queues.hidden_answers(user=request.user, traces=[item.trace])
    asked = [*forms, *(form for group in span_forms for form in group.forms)]
    by_name = {form.schema.name: form.schema for form in asked}
    query = ReviewQueryForm(request.GET)
    query.is_valid()
    options = query.tree_options()
    span = opening_span(item.trace, query.cleaned_data.get("span"), options["next_error"])
    if request.htmx and request.htmx.target == "span-panel":
        # A span chosen in the tree: only its detail changes.
        context = {"trace": item.trace, "detail": describe_span(span) if span else None}
        return render(request, "annotation/queue_item.html#span-panel", context)
    context = {
        **_trace_view(item.trace, span, options),
        "queue": queue,
        "item": item,
        "assignment": assignment,
        "forms": forms,
        "span_forms": span_forms,
        "errors": errors,
        "skip_form": SkipForm(),
        "progress": queues.progress(queue, request.user, as_annotator=True),
        "others": [
            (a, by_name.get(a.name))
            for a in queues.others_answers(item=item, user=request.user)
            if not hidden.hides(a)
        ],
        "blindings": hidden.blindings_for(item.trace_id),
        "conversation": session_items.conversation(item),
    }
    return render(request, "annotation/queue_item.html", context)


@require_POST
@login_required
@write_required
def queue_skip(request, queue_id, position):
    assignment = _get_assignment_for_user(request, queue_id, position)
    form = SkipForm(request.POST)
    if form.is_valid():
        quality.record_activity(assignment)
        try:
            queues.skip(
                assignment=assignment, reason=form.cleaned_data["reason"], actor=request.user
            )
        except ValidationError as exc:
            messages.error(request, exc.message)
            return redirect("annotation:queue-item", queue_id, position)
        return _go_on(request, assignment.item.queue)
    messages.error(request, "Say why you skip this item.")
    return redirect("annotation:queue-item", queue_id, position)


@require_POST
@login_required
@admin_required
def queue_status(request, queue_id):
    queue = get_object_or_404(Queue, pk=queue_id)
    form = QueueStatusForm(request.POST)
    if form.is_valid():
        queues.set_status(queue=queue, status=form.cleaned_data["status"])
        messages.success(request, f"Queue '{queue.name}' is {queue.get_status_display().lower()}.")
    return redirect("annotation:queue-detail", queue.pk)


@require_POST
@login_required
@admin_required
def queue_item_reopen(request, queue_id, position):
    item = get_object_or_404(QueueItem, queue_id=queue_id, position=position)
    try:
        queues.reopen_item(item=item)
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
    else:
        messages.success(request, f"Item {position} is back with its annotators.")
    return redirect("annotation:queue-detail", queue_id)


@require_POST
@login_required
@admin_required
def queue_reassign(request, queue_id, assignment_id):
    assignment = get_object_or_404(QueueAssignment, pk=assignment_id, item__queue_id=queue_id)
    form = ReassignForm(request.POST, queue=assignment.item.queue)
    if not form.is_valid():
        messages.error(request, "Choose an annotator of this queue.")
        return redirect("annotation:queue-detail", queue_id)
    try:
        queues.reassign(assignment=assignment, to_user=form.cleaned_data["to_user"])
    except ValidationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Given to {form.cleaned_data['to_user'].get_username()}.")
    return redirect("annotation:queue-detail", queue_id)


@require_GET
@login_required
@admin_required
def queue_disagreements(request, queue_id):
    queue = get_object_or_404(Queue, pk=queue_id)
    context = {"queue": queue, "disagreements": queues.disagreements(queue, viewer=request.user)}
    return render(request, "annotation/queue_disagreements.html", context)


@require_http_methods(["GET", "POST"])
@login_required
@admin_required
def queue_adjudicate(request, queue_id, position, schema_id):
    item = get_object_or_404(
        QueueItem.objects.select_related("queue", "trace__experiment"),
        queue_id=queue_id,
        position=position,
    )
    schema = get_object_or_404(LabelSchema, pk=schema_id, queues=item.queue)
    query = ReviewQueryForm(request.GET)
    span_id = (query.cleaned_data.get("span") if query.is_valid() else None) or None
    [found] = [
        d
        for d in queues.disagreements(item.queue, viewer=request.user)
        if d.item == item and d.schema == schema and d.span_id == span_id
    ] or [None]
    form = form_for(schema, data=request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            queues.adjudicate(
                item=item,
                schema=schema,
                value=form.cleaned_data["value"],
                rationale=form.cleaned_data["rationale"],
                span_id=span_id,
                actor=request.user,
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"Decision recorded for item {position}.")
            return redirect("annotation:queue-disagreements", queue_id)
    span = item.trace.spans.filter(span_id=span_id).first() if span_id else None
    context = {
        "item": item,
        "queue": item.queue,
        "schema": schema,
        "span": span,
        "span_inputs": show_value(span.inputs) if span else None,
        "span_outputs": show_value(span.outputs) if span else None,
        "found": found,
        "answers": queues.answers_to_decide(item=item, schema=schema, span_id=span_id),
        "form": form,
    }
    return render(request, "annotation/queue_adjudicate.html", context)
