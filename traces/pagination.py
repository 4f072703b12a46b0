"""Keyset (cursor) pagination for the trace list.

OFFSET pagination reads and throws away every row it skips, and a page count needs
COUNT(*) over the whole filtered table: on millions of traces both get slower the further
one goes. A keyset page asks for the rows strictly after (or before) the last one seen, in
an order an index serves, so page 10,000 costs what page 1 does. Ties in the sort column
are broken by the unique trace_id; the opaque cursor carries both.
"""

import base64
import binascii
import json
from dataclasses import dataclass

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q

from .validation import INT64_MAX, is_storable_text

PAGE_SIZE = 50
COUNT_LIMIT = 1000


@dataclass(frozen=True)
class Sort:
    key: str
    label: str
    field: str
    descending: bool

    def ordering(self, backwards: bool = False) -> list[str]:
        # Ties run opposite to the field so that "-request_time, trace_id" matches the index.
        descending = self.descending != backwards
        if descending:
            return [f"-{self.field}", "trace_id"]
        return [self.field, "-trace_id"]

    def beyond(self, cursor: "Cursor", backwards: bool = False) -> Q:
        """Rows that come after the cursor's row in this order (before it when backwards).

        The first, redundant bound lets PostgreSQL start the index scan at the cursor;
        with the OR alone it reads the index from the top and filters every row it passes.
        """
        descending = self.descending != backwards
        bound, past, tie = ("lte", "lt", "gt") if descending else ("gte", "gt", "lt")
        return Q(**{f"{self.field}__{bound}": cursor.value}) & (
            Q(**{f"{self.field}__{past}": cursor.value})
            | Q(**{self.field: cursor.value, f"trace_id__{tie}": cursor.trace_id})
        )


SORTS = {
    sort.key: sort
    for sort in [
        Sort("-time", "Newest first", "request_time", descending=True),
        Sort("time", "Oldest first", "request_time", descending=False),
        Sort("-duration", "Slowest first", "execution_duration", descending=True),
        Sort("duration", "Fastest first", "execution_duration", descending=False),
    ]
}
DEFAULT_SORT = SORTS["-time"]


@dataclass(frozen=True)
class Cursor:
    sort: str
    value: int
    trace_id: str

    def encode(self) -> str:
        raw = json.dumps([self.sort, self.value, self.trace_id], separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> "Cursor":
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            sort, value, trace_id = json.loads(raw)
        except (binascii.Error, UnicodeDecodeError, ValueError, TypeError, RecursionError) as exc:
            raise ValueError("not a cursor") from exc
        if sort not in SORTS or not isinstance(trace_id, str) or not is_storable_text(trace_id):
            raise ValueError("not a cursor")
        if isinstance(value, bool) or not isinstance(value, int) or abs(value) > INT64_MAX:
            raise ValueError("not a cursor")
        return cls(sort, value, trace_id)


class CursorField(forms.CharField):
    def to_python(self, value):
        value = super().to_python(value)
        if not value:
            return None
        try:
            return Cursor.decode(value)
        except ValueError:
            raise ValidationError("This page link is not valid.", code="invalid_cursor") from None


class PageForm(forms.Form):
    after = CursorField(required=False)
    before = CursorField(required=False)


@dataclass
class Page:
    rows: list
    next_cursor: str | None
    previous_cursor: str | None
    # Matching rows counted up to count_limit + 1, so the count never scans the whole table.
    total: int
    count_limit: int

    @property
    def total_is_capped(self) -> bool:
        return self.total > self.count_limit


def keyset_page(
    queryset, sort: Sort, data, size: int = PAGE_SIZE, count_limit: int = COUNT_LIMIT
) -> Page:
    """One page of ``queryset`` in ``sort`` order, positioned by ``after``/``before`` in data.

    Two queries: the rows with LIMIT size + 1 (the extra row tells whether there is a page
    beyond), and a count bounded by count_limit. A cursor made for another sort, or a
    broken one, starts again at the first page. Rows with no
    value in the sort column (in-progress traces have no duration) hold no place in the
    order, so they are left out of it.
    """
    form = PageForm(data)
    cleaned = form.cleaned_data if form.is_valid() else {}
    cursor, backwards = cleaned.get("after"), False
    if not cursor and cleaned.get("before"):
        cursor, backwards = cleaned["before"], True
    if cursor and cursor.sort != sort.key:
        cursor, backwards = None, False

    matching = queryset.filter(**{f"{sort.field}__isnull": False})
    queryset = matching.filter(sort.beyond(cursor, backwards)) if cursor else matching
    rows = list(queryset.order_by(*sort.ordering(backwards))[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    if backwards:
        rows.reverse()
    has_next = backwards or more
    has_previous = more if backwards else cursor is not None

    def cursor_at(row):
        return Cursor(sort.key, getattr(row, sort.field), row.trace_id).encode()

    return Page(
        rows=rows,
        next_cursor=cursor_at(rows[-1]) if rows and has_next else None,
        previous_cursor=cursor_at(rows[0]) if rows and has_previous else None,
        total=matching.order_by()[: count_limit + 1].count(),
        count_limit=count_limit,
    )
