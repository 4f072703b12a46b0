"""MLflow's filter and order_by grammar for experiments (SearchExperimentsUtils), and the same
grammar over other attributes for evaluation datasets (``DATASETS``).

A filter is clauses joined by AND: ``name`` (=, !=, LIKE, ILIKE), ``creation_time`` and
``last_update_time`` (=, !=, <, <=, >, >=), ``experiment_id`` (=, !=) and ``tags.<key>``
(=, !=, LIKE, ILIKE, IS NULL, IS NOT NULL); keys may be backquoted, values are quoted
strings (numbers bare). ``order_by`` takes ``name``, ``experiment_id``, ``creation_time`` and
``last_update_time`` with ASC or DESC. The default order is ``creation_time DESC``; ties are
broken by experiment id, ascending, as MLflow's SQL store does.
"""

import re
from dataclasses import dataclass

from django.db.models import Q, TextField
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast

VIEW_TYPES = {
    "ACTIVE_ONLY": ("active",),
    "DELETED_ONLY": ("deleted",),
    "ALL": ("active", "deleted"),
}


@dataclass(frozen=True)
class Grammar:
    attributes: tuple[str, ...]
    numeric: frozenset[str]
    # Attributes compared only with = and != (ids).
    exact: frozenset[str]
    columns: dict
    default_order: str
    tie_breaker: str


EXPERIMENTS = Grammar(
    attributes=("name", "experiment_id", "creation_time", "last_update_time"),
    numeric=frozenset({"creation_time", "last_update_time", "experiment_id"}),
    exact=frozenset({"experiment_id"}),
    columns={"experiment_id": "id"},
    default_order="creation_time DESC",
    tie_breaker="id",
)
DATASETS = Grammar(
    attributes=("name", "created_time", "last_update_time", "created_by", "last_updated_by"),
    numeric=frozenset({"created_time", "last_update_time"}),
    exact=frozenset(),
    columns={},
    default_order="created_time DESC",
    tie_breaker="id",
)
_STRING_OPS = {"=", "!=", "LIKE", "ILIKE"}
_NUMERIC_OPS = {"=", "!=", "<", "<=", ">", ">="}
_TAG_OPS = _STRING_OPS | {"IS NULL", "IS NOT NULL"}

_CLAUSE = re.compile(
    r"""\s*(?:(?P<entity>attributes?|tags?)\.)?(?P<key>`[^`]+`|"[^"]+"|[\w.\-]+)\s*
    (?P<op>!=|>=|<=|=|<|>|ILIKE\b|LIKE\b|IS\s+NOT\s+NULL\b|IS\s+NULL\b)\s*
    (?P<value>'[^']*'|"[^"]*"|-?\d+(?:\.\d+)?)?\s*(?P<end>AND\b|$)""",
    re.IGNORECASE | re.VERBOSE,
)
_ORDER = re.compile(
    r"^\s*(?:(?P<entity>attributes?)\.)?(?P<key>`[^`]+`|\w+)\s*(?P<dir>ASC|DESC)?\s*$",
    re.IGNORECASE,
)


class SearchError(ValueError):
    pass


def search(queryset, *, filter_string: str, order_by: list[str], grammar: Grammar = EXPERIMENTS):
    """``queryset`` narrowed by the filter, in the requested order."""
    tag_texts, condition = parse_filter(filter_string, grammar)
    ordering = order_fields(order_by, grammar)
    return queryset.annotate(**tag_texts).filter(condition).order_by(*ordering)


def parse_filter(filter_string: str, grammar: Grammar = EXPERIMENTS) -> tuple[dict, Q]:
    """The filter as a Q, with the annotations (a tag's text) it compares."""
    tag_texts, condition = {}, Q()
    position, text = 0, filter_string.strip()
    while position < len(text):
        match = _CLAUSE.match(text, position)
        if match is None or (match["end"] == "" and match.end() < len(text)):
            raise SearchError(f"Invalid clause(s) in filter string: {text[position:]!r}")
        condition &= _clause(match, tag_texts, grammar)
        position = match.end()
    return tag_texts, condition


