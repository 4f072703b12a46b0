"""Streaming CSV and JSONL exports of assessments: the labeled data leaving Tracemark.

Three shapes, all starting from a queryset of traces (the trace list's filters, a queue's
items or an experiment), so every caller exports exactly the traces it shows:

- ``long``: one row per assessment, with the trace's context (ids, user, session, previews).
- ``wide``: one row per trace, a column per assessment name holding the aggregated value and
  a column with how many values went into it; optionally a column per annotator. It holds
  answers about traces only; answers about spans are in ``long``, with their ``span_id``.
- ``revisions``: one row per AssessmentRevision of the selected assessments (the audit trail).

Overridden (invalid) and deleted assessments are left out unless asked for.

Typing. JSONL carries native JSON types. In CSV (RFC 4180 through the csv module, ``\\r\\n``
line ends, UTF-8 with an optional BOM) booleans are ``true``/``false``, numbers are written
as JSON writes them (``4`` stays ``4``, ``4.0`` stays ``4.0``), lists and objects as JSON,
None as an empty cell, and strings as they are. ``value_type`` (boolean, integer, number,
string, array, object, null) tells a reader how to parse the ``value`` cell back.

Formula injection. A spreadsheet runs a cell starting with ``=``, ``+``, ``-``, ``@``, tab or
carriage return as a formula, and some also after leading spaces, line breaks or invisible
characters (no-break and zero-width spaces, a byte order mark), and for the full-width and
small forms of those signs (``＝``, ``﹦``, ``＋``, ``－``, ``＠``...). Such text cells get a
leading ``'`` (OWASP's advice) unless raw output is asked for. The rule applies to text only:
cells the exporter renders itself from a number, boolean or as JSON are never touched. A
number cell such as ``-3`` is a number in every spreadsheet, not a formula, and prefixing it
would turn a legitimate negative rating into text; JSON text starts with ``{``, ``[`` or
``"`` or is itself a number. A string value ``"-3"`` is text that someone typed, so it is
neutralised; ``value_type`` says it is a string. Every cell but a number is quoted, so a
reader that splits on ``;`` (spreadsheets in many locales) cannot start a cell inside one;
header cells that are plain names (``trace_id``) are left bare.

Memory and time. Rows are read as tuples with ``values_list(...).iterator(chunk_size=...)``
(a server-side cursor on PostgreSQL, inside a transaction so that it streams), never as a
list, in an order an index gives, and written out in chunks of about 64 KB, so memory stays
flat however many rows there are. A table is a stream of groups: the cells its rows share (a
trace's columns in the long shape, computed and rendered once per trace) and the rows' own
cells. Each CSV column has one cell function chosen up front, and csv.writer writes whole
chunks of rows at once. The CSV header and the first JSON line go out on their own, so a
download starts at once.

Why streaming and no background job. Exports are a single streamed HTTP response rather
than a file prepared by a worker and fetched later. Streaming starts the download at once
and the browser's own download bar shows its progress; a background job would need a job
model, a place to keep files that every web process can reach, a worker process and
clean-up, none of which Tracemark otherwise has. Web processes stay stateless, so any
number of gunicorn workers can serve exports. The export page shows how many rows a
download will hold before it starts. For very long exports, run gunicorn with threaded
workers (``--worker-class gthread``) or a timeout above the export time, and the
``X-Accel-Buffering: no`` header keeps nginx from buffering the response.
"""

import contextlib
import csv
import datetime
import functools
import itertools
import json
import operator
import re
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace

from django.core.exceptions import ValidationError
from django.db import connections, transaction
from django.db.models import Exists, F, JSONField, OuterRef, Q, QuerySet, Subquery, TextField
from django.db.models.functions import Cast
from django.http import QueryDict
from django.utils.text import slugify

from traces.filters import TraceFilter
from traces.models import Experiment, Span, Trace

from . import agreement
from .gold import (
    Entry,
    gold_by_question,
    gold_of,
    is_decision,
    lone_entry_is_gold,
    overrides_machine,
    person_of,
    value_text,
)
from .json_numbers import loads
from .models import Assessment, AssessmentRevision, Kind, Queue, SourceType
from .queues import ADJUDICATION_KEY, SESSION_KEY, queue_entries

CHUNK_ROWS = 2000
# Rows of a table that has no shared cells, handed to csv.writer.writerows at once.
WRITE_ROWS = 200
WIDE_BATCH = 500
FLUSH_CHARS = 64 * 1024
CACHED_TEXT = 200
FORMULA_TRIGGERS = frozenset("=+-@\t\r")
# After NFKC normalisation (which maps the full-width and small forms to these), or as is.
FORMULA_SIGNS = frozenset("=+-@\u2212")
_BARE_HEADER = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
FORMATS = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson; charset=utf-8"}
SHAPES = ("long", "wide", "revisions")


