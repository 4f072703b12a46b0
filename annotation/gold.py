"""The gold value of a question: what Tracemark takes as the true answer, in one place.

A question is a (trace, span or none, name). Its gold value is, in this order:

1. ``decision``: an Admin's decision on a queue's disagreement (an assessment carrying
   ``queues.ADJUDICATION_KEY``), the newest when several queues decided;
2. ``override``: a person's override of a judge's or code's entry, the newest first;
3. ``agreement``: the people's own answers when a strict majority of those who answered
   agree and that majority holds at least two people (two of two, two of three, three of
   four; not one of one, not two of four);

otherwise there is no gold. Only live, valid entries count, one answer per person (their
newest); a decision is never one more vote. Callers choose the entries (a blind queue's
hidden answers are left out before they get here), and the export, the judge report and its
queue of items without gold all read gold from ``gold_by_question``.
"""

import json
from collections import defaultdict
from collections.abc import Iterable
from enum import StrEnum
from operator import attrgetter, itemgetter
from typing import NamedTuple

from django.db.models import (
    BooleanField,
    ExpressionWrapper,
    Q,
    QuerySet,
    TextField,
)
from django.db.models.functions import Cast

from .json_numbers import loads
from .models import Assessment, SourceType
from .queues import ADJUDICATION_KEY

Question = tuple[int, str | None, str]  # trace pk, span id, name
MACHINE_SOURCES = frozenset({SourceType.LLM_JUDGE, SourceType.CODE})


class GoldSource(StrEnum):
    DECISION = "decision"
    OVERRIDE = "override"
    AGREEMENT = "agreement"


class Entry(NamedTuple):
    """What the gold rule reads of one assessment."""

    assessment_id: str
    value: object
    rationale: str
    source_type: str
    person: str  # the annotator's pk, else the source id: one answer per person
    is_decision: bool
    overrides_machine: bool  # whether it overrides a judge's or code's entry
    updated: int


_updated = attrgetter("updated")


class Gold(NamedTuple):
    """A question's gold value (a tuple, as tens of thousands are made per report)."""

    value: object
    source: GoldSource
    rationale: str
    # The entries that give the gold value: the decision, the override, or the agreeing answers.
    assessment_ids: frozenset[str]


def _key(value):
    """Answers agree when their JSON is the same, numbers by value: True and 1 differ, 4 and
    4.0 do not."""
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
        return ("number", repr(float(value)))
    return ("json", json.dumps(value, sort_keys=True))


def gold_of(entries: Iterable[Entry]) -> Gold | None:
    """The gold value of one question from its live, valid entries (see the module)."""
    newest = sorted((e for e in entries if e.value is not None), key=_updated, reverse=True)
    override = None
    answers: dict[str, Entry] = {}
    for entry in newest:
        if entry.is_decision:
            return Gold(
                entry.value, GoldSource.DECISION, entry.rationale, frozenset([entry.assessment_id])
            )
        if entry.source_type == SourceType.HUMAN:
            if override is None and entry.overrides_machine:
                override = entry
            answers.setdefault(entry.person, entry)
    if override is not None:
        return Gold(
            override.value,
            GoldSource.OVERRIDE,
            override.rationale,
            frozenset([override.assessment_id]),
        )
    if len(answers) < 2:
        return None
    groups: dict[object, list[Entry]] = defaultdict(list)
    for entry in answers.values():
        groups[_key(entry.value)].append(entry)
    for group in groups.values():
        if len(group) >= 2 and 2 * len(group) > len(answers):
            oldest_first = sorted(group, key=_updated)
            rationales = dict.fromkeys(e.rationale for e in oldest_first if e.rationale)
            return Gold(
                group[0].value,
                GoldSource.AGREEMENT,
                "\n".join(rationales),
                frozenset(e.assessment_id for e in group),
            )
    return None


def lone_entry_is_gold(answered: bool, *, is_decision: bool, overrides_machine: bool) -> bool:
    """``gold_of`` for a question with one live, valid human entry, ``answered`` if its
    value is not None: it is gold only as a decision or as an override of a judge's or
    code's entry, since agreement takes two people. Readers of many rows (the export)
    settle most questions with it, without decoding the value."""
    return answered and (is_decision or overrides_machine)


def is_decision():
    """Annotates whether an assessment is an Admin's decision, without loading metadata."""
    return ExpressionWrapper(Q(metadata__has_key=ADJUDICATION_KEY), output_field=BooleanField())


