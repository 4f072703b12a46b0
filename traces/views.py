"""Trace list and span tree pages."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from .models import Trace


@require_GET
@login_required
def trace_list(request):
    traces = Trace.objects.select_related("experiment")[:50]
    return render(request, "traces/trace_list.html", {"traces": traces})


@require_GET
@login_required
def trace_detail(request, trace_id):
    trace = get_object_or_404(Trace.objects.select_related("experiment"), trace_id=trace_id)
    return render(request, "traces/trace_detail.html", {"trace": trace})
