"""The long CSV export rendered by PostgreSQL: the same bytes as annotation.export's
writer, with most of the work moved off the web process.

Python's writer spends about 20 µs of CPU on each assessment (decoding the value, the gold
rule, the cells, csv.writer), and that caps a download at about 40,000 rows per second
whatever the database does. Here one query renders each row's own cells as the CSV text
Python would write, and each trace's cells once, all in parallel workers where the server
has them; the rows stream to Python (libpq's chunked mode) in trace order. Python puts
each trace's rows in order, works out ``is_gold`` with annotation.export's own gold rule
from the fields that come with each row, and joins the strings, while the server goes on
with the query. The gold rule stays in one place, and the query has no step that only one
process can run.

A row the query cannot render byte for byte comes without its text, and annotation.export
writes it from its fields. Such a row has:

- a number value not already in the form Python writes it, such as ``1.50``, ``1e-7``,
  the stored form of ``-0.0``, or an integer of more than 300 digits;
- an object or array value holding such a number, or more than 16 digits in a row
  anywhere in its text;
- metadata that is not an object of strings;
- a time outside the years 1970 to 9999 (for a trace's time, the trace's cells come as
  its fields).

Why this is safe:

- **Numbers.** ``float8out`` writes Python's digits for every double that both write in
  plain digits, from 1e-4 to 1e15. Python writes a whole float with ``.0`` and PostgreSQL
  without, so a decimal text is taken only when it reads back as its own ``float8`` text,
  with or without that ``.0``. An integer's text is Python's ``repr`` of the same int.
- **Documents.** jsonb writes strings with the escapes ``json.dumps`` uses with
  ``ensure_ascii=False``, and the same ``, `` and ``: ``, and decoding keeps its key
  order. A decimal of at most 15 digits, no trailing zero (but for ``.0``) and at least
  1e-4 is the shortest text of its double, which is Python's ``repr``. So the text is what
  Python writes again.
- **Formula safety.** ``formula_pattern`` is made from ``unicodedata`` by the rule of
  ``export.starts_formula``, and the tests run every code point through both.

tests/annotation/test_export_postgres.py compares the bytes with annotation.export's on
adversarial rows and every option. SQLite, JSONL, the wide shape and ``include_inputs``
keep annotation.export's writer.
"""

import functools
import itertools
import json
import operator
import sys
import unicodedata
from collections.abc import Iterator

from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.db.models import F, QuerySet

from traces.models import Trace

from . import export
from .gold import is_decision, overrides_machine
from .queues import SESSION_KEY

STREAM_ROWS = 1000
# The columns of the query's rows (see _query): a trace's row has no id, an assessment's
# row has its fields from _ENTRY on, with its place in the trace, (create_time, id).
_TRACE, _ID, _TEXT, _TRACE_JSON, _ENTRY = 0, 1, 2, 3, 4
_PLACE = operator.itemgetter(_ENTRY + export.LONG_ENTRY_FIELDS.index("create_time"), _ID)
_ASSESSMENT_ID, _DECISION = (
    export.LONG_ENTRY_FIELDS.index(name) for name in ("assessment_id", "decision")
)
# Times the query writes itself: from the epoch to the end of year 9999, in milliseconds.
LAST_MS = 253_402_300_799_999
# The last two cells of an assessment's line, is_gold and adjudication, and its end.
_BOOLEAN = {False: '"false"', True: '"true"'}
_TAILS = {
    (gold, decision): f"{_BOOLEAN[gold]},{_BOOLEAN[decision]}\r\n"
    for gold in (False, True)
    for decision in (False, True)
}


def applies(traces: QuerySet[Trace], options: export.ExportOptions) -> bool:
    return (
        connections[traces.db].vendor == "postgresql"
        and options.shape == "long"
        and options.format == "csv"
        and not options.include_inputs
    )


def _ranges(chars: list[int]) -> str:
    """A regular expression's bracket body for these code points, as escapes."""
    parts, start = [], None
    for n, code in enumerate(chars):
        if start is None:
            start = code
        if n + 1 == len(chars) or chars[n + 1] != code + 1:
            parts.append(_escape(start) if start == code else f"{_escape(start)}-{_escape(code)}")
            start = None
    return "".join(parts)


def _escape(code: int) -> str:
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


