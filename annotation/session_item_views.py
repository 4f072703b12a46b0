"""Adding whole sessions to a queue (annotation.session_items); Admins only."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from accounts.roles import admin_required

from . import session_items
from .models import Queue
from .session_item_forms import AddSessionsForm


@require_POST
@login_required
@admin_required
def queue_add_sessions(request, queue_id):
    queue = get_object_or_404(Queue, pk=queue_id)
    form = AddSessionsForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(form.errors["session_ids"]))
        return redirect("annotation:queue-detail", queue.pk)
    session_ids = form.cleaned_data["session_ids"]
    try:
        added = session_items.add_sessions(queue=queue, session_ids=session_ids)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        already = len(session_ids) - len(added)
        note = f" ({already} already in the queue)" if already else ""
        messages.success(request, f"Added {len(added)} session item(s){note}.")
    return redirect("annotation:queue-detail", queue.pk)