@dataclass(frozen=True)
class ExportOptions:
    format: str = "csv"
    shape: str = "long"
    include_inputs: bool = False
    include_invalid: bool = False
    include_deleted: bool = False
    per_annotator: bool = False
    bom: bool = False
    raw: bool = False
    # Assessments the person exporting may not see yet (a blind queue's others' answers).
    hidden: Q = field(default_factory=Q)
    # The assessments the export may hold at all (a queue's labels and decisions); Q(): any.
    entries: Q = field(default_factory=Q)

    def __post_init__(self):
        if self.format not in FORMATS:
            raise ValueError(f"Unknown export format {self.format!r}")
        if self.shape not in SHAPES:
            raise ValueError(f"Unknown export shape {self.shape!r}")


class Export:
    """An iterable of text chunks; ``rows`` counts the data rows written so far."""

    def __init__(self, traces: QuerySet[Trace], options: ExportOptions):
        self.traces = traces
        self.options = options
        self.rows = 0

    @property
    def content_type(self) -> str:
        return FORMATS[self.options.format]

    def __iter__(self) -> Iterator[str]:
        from . import export_postgres  # it builds on this module

        build = {"long": long_table, "wide": wide_table, "revisions": revision_table}
        with self._reading():
            if export_postgres.applies(self.traces, self.options):
                yield from export_postgres.write_long_csv(self.traces, self.options, self._add)
                return
            table = build[self.options.shape](self.traces, self.options)
            table = Table(table.columns, table.shared, self._counted(table.groups))
            if self.options.format == "csv":
                yield from write_table(table, bom=self.options.bom, raw=self.options.raw)
            else:
                yield from write_jsonl(table_records(table))

    def _reading(self):
        """A transaction on PostgreSQL, so the server-side cursor streams: outside one,
        Django declares it WITH HOLD and PostgreSQL computes the whole result before sending
        the first row. SQLite gets none: its transactions take the write lock here
        (IMMEDIATE mode) and would hold back every writer for as long as a download runs."""
        if connections[self.traces.db].vendor == "postgresql":
            return transaction.atomic(using=self.traces.db)
        return contextlib.nullcontext()

    def _counted(self, groups: Iterable[tuple]) -> Iterator[tuple]:
        for group in groups:
            self.rows += len(group[1])
            yield group

    def _add(self, rows: int) -> None:
        self.rows += rows


@dataclass
class Table:
    """Rows to export: ``groups`` yields ``(shared, rows)``, the values of the first
    ``shared`` columns that the rows have in common and a list of the rest of each row."""

    columns: list[str]
    shared: int
    groups: Iterable[tuple[tuple, list[tuple]]]


def table_records(table: Table) -> Iterator[dict]:
    """The table's rows as dicts, column names in order (one JSON object each)."""
    columns = table.columns
    for shared, rows in table.groups:
        for row in rows:
            yield dict(zip(columns, shared + row, strict=True))


# Cells and writers


def iso_ms(ms: int | None) -> str | None:
    """Milliseconds since the epoch as ISO 8601 in UTC, exact to the millisecond."""
    if ms is None:
        return None
    seconds, millis = divmod(ms, 1000)
    return f"{_iso_seconds(seconds)}.{millis:03d}Z"


