"""The span tree and its timing waterfall, as a presentation model for any trace page.

A trace may hold thousands of spans, so the tree holds its top levels (plus the path to a
selected span) and deeper children are loaded on demand a page at a time. Every level is
one query on the (trace, parent_span_id, start_time_ns) index with child counts from a
correlated subquery; the number of queries never depends on the number of spans. Tree rows
double as the waterfall: each row carries its bar's offset and width as percentages of the
trace. The review page, queue items, sessions and the children view all build from here
and render with the ``traces/_span_tree.html`` partials.
"""

from dataclasses import dataclass, field

from django.db import connection
from django.db.models import Count, F, Max, Min, OuterRef, Q, Subquery, TextField, Window
from django.db.models.functions import Cast, Coalesce, RowNumber
from django.shortcuts import get_object_or_404
from django.urls import reverse

from .models import Span, Trace

CHILD_PAGE_SIZE = 100
# Roots are expanded on open when there are at most this many of them.
EXPANDED_ROOTS = 5
MAX_DEPTH = 1000
# "Expand all" renders every row of traces up to this size; bigger ones keep loading on demand.
EXPAND_ALL_MAX = 2000
# Span search in the tree lists at most this many matches.
FOUND_MAX = 50
TREE_FIELDS = (
    "id",
    "trace_id",
    "span_id",
    "parent_span_id",
    "name",
    "span_type",
    "start_time_ns",
    "end_time_ns",
    "status",
)
TYPE_LABELS = {
    "AGENT": "Agent",
    "CHAIN": "Chain",
    "CHAT_MODEL": "Chat",
    "LLM": "LLM",
    "RETRIEVER": "Retr",
    "RERANKER": "Rerank",
    "EMBEDDING": "Embed",
    "TOOL": "Tool",
    "PARSER": "Parse",
    "GUARDRAIL": "Guard",
    "EVALUATOR": "Eval",
    "MEMORY": "Memory",
    # MLflow's type for a span that names none; shown as what it is rather than cut short.
    "UNKNOWN": "Span",
}


@dataclass
class Timeline:
    """The trace's time span; places each row's waterfall bar."""

    start_ns: int
    end_ns: int

    @property
    def total_ns(self) -> int:
        return max(self.end_ns - self.start_ns, 1)

    def bar(self, span: Span) -> tuple[float, float]:
        """Offset and width of the span's bar, in percent of the trace."""
        end = span.end_time_ns if span.end_time_ns is not None else self.end_ns
        offset = (span.start_time_ns - self.start_ns) / self.total_ns * 100
        width = max((end - span.start_time_ns) / self.total_ns * 100, 0.2)
        return round(offset, 3), round(min(width, 100 - offset), 3)


class NodeUrls:
    """Row links built from one reverse() per tree: rows are many, span ids are plain hex."""

    PLACEHOLDER = "0000000000000000"

    def __init__(self, trace: Trace):
        # Relative, so a row selects its span on whichever page shows the tree (the review
        # page, a queue item).
        self.review = "?span="
        self.children = reverse("traces:span-children", args=[trace.trace_id, self.PLACEHOLDER])

    def children_of(self, span_id: str, level: int) -> str:
        return self.children.replace(self.PLACEHOLDER, span_id) + f"?level={level}"


@dataclass
class TreeNode:
    span: Span
    level: int
    child_count: int
    # Percentages of the trace's duration, formatted for the SVG attributes.
    bar_x: str
    bar_width: str
    select_url: str
    children_url: str
    children: list["TreeNode"] = field(default_factory=list)
    expanded: bool = False
    selected: bool = False

    @property
    def type_label(self) -> str:
        return TYPE_LABELS.get(self.span.span_type, self.span.span_type.title()[:6] or "Span")

    @property
    def type_class(self) -> str:
        return self.span.span_type.lower()

    @property
    def duration_label(self) -> str:
        return format_duration(self.span.duration_ms)

    @property
    def hidden_children(self) -> int:
        """Children not rendered yet: the tail beyond the first page of an expanded node."""
        return self.child_count - len(self.children) if self.expanded else 0


@dataclass
class SpanTree:
    roots: list[TreeNode]
    timeline: Timeline
    selected: Span | None = None


