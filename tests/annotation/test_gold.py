from django.test import TestCase

from annotation import queues, services
from annotation.gold import (
    ENTRY_FIELDS,
    Entry,
    GoldSource,
    gold_by_question,
    gold_of,
    gold_of_rows,
    is_decision,
    lone_entry_is_gold,
    overrides_machine,
)
from annotation.models import Assessment, LabelSchema
from tests.factories import make_admin, make_judge_entry, make_reviewer, make_span, make_trace


def answer(trace, person, value, name="correct", **fields):
    return services.log_feedback(
        trace=trace, name=name, value=value, source_id=person.get_username(), actor=person, **fields
    )


def judge(trace, value, **fields):
    return make_judge_entry(trace, value, **fields)


def gold(trace, name="correct", span_id=None):
    return gold_by_question(Assessment.objects.filter(trace=trace)).get((trace.pk, span_id, name))


class GoldRuleTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.rita, cls.ravi, cls.rosa, cls.remo = (make_reviewer() for _ in range(4))
        cls.admin = make_admin()
        cls.schema = LabelSchema.objects.create(
            name="correct", value_type="boolean", applies_to="both"
        )

    def test_an_admins_decision_is_gold_over_every_answer(self):
        trace = make_trace()
        answer(trace, self.rita, True, rationale="fine")
        answer(trace, self.ravi, False, rationale="wrong")
        answer(trace, self.rosa, True)
        queue = queues.create_queue(
            name="q", traces=[trace], schemas=[self.schema], annotators=[self.rita, self.ravi]
        )
        decision = queues.adjudicate(
            item=queue.items.get(),
            schema=self.schema,
            value=False,
            rationale="Policy 4.2 says no.",
            actor=self.admin,
        )
        found = gold(trace)
        self.assertEqual(found.value, False)
        self.assertEqual(found.source, GoldSource.DECISION)
        self.assertEqual(found.rationale, "Policy 4.2 says no.")
        self.assertEqual(found.assessment_ids, {decision.assessment_id})

    def test_a_human_override_of_the_judge_is_gold_when_there_is_no_decision(self):
        trace = make_trace()
        entry = judge(trace, True)
        answer(trace, self.rita, True)
        override = services.override_feedback(
            assessment_id=entry.assessment_id,
            value=False,
            rationale="Misread the policy.",
            source_id="ravi",
            actor=self.ravi,
        )
        found = gold(trace)
        self.assertEqual((found.value, found.source), (False, GoldSource.OVERRIDE))
        self.assertEqual(found.assessment_ids, {override.assessment_id})

    def test_a_human_override_of_another_human_is_not_an_override_of_the_judge(self):
        trace = make_trace()
        first = answer(trace, self.rita, True)
        # Only an Admin may override a person's answer; outside a queue it is no decision.
        services.override_feedback(
            assessment_id=first.assessment_id,
            value=False,
            source_id=self.admin.get_username(),
            actor=self.admin,
        )
        self.assertIsNone(gold(trace))

    def test_unanimous_answers_of_two_people_are_gold(self):
        trace = make_trace()
        answer(trace, self.rita, True, rationale="Cites the policy.")
        answer(trace, self.ravi, True, rationale="Correct.")
        found = gold(trace)
        self.assertEqual((found.value, found.source), (True, GoldSource.AGREEMENT))
        self.assertEqual(found.rationale, "Cites the policy.\nCorrect.")
        self.assertEqual(len(found.assessment_ids), 2)

    def test_a_majority_of_at_least_two_people_is_gold(self):
        trace = make_trace()
        answer(trace, self.rita, False)
        answer(trace, self.ravi, True)
        answer(trace, self.rosa, False)
        self.assertEqual(gold(trace).value, False)

    def test_one_answer_a_tie_or_a_split_is_no_gold(self):
        alone, tie, split = make_trace(), make_trace(), make_trace()
        answer(alone, self.rita, True)
        for person, value in [(self.rita, True), (self.ravi, False)]:
            answer(tie, person, value)
        for person, value in [(self.rita, 1), (self.ravi, 1), (self.rosa, 2), (self.remo, 3)]:
            answer(split, person, value, name="score")
        self.assertIsNone(gold(alone))
        self.assertIsNone(gold(tie))
        # Two of four is no strict majority.
        self.assertIsNone(gold(split, name="score"))

    def test_judges_deleted_and_overridden_answers_are_not_votes(self):
        trace = make_trace()
        judge(trace, True)
        judge(trace, True, source_id="judge-b")
        answer(trace, self.rita, True)
        deleted = answer(trace, self.ravi, True)
        services.delete_assessment(assessment_id=deleted.assessment_id, actor=self.ravi)
        self.assertIsNone(gold(trace))

    def test_the_same_answer_twice_from_one_person_is_one_vote(self):
        trace = make_trace()
        answer(trace, self.rita, "a", name="notes")
        answer(trace, self.rita, "a", name="notes")
        self.assertIsNone(gold(trace, name="notes"))

    def test_values_agree_only_with_the_same_json_type(self):
        trace = make_trace()
        answer(trace, self.rita, 1, name="score")
        answer(trace, self.ravi, True, name="score")
        self.assertIsNone(gold(trace, name="score"))
        other = make_trace()
        answer(other, self.rita, 4, name="score")
        answer(other, self.ravi, 4.0, name="score")
        self.assertEqual(gold(other, name="score").value, 4)

    def test_spans_and_traces_are_separate_questions(self):
        trace = make_trace()
        span = make_span(trace)
        answer(trace, self.rita, True, span_id=span.span_id)
        answer(trace, self.ravi, True, span_id=span.span_id)
        self.assertIsNone(gold(trace))
        self.assertEqual(gold(trace, span_id=span.span_id).value, True)

    def test_it_reads_gold_in_one_query(self):
        traces = [make_trace() for _ in range(3)]
        for trace in traces:
            answer(trace, self.rita, True)
            answer(trace, self.ravi, True)
        with self.assertNumQueries(1):
            found = gold_by_question(Assessment.objects.filter(trace__in=traces))
        self.assertEqual(len(found), 3)