# Timestamps of one trace's assessments mostly share their second.
@functools.lru_cache(maxsize=4096)
def _iso_seconds(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


def value_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def parse_value(cell: str, kind: str):
    """Turn a CSV ``value`` cell back into the stored value, given its ``value_type``."""
    if kind == "null":
        return None
    if kind == "string":
        return cell
    return json.loads(cell)


def starts_formula(text: str) -> bool:
    """Whether a spreadsheet may read the text as a formula (see the module docstring)."""
    first = text[:1]
    if first in FORMULA_TRIGGERS:
        return True
    if first.isascii() and first.isprintable() and first != " ":
        return False
    for char in text:
        if char.isspace() or unicodedata.category(char) in ("Cf", "Cc"):
            continue
        return char in FORMULA_SIGNS or unicodedata.normalize("NFKC", char) in FORMULA_SIGNS
    return False


def csv_cell(value, *, raw: bool, as_json: bool = False) -> str:
    if type(value) is str and not as_json:
        return value if raw else _unsafe_text(value)
    if value is None:
        return ""
    if value is True or value is False:
        return "true" if value else "false"
    if type(value) is int or type(value) is float:
        return repr(value)
    return json.dumps(value, ensure_ascii=False)


def _unsafe_text(text: str) -> str:
    """The text, with a leading ``'`` when it starts a formula."""
    return "'" + text if starts_formula(text) else text


# Most short text cells repeat (names, kinds, sources, annotators, experiments); a bounded
# cache of short ones keeps memory flat.
_safe_text = functools.lru_cache(maxsize=4096)(_unsafe_text)
# A first character that no spreadsheet reads as the start of a formula (the empty text too).
_SAFE_FIRST = frozenset({""} | {chr(code) for code in range(0x21, 0x7F)} - FORMULA_SIGNS)


class _Buffer:
    """A file-like sink for csv.writer that hands back what was written since last asked."""

    def __init__(self):
        self.parts: list[str] = []
        self.size = 0

    def write(self, text: str) -> None:
        self.parts.append(text)
        self.size += len(text)

    def take(self) -> str:
        text = "".join(self.parts)
        self.parts.clear()
        self.size = 0
        return text


class _Rows(_Buffer):
    """The sink of a table's rows: it puts ``start`` before each row the writer hands it
    (csv.writer writes a row in one call), the group's shared cells already as CSV."""

    start = ""

    def write(self, text: str) -> None:
        self.parts.append(self.start)
        self.parts.append(text)
        self.size += len(self.start) + len(text)


def _header_cell(column: str, raw: bool) -> str:
    text = csv_cell(column, raw=raw)
    return text if _BARE_HEADER.fullmatch(text) else '"' + text.replace('"', '""') + '"'


Cell = Callable[[object], object]


def _cells(raw: bool) -> tuple[Cell, Cell, Cell]:
    """What the writer gets for a value: any value, a text column's and a JSON column's.

    Numbers go to the writer as numbers, which it leaves unquoted (str() is their JSON
    form); all else as text, which it quotes. Only text that may start a formula is looked
    at closely: a first character in ``_SAFE_FIRST`` settles it.
    """

    def text(value):
        if type(value) is not str:
            return any_value(value)
        if raw or value[:1] in _SAFE_FIRST:
            return value
        return _safe_text(value) if len(value) <= CACHED_TEXT else _unsafe_text(value)

    def any_value(value):
        kind = type(value)
        if kind is str:
            return text(value)
        if kind is int or kind is float:
            return value
        if value is None:
            return ""
        if value is True or value is False:
            return "true" if value else "false"
        return json.dumps(value, ensure_ascii=False)

    def as_json(value):
        if type(value) is SharedDocument:
            return value.text
        return "" if value is None else json.dumps(value, ensure_ascii=False)

    return any_value, text, as_json


def column_cells(columns: list[str], raw: bool) -> list[Cell]:
    """One cell function per column: JSON_COLUMNS are always JSON text, TEXT_COLUMNS hold
    text (or None), any other column any value."""
    any_value, text, as_json = _cells(raw)
    return [
        as_json if column in JSON_COLUMNS else text if column in TEXT_COLUMNS else any_value
        for column in columns
    ]


class SharedDocument(dict):
    """A decoded JSON object that many rows share, with its CSV text made once."""

    __slots__ = ("text",)

    def __init__(self, document: dict):
        super().__init__(document)
        self.text = json.dumps(document, ensure_ascii=False)


def _renderer(cells: list[Cell]) -> Callable[[tuple], list]:
    """A function turning a row into its cells, compiled for these columns: a call per
    cell and no loop, which matters at a few hundred thousand rows."""
    names = {f"cell{i}": cell for i, cell in enumerate(cells)}
    body = ", ".join(f"cell{i}(row[{i}])" for i in range(len(cells)))
    return eval(f"lambda row: [{body}]", names)  # noqa: S307 (the text holds only indexes)


def csv_header(columns: list[str], *, bom: bool, raw: bool) -> str:
    header = ",".join(_header_cell(column, raw) for column in columns) + "\r\n"
    return "\ufeff" + header if bom else header


class GroupWriter:
    """Writes a table's groups as CSV into ``buffer``: a group's shared cells are rendered
    and written once, as the text its rows start with (see _Rows)."""

    def __init__(self, columns: list[str], shared: int, raw: bool):
        cells = column_cells(columns, raw)
        self._render_shared, self._render_own = _renderer(cells[:shared]), _renderer(cells[shared:])
        self._prefix = _Buffer()
        self._write_prefix = csv.writer(
            self._prefix, quoting=csv.QUOTE_NONNUMERIC, lineterminator=","
        ).writerow
        self.buffer = _Rows()
        self._writerows = csv.writer(self.buffer, quoting=csv.QUOTE_NONNUMERIC).writerows

    def prefix(self, shared: tuple) -> str:
        """The CSV text of the shared cells, with the comma that follows them."""
        self._write_prefix(self._render_shared(shared))
        return self._prefix.take()

    def write(self, prefix: str, rows: list[tuple]) -> None:
        self.buffer.start = prefix
        self._writerows([self._render_own(row) for row in rows])

    def write_text(self, text: str) -> None:
        """Rows already written as CSV."""
        self.buffer.parts.append(text)
        self.buffer.size += len(text)


def write_table(table: Table, *, bom: bool, raw: bool) -> Iterator[str]:
    """Yield the table as CSV text in chunks, the header on its own."""
    yield csv_header(table.columns, bom=bom, raw=raw)
    writer = GroupWriter(table.columns, table.shared, raw)
    for shared, rows in table.groups:
        writer.write(writer.prefix(shared) if table.shared else "", rows)
        if writer.buffer.size >= FLUSH_CHARS:
            yield writer.buffer.take()
    yield writer.buffer.take()


def write_csv(columns: list[str], records: Iterable[dict], *, bom: bool, raw: bool):
    """Yield CSV text in chunks from dicts holding at least ``columns``."""
    row_of = operator.itemgetter(*columns) if len(columns) > 1 else lambda r: (r[columns[0]],)
    groups = (((), [row_of(record) for record in batch]) for batch in _batches(records, WRITE_ROWS))
    yield from write_table(Table(columns, 0, groups), bom=bom, raw=raw)


def write_jsonl(records: Iterable[dict]) -> Iterator[str]:
    """Yield JSON Lines in chunks; the first line goes out alone, starting the download."""
    records = iter(records)
    for first in records:
        yield json.dumps(first, ensure_ascii=False) + "\n"
        break
    parts: list[str] = []
    size = 0
    for record in records:
        line = json.dumps(record, ensure_ascii=False) + "\n"
        parts.append(line)
        size += len(line)
        if size >= FLUSH_CHARS:
            yield "".join(parts)
            parts.clear()
            size = 0
    yield "".join(parts)


# What gets exported

# Columns holding JSON documents: in CSV a string there is written as JSON ("quoted").
JSON_COLUMNS = frozenset({"metadata", "root_span_inputs", "root_span_outputs"})
# Columns holding text or None in every table that has them.
TEXT_COLUMNS = frozenset(
    {
        *("trace_id", "experiment_id", "experiment", "client_request_id", "user", "session"),
        *("trace_time", "request_preview", "response_preview", "assessment_id", "span_id"),
        *("session_id", "kind", "name", "value_type", "rationale", "source_type", "source_id"),
        *("annotator", "overrides", "error_code", "error_message", "created", "last_updated"),
    }
)

TRACE_COLUMNS = [
    "trace_id",
    "experiment_id",
    "experiment",
    "client_request_id",
    "user",
    "session",
    "trace_time",
    "request_preview",
    "response_preview",
]
INPUT_COLUMNS = ["root_span_inputs", "root_span_outputs"]
# Where TRACE_COLUMNS come from: a trace row (wide) and an assessment row (long).
WIDE_TRACE_FIELDS = (
    "trace_id",
    "experiment_id",
    "experiment_name",
    "client_request_id",
    "user",
    "session",
    "request_time",
    "request_preview",
    "response_preview",
)
LONG_TRACE_FIELDS = tuple(
    "trace__experiment__name" if name == "experiment_name" else f"trace__{name}"
    for name in WIDE_TRACE_FIELDS
)
# What one assessment says, in the same order in every shape that lists assessments.
ENTRY_COLUMNS = [
    "span_id",
    # The session a session item's answer is about (queues.SESSION_KEY); empty otherwise.
    "session_id",
    "kind",
    "name",
    "value",
    "value_type",
    "rationale",
    "source_type",
    "source_id",
    "annotator",
    "valid",
    "overrides",
    "deleted",
    "error_code",
    "error_message",
]
ASSESSMENT_COLUMNS = [
    "assessment_id",
    *ENTRY_COLUMNS,
    "created",
    "last_updated",
    "version",
    "metadata",
    "is_gold",
    "adjudication",
]
REVISION_COLUMNS = [
    "assessment_id",
    "version",
    "action",
    "actor",
    "changed_at",
    "trace_id",
    "experiment_id",
    "experiment",
    *ENTRY_COLUMNS,
    "metadata",
]


def session_of(metadata) -> str:
    return (metadata or {}).get(SESSION_KEY, "")


def wanted_assessments(options: ExportOptions) -> QuerySet[Assessment]:
    """Assessments in the states the options ask for, on any trace."""
    wanted = Assessment.objects.filter(options.entries).exclude(options.hidden)
    if not options.include_deleted:
        wanted = wanted.filter(deleted_at__isnull=True)
    if not options.include_invalid:
        wanted = wanted.filter(valid=True)
    return wanted


def selected_assessments(traces: QuerySet[Trace], options: ExportOptions) -> QuerySet[Assessment]:
    return wanted_assessments(options).filter(trace__in=traces.values("pk"))


def _root_span(field: str, trace_ref: str) -> Subquery:
    root = Span.objects.filter(trace=OuterRef(trace_ref), parent_span_id__isnull=True)
    return Subquery(root.order_by("start_time_ns").values(field)[:1], output_field=JSONField())


def long_table(traces: QuerySet[Trace], options: ExportOptions) -> Table:
    """One row per assessment, grouped by trace in the order traces arrived, each trace's
    oldest first. That order follows the assessments' trace index, so on PostgreSQL the first
    rows come at once; ordering by trace time would sort every row before sending any.

    ``is_gold`` marks the entries that give their question its gold value (annotation.gold:
    the decision, the override of a judge, or the agreeing answers), read from the trace's
    own rows as they stream; ``adjudication`` marks an Admin's decisions. Values and
    metadata are read as their JSON text, which json_numbers decodes faster than the
    fields' own converters."""
    rows = (
        selected_assessments(traces, options)
        .order_by("trace_id", "create_time", "id")
        .annotate(
            decision=is_decision(),
            overrides_machine=overrides_machine(),
            value_json=value_text(),
            metadata_json=Cast("metadata", TextField()),
        )
    )
    fields = ["trace_id", *LONG_TRACE_FIELDS]
    if options.include_inputs:
        rows = rows.annotate(
            root_span_inputs=_root_span("inputs", "trace"),
            root_span_outputs=_root_span("outputs", "trace"),
        )
        fields += INPUT_COLUMNS
    shared = len(fields) - 1
    fields += LONG_ENTRY_FIELDS

    def groups():
        stream = rows.values_list(*fields).iterator(chunk_size=CHUNK_ROWS)
        for _, group in itertools.groupby(stream, key=operator.itemgetter(0)):
            group = list(group)
            yield (
                trace_values(group[0][1 : 1 + shared]),
                long_rows([row[1 + shared :] for row in group]),
            )

    columns = TRACE_COLUMNS + INPUT_COLUMNS * options.include_inputs + ASSESSMENT_COLUMNS
    return Table(columns, shared, groups())


# What long_table reads of each assessment after its trace's columns, in this order.
LONG_ENTRY_FIELDS = (
    "assessment_id",
    "span_id",
    "kind",
    "name",
    "value_json",
    "rationale",
    "source_type",
    "source_id",
    "annotator__username",
    "annotator_id",
    "valid",
    "overrides__assessment_id",
    "deleted_at",
    "error_code",
    "error_message",
    "create_time",
    "last_update_time",
    "version",
    "metadata_json",
    "decision",
    "overrides_machine",
)
# Where the gold rule finds what it reads in such a row.
_ID, _SPAN, _NAME, _VALUE, _RATIONALE, _SOURCE, _SOURCE_ID, _ANNOTATOR, _VALID, _DELETED = (
    LONG_ENTRY_FIELDS.index(name)
    for name in (
        *("assessment_id", "span_id", "name", "value_json", "rationale", "source_type"),
        *("source_id", "annotator_id", "valid", "deleted_at"),
    )
)
_UPDATED, _DECISION, _MACHINE = (
    LONG_ENTRY_FIELDS.index(name) for name in ("last_update_time", "decision", "overrides_machine")
)


def long_rows(entries: list) -> list[tuple]:
    """The own cells of one trace's assessments, from rows of LONG_ENTRY_FIELDS in
    ``(create_time, id)`` order."""
    values = [entry_value(entry) for entry in entries]
    gold = gold_ids(entries, values.__getitem__)
    return [long_values(entry, value, gold) for entry, value in zip(entries, values, strict=True)]


def entry_value(entry: tuple):
    """The value of a row of LONG_ENTRY_FIELDS, decoded from its JSON text."""
    return loads(entry[_VALUE])


def trace_values(row: tuple) -> tuple:
    """TRACE_COLUMNS (and INPUT_COLUMNS when read) from a row of WIDE_TRACE_FIELDS or
    LONG_TRACE_FIELDS (and INPUT_COLUMNS)."""
    trace_id, experiment_id, experiment, request_id, user, session, time_ms, *rest = row
    return (
        trace_id,
        str(experiment_id),
        experiment,
        request_id,
        user,
        session,
        iso_ms(time_ms),
        *rest,
    )


@functools.lru_cache(maxsize=4096)
def _metadata(text: str) -> tuple[dict, str]:
    """Metadata from its JSON text, and the session it names. Many rows share their
    metadata; the one document is only read."""
    metadata = SharedDocument(json.loads(text))
    return metadata, session_of(metadata)


def gold_ids(entries: list, value_of: Callable[[int], object]) -> set[str]:
    """The assessments that give the trace's questions their gold value (annotation.gold),
    from one trace's rows of LONG_ENTRY_FIELDS; ``value_of(n)`` is the nth row's value.

    A question with one answer is settled by gold.lone_entry_is_gold, which needs no value;
    only questions with more go through gold_of."""
    by_question: dict[tuple, list[int]] = {}
    for n, entry in enumerate(entries):
        if entry[_DELETED] is None and entry[_VALID] and entry[_SOURCE] == SourceType.HUMAN:
            by_question.setdefault((entry[_SPAN], entry[_NAME]), []).append(n)
    found_ids = set()
    for found in by_question.values():
        if len(found) == 1:
            entry = entries[found[0]]
            lone = lone_entry_is_gold(
                entry[_VALUE] not in (None, "null"),  # its JSON text does not decode to None
                is_decision=entry[_DECISION],
                overrides_machine=entry[_MACHINE],
            )
            if lone:
                found_ids.add(entry[_ID])
            continue
        gold = gold_of(_gold_entry(entries[n], value_of(n)) for n in found)
        if gold is not None:
            found_ids.update(gold.assessment_ids)
    return found_ids


def _gold_entry(entry: tuple, value) -> Entry:
    return Entry(
        assessment_id=entry[_ID],
        value=value,
        rationale=entry[_RATIONALE],
        source_type=entry[_SOURCE],
        person=person_of(entry[_ANNOTATOR], entry[_SOURCE_ID]),
        is_decision=entry[_DECISION],
        overrides_machine=entry[_MACHINE],
        updated=entry[_UPDATED],
    )


def long_values(entry: tuple, value, gold_ids: set[str]) -> tuple:
    """ASSESSMENT_COLUMNS of a row of LONG_ENTRY_FIELDS, whose value is ``value``."""
    assessment_id, span_id, kind, name, _, rationale, source_type, source_id, *rest = entry
    annotator, _, valid, overrides, deleted_at, error_code, error_message, *rest = rest
    created, updated, version, metadata, decision, _ = rest
    metadata, session_id = _metadata(metadata)
    return (
        assessment_id,
        span_id,
        session_id,
        kind,
        name,
        value,
        value_type(value),
        rationale,
        source_type,
        source_id,
        annotator,
        valid,
        overrides,
        deleted_at is not None,
        error_code,
        error_message,
        iso_ms(created),
        iso_ms(updated),
        version,
        metadata,
        assessment_id in gold_ids,
        decision,
    )


def revision_table(traces: QuerySet[Trace], options: ExportOptions) -> Table:
    """Every revision of the selected assessments, each with the full state it recorded,
    grouped by assessment (oldest first) in version order: the order of their unique index."""
    rows = (
        AssessmentRevision.objects.filter(
            assessment__in=selected_assessments(traces, options).values("pk")
        )
        .order_by("assessment_id", "version")
        .values(
            "version",
            "action",
            "actor_label",
            "created_at",
            "snapshot",
            "assessment__trace__trace_id",
            "assessment__trace__experiment_id",
            "assessment__trace__experiment__name",
            "assessment__annotator__username",
        )
    )

    def revision(row: dict) -> tuple:
        snapshot = row["snapshot"]
        error = snapshot.get("error") or {}
        return (
            snapshot["assessment_id"],
            row["version"],
            row["action"],
            row["actor_label"],
            row["created_at"].isoformat(timespec="milliseconds"),
            row["assessment__trace__trace_id"],
            str(row["assessment__trace__experiment_id"]),
            row["assessment__trace__experiment__name"],
            snapshot.get("span_id"),
            session_of(snapshot.get("metadata")),
            snapshot.get("kind"),
            snapshot.get("name"),
            snapshot.get("value"),
            value_type(snapshot.get("value")),
            snapshot.get("rationale"),
            snapshot.get("source_type"),
            snapshot.get("source_id"),
            row["assessment__annotator__username"],
            snapshot.get("valid"),
            snapshot.get("overrides"),
            snapshot.get("deleted"),
            error.get("error_code", ""),
            error.get("error_message", ""),
            snapshot.get("metadata"),
        )

    def groups():
        for batch in _batches(rows.iterator(chunk_size=CHUNK_ROWS), WRITE_ROWS):
            yield (), [revision(row) for row in batch]

    return Table(REVISION_COLUMNS, 0, groups())


def wide_value(values: list):
    """The value a wide export shows for several answers to one question.

    The rule of annotation.agreement.aggregate: numbers give their mean, booleans and
    strings the majority, None on a tie or for lists and objects. Two annotators saying
    true and false have no majority; ``.count`` shows there were two. The mean of ints that
    is whole stays an int, so a single rating of 4 exports as 4, not 4.0.
    """
    present = [value for value in values if value is not None]
    if len(present) < 2:
        # Most cells hold one answer or none; this path gives what aggregate would, faster.
        single = present[0] if present else None
        return None if isinstance(single, list | dict) else single
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        kind = "numeric"
    elif all(isinstance(v, bool) for v in present) or all(isinstance(v, str) for v in present):
        kind = "categorical"
    else:
        kind = "structured"
    result = agreement.aggregate(present, kind).value
    if isinstance(result, float) and result.is_integer() and all(type(v) is int for v in present):
        return int(result)
    return result


def _annotator_label(username: str | None, source_id: str, source_type: str) -> str:
    """Who gave an answer: the user, else the judge or code that sent it."""
    return username or source_id or source_type


def _column_key(kind: str, name: str) -> str:
    return name if kind == Kind.FEEDBACK else f"{kind}:{name}"


def own_answers(options: ExportOptions) -> QuerySet[Assessment]:
    """What the wide shape aggregates: the entries in the states asked for, leaving out
    Admins' decisions (a decision is not one more vote) and keeping the answers a decision
    overrode (they are still their annotator's own)."""
    wanted = (
        Assessment.objects.filter(options.entries)
        .exclude(options.hidden)
        .exclude(metadata__has_key=ADJUDICATION_KEY)
    )
    if not options.include_deleted:
        wanted = wanted.filter(deleted_at__isnull=True)
    if not options.include_invalid:
        decided = Assessment.objects.filter(
            overrides=OuterRef("pk"), deleted_at__isnull=True, metadata__has_key=ADJUDICATION_KEY
        )
        wanted = wanted.filter(Q(valid=True) | Exists(decided))
    return wanted


def wide_table(traces: QuerySet[Trace], options: ExportOptions) -> Table:
    """One row per trace (labeled or not); per assessment name ``<name>`` holds the aggregate
    of the annotators' own answers (see ``own_answers`` and ``wide_value``),
    ``<name>.count`` how many values, ``<name>.gold`` the trace's gold value (annotation.gold)
    and with ``per_annotator`` one ``<name>[<annotator>]`` column each, holding their raw
    answer. Expectations are named ``expectation:<name>``.

    Only answers about the trace are in it: a span question is answered once per matching
    span, and a trace's spans (up to hundreds, with ids of their own) have no columns that
    line up from one row to the next, so span answers are left to the long shape, which
    names each one's span."""
    selected = own_answers(options).filter(trace__in=traces.values("pk"), span_id__isnull=True)
    # The columns: one query over the answers finds the names and, when asked, who answered.
    found = ["kind", "name"]
    if options.per_annotator:
        found += ["annotator__username", "source_id", "source_type"]
    labels: dict[tuple, set[str]] = {}
    for kind, name, *who in selected.order_by().values_list(*found).distinct():
        names = labels.setdefault((kind, name), set())
        if who:
            names.add(_annotator_label(*who))
    keys = sorted(labels, key=lambda key: (key[0] != Kind.FEEDBACK, key[0], key[1]))
    annotators = {key: sorted(names) for key, names in labels.items() if names}

    columns = list(TRACE_COLUMNS)
    if options.include_inputs:
        columns += INPUT_COLUMNS
    for kind, name in keys:
        label = _column_key(kind, name)
        columns += [label, f"{label}.count", f"{label}.gold"]
        columns += [f"{label}[{who}]" for who in annotators.get((kind, name), [])]

    rows = (
        Trace.objects.filter(pk__in=traces.values("pk"))
        .order_by("-request_time", "trace_id")
        .annotate(experiment_name=F("experiment__name"))
    )
    fields = ["pk", *WIDE_TRACE_FIELDS]
    if options.include_inputs:
        rows = rows.annotate(
            root_span_inputs=_root_span("inputs", "pk"),
            root_span_outputs=_root_span("outputs", "pk"),
        )
        fields += INPUT_COLUMNS
    # Each batch's assessments come in one query naming the batch's traces. It starts from
    # all assessments, not the selection: that would evaluate the whole filter every batch.
    answers = (
        own_answers(options)
        .filter(span_id__isnull=True)
        .order_by("create_time", "id")
        .annotate(value_json=value_text())
    )
    answer_fields = ("trace_id", "kind", "name", "value_json", "annotator__username", "source_id")
    visible = Assessment.objects.exclude(options.hidden)

    def groups():
        trace_rows = rows.values(*fields).iterator(chunk_size=WIDE_BATCH)
        for batch in _batches(trace_rows, WIDE_BATCH):
            given: dict[int, list[tuple]] = {}
            pks = [trace["pk"] for trace in batch]
            for answer in answers.filter(trace_id__in=pks).values_list(
                *answer_fields, "source_type"
            ):
                given.setdefault(answer[0], []).append(answer)
            gold: dict[int, dict[str, object]] = {}
            questions = gold_by_question(visible.filter(trace_id__in=pks, span_id__isnull=True))
            for (pk, _, name), found in questions.items():
                gold.setdefault(pk, {})[name] = found.value
            yield (
                (),
                [
                    _wide_values(
                        trace,
                        given.get(trace["pk"], []),
                        gold.get(trace["pk"], {}),
                        keys,
                        annotators,
                        options,
                    )
                    for trace in batch
                ],
            )

    return Table(columns, 0, groups())


def _batches(items: Iterable, size: int) -> Iterator[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _wide_values(trace: dict, answers: list[tuple], gold: dict, keys, annotators, options) -> tuple:
    fields = WIDE_TRACE_FIELDS + tuple(INPUT_COLUMNS) * options.include_inputs
    values = list(trace_values(tuple(trace[name] for name in fields)))
    by_key: dict[tuple, list] = {}
    by_annotator: dict[tuple, list] = {}
    for _, kind, name, value_json, username, source_id, source_type in answers:
        value = loads(value_json)
        by_key.setdefault((kind, name), []).append(value)
        if options.per_annotator:
            who = _annotator_label(username, source_id, source_type)
            by_annotator.setdefault((kind, name, who), []).append(value)
    for kind, name in keys:
        given = by_key.get((kind, name), [])
        values += [wide_value(given), sum(value is not None for value in given), gold.get(name)]
        values += [
            wide_value(by_annotator.get((kind, name, who), []))
            for who in annotators.get((kind, name), [])
        ]
    return tuple(values)


def count_rows(traces: QuerySet[Trace], options: ExportOptions) -> int:
    """How many data rows an export will hold, to show before it starts."""
    if options.shape == "wide":
        return traces.count()
    selected = selected_assessments(traces, options)
    if options.shape == "revisions":
        return AssessmentRevision.objects.filter(assessment__in=selected.values("pk")).count()
    return selected.count()


@dataclass
class Scope:
    """The traces an export covers and the words its file name uses for them."""

    traces: QuerySet[Trace]
    parts: list[str]
    filterset: TraceFilter | None = None
    queue: Queue | None = None
    # Which assessments on those traces belong in the export (ExportOptions.entries).
    entries: Q = field(default_factory=Q)


def scope_for(params: QueryDict, *, user, queue: Queue | None = None) -> Scope:
    """A queue's traces, or the traces the trace list shows for the same query string.

    The list's own TraceFilter does the filtering, so an export holds exactly the list's rows
    (all pages of them). Invalid filters raise ValidationError rather than being dropped: an
    export must never hold more than the user asked for. TraceFilter reads only
    ``request.user`` (for "reviewed by me"), so the command line can pass a user alone.
    """
    if queue is not None:
        # Control items measure the annotators; they are not the queue's results.
        traces = Trace.objects.filter(queue_items__queue=queue, queue_items__is_control=False)
        return Scope(
            traces=traces, parts=["queue", queue.name], queue=queue, entries=queue_entries(queue)
        )
    filterset = TraceFilter(
        params, queryset=Trace.objects.all(), request=SimpleNamespace(user=user)
    )
    if not filterset.is_valid():
        raise ValidationError(filterset.errors.as_text(), code="invalid_filter")
    parts = []
    for name, value in filterset.form.cleaned_data.items():
        if name == "sort" or value in (None, ""):
            continue
        if isinstance(value, Experiment):
            parts.append(value.name)
        elif isinstance(value, tuple):
            parts.append("-".join([name, *(str(item) for item in value if item is not None)]))
        elif isinstance(value, datetime.datetime):
            parts.append(f"{name}-{value:%Y-%m-%d}")
        else:
            parts.append(f"{name}-{value}")
    return Scope(traces=filterset.qs, parts=parts, filterset=filterset)


def export_filename(parts: Iterable[str], options: ExportOptions, today: datetime.date) -> str:
    """``tracemark_<what>_<shape>_<date>.<ext>``: what = experiment, queue or filters."""
    what = "_".join(slug for slug in (slugify(part) for part in parts) if slug)[:80]
    return f"tracemark_{what or 'all'}_{options.shape}_{today:%Y-%m-%d}.{options.format}"