def format_duration(ms: float | None) -> str:
    if ms is None:
        return "running"
    if ms < 1:
        return f"{ms * 1000:.0f} µs"
    if ms < 1000:
        return f"{ms:.0f} ms" if ms >= 10 else f"{ms:.1f} ms"
    return f"{ms / 1000:.2f} s"


def _tree_spans(trace: Trace):
    """Spans with just the columns a tree row shows and how many children each has."""
    children = (
        Span.objects.filter(trace_id=OuterRef("trace_id"), parent_span_id=OuterRef("span_id"))
        .order_by()
        .values("trace_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return (
        Span.objects.filter(trace=trace)
        .only(*TREE_FIELDS)
        .annotate(child_count=Coalesce(Subquery(children), 0))
    )


def _timeline(trace: Trace) -> Timeline:
    bounds = Span.objects.filter(trace=trace).aggregate(
        start=Min("start_time_ns"), end=Max(Coalesce("end_time_ns", "start_time_ns"))
    )
    start = bounds["start"] if bounds["start"] is not None else trace.request_time * 1_000_000
    return Timeline(start_ns=start, end_ns=bounds["end"] or start)


def _roots(trace: Trace) -> list[Span]:
    """Spans without a parent in this trace (a missing parent makes an orphan a root).

    NOT IN over the trace's span ids runs as one hashed lookup on PostgreSQL; a correlated
    NOT EXISTS can turn into a nested loop over all span pairs when statistics are stale.
    """
    span_ids = Span.objects.filter(trace=trace).values("span_id")
    spans = _tree_spans(trace).exclude(parent_span_id__in=span_ids)
    return list(spans.order_by("start_time_ns", "span_id"))


def _first_children(trace: Trace, parent_ids) -> dict[str, list[Span]]:
    """The first page of children of each given parent, in one query."""
    if not parent_ids:
        return {}
    rank = Window(
        RowNumber(),
        partition_by=[F("parent_span_id")],
        order_by=[F("start_time_ns").asc(), F("span_id").asc()],
    )
    spans = (
        _tree_spans(trace)
        .filter(parent_span_id__in=parent_ids)
        .annotate(rank=rank)
        .filter(rank__lte=CHILD_PAGE_SIZE)
        .order_by("start_time_ns", "span_id")
    )
    by_parent: dict[str, list[Span]] = {}
    for span in spans:
        by_parent.setdefault(span.parent_span_id, []).append(span)
    return by_parent


def ancestor_ids(span: Span) -> list[str]:
    """Ids of the span's ancestors, root first, in one recursive query (cycles stop at depth)."""
    table = connection.ops.quote_name(Span._meta.db_table)
    # The table name comes from the model, never from input; values are parameters.
    sql = f"""
        WITH RECURSIVE chain(span_id, parent_span_id, depth) AS (
            SELECT span_id, parent_span_id, 0 FROM {table}
            WHERE trace_id = %s AND span_id = %s
            UNION ALL
            SELECT s.span_id, s.parent_span_id, chain.depth + 1
            FROM {table} s JOIN chain ON s.span_id = chain.parent_span_id
            WHERE s.trace_id = %s AND chain.depth < %s
        )
        SELECT span_id FROM chain WHERE depth > 0 ORDER BY depth DESC
    """  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [span.trace_id, span.span_id, span.trace_id, MAX_DEPTH])
        return [row[0] for row in cursor.fetchall()]


def _node(span: Span, level: int, timeline: Timeline, urls: NodeUrls) -> TreeNode:
    offset, width = timeline.bar(span)
    return TreeNode(
        span=span,
        level=level,
        child_count=span.child_count,
        bar_x=f"{offset:.3f}",
        bar_width=f"{width:.3f}",
        select_url=urls.review + span.span_id,
        children_url=urls.children_of(span.span_id, level + 1) if span.child_count else "",
    )