@functools.cache
def formula_pattern() -> str:
    """Text that ``starts_formula`` flags once its first character is not a plain ASCII one:
    characters it skips (spaces, format and control characters), then a sign."""
    skip, signs = [], []
    for code in range(1, sys.maxunicode + 1):
        if 0xD800 <= code <= 0xDFFF:
            continue  # surrogates never reach a UTF-8 database
        char = chr(code)
        if char.isspace() or unicodedata.category(char) in ("Cf", "Cc"):
            skip.append(code)
        elif char in export.FORMULA_SIGNS or (
            unicodedata.normalize("NFKC", char) in export.FORMULA_SIGNS
        ):
            signs.append(code)
    return f"^[{_ranges(skip)}]*[{_ranges(signs)}]"


# export.FORMULA_TRIGGERS as code points; after them only a first character outside the
# printable ASCII ones but space (33 to 126) can start a formula.
_TRIGGER_CODES = ", ".join(str(ord(char)) for char in sorted(export.FORMULA_TRIGGERS))


def _text(expression: str, raw: bool, *, nullable: bool = True) -> str:
    """A text cell (None as empty), with the leading ``'`` of a formula unless raw. An
    empty cell (no span, no error: most of them) skips the quoting and the formula check."""
    empty = f"{expression} IS NULL OR {expression} = ''" if nullable else f"{expression} = ''"
    if raw:
        return f"""CASE WHEN {empty} THEN '""' ELSE {_quoted(expression)} END"""
    quoted = f"replace({expression}, '\"', '\"\"')"
    first = f"ascii({expression})"
    formula = (
        f"({first} IN ({_TRIGGER_CODES})"
        f" OR (({first} < 33 OR {first} > 126) AND {expression} ~ '{formula_pattern()}'))"
    )
    cell = f"'\"' || CASE WHEN {formula} THEN '''' ELSE '' END || {quoted} || '\"'"
    return f"""CASE WHEN {empty} THEN '""' ELSE {cell} END"""


def _quoted(expression: str) -> str:
    return f"('\"' || replace({expression}, '\"', '\"\"') || '\"')"


def _boolean(expression: str) -> str:
    return f"CASE WHEN {expression} THEN '{_BOOLEAN[True]}' ELSE '{_BOOLEAN[False]}' END"


def _iso_ms(expression: str) -> str:
    """``export.iso_ms`` of a time the query writes itself (see LAST_MS). The text of a
    ``timestamp`` in the ISO date style is much cheaper to make than ``to_char``'s."""
    seconds = f"(timestamp 'epoch' + ({expression} / 1000) * interval '1 second')::text"
    millis = f"lpad(mod({expression}, 1000)::text, 3, '0')"
    return f"('\"' || replace({seconds}, ' ', 'T') || '.' || {millis} || 'Z\"')"


def _written(expression: str) -> str:
    return f"({expression} BETWEEN 0 AND {LAST_MS})"


def _plain_number(text: str) -> str:
    """Whether a jsonb number's text is the one Python writes (see the module docstring)."""
    return f"""CASE
        WHEN {text} ~ '^-?[0-9]+$' THEN length({text}) <= 300
        WHEN length({text}) <= 25 AND {text} ~ '^-?[0-9]+\\.[0-9]+$'
            THEN {text}::float8::text = {text} OR {text}::float8::text || '.0' = {text}
        ELSE false
    END"""


_VTYPE = "jsonb_typeof(r.value)"
# The numbers in a document, which Python surely writes again as they are (see the module
# docstring): each an integer or a decimal in its shortest form of no more than 15 digits.
# More digits in a row anywhere in its text, in a string too, make the document Python's work.
_NUMBERS = "jsonb_path_query_array(r.value, 'strict $.** ? (@.type() == \"number\")')::text"
_SHORTEST = r"-?(0|[1-9][0-9]*|[1-9][0-9]*\.([0-9]*[1-9]|0)|0\.(0{0,3}[1-9][0-9]*|0))"
_PLAIN_DOCUMENT = (
    f"{_NUMBERS} ~ '^\\[({_SHORTEST}(, |\\]$))*\\]?$' AND r.value::text !~ '[0-9.]{{17}}'"
)

