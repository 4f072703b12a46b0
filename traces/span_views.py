"""The span tree's children view: a page of a span's children as tree items (htmx).

The tree itself is built in ``traces.tree``; pages that show it (the review page, queue
items, sessions) compose it with assessments in ``annotation``.
"""

from django import forms
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from .models import Trace
from .tree import MAX_DEPTH, children_page


class ChildrenPageForm(forms.Form):
    offset = forms.IntegerField(min_value=0, required=False)
    level = forms.IntegerField(min_value=1, max_value=MAX_DEPTH, required=False)


@require_GET
@login_required
@vary_on_headers("HX-Request")
def span_children(request, trace_id, span_id):
    """A page of a span's children as tree items; without htmx, the page with it selected."""
    trace = get_object_or_404(Trace, trace_id=trace_id)
    if not request.htmx:
        return redirect(f"{trace.get_absolute_url()}?span={span_id}")
    page = ChildrenPageForm(request.GET)
    page.is_valid()
    offset = page.cleaned_data.get("offset") or 0
    level = page.cleaned_data.get("level") or 2
    children = children_page(trace, span_id, offset=offset, level=level)
    context = {
        "trace": trace,
        "parent": children.parent,
        "nodes": children.nodes,
        "level": children.level,
        "next_offset": children.next_offset,
        "remaining": children.remaining,
    }
    partial = "span-children" if offset == 0 else "span-items"
    return render(request, f"traces/_span_tree.html#{partial}", context)
