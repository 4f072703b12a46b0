"""MLflow ``search_traces`` filter strings, order_by lists and page tokens, as Django queries.

The grammar, entity names, comparators and error wording follow MLflow 3.17's server
(``SearchTraceUtils`` and the SQL tracking store); see ``FILTERS.md`` in the wire notes. The
module is pure: it turns strings into ``Comparison`` and ``OrderKey`` values and those into
conditions on a ``Trace`` queryset; it knows nothing of HTTP.

Semantics worth knowing:

- String comparisons are the same on SQLite and PostgreSQL: ``=`` and ``LIKE`` are
  case-sensitive (SQLite's case-insensitive ``LIKE`` is replaced by ``GLOB``), ``ILIKE`` is not,
  ``LIKE`` has no escape character, ``RLIKE`` is a regular expression search. SQLite folds
  only ASCII letters for ``ILIKE``.
- Feedback, expectation and span-attribute values, and span content, are JSON: ``LIKE`` and
  friends run on their JSON text, so a string value carries its quotes, and ``=`` matches the
  JSON text itself or the value JSON-quoted (``= 'true'`` matches the boolean true, ``= 'bad'``
  the string "bad", ``= '5'`` the integer 5 but not 5.0). The JSON text is the same on both
  databases except inside objects, whose key order and spacing each database keeps its own way.
- ``!=`` on tags, metadata and assessments matches only traces that have the key (or a valid
  assessment of that name) with another value. Only valid, not deleted assessments count.
- Tags and metadata are string maps (ingest writes nothing else): ``=`` and ``!=`` compare
  string values, so a number or boolean stored there by other means never equals its spelling.
- On PostgreSQL the SQL is shaped for the indexes of migration ``0003_search_indexes``: tag
  and metadata equality is JSON containment (GIN), span content has a trigram index, and JSON
  equality with a string, boolean or null is jsonb equality, which the planner can estimate.
- Pagination is keyset, not offset: the token holds the sort-key values of the last row, so
  rows inserted while a client pages never shift or repeat what it sees. NULLs sort last.
"""

import base64
import binascii
import json
import math
import re
from dataclasses import dataclass

from django.db import NotSupportedError
from django.db.models import (
    BigIntegerField,
    BooleanField,
    Exists,
    ExpressionWrapper,
    F,
    FloatField,
    Func,
    OuterRef,
    Q,
    TextField,
    Value,
)
from django.db.models.fields.json import HasKey, KeyTextTransform, compile_json_path
from django.db.models.functions import Coalesce
from django.db.models.lookups import (
    Exact,
    GreaterThan,
    GreaterThanOrEqual,
    In,
    IsNull,
    LessThan,
    LessThanOrEqual,
)

from . import runs
from .models import (
    SESSION_METADATA_KEY,
    SOURCE_RUN_METADATA_KEY,
    TRACE_NAME_TAG,
    USER_METADATA_KEY,
    Span,
    Trace,
)
from .validation import INT64_MAX, is_storable_text

MAX_RESULTS_LIMIT = 50_000
INDEXED_COLUMN_LENGTH = 255
LINKED_PROMPTS_TAG = "mlflow.linkedPrompts"


class SearchError(ValueError):
    """A filter, order_by, page token or max_results the client must fix (HTTP 400)."""


@dataclass(frozen=True)
class Comparison:
    """One ``<entity>.<key> <comparator> <value>`` clause, validated and with aliases resolved.

    ``entity`` is one of ``attribute``, ``tag``, ``metadata``, ``span``, ``feedback``,
    ``expectation`` or ``issue``; ``comparator`` is upper case; ``value`` is a str, an int or
    float, a tuple of str (``IN`` / ``NOT IN``) or None (``IS NULL`` / ``IS NOT NULL``).
    """

    entity: str
    key: str
    comparator: str
    value: str | int | float | tuple[str, ...] | None


@dataclass(frozen=True)
class OrderKey:
    """One sort key: an attribute (canonical name), or a tag or metadata key."""

    entity: str
    key: str
    ascending: bool

    @property
    def label(self) -> str:
        return f"{self.entity}.{self.key} {'ASC' if self.ascending else 'DESC'}"


# Entities as written → canonical names.
_ENTITIES = {
    "attribute": "attribute",
    "attributes": "attribute",
    "trace": "attribute",
    "tag": "tag",
    "tags": "tag",
    "metadata": "metadata",
    "request_metadata": "metadata",
    "span": "span",
    "feedback": "feedback",
    "expectation": "expectation",
    "issue": "issue",
}
_NUMERIC_ATTRIBUTES = {
    "timestamp",
    "timestamp_ms",
    "execution_time",
    "execution_time_ms",
    "end_time",
    "end_time_ms",
}
_SEARCH_ATTRIBUTES = _NUMERIC_ATTRIBUTES | {
    "request_id",
    "status",
    "client_request_id",
    "name",
    "run_id",
    "prompt",
    "text",
}
_ORDER_ATTRIBUTES = _NUMERIC_ATTRIBUTES | {
    "experiment_id",
    "status",
    "request_id",
    "name",
    "run_id",
}
_ATTRIBUTE_ALIASES = {
    "timestamp": "timestamp_ms",
    "execution_time": "execution_time_ms",
    "end_time": "end_time_ms",
}
_LIST_ATTRIBUTES = {"name", "status", "request_id", "run_id", "client_request_id"}