_STRINGS_ONLY = "NOT jsonb_path_exists(r.metadata, '$.* ? (@.type() != \"string\")')"
# Whether the query writes a row's cells itself (see the module docstring).
_RENDERED = f"""CASE {_VTYPE}
        WHEN 'number' THEN {_plain_number("r.value::text")}
        WHEN 'object' THEN {_PLAIN_DOCUMENT}
        WHEN 'array' THEN {_PLAIN_DOCUMENT}
        ELSE true
    END
    AND jsonb_typeof(r.metadata) = 'object' AND {_STRINGS_ONLY}
    AND {_written("r.create_time")} AND {_written("r.last_update_time")}"""

_ROW_FIELDS = (
    *("id", "trace_id", "assessment_id", "span_id", "kind", "name", "value", "rationale"),
    *("source_type", "source_id", "annotator_name", "annotator_id", "valid", "overridden"),
    *("deleted_at", "error_code", "error_message", "create_time", "last_update_time"),
    *("version", "metadata", "decision", "overrides_machine"),
)
# export.LONG_ENTRY_FIELDS of a row of _ROW_FIELDS, in that order: the four it names
# otherwise, the rest as they are.
_AS_ROW_FIELD = {
    "value_json": "value::text",
    "annotator__username": "annotator_name",
    "overrides__assessment_id": "overridden",
    "metadata_json": "metadata::text",
}
_ENTRY_COLUMNS = tuple(_AS_ROW_FIELD.get(name, name) for name in export.LONG_ENTRY_FIELDS)
_TRACE_FIELDS = (
    *("t.trace_id", "t.experiment_id", "e.name", "t.client_request_id", "t.user"),
    *("t.session", "t.request_time", "t.request_preview", "t.response_preview"),
)


def _body(raw: bool) -> str:
    """The CSV text of an assessment's own cells (export.ASSESSMENT_COLUMNS) up to its
    metadata: all but is_gold and adjudication. ``kind`` and ``source_type`` are among a
    few fixed words (the table's checks)."""
    value = f"""CASE
        WHEN {_VTYPE} IS NULL OR {_VTYPE} = 'null' THEN '""'
        WHEN {_VTYPE} = 'string' THEN {_text("r.value #>> '{}'", raw, nullable=False)}
        WHEN {_VTYPE} = 'number' THEN r.value::text
        ELSE {_quoted("r.value::text")}
    END"""
    value_type = f"""CASE
        WHEN {_VTYPE} IS NULL THEN '"null"'
        WHEN {_VTYPE} = 'number' AND strpos(r.value::text, '.') > 0 THEN '"number"'
        WHEN {_VTYPE} = 'number' THEN '"integer"'
        ELSE '"' || {_VTYPE} || '"'
    END"""
    cells = (
        _text("r.assessment_id", raw, nullable=False),
        _text("r.span_id", raw),
        _text(f"r.metadata ->> '{SESSION_KEY}'", raw),
        "'\"' || r.kind || '\"'",
        _text("r.name", raw, nullable=False),
        value,
        value_type,
        _text("r.rationale", raw, nullable=False),
        "'\"' || r.source_type || '\"'",
        _text("r.source_id", raw, nullable=False),
        _text("r.annotator_name", raw),
        _boolean("r.valid"),
        _text("r.overridden", raw),
        _boolean("r.deleted_at IS NOT NULL"),
        _text("r.error_code", raw, nullable=False),
        _text("r.error_message", raw, nullable=False),
        _iso_ms("r.create_time"),
        _iso_ms("r.last_update_time"),
        "r.version::text",
        _quoted("r.metadata::text"),
    )
    return "\n        || ',' || ".join(cells)


def _prefix(raw: bool) -> str:
    """The CSV text of a trace's cells (export.TRACE_COLUMNS) and the comma after them;
    NULL when its time is one the query does not write."""
    cells = (
        _text("t.trace_id", raw, nullable=False),
        "'\"' || t.experiment_id::text || '\"'",
        _text("e.name", raw, nullable=False),
        _text("t.client_request_id", raw),
        _text("t.user", raw, nullable=False),
        _text("t.session", raw, nullable=False),
        _iso_ms("t.request_time"),
        _text("t.request_preview", raw, nullable=False),
        _text("t.response_preview", raw, nullable=False),
    )
    row = " || ',' || ".join(cells)
    return f"CASE WHEN {_written('t.request_time')} THEN {row} || ',' END"