class GoldReadsTests(TestCase):
    """``gold_by_question`` reads plain rows with the value's JSON text; the export hands
    ``gold_of_rows`` the field's own values. Both must give the same gold."""

    @classmethod
    def setUpTestData(cls):
        cls.rita, cls.ravi, cls.rosa = (make_reviewer() for _ in range(3))
        cls.admin = make_admin()
        cls.schema = LabelSchema.objects.create(
            name="correct", value_type="boolean", applies_to="both"
        )

    def test_both_reads_give_the_same_gold_on_every_branch(self):
        decided, overridden, agreed, tied, spanned = (make_trace() for _ in range(5))
        for person, value in [(self.rita, True), (self.ravi, False)]:
            answer(decided, person, value)
            answer(tied, person, value)
        queue = queues.create_queue(
            name="q", traces=[decided], schemas=[self.schema], annotators=[self.rita, self.ravi]
        )
        queues.adjudicate(item=queue.items.get(), schema=self.schema, value=True, actor=self.admin)
        entry = judge(overridden, True)
        services.override_feedback(
            assessment_id=entry.assessment_id, value=False, source_id="ravi", actor=self.ravi
        )
        span = make_span(spanned)
        for person in (self.rita, self.ravi):
            answer(spanned, person, True, span_id=span.span_id)
        values = {
            "score": [4, 4.0, 2],
            "tiny": [-0.0, -0.0, 1],
            "huge": [1e20, 1e20, 1],
            "label": ["yes", "yes", "true"],
            "tags": [{"b": [1, 2], "a": None}, {"a": None, "b": [1, 2]}, [1]],
        }
        for name, answers in values.items():
            for person, value in zip((self.rita, self.ravi, self.rosa), answers, strict=True):
                answer(agreed, person, value, name=name)
        # The shortcut for unanimous answers must step aside when one person answered twice,
        # and keep the rule's oldest-first rationales.
        answer(agreed, self.rita, "same", name="twice")
        answer(agreed, self.rita, "same", name="twice")
        answer(agreed, self.rita, "same", name="alone")
        answer(agreed, self.rita, "same", name="alone")
        for person, why in [(self.rosa, "first"), (self.ravi, "second"), (self.rita, "second")]:
            answer(agreed, person, 3, name="reasons", rationale=why)
        answer(agreed, self.ravi, "same", name="twice")
        deleted = answer(agreed, self.rosa, True)
        services.delete_assessment(assessment_id=deleted.assessment_id, actor=self.rosa)
        judge(agreed, True)

        rows = (
            Assessment.objects.annotate(
                decision=is_decision(), overrides_machine=overrides_machine()
            )
            .order_by("id")
            .values(*ENTRY_FIELDS)
        )
        by_rows = gold_of_rows(rows)
        self.assertEqual(gold_by_question(Assessment.objects.all()), by_rows)
        self.assertEqual(
            {name: by_rows[agreed.pk, None, name].value for name in values},
            {"score": 4, "tiny": -0.0, "huge": 1e20, "label": "yes", "tags": values["tags"][0]},
        )
        self.assertNotIn((agreed.pk, None, "correct"), by_rows)
        self.assertNotIn((agreed.pk, None, "alone"), by_rows)
        self.assertEqual(by_rows[agreed.pk, None, "twice"].value, "same")
        self.assertEqual(by_rows[agreed.pk, None, "reasons"].rationale, "first\nsecond")
        self.assertEqual(by_rows[decided.pk, None, "correct"].source, GoldSource.DECISION)
        self.assertEqual(by_rows[overridden.pk, None, "correct"].source, GoldSource.OVERRIDE)
        self.assertNotIn((tied.pk, None, "correct"), by_rows)
        self.assertIn((spanned.pk, span.span_id, "correct"), by_rows)
        tiny = by_rows[agreed.pk, None, "tiny"].value
        self.assertEqual((tiny, str(tiny)), (0.0, "-0.0"))
        self.assertIs(type(by_rows[agreed.pk, None, "huge"].value), float)

    def test_only_live_overrides_of_a_judge_or_code_are_marked(self):
        trace = make_trace()
        of_judge = services.override_feedback(
            assessment_id=judge(trace, True).assessment_id,
            value=False,
            source_id="ravi",
            actor=self.ravi,
        )
        of_person = services.override_feedback(
            assessment_id=answer(trace, self.rita, True, name="other").assessment_id,
            value=False,
            source_id=self.admin.get_username(),
            actor=self.admin,
        )
        deleted = services.override_feedback(
            assessment_id=judge(trace, True, name="third").assessment_id,
            value=False,
            source_id="ravi",
            actor=self.ravi,
        )
        services.delete_assessment(assessment_id=deleted.assessment_id, actor=self.ravi)
        marked = dict(
            Assessment.objects.annotate(machine=overrides_machine()).values_list(
                "assessment_id", "machine"
            )
        )
        self.assertIs(marked[of_judge.assessment_id], True)
        self.assertIs(marked[of_person.assessment_id], False)
        self.assertIs(marked[deleted.assessment_id], False)


class LoneEntryTests(TestCase):
    def test_the_lone_entry_shortcut_agrees_with_the_rule(self):
        for value in (None, True, 3):
            for decision in (False, True):
                for machine in (False, True):
                    with self.subTest(value=value, decision=decision, machine=machine):
                        entry = Entry("a-1", value, "", "HUMAN", "user:1", decision, machine, 1)
                        self.assertEqual(
                            lone_entry_is_gold(
                                value is not None, is_decision=decision, overrides_machine=machine
                            ),
                            gold_of([entry]) is not None,
                        )