_NUMERIC_COMPARATORS = {"=", "!=", ">", ">=", "<", "<="}
_STRING_COMPARATORS = {"=", "!=", "LIKE", "ILIKE", "RLIKE", "IN", "NOT IN"}
_KEY_VALUE_COMPARATORS = {"=", "!=", "LIKE", "ILIKE", "RLIKE", "IS NULL", "IS NOT NULL"}
_SPAN_FIELDS = {"name": "name", "type": "span_type", "status": "status"}
_SPAN_CONTENT_COMPARATORS = {"LIKE", "ILIKE"}
_ASSESSMENT_NUMERIC_COMPARATORS = {">", ">=", "<", "<="}
_ASSESSMENT_COMPARATORS = _KEY_VALUE_COMPARATORS | _ASSESSMENT_NUMERIC_COMPARATORS

_KEYWORDS = {"AND", "OR", "NOT", "IN", "IS", "NULL", "LIKE", "ILIKE", "RLIKE"}
_PART = r"(?:[A-Za-z_]\w*|`[^`]*`)"
_TOKEN_RE = re.compile(
    rf"""
    (?P<ws>\s+)
    |(?P<string>'[^']*'|"[^"]*")
    |(?P<number>[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(?![\w.`])
    |(?P<ident>{_PART}(?:\.(?:\w+|`[^`]*`))*)
    |(?P<op><=|>=|!=|<>|=|<|>)
    |(?P<punct>[(),])
    |(?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True)
class _Token:
    kind: str  # string, number, ident, keyword, op, punct, other
    text: str
    start: int
    end: int


def _fmt(values) -> str:
    return "{" + ", ".join(repr(v) for v in sorted(values)) + "}"


def _tokenize(text: str) -> list[_Token]:
    tokens = []
    for match in _TOKEN_RE.finditer(text):
        kind = match.lastgroup
        if kind == "ws":
            continue
        word = match.group()
        if kind == "ident" and word.upper() in _KEYWORDS:
            kind = "keyword"
        tokens.append(_Token(kind, word, match.start(), match.end()))
    return tokens


def _is_keyword(token: _Token, *words: str) -> bool:
    return token.kind == "keyword" and token.text.upper() in words


# Filter strings


def parse_filter(filter_string: str | None) -> list[Comparison]:
    """Parse and validate a filter string (clauses joined by AND) without touching the database."""
    if not filter_string or not filter_string.strip():
        return []
    tokens = _tokenize(filter_string)
    clauses: list[list[_Token]] = [[]]
    for token in tokens:
        if _is_keyword(token, "AND"):
            clauses.append([])
        else:
            clauses[-1].append(token)
    for i, token in enumerate(tokens):
        if _is_keyword(token, "OR") or (_is_keyword(token, "NOT") and not _in_grammar(tokens, i)):
            raise SearchError(f"Invalid clause(s) in filter string: '{token.text}'")
    shapes, invalid = [], []
    for clause in clauses:
        shape = _clause_shape(clause)
        if shape is None:
            text = filter_string[clause[0].start : clause[-1].end] if clause else ""
            invalid.append(f"'{text}'")
        else:
            shapes.append(shape)
    if invalid:
        raise SearchError(f"Invalid clause(s) in filter string: {', '.join(invalid)}")
    return [_comparison(*shape) for shape in shapes]


def _in_grammar(tokens: list[_Token], i: int) -> bool:
    """NOT belongs to the grammar only in ``NOT IN`` and ``IS NOT NULL``."""
    after_is_in = i + 1 < len(tokens) and _is_keyword(tokens[i + 1], "IN")
    before_is_is = i > 0 and _is_keyword(tokens[i - 1], "IS")
    return after_is_in or before_is_is


def _clause_shape(clause: list[_Token]):
    """(identifier token, comparator, value tokens) for a well-formed clause, else None."""
    if not clause or clause[0].kind != "ident":
        return None
    ident, rest = clause[0], clause[1:]
    words = [t.text.upper() if t.kind == "keyword" else None for t in rest]
    if words == ["IS", "NULL"]:
        return ident, "IS NULL", []
    if words == ["IS", "NOT", "NULL"]:
        return ident, "IS NOT NULL", []
    if rest and words[:1] == ["IN"]:
        return (ident, "IN", rest[1:]) if _is_list(rest[1:]) else None
    if len(rest) > 1 and words[:2] == ["NOT", "IN"]:
        return (ident, "NOT IN", rest[2:]) if _is_list(rest[2:]) else None
    if len(rest) != 2:
        return None
    comparator, value = rest
    if comparator.kind == "op" and comparator.text != "<>":
        op = comparator.text
    elif _is_keyword(comparator, "LIKE", "ILIKE", "RLIKE"):
        op = comparator.text.upper()
    else:
        return None
    if value.kind not in ("string", "number", "ident"):
        return None
    return ident, op, [value]


def _is_list(tokens: list[_Token]) -> bool:
    return (
        len(tokens) >= 2
        and tokens[0].text == "("
        and tokens[-1].text == ")"
        and not any(t.kind == "punct" and t.text in "()" for t in tokens[1:-1])
    )


def _split_identifier(token: _Token) -> tuple[str | None, str]:
    """``tags.`a.b``` → ("tags", "a.b"); a single part is an attribute key (entity None)."""
    parts = re.findall(r"`[^`]*`|[^.`]+", token.text)
    parts = [p[1:-1] if p.startswith("`") else p for p in parts]
    if len(parts) == 1:
        return None, parts[0]
    return parts[0], ".".join(parts[1:])


def _resolve_entity(written: str | None) -> str:
    if written is None:
        return "attribute"
    if written not in _ENTITIES:
        raise SearchError(f"Invalid entity type '{written}'. Valid values are {_fmt(_ENTITIES)}")
    return _ENTITIES[written]


def _comparison(ident: _Token, comparator: str, value_tokens: list[_Token]) -> Comparison:
    written_entity, key = _split_identifier(ident)
    entity = _resolve_entity(written_entity)
    if not key:
        raise SearchError(f"Invalid identifier '{ident.text}': the key is empty.")
    if entity == "attribute" and key not in _SEARCH_ATTRIBUTES:
        raise SearchError(
            f"Invalid attribute key '{key}' specified. Valid keys are '{_fmt(_SEARCH_ATTRIBUTES)}'"
        )
    value = _value(entity, key, comparator, value_tokens)
    entity, key = _resolve_alias(entity, key)
    _check_comparator(entity, key, comparator, value)
    if comparator == "RLIKE":
        _check_regex(value)
    return Comparison(entity, key, comparator, value)


def _check_regex(pattern: str) -> None:
    """Refuse patterns that do not compile (PostgreSQL's dialect may still refuse more)."""
    try:
        re.compile(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        raise SearchError(f"Invalid regular expression {pattern[:100]!r}: {exc}") from None


def _value(entity: str, key: str, comparator: str, tokens: list[_Token]):
    if comparator in ("IS NULL", "IS NOT NULL"):
        return None
    if comparator in ("IN", "NOT IN"):
        if entity == "attribute" and key not in _LIST_ATTRIBUTES:
            raise SearchError(
                f"Only attributes in {_fmt(_LIST_ATTRIBUTES)} support comparison with a list "
                "of quoted string values."
            )
        return _list_value(tokens)
    token = tokens[0]
    if entity in ("feedback", "expectation"):
        numeric = comparator in _ASSESSMENT_NUMERIC_COMPARATORS
        if numeric and token.kind != "number":
            raise SearchError(
                f"Expected a numeric value for {entity} when using comparator "
                f"'{comparator}'. Got value {token.text}"
            )
        if not numeric and token.kind == "number":
            raise SearchError(
                f"Expected a quoted string value for {entity} (e.g. 'my-value'). "
                f"Got value {token.text}"
            )
    if token.kind == "ident":
        raise SearchError(
            "Parameter value is either not quoted or unidentified quote types used for string "
            f"value {token.text}. Use either single or double quotes."
        )
    if token.kind == "number":
        if entity == "attribute" and key not in _NUMERIC_ATTRIBUTES:
            raise SearchError(
                f"Only the '{_fmt(_NUMERIC_ATTRIBUTES)}' attributes support comparison with "
                "numeric values."
            )
        if entity not in ("attribute", "feedback", "expectation"):
            raise SearchError(
                f"Expected a quoted string value for {entity} (e.g. 'my-value'). "
                f"Got value {token.text}"
            )
        return _number(token.text)
    if entity == "attribute" and key in _NUMERIC_ATTRIBUTES:
        raise SearchError(
            f"Expected numeric value type for numeric attribute: {key}. Found {token.text}"
        )
    return token.text[1:-1]


def _number(text: str) -> int | float:
    try:
        number = int(text)
    except ValueError:
        number = float(text)
    # Integers are bound as int64 parameters; floats as doubles.
    if isinstance(number, int) and abs(number) > INT64_MAX or not math.isfinite(number):
        raise SearchError(f"The number {text[:40]} is out of range.")
    return number


def _list_value(tokens: list[_Token]) -> tuple[str, ...]:
    items = tokens[1:-1]
    if not items:
        raise SearchError(
            "While parsing a list in the query, expected a non-empty list of string values, "
            "but got empty list"
        )
    values = []
    expect_item = True
    for token in items:
        if expect_item and token.kind == "string":
            values.append(token.text[1:-1])
        elif not expect_item and token.text == ",":
            pass
        else:
            listed = " ".join(t.text for t in tokens)
            raise SearchError(
                "While parsing a list in the query, expected a non-empty list of quoted string "
                f"values separated by commas, but got {listed}"
            )
        expect_item = not expect_item
    if expect_item:
        raise SearchError(
            "While parsing a list in the query, expected a non-empty list of quoted string "
            f"values separated by commas, but got {' '.join(t.text for t in tokens)}"
        )
    return tuple(values)


def _resolve_alias(entity: str, key: str) -> tuple[str, str]:
    """Attribute keys that MLflow keeps elsewhere: the trace name tag, the source run, spans."""
    if entity != "attribute":
        return entity, key
    if key == "name":
        return "tag", TRACE_NAME_TAG
    if key == "prompt":
        return "tag", LINKED_PROMPTS_TAG
    if key == "run_id":
        return "metadata", SOURCE_RUN_METADATA_KEY
    if key == "text":
        return "span", "content"
    return entity, _ATTRIBUTE_ALIASES.get(key, key)


def _check_comparator(entity: str, key: str, comparator: str, value) -> None:
    if entity == "attribute":
        allowed = _NUMERIC_COMPARATORS if key in _NUMERIC_ATTRIBUTES else _STRING_COMPARATORS
        if comparator not in allowed:
            raise SearchError(f"Invalid comparator '{comparator}' not one of '{_fmt(allowed)}'")
    elif entity == "tag" and key == LINKED_PROMPTS_TAG:
        if comparator != "=":
            raise SearchError(
                f"Invalid comparator '{comparator}' for prompts filter. "
                "Only '=' is supported with format: prompt = \"name/version\""
            )
        if value.count("/") != 1:
            raise SearchError(
                f"Invalid prompts filter value '{value}'. "
                'Expected format: prompt = "name/version"'
            )
    elif entity in ("tag", "metadata"):
        if comparator not in _KEY_VALUE_COMPARATORS:
            raise SearchError(
                f"Invalid comparator '{comparator}' not one of '{_fmt(_KEY_VALUE_COMPARATORS)}'"
            )
    elif entity == "span":
        _check_span_comparator(key, comparator)
    elif entity in ("feedback", "expectation"):
        if comparator not in _ASSESSMENT_COMPARATORS:
            raise SearchError(
                f"assessment.{key} comparator '{comparator}' not one of "
                f"'{_fmt(_ASSESSMENT_COMPARATORS)}'"
            )
    elif entity == "issue":
        if key != "id":
            raise SearchError(f"Invalid issue attribute '{key}'. Supported attributes: id")
        if comparator != "=":
            raise SearchError(f"issue.{key} comparator '{comparator}' not one of '{{'='}}'")


def _check_span_comparator(key: str, comparator: str) -> None:
    if key.startswith("attributes."):
        if not key[len("attributes.") :]:
            raise SearchError("Span attribute name cannot be empty after 'attributes.'")
        allowed = _STRING_COMPARATORS
    elif key in _SPAN_FIELDS:
        allowed = _STRING_COMPARATORS
    elif key == "content":
        allowed = _SPAN_CONTENT_COMPARATORS
    else:
        raise SearchError(
            f"Invalid span attribute '{key}'. "
            "Supported attributes: name, status, type, attributes.<attribute_name>."
        )
    if comparator not in allowed:
        raise SearchError(f"span.{key} comparator '{comparator}' not one of '{_fmt(allowed)}'")


# order_by


def parse_order_by(order_by: list[str] | None) -> list[OrderKey]:
    """Parse order_by entries and append the tie-breakers timestamp_ms DESC, request_id ASC."""
    keys: list[OrderKey] = []
    for entry in order_by or []:
        key = _order_key(entry)
        if any((k.entity, k.key) == (key.entity, key.key) for k in keys):
            raise SearchError(f"`order_by` contains duplicate fields: {order_by}")
        keys.append(key)
    for tie_breaker in (
        OrderKey("attribute", "timestamp_ms", False),
        OrderKey("attribute", "request_id", True),
    ):
        if not any((k.entity, k.key) == (tie_breaker.entity, tie_breaker.key) for k in keys):
            keys.append(tie_breaker)
    return keys


def _order_key(entry: str) -> OrderKey:
    if not isinstance(entry, str):
        raise SearchError(f"Invalid order_by clause '{entry}'. Could not be parsed.")
    tokens = _tokenize(entry)
    if not tokens or tokens[0].kind != "ident" or len(tokens) > 2:
        raise SearchError(f"Invalid order_by clause '{entry}'. Could not be parsed.")
    ascending = True
    if len(tokens) == 2:
        direction = tokens[1].text.lower()
        if tokens[1].kind != "ident" or direction not in ("asc", "desc"):
            raise SearchError(f"Invalid ordering key in order_by clause '{entry}'.")
        ascending = direction == "asc"
    written_entity, key = _split_identifier(tokens[0])
    entity = _resolve_entity(written_entity)
    if not key:
        raise SearchError(f"Invalid order_by clause '{entry}'. Could not be parsed.")
    if entity == "attribute" and key not in _ORDER_ATTRIBUTES:
        raise SearchError(
            f"Invalid attribute key '{key}' specified. Valid keys are '{_fmt(_ORDER_ATTRIBUTES)}'"
        )
    entity, key = _resolve_alias(entity, key)
    if entity not in ("attribute", "tag", "metadata"):
        raise SearchError(
            f"Invalid order_by entity '{entity}' in '{entry}': only attributes, tags and "
            "metadata can be ordered by."
        )
    return OrderKey(entity, key, ascending)


# SQL building blocks that behave the same on SQLite and PostgreSQL


def _ascii_json_escape(text: str) -> str:
    """Non-ASCII characters as SQLite holds them in JSON text (Django stores ASCII-only JSON)."""
    return "".join(c if ord(c) < 128 else json.dumps(c)[1:-1] for c in text)


def _is_jsonb_text(text: str) -> bool:
    """Whether ``text`` is a string, boolean or null exactly as PostgreSQL prints it as jsonb.

    For such a text, jsonb equality is the same as comparing JSON texts. Not for numbers (as
    jsonb, 5 equals 5.0) nor arrays and objects (key order and spacing).
    """
    try:
        value = json.loads(text)
    except ValueError:
        return False
    if isinstance(value, str) and "\x00" in value:
        return False  # PostgreSQL's jsonb cannot hold it
    is_scalar = value is None or isinstance(value, bool | str)
    return is_scalar and json.dumps(value, ensure_ascii=False) == text


def _like_to_glob(pattern: str) -> str:
    """A LIKE pattern (``%`` and ``_`` wildcards, no escape) as a case-sensitive SQLite GLOB."""
    special = {"%": "*", "_": "?", "*": "[*]", "?": "[?]", "[": "[[]"}
    return "".join(special.get(c, c) for c in pattern)


class JSONText(Func):
    """The JSON text of a JSON column, or of one of its top-level keys (NULL when absent)."""

    output_field = TextField()

    def __init__(self, expression, key: str | None = None):
        super().__init__(expression)
        self.key = key

    def as_sql(self, compiler, connection, **extra):
        raise NotSupportedError("Trace search supports SQLite and PostgreSQL only.")

    def as_postgresql(self, compiler, connection, **extra):
        sql, params = self.as_jsonb(compiler)
        return f"({sql})::text", params

    def as_jsonb(self, compiler):
        """PostgreSQL only: the same value as jsonb rather than its text."""
        sql, params = compiler.compile(self.source_expressions[0])
        if self.key is None:
            return sql, params
        return f"({sql}) -> %s", (*params, self.key)

    def as_sqlite(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        if self.key is None:
            return sql, params
        return f"({sql} -> %s)", (*params, "$." + json.dumps(self.key))


class JSONNumber(Func):
    """A JSON column's value as a float when it is a JSON number, else NULL (booleans too)."""

    output_field = FloatField()

    def as_sql(self, compiler, connection, **extra):
        raise NotSupportedError("Trace search supports SQLite and PostgreSQL only.")

    def as_postgresql(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        return (
            f"CASE WHEN jsonb_typeof({sql}) = 'number' THEN ({sql})::float8 END",
            (*params, *params),
        )

    def as_sqlite(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        return (
            f"CASE WHEN json_type({sql}) IN ('integer', 'real') THEN json_extract({sql}, '$') END",
            (*params, *params),
        )


class TextMatch(Func):
    """``expression <operator> value`` with one meaning on SQLite and PostgreSQL.

    Operators: ``exact``, ``contains`` (plain substring), ``like`` (case-sensitive, ``%`` and
    ``_``, no escape character), ``ilike`` and ``regex``. With ``json_text`` the expression is
    JSON text, which SQLite holds with non-ASCII characters escaped, so there the value is tried
    in both spellings.
    """

    output_field = BooleanField()
    _POSTGRES = {
        "exact": "{} = %s",
        "contains": "strpos({}, %s) > 0",
        "like": "{} LIKE %s ESCAPE ''",
        "ilike": "{} ILIKE %s ESCAPE ''",
        "regex": "{} ~ %s",
    }
    _SQLITE = {
        "exact": "{} = %s",
        "contains": "instr({}, %s) > 0",
        "like": "{} GLOB %s",
        "ilike": "{} LIKE %s",
        "regex": "{} REGEXP %s",
    }

    def __init__(self, expression, value: str, operator: str, *, json_text: bool = False):
        super().__init__(expression)
        self.value = value
        self.operator = operator
        self.json_text = json_text

    def as_sql(self, compiler, connection, **extra):
        raise NotSupportedError("Trace search supports SQLite and PostgreSQL only.")

    def as_postgresql(self, compiler, connection, **extra):
        lhs = self.source_expressions[0]
        if self.operator == "exact" and isinstance(lhs, JSONText) and _is_jsonb_text(self.value):
            # The same rows as comparing texts, but estimated from the column's statistics
            # (feedback values are mostly true and false), so the planner picks a fitting plan.
            sql, params = lhs.as_jsonb(compiler)
            return f"({sql}) = %s::jsonb", (*params, self.value)
        sql, params = compiler.compile(lhs)
        return self._POSTGRES[self.operator].format(sql), (*params, self.value)

    def as_sqlite(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        spellings = [self.value]
        if self.json_text and _ascii_json_escape(self.value) != self.value:
            spellings.append(_ascii_json_escape(self.value))
        if self.operator == "like":
            spellings = [_like_to_glob(s) for s in spellings]
        template = self._SQLITE[self.operator].format(sql)
        return (
            "(" + " OR ".join([template] * len(spellings)) + ")",
            tuple(p for s in spellings for p in (*params, s)),
        )


class JSONHasString(Func):
    """Whether a JSON object column holds the string ``value`` under the top-level ``key``.

    PostgreSQL asks for containment (``@>``): the column's GIN index serves it and the planner
    estimates it from the column's statistics, where ``->> key = value`` is guessed at 0.5% of
    the rows whatever the value, which sent common values to a full scan and sort. On both
    databases only a string matches: a number or boolean never equals its spelling.
    """

    output_field = BooleanField()

    def __init__(self, expression, key: str, value: str):
        super().__init__(expression)
        self.key = key
        self.value = value

    def as_sql(self, compiler, connection, **extra):
        raise NotSupportedError("Trace search supports SQLite and PostgreSQL only.")

    def as_postgresql(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"({sql} @> %s::jsonb)", (
            *params,
            json.dumps({self.key: self.value}, ensure_ascii=False),
        )

    def as_sqlite(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        path = compile_json_path([self.key])
        return (
            f"(JSON_TYPE({sql}, %s) = 'text' AND JSON_EXTRACT({sql}, %s) = %s)",
            (*params, path, *params, path, self.value),
        )


class SpanContent(Func):
    """A span's searchable text: its name, then the JSON text of its attributes, inputs,
    outputs and events, separated by spaces.

    On PostgreSQL this is exactly the expression of ``span_content_trgm_idx`` (migration
    ``traces.0003_search_indexes``), so that LIKE and ILIKE over span content can use the
    trigram index; change both together.
    """

    output_field = TextField()
    FIELDS = ("name", "attributes", "inputs", "outputs", "events")

    def __init__(self):
        super().__init__(*(F(field) for field in self.FIELDS))

    def as_sql(self, compiler, connection, **extra):
        raise NotSupportedError("Trace search supports SQLite and PostgreSQL only.")

    def _joined(self, compiler, json_cast: str):
        parts, params = [], []
        for field, expression in zip(self.FIELDS, self.source_expressions, strict=True):
            sql, field_params = compiler.compile(expression)
            cast = "" if field == "name" else json_cast
            parts.append(f"COALESCE(({sql}){cast}, '')")
            params.extend(field_params)
        return "(" + " || ' ' || ".join(parts) + ")", tuple(params)

    def as_postgresql(self, compiler, connection, **extra):
        return self._joined(compiler, "::text")

    def as_sqlite(self, compiler, connection, **extra):
        return self._joined(compiler, "")


# Filter conditions

_ATTRIBUTE_COLUMNS = {
    "experiment_id": "experiment_id",
    "request_id": "trace_id",
    "client_request_id": "client_request_id",
    "status": "state",
    "timestamp_ms": "request_time",
    "execution_time_ms": "execution_duration",
}
_ORDER_LOOKUPS = {
    ">": GreaterThan,
    ">=": GreaterThanOrEqual,
    "<": LessThan,
    "<=": LessThanOrEqual,
}
_PATTERN_OPERATORS = {"LIKE": "like", "ILIKE": "ilike", "RLIKE": "regex"}
_INDEXED_METADATA = {USER_METADATA_KEY: "user", SESSION_METADATA_KEY: "session"}


def _attribute_expression(key: str):
    if key == "end_time_ms":
        return ExpressionWrapper(
            F("request_time") + Coalesce(F("execution_duration"), Value(0)),
            output_field=BigIntegerField(),
        )
    return F(_ATTRIBUTE_COLUMNS[key])


def _compare(lhs, comparator: str, value) -> Q:
    """A comparison on a plain (non-JSON) column or extracted text; NULL never matches."""
    if comparator == "=":
        return Q(Exact(lhs, Value(value)))
    if comparator == "!=":
        return Q(IsNull(lhs, False)) & ~Q(Exact(lhs, Value(value)))
    if comparator in _ORDER_LOOKUPS:
        return Q(_ORDER_LOOKUPS[comparator](lhs, Value(value)))
    if comparator == "IN":
        return Q(In(lhs, list(value)))
    if comparator == "NOT IN":
        return Q(IsNull(lhs, False)) & ~Q(In(lhs, list(value)))
    return Q(TextMatch(lhs, value, _PATTERN_OPERATORS[comparator]))


def _json_compare(lhs: JSONText, comparator: str, value, spellings) -> Q:
    """A comparison on JSON text; ``spellings(s)`` lists the JSON texts that ``= s`` accepts."""
    if comparator in _PATTERN_OPERATORS:
        return Q(TextMatch(lhs, value, _PATTERN_OPERATORS[comparator], json_text=True))
    items = value if comparator in ("IN", "NOT IN") else (value,)
    equal = Q()
    for item in items:
        for text in spellings(item):
            equal |= Q(TextMatch(lhs, text, "exact", json_text=True))
    if comparator in ("=", "IN"):
        return equal
    return Q(IsNull(lhs, False)) & ~equal


def _assessment_spellings(value: str) -> list[str]:
    return [value, json.dumps(value, ensure_ascii=False)]


def _span_attribute_spellings(value: str) -> list[str]:
    # MLflow keeps span attribute values JSON-encoded, so a string may be quoted twice.
    quoted = json.dumps(value, ensure_ascii=False)
    return [value, quoted, json.dumps(quoted, ensure_ascii=False)]


def _key_value_condition(column: str, comparison: Comparison) -> Q:
    key, comparator, value = comparison.key, comparison.comparator, comparison.value
    if comparator == "IS NULL":
        return ~Q(HasKey(F(column), key))
    if comparator == "IS NOT NULL":
        return Q(HasKey(F(column), key))
    text = KeyTextTransform(key, column)
    if column == "tags" and key == LINKED_PROMPTS_TAG:
        name, version = value.split("/")
        entry = json.dumps({"name": name, "version": version}, ensure_ascii=False)
        return Q(TextMatch(text, entry, "contains"))
    indexed = _INDEXED_METADATA.get(key) if column == "trace_metadata" else None
    if indexed and comparator == "=" and len(value) <= INDEXED_COLUMN_LENGTH:
        return Q(Exact(F(indexed), Value(value)))
    if column == "trace_metadata" and key == SOURCE_RUN_METADATA_KEY and comparator == "=":
        return runs.made_in([value])
    if comparator == "=":
        return Q(JSONHasString(F(column), key, value))
    if comparator == "!=":
        # HasKey adds nothing to the meaning; it lets PostgreSQL use the GIN index.
        return (
            Q(HasKey(F(column), key))
            & Q(IsNull(text, False))
            & ~Q(JSONHasString(F(column), key, value))
        )
    return _compare(text, comparator, value)


def _span_condition(comparison: Comparison) -> Q:
    key, comparator, value = comparison.key, comparison.comparator, comparison.value
    if key in _SPAN_FIELDS:
        return _compare(F(_SPAN_FIELDS[key]), comparator, value)
    if key == "content":
        operator = _PATTERN_OPERATORS[comparator]
        return Q(TextMatch(SpanContent(), value, operator, json_text=True))
    attribute = key[len("attributes.") :]
    return _json_compare(
        JSONText(F("attributes"), attribute), comparator, value, _span_attribute_spellings
    )


def _assessment_condition(comparison: Comparison, hidden: Q | None) -> Q:
    assessment_model = Trace._meta.get_field("assessments").related_model
    assessments = assessment_model._default_manager.filter(
        trace=OuterRef("pk"),
        kind=comparison.entity,
        name=comparison.key,
        valid=True,
        deleted_at__isnull=True,
    )
    if hidden is not None:
        assessments = assessments.exclude(hidden)
    comparator, value = comparison.comparator, comparison.value
    if comparator == "IS NULL":
        return ~Q(Exists(assessments))
    if comparator == "IS NOT NULL":
        return Q(Exists(assessments))
    if comparator in _ORDER_LOOKUPS:
        number = _ORDER_LOOKUPS[comparator](JSONNumber(F("value")), Value(float(value)))
        return Q(Exists(assessments.filter(number)))
    matching = _json_compare(JSONText(F("value")), comparator, value, _assessment_spellings)
    return Q(Exists(assessments.filter(matching)))


def filter_conditions(comparisons: list[Comparison], *, hidden: Q | None = None) -> list[Q]:
    """Conditions on a Trace queryset; span clauses share one EXISTS so they hold for one span.

    ``hidden`` is a condition on assessment rows the searcher may not see: feedback and
    expectation clauses never match those."""
    conditions, span_conditions = [], []
    for comparison in comparisons:
        entity = comparison.entity
        if entity == "attribute":
            lhs = _attribute_expression(comparison.key)
            conditions.append(_compare(lhs, comparison.comparator, comparison.value))
        elif entity == "tag":
            conditions.append(_key_value_condition("tags", comparison))
        elif entity == "metadata":
            conditions.append(_key_value_condition("trace_metadata", comparison))
        elif entity == "span":
            span_conditions.append(_span_condition(comparison))
        elif entity in ("feedback", "expectation"):
            conditions.append(_assessment_condition(comparison, hidden))
        elif entity == "issue":
            # Tracemark records no issue references, so no trace has one.
            conditions.append(Q(pk__in=[]))
    if span_conditions:
        spans = Span.objects.filter(*span_conditions, trace=OuterRef("pk"))
        conditions.append(Q(Exists(spans)))
    return conditions


# Ordering and keyset pagination


def _order_expression(key: OrderKey):
    if key.entity == "tag":
        return KeyTextTransform(key.key, "tags")
    if key.entity == "metadata":
        return KeyTextTransform(key.key, "trace_metadata")
    return _attribute_expression(key.key)


def _nullable(key: OrderKey) -> bool:
    return key.entity != "attribute" or key.key == "execution_time_ms"


def _after(keys: list[OrderKey], values: list) -> Q:
    """Rows strictly after the row whose sort-key values are ``values`` (NULLs sort last)."""
    alternatives = Q(pk__in=[])
    equal_so_far = Q()
    for key, value in zip(keys, values, strict=True):
        expression = _order_expression(key)
        if value is None:
            # Nothing sorts after NULL on this key; ties go on to the next key.
            equal_so_far &= Q(IsNull(expression, True))
            continue
        later_lookup = GreaterThan if key.ascending else LessThan
        later = Q(later_lookup(expression, Value(value)))
        if _nullable(key):
            later |= Q(IsNull(expression, True))
        alternatives |= equal_so_far & later
        equal_so_far &= Q(Exact(expression, Value(value)))
    first, first_value = keys[0], values[0]
    if not _nullable(first) and first_value is not None:
        # Redundant with the alternatives, but lets the database range-scan the index.
        bound_lookup = GreaterThanOrEqual if first.ascending else LessThanOrEqual
        return Q(bound_lookup(_order_expression(first), Value(first_value))) & alternatives
    return alternatives


def _encode_token(keys: list[OrderKey], values: list) -> str:
    payload = {"order": [k.label for k in keys], "after": values}
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()


def _decode_token(page_token: str, keys: list[OrderKey]) -> list:
    invalid = SearchError(f"Invalid page token '{page_token[:100]}'.")
    try:
        payload = json.loads(base64.urlsafe_b64decode(page_token.encode()))
        order, values = payload["order"], payload["after"]
    except (AttributeError, binascii.Error, ValueError, TypeError, KeyError, RecursionError):
        raise invalid from None
    if order != [k.label for k in keys]:
        raise SearchError("Invalid page token: it was issued for a different order_by.")
    if not isinstance(values, list) or len(values) != len(keys):
        raise invalid
    if not all(_token_value_fits(key, value) for key, value in zip(keys, values, strict=True)):
        raise invalid
    return values


def _token_value_fits(key: OrderKey, value) -> bool:
    """A page token's value has its key's type: an int64 for numbers, else text."""
    if value is None:
        return True
    if key.entity == "attribute" and key.key in _NUMERIC_ATTRIBUTES | {"experiment_id"}:
        return not isinstance(value, bool) and isinstance(value, int) and abs(value) <= INT64_MAX
    return isinstance(value, str) and is_storable_text(value)


def _check_max_results(max_results) -> int:
    try:
        if isinstance(max_results, bool | float):
            raise TypeError
        number = int(max_results)
    except (TypeError, ValueError) as exc:
        raise SearchError(
            f"Invalid value {max_results!r} for parameter 'max_results' supplied. "
            "It must be a positive integer"
        ) from exc
    if number < 1:
        raise SearchError(
            f"Invalid value {number} for parameter 'max_results' supplied. "
            "It must be a positive integer"
        )
    if number > MAX_RESULTS_LIMIT:
        raise SearchError(
            f"Invalid value {number} for parameter 'max_results' supplied. "
            f"It must be at most {MAX_RESULTS_LIMIT}"
        )
    return number


def search_traces(
    queryset,
    *,
    filter_string=None,
    order_by=None,
    max_results=100,
    page_token=None,
    hidden: Q | None = None,
    fields: tuple[str, ...] = (),
) -> tuple[list, str | None]:
    """One page of the traces in ``queryset`` that match, in order, and the next page's token.

    ``queryset`` is a Trace queryset the caller has already restricted to the experiments
    searched; ``hidden`` as in ``filter_conditions``. With ``fields`` the page is named rows
    of those fields instead of Traces. The token is None on the last page.
    """
    limit = _check_max_results(max_results)
    comparisons = parse_filter(filter_string)
    keys = parse_order_by(order_by)
    # No leading underscore: named rows would rename the field.
    names = [f"order_key_{i}" for i in range(len(keys))]
    queryset = queryset.filter(*filter_conditions(comparisons, hidden=hidden)).annotate(
        **{name: _order_expression(key) for name, key in zip(names, keys, strict=True)}
    )
    ordering = []
    for name, key in zip(names, keys, strict=True):
        nulls_last = True if _nullable(key) else None
        ordering.append(
            F(name).asc(nulls_last=nulls_last)
            if key.ascending
            else F(name).desc(nulls_last=nulls_last)
        )
    queryset = queryset.order_by(*ordering)
    if page_token:
        queryset = queryset.filter(_after(keys, _decode_token(page_token, keys)))
    if fields:
        queryset = queryset.values_list(*fields, *names, named=True)
    rows = list(queryset[: limit + 1])
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, _encode_token(keys, [getattr(rows[-1], name) for name in names])
