"""The trace list's rows as its template shows them, computed in Python once per row.

Rendering was most of the list's server time: per row an include, two date filters, two
truncations, a ``querystring`` tag and two ``reverse()`` calls through the template engine.
Here each row's links and texts are computed directly (each URL pattern reversed once per
page, then filled in per row), and the row template only prints them. The output is the same
HTML as the filters and tags gave.
"""

from dataclasses import dataclass
from urllib.parse import quote

from django.urls import reverse
from django.utils import dateformat
from django.utils.text import Truncator
from django.utils.timezone import localtime

from .models import Span, Trace
from .span_detail import first_exception
from .templatetags.trace_format import duration, ms_datetime

_PLACEHOLDER = "tracemark-placeholder"
# The characters reverse() leaves unquoted in a path argument.
_PATH_SAFE = "!$&'()*+,;=/~:@"


@dataclass(frozen=True)
class TraceRow:
    trace: object
    review_url: str
    started_iso: str
    started: str
    duration: str
    user_url: str
    user_label: str
    session_url: str
    session_label: str
    badges: list
    failure: str = ""


def _path_filler(name: str):
    """``reverse(name, args=[value])`` for any value, reversing the pattern only once."""
    prefix, _, suffix = reverse(name, args=[_PLACEHOLDER]).partition(_PLACEHOLDER)
    return lambda value: prefix + quote(value, safe=_PATH_SAFE) + suffix


def trace_rows(traces, *, query, review_query: str) -> list[TraceRow]:
    """``query`` is the list's QueryDict; a user link keeps it, less the page cursor."""
    review_url = _path_filler("annotation:trace-review")
    session_url = _path_filler("annotation:session")
    params = query.copy()
    params.pop("after", None)
    params.pop("before", None)
    failures = _failures(traces)
    rows = []
    for trace in traces:
        started = localtime(ms_datetime(trace.request_time))
        user_url = ""
        if trace.user:
            params["user"] = trace.user
            user_url = f"?{params.urlencode()}"
        rows.append(
            TraceRow(
                trace=trace,
                review_url=f"{review_url(trace.trace_id)}?{review_query}",
                started_iso=dateformat.format(started, "c"),
                started=dateformat.format(started, "Y-m-d H:i:s"),
                duration=duration(trace.execution_duration),
                user_url=user_url,
                user_label=Truncator(trace.user).chars(24),
                session_url=session_url(trace.session) if trace.session else "",
                session_label=Truncator(trace.session).chars(16),
                badges=trace.feedback_badges,
                failure=failures.get(trace.pk, ""),
            )
        )
    return rows


def _failures(traces) -> dict[int, str]:
    """What went wrong, for each failed trace on the page with no response to show: where
    the failure started, the earliest failing span with no failing child (its callers fail
    with it, often saying less), by its status message, else its exception. One query, and
    none when the page has no such trace."""
    failed = [t.pk for t in traces if t.state == Trace.State.ERROR and not t.response_preview]
    if not failed:
        return {}
    spans: dict[int, list[tuple]] = {}
    rows = (
        Span.objects.filter(trace_id__in=failed, status=Span.Status.ERROR)
        .order_by("trace_id", "start_time_ns", "span_id")
        .values_list("trace_id", "span_id", "parent_span_id", "status_message", "events")
    )
    for trace_id, *span in rows:
        spans.setdefault(trace_id, []).append(span)
    found = dict.fromkeys(failed, "Failed")
    for trace_id, failing in spans.items():
        callers = {parent for _, parent, _, _ in failing}
        origins = [span for span in failing if span[0] not in callers]
        for _, _, message, events in origins + failing:
            text = message or first_exception(events)
            if text:
                found[trace_id] = Truncator(text).chars(300)
                break
    return found
