"""The trace list and trace attachments. A trace's own page is the review page, composed in
annotation."""

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from . import feedback
from .filters import TraceFilter
from .list_rows import trace_rows
from .models import Trace, TraceAttachment
from .pagination import keyset_page


@require_GET
@login_required
@vary_on_headers("HX-Request")
def trace_list(request):
    """The trace list; htmx requests (live filters, sorting, paging) get only the results.

    Query shape, the same for 1 or 50 rows: the page of traces, a bounded count, the
    feedback badges of the page in one grouped query (leaving out what blind queues hide
    from the reader), and the experiment choices.
    """
    queryset = Trace.objects.defer("trace_metadata", "tags")
    filterset = TraceFilter(request.GET, queryset=queryset, request=request)
    page = keyset_page(filterset.qs, filterset.sort_order, request.GET)
    feedback.attach_badges(page.rows, user=request.user)
    review_query = _review_query(request, filterset.sort_order)
    context = {
        "filter": filterset,
        "page": page,
        "rows": trace_rows(page.rows, query=request.GET, review_query=review_query),
        "sort": filterset.sort_order,
    }
    template_name = "traces/trace_list.html"
    if request.htmx and not request.htmx.boosted:
        template_name += "#trace-results"
    return render(request, template_name, context)


def _review_query(request, sort) -> str:
    """``from=`` for the row links: the list's non-empty parameters (just the sort when there
    are none), so that next and previous on the review page walk this list."""
    listed = [(key, value) for key, values in request.GET.lists() for value in values if value]
    return urlencode({"from": urlencode(listed or [("sort", sort.key)])})


@require_GET
@login_required
def attachment_download(request, trace_id, attachment_id):
    """A file logged with a trace, always as a download: its type is what the app said."""
    attachment = get_object_or_404(
        TraceAttachment, trace__trace_id=trace_id, attachment_id=attachment_id
    )
    response = HttpResponse(bytes(attachment.content), content_type=attachment.content_type)
    response["Content-Disposition"] = f'attachment; filename="{attachment.attachment_id}"'
    return response