def _query(traces: QuerySet[Trace], options: export.ExportOptions) -> tuple[str, tuple]:
    """A row for each trace that has assessments, holding its cells as CSV text (as JSON
    when the query does not write its time), and a row for each selected assessment,
    holding its own cells up to its metadata as CSV text (none when the query cannot write
    them; see the module docstring) and its export.LONG_ENTRY_FIELDS; a trace's rows
    together, in no order among them.

    Both parts run in parallel workers and are sorted there; the leader only merges the
    workers' rows. A trace that has assessments but none selected (all deleted, say) gets
    a row that Python passes over."""
    rows = (
        export.selected_assessments(traces, options)
        .annotate(
            decision=is_decision(),
            overrides_machine=overrides_machine(),
            annotator_name=F("annotator__username"),
            overridden=F("overrides__assessment_id"),
        )
        .order_by()
        .values_list(*_ROW_FIELDS)
    )
    selected, selected_params = rows.query.sql_with_params()
    chosen, chosen_params = traces.order_by().values("pk").query.sql_with_params()
    no_entry = ", ".join(["NULL"] * len(_ENTRY_COLUMNS))
    entry = ", ".join(f"r.{column}" for column in _ENTRY_COLUMNS)
    sql = f"""
SELECT t.id AS trace, NULL AS id, {_prefix(options.raw)} AS text,
    CASE WHEN NOT {_written("t.request_time")}
        THEN json_build_array({", ".join(_TRACE_FIELDS)})::text END AS trace_fields,
    {no_entry}
FROM traces_trace AS t
JOIN traces_experiment AS e ON e.id = t.experiment_id
WHERE t.id IN ({chosen})
    AND EXISTS (SELECT FROM annotation_assessment AS a WHERE a.trace_id = t.id)
UNION ALL
SELECT r.trace_id, r.id, CASE WHEN {_RENDERED} THEN {_body(options.raw)} || ',' END, NULL,
    {entry}
FROM ({selected}) AS r({", ".join(_ROW_FIELDS)})
ORDER BY 1"""  # noqa: S608 (this module's SQL; values are parameters)
    return sql, (*chosen_params, *selected_params)


def write_long_csv(traces, options: export.ExportOptions, counted) -> Iterator[str]:
    """Yield the long CSV export in chunks; ``counted(n)`` is told of every n rows written.
    Runs inside the transaction that export.Export opens on PostgreSQL. The rows stream
    (libpq's chunked mode): the server goes on with the query while Python writes."""
    columns = export.TRACE_COLUMNS + export.ASSESSMENT_COLUMNS
    yield export.csv_header(columns, bom=options.bom, raw=options.raw)
    writer = export.GroupWriter(columns, len(export.TRACE_COLUMNS), options.raw)
    try:
        sql, params = _query(traces, options)
    except EmptyResultSet:  # a selection that can hold no row, such as QuerySet.none()
        return
    connection = connections[traces.db]
    connection.ensure_connection()
    with connection.connection.cursor() as cursor:
        cursor.execute("SET LOCAL extra_float_digits = 1")
        stream = cursor.stream(sql, params, size=STREAM_ROWS)
        for _, group in itertools.groupby(stream, key=operator.itemgetter(_TRACE)):
            trace, rows = None, []
            for row in group:
                if row[_ID] is None:
                    trace = row
                else:
                    rows.append(row)
            if rows:
                rows.sort(key=_PLACE)
                _write_trace(writer, trace, rows)
                counted(len(rows))
                if writer.buffer.size >= export.FLUSH_CHARS:
                    yield writer.buffer.take()
    yield writer.buffer.take()


def _write_trace(writer: export.GroupWriter, trace: tuple, rows: list[tuple]) -> None:
    """One trace's lines, from its row and its assessments' rows in order."""
    prefix = trace[_TEXT]
    if prefix is None:
        prefix = writer.prefix(export.trace_values(json.loads(trace[_TRACE_JSON])))
    entries = [row[_ENTRY:] for row in rows]
    gold = export.gold_ids(entries, lambda n: export.entry_value(entries[n]))
    lines = [
        row[_TEXT] and row[_TEXT] + _TAILS[entry[_ASSESSMENT_ID] in gold, entry[_DECISION]]
        for row, entry in zip(rows, entries, strict=True)
    ]
    if None not in lines:
        writer.write_text(prefix + prefix.join(lines))
        return
    for line, entry in zip(lines, entries, strict=True):
        if line is None:
            writer.write(prefix, [export.long_values(entry, export.entry_value(entry), gold)])
        else:
            writer.write_text(prefix + line)
