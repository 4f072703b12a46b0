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
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from django.db.models import (
    BooleanField,
    Case,
    CharField,
    ExpressionWrapper,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)

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
    overrides_source: str | None  # source type of the entry it overrides
    updated: int


@dataclass(frozen=True)
class Gold:
    value: object
    source: GoldSource
    rationale: str
    # The entries that give the gold value: the decision, the override, or the agreeing answers.
    assessment_ids: frozenset[str]


def _key(value) -> str:
    """Answers agree when their JSON is the same, numbers by value: True and 1 differ, 4 and
    4.0 do not."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(float(value))
    return json.dumps(value, sort_keys=True)


def gold_of(entries: Iterable[Entry]) -> Gold | None:
    """The gold value of one question from its live, valid entries (see the module)."""
    entries = [e for e in entries if e.value is not None]
    newest = sorted(entries, key=lambda e: e.updated, reverse=True)
    for source, chosen in (
        (GoldSource.DECISION, [e for e in newest if e.is_decision]),
        (
            GoldSource.OVERRIDE,
            [
                e
                for e in newest
                if e.source_type == SourceType.HUMAN and e.overrides_source in MACHINE_SOURCES
            ],
        ),
    ):
        if chosen:
            first = chosen[0]
            return Gold(first.value, source, first.rationale, frozenset([first.assessment_id]))
    answers: dict[str, Entry] = {}
    for entry in newest:
        if entry.source_type == SourceType.HUMAN and not entry.is_decision:
            answers.setdefault(entry.person, entry)
    groups: dict[str, list[Entry]] = defaultdict(list)
    for entry in answers.values():
        groups[_key(entry.value)].append(entry)
    for group in groups.values():
        if len(group) >= 2 and 2 * len(group) > len(answers):
            oldest_first = sorted(group, key=lambda e: e.updated)
            rationales = dict.fromkeys(e.rationale for e in oldest_first if e.rationale)
            return Gold(
                group[0].value,
                GoldSource.AGREEMENT,
                "\n".join(rationales),
                frozenset(e.assessment_id for e in group),
            )
    return None


def is_decision():
    """Annotates whether an assessment is an Admin's decision, without loading metadata."""
    return ExpressionWrapper(Q(metadata__has_key=ADJUDICATION_KEY), output_field=BooleanField())


def overridden_source():
    """Annotates the source type of the entry an assessment overrides; looked up only for
    the few that override one, rather than joining every assessment to another."""
    target = Assessment.objects.filter(pk=OuterRef("overrides_id")).order_by().values("source_type")
    return Case(
        When(overrides_id__isnull=True, then=Value(None)),
        default=Subquery(target),
        output_field=CharField(),
    )


# What the rule reads of an assessment row: ``.values(*ENTRY_FIELDS)`` with
# ``decision=is_decision()`` and ``overrides_source=overridden_source()`` annotated.
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
    "overrides_source",
    "last_update_time",
)


def _counts(row: dict) -> bool:
    return row["deleted_at"] is None and row["valid"] and row["source_type"] == SourceType.HUMAN


def _entry(row: dict) -> Entry:
    annotator = row["annotator_id"]
    return Entry(
        assessment_id=row["assessment_id"],
        value=row["value"],
        rationale=row["rationale"],
        source_type=row["source_type"],
        person=f"user:{annotator}" if annotator is not None else f"source:{row['source_id']}",
        is_decision=row["decision"],
        overrides_source=row["overrides_source"],
        updated=row["last_update_time"],
    )


def gold_of_rows(rows: Iterable[dict]) -> dict[Question, Gold]:
    """Gold per question from assessment rows holding at least ``ENTRY_FIELDS``; rows the
    rule does not read (judges, deleted, overridden) may be among them."""
    by_question: dict[Question, list[Entry]] = defaultdict(list)
    for row in rows:
        if _counts(row):
            by_question[row["trace_id"], row["span_id"], row["name"]].append(_entry(row))
    found = {}
    for question, entries in by_question.items():
        gold = gold_of(entries)
        if gold is not None:
            found[question] = gold
    return found


def gold_by_question(assessments: QuerySet[Assessment]) -> dict[Question, Gold]:
    """Gold per question over ``assessments`` (any filter: an experiment, a batch of traces,
    some names), in one query."""
    rows = (
        assessments.filter(deleted_at__isnull=True, valid=True, source_type=SourceType.HUMAN)
        .annotate(decision=is_decision(), overrides_source=overridden_source())
        .order_by("id")
        .values(*ENTRY_FIELDS)
    )
    return gold_of_rows(rows)