def build_tree(trace: Trace, selected: Span | None = None, expand_all=False) -> SpanTree:
    """The roots, the first level below them and the path down to ``selected``, expanded;
    with ``expand_all``, every span of a trace of up to EXPAND_ALL_MAX spans."""
    timeline = _timeline(trace)
    roots = _roots(trace)
    expand = {s.span_id for s in roots if s.child_count} if len(roots) <= EXPANDED_ROOTS else set()
    if expand_all and trace.span_count <= EXPAND_ALL_MAX:
        expand = set(_tree_spans(trace).filter(child_count__gt=0).values_list("span_id", flat=True))
    if selected is not None:
        expand.update(ancestor_ids(selected))
        expand.add(selected.span_id)
    by_parent = _first_children(trace, expand)
    urls = NodeUrls(trace)

    def grow(span: Span, level: int, seen: set[str]) -> TreeNode:
        node = _node(span, level, timeline, urls)
        node.selected = selected is not None and span.span_id == selected.span_id
        if span.span_id in expand and span.child_count and span.span_id not in seen:
            node.expanded = True
            node.children = [
                grow(child, level + 1, seen | {span.span_id})
                for child in by_parent.get(span.span_id, [])
            ]
        return node

    return SpanTree(
        roots=[grow(span, 1, set()) for span in roots], timeline=timeline, selected=selected
    )


def load_selected_span(trace: Trace, span_id: str | None) -> Span | None:
    """The span named by ``?span=``, with all its content; 404 when it is not in the trace."""
    if not span_id:
        return None
    # Through the relation, so the span knows its trace without another query.
    return get_object_or_404(trace.spans, span_id=span_id)


def opening_span(trace: Trace, span_id: str | None, next_error=False) -> Span | None:
    """The span a trace page opens at: the one asked for, else an Error trace's first
    failing span, so its error is on screen at once. With ``next_error``, the failing span
    that starts after the one asked for (the first again after the last)."""
    span = load_selected_span(trace, span_id)
    if span is not None and not next_error:
        return span
    if span is None and not next_error and trace.state != Trace.State.ERROR:
        return None
    failed = Span.objects.filter(trace=trace, status=Span.Status.ERROR)
    ordered = failed.order_by("start_time_ns", "span_id")
    if span is not None:
        later = Q(start_time_ns__gt=span.start_time_ns) | Q(
            start_time_ns=span.start_time_ns, span_id__gt=span.span_id
        )
        return ordered.filter(later).first() or ordered.first() or span
    return ordered.first()


def tree_context(trace: Trace, span: Span | None, find="", expand_all=False, **_) -> dict:
    """The span tree and its tools (search results, expand all) for a trace page's context."""
    return {
        "tree": build_tree(trace, span, expand_all=expand_all),
        "find": find,
        "found": find_spans(trace, find),
        "expand_all": expand_all and trace.span_count <= EXPAND_ALL_MAX,
    }


def find_spans(trace: Trace, text: str) -> list[Span]:
    """Spans whose name, type, inputs, outputs, error or events (an exception's type and
    message are an event) contain ``text``, first FOUND_MAX by start."""
    if not text:
        return []
    matches = (
        Q(name__icontains=text)
        | Q(span_type__icontains=text)
        | Q(status_message__icontains=text)
        | Q(inputs_text__icontains=text)
        | Q(outputs_text__icontains=text)
        | Q(events_text__icontains=text)
    )
    spans = (
        Span.objects.filter(trace=trace)
        .only("trace_id", "span_id", "name", "span_type", "status", "start_time_ns")
        .annotate(
            inputs_text=Cast("inputs", TextField()),
            outputs_text=Cast("outputs", TextField()),
            events_text=Cast("events", TextField()),
        )
        .filter(matches)
        .order_by("start_time_ns", "span_id")
    )
    return list(spans[:FOUND_MAX])


@dataclass
class ChildrenPage:
    parent: Span
    nodes: list[TreeNode]
    level: int
    next_offset: int
    remaining: int


def children_page(trace: Trace, span_id: str, *, offset: int, level: int) -> ChildrenPage:
    """One page of a span's children as tree nodes at ``level``; 404 for an unknown span."""
    parent = get_object_or_404(_tree_spans(trace), span_id=span_id)
    timeline = _timeline(trace)
    spans = _tree_spans(trace).filter(parent_span_id=span_id).order_by("start_time_ns", "span_id")
    urls = NodeUrls(trace)
    nodes = [_node(s, level, timeline, urls) for s in spans[offset : offset + CHILD_PAGE_SIZE]]
    return ChildrenPage(
        parent=parent,
        nodes=nodes,
        level=level,
        next_offset=offset + len(nodes),
        remaining=max(parent.child_count - offset - len(nodes), 0),
    )