def _clause(match, tag_texts: dict, grammar: Grammar) -> Q:
    entity = (match["entity"] or "attribute").lower()
    key = match["key"].strip('`"')
    op = " ".join(match["op"].upper().split())
    value = match["value"]
    if entity.startswith("tag"):
        return _tag_clause(key, op, value, tag_texts)
    if key not in grammar.attributes:
        raise SearchError(
            f"Invalid attribute key '{key}' specified. Valid keys are: {set(grammar.attributes)}"
        )
    if value is None:
        raise SearchError(f"'{op}' needs a value for attribute '{key}'.")
    column = grammar.columns.get(key, key)
    if key in grammar.numeric:
        if op not in _NUMERIC_OPS or (key in grammar.exact and op not in {"=", "!="}):
            raise SearchError(f"Invalid comparator '{op}' for attribute '{key}'.")
        number = _number(key, value, integer=key in grammar.exact)
        lookup = {"=": "exact", "<": "lt", "<=": "lte", ">": "gt", ">=": "gte", "!=": "exact"}
        q = Q(**{f"{column}__{lookup[op]}": number})
        return ~q if op == "!=" else q
    if op not in _STRING_OPS:
        raise SearchError(f"Invalid comparator '{op}' for attribute '{key}'.")
    return _string_q(column, op, _unquote(key, value))


def _tag_clause(key: str, op: str, value, tag_texts: dict) -> Q:
    if op not in _TAG_OPS:
        raise SearchError(f"Invalid comparator '{op}' for tag '{key}'.")
    present = Q(tags__has_key=key)
    if op in ("IS NULL", "IS NOT NULL"):
        if value is not None:
            raise SearchError(f"'{op}' takes no value.")
        return ~present if op == "IS NULL" else present
    if value is None:
        raise SearchError(f"'{op}' needs a value for tag '{key}'.")
    alias = f"tag_text_{len(tag_texts)}"
    # Cast, or Django compares the key's text with a JSON-encoded value.
    tag_texts[alias] = Cast(KeyTextTransform(key, "tags"), TextField())
    return present & _string_q(alias, op, _unquote(key, value))


def _string_q(column: str, op: str, value: str) -> Q:
    if op == "=":
        return Q(**{column: value})
    if op == "!=":
        return ~Q(**{column: value})
    lookup = "regex" if op == "LIKE" else "iregex"
    return Q(**{f"{column}__{lookup}": like_to_regex(value)})


def _unquote(key: str, value: str) -> str:
    if value[0] not in "'\"":
        raise SearchError(f"The value for '{key}' must be a quoted string, got {value}.")
    return value[1:-1]


def _number(key: str, value: str, *, integer: bool) -> int:
    text = value.strip("'\"")
    try:
        return int(text) if integer else int(float(text))
    except ValueError:
        raise SearchError(f"Expected a number for '{key}', got {value}.") from None


def like_to_regex(pattern: str) -> str:
    parts = {"%": ".*", "_": "."}
    return "^" + "".join(parts.get(c, re.escape(c)) for c in pattern) + "$"


def order_fields(order_by: list[str], grammar: Grammar = EXPERIMENTS) -> list[str]:
    fields = []
    for clause in order_by or [grammar.default_order]:
        match = _ORDER.match(clause)
        key = match["key"].strip("`") if match else None
        if key not in grammar.attributes:
            raise SearchError(
                f"Invalid order_by clause '{clause}'. Valid keys are {grammar.attributes}, "
                "optionally followed by ASC or DESC."
            )
        column = grammar.columns.get(key, key)
        fields.append(f"-{column}" if (match["dir"] or "ASC").upper() == "DESC" else column)
    if not any(field.lstrip("-") == grammar.tie_breaker for field in fields):
        fields.append(grammar.tie_breaker)
    return fields