def overrides_machine():
    """Annotates whether a live assessment overrides a judge's or code's entry. The few such
    overrides are one uncorrelated subquery (through the index of live overrides), which the
    database evaluates once, rather than a lookup or a join for every assessment."""
    overrides = Assessment.objects.filter(
        overrides__isnull=False,
        deleted_at__isnull=True,
        overrides__source_type__in=MACHINE_SOURCES,
    )
    return ExpressionWrapper(
        Q(pk__in=overrides.order_by().values("pk")), output_field=BooleanField()
    )


# What the rule reads of an assessment row: ``.values(*ENTRY_FIELDS)`` with
# ``decision=is_decision()`` and ``overrides_machine=overrides_machine()`` annotated.
ENTRY_FIELDS = (
    "trace_id",
    "span_id",
    "name",
    "assessment_id",
    "value",
    "rationale",
    "source_type",
    "annotator_id",
    "source_id",
    "valid",
    "deleted_at",
    "decision",
    "overrides_machine",
    "last_update_time",
)


def value_text():
    """Annotates an assessment's value as its stored JSON text, which ``json_numbers.loads``
    reads back faster than the field's own converter when there are many rows."""
    return Cast("value", TextField())


def person_of(annotator_id, source_id) -> str:
    return f"user:{annotator_id}" if annotator_id is not None else f"source:{source_id}"


def _counts(row: dict) -> bool:
    return row["deleted_at"] is None and row["valid"] and row["source_type"] == SourceType.HUMAN


def _entry(row: dict) -> Entry:
    return Entry(
        assessment_id=row["assessment_id"],
        value=row["value"],
        rationale=row["rationale"],
        source_type=row["source_type"],
        person=person_of(row["annotator_id"], row["source_id"]),
        is_decision=row["decision"],
        overrides_machine=row["overrides_machine"],
        updated=row["last_update_time"],
    )


def gold_per_question(by_question: dict[Question, list[Entry]]) -> dict[Question, Gold]:
    found = {}
    for question, entries in by_question.items():
        gold = gold_of(entries)
        if gold is not None:
            found[question] = gold
    return found


def gold_of_rows(rows: Iterable[dict]) -> dict[Question, Gold]:
    """Gold per question from assessment rows holding at least ``ENTRY_FIELDS``; rows the
    rule does not read (judges, deleted, overridden) may be among them."""
    by_question: dict[Question, list[Entry]] = defaultdict(list)
    for row in rows:
        if _counts(row):
            by_question[row["trace_id"], row["span_id"], row["name"]].append(_entry(row))
    return gold_per_question(by_question)


def gold_by_question(assessments: QuerySet[Assessment]) -> dict[Question, Gold]:
    """Gold per question over ``assessments`` (any filter: an experiment, a batch of traces,
    some names), in one query. The rows are read as plain tuples with the value's JSON text,
    which keeps tens of thousands of them cheap; the rule is ``gold_of`` as for any rows,
    with a shortcut for its commonest case (``_unanimous``)."""
    rows = (
        assessments.filter(deleted_at__isnull=True, valid=True, source_type=SourceType.HUMAN)
        .annotate(
            decision=is_decision(), overrides_machine=overrides_machine(), value_json=value_text()
        )
        .order_by("id")
        .values_list(
            "trace_id",
            "span_id",
            "name",
            "assessment_id",
            "value_json",
            "rationale",
            "annotator_id",
            "source_id",
            "decision",
            "overrides_machine",
            "last_update_time",
        )
    )
    by_question: dict[Question, list[tuple]] = defaultdict(list)
    for row in rows:
        by_question[row[0], row[1], row[2]].append(row[3:])
    found = {}
    for question, group in by_question.items():
        gold = _unanimous(group) or gold_of(_entries(group))
        if gold is not None:
            found[question] = gold
    return found


def _entries(group: list[tuple]) -> list[Entry]:
    return [
        Entry(aid, loads(value), why, SourceType.HUMAN, person_of(user, source), *flags, updated)
        for aid, value, why, user, source, *flags, updated in group
    ]


def _unanimous(group: list[tuple]) -> Gold | None:
    """``gold_of`` for a question that two or more people answered with the same JSON text
    and that nobody decided or overrode, the case of most questions; None for any other (the
    rule then decides). Same text is the same value, so all agree; the rationales are taken
    oldest first, as the rule does."""
    if len(group) < 2:
        return None
    text = group[0][1]
    people = set()
    for _, value, _, annotator, source, decision, overrides, _ in group:
        if value != text or decision or overrides:
            return None
        people.add(person_of(annotator, source))
    if text is None or text == "null" or len(people) < len(group):
        return None
    oldest_first = sorted(group, key=itemgetter(7))
    rationales = dict.fromkeys(row[2] for row in oldest_first if row[2])
    return Gold(
        loads(text),
        GoldSource.AGREEMENT,
        "\n".join(rationales),
        frozenset(row[0] for row in group),
    )
