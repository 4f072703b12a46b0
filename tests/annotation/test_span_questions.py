"""Span questions: a queue schema asked of every span of a type or name pattern."""

import csv
import io
import json
import re

from django.core.exceptions import ValidationError
from django.test import TestCase

from annotation import quality, queues, review_queues, span_questions
from annotation.export import Export, ExportOptions
from annotation.gold import GoldSource, gold_by_question
from annotation.models import Assessment, AssessmentRevision, LabelSchema, QueueAssignment
from annotation.span_questions import SpanTarget
from tests.factories import make_admin, make_reviewer, make_span, make_trace
from traces.models import Trace
from traces.rest import ApiError

Status = QueueAssignment.Status


def make_schema(name, **kwargs):
    defaults = {"value_type": LabelSchema.ValueType.BOOLEAN, "applies_to": "span"}
    return LabelSchema.objects.create(name=name, **{**defaults, **kwargs})


def retrieval_trace(n_retrievers=2):
    trace = make_trace()
    root = make_span(trace, name="agent", span_type="AGENT")
    for n in range(n_retrievers):
        make_span(trace, parent=root, name=f"retrieve_{n}", span_type="RETRIEVER")
    make_span(trace, parent=root, name="search_web", span_type="TOOL")
    make_span(trace, parent=root, name="lookup_order", span_type="TOOL")
    return trace


class MatchingTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.relevant = make_schema("relevant")
        cls.retrievers_only = make_schema("grounded", span_types=["RETRIEVER"])

    def test_a_span_matches_by_type_by_glob_or_both(self):
        cases = [
            (SpanTarget(self.relevant, span_type="TOOL"), "TOOL", "search_web", True),
            (SpanTarget(self.relevant, span_type="TOOL"), "LLM", "search_web", False),
            (SpanTarget(self.relevant, name_pattern="search_*"), "LLM", "search_web", True),
            (SpanTarget(self.relevant, name_pattern="search_*"), "TOOL", "Search_web", False),
            (SpanTarget(self.relevant, "TOOL", "search_?eb"), "TOOL", "search_web", True),
            (SpanTarget(self.relevant, "TOOL", "search_*"), "TOOL", "lookup_order", False),
            (SpanTarget(self.retrievers_only, name_pattern="*"), "TOOL", "search_web", False),
            (SpanTarget(self.retrievers_only, name_pattern="*"), "RETRIEVER", "docs", True),
        ]
        for target, span_type, name, expected in cases:
            with self.subTest(target=target, span_type=span_type, name=name):
                self.assertIs(span_questions.matches(target, span_type, name), expected)

    def test_impossible_span_questions_are_refused(self):
        trace_schema = make_schema("helpful", applies_to="trace")
        both = make_schema("fine", applies_to="both")
        cases = {
            "span_target_empty": ([SpanTarget(self.relevant)], []),
            "span_target_trace_schema": ([SpanTarget(trace_schema, "TOOL")], []),
            "span_target_type": ([SpanTarget(self.retrievers_only, "TOOL")], []),
            "span_target_twice": ([SpanTarget(both, "TOOL")], [both]),
        }
        for code, (targets, trace_schemas) in cases.items():
            with self.subTest(code), self.assertRaises(ValidationError) as caught:
                span_questions.check_targets(targets, trace_schemas)
            self.assertEqual(caught.exception.code, code)


class CreateTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.ann = make_reviewer()
        cls.relevant = make_schema("relevant")

    def create(self, traces, targets, **kwargs):
        return queues.create_queue(
            name="Retrieval",
            traces=traces,
            schemas=kwargs.pop("schemas", []),
            span_targets=targets,
            annotators=[self.ann],
            **kwargs,
        )

    def test_a_queue_of_span_questions_only(self):
        queue = self.create([retrieval_trace()], [SpanTarget(self.relevant, "RETRIEVER")])
        [question] = queue.span_questions.all()
        self.assertEqual((question.schema, question.span_type), (self.relevant, "RETRIEVER"))
        self.assertEqual(list(queue.required_schemas.all()), [self.relevant])
        self.assertEqual(queues.item_schemas(queue.items.get()), [])

    def test_it_refuses_a_span_question_matching_no_span_of_a_trace_and_names_it(self):
        bare = make_trace()
        make_span(bare, name="agent", span_type="AGENT")
        with self.assertRaises(ValidationError) as caught:
            self.create([retrieval_trace(), bare], [SpanTarget(self.relevant, "RETRIEVER")])
        self.assertEqual(caught.exception.code, "span_target_unmatched")
        self.assertIn(
            f"'relevant' (RETRIEVER spans) matches no span of {bare.trace_id}",
            str(caught.exception),
        )
        self.assertFalse(Trace.objects.filter(queue_items__isnull=False).exists())

    def test_a_span_only_schema_is_not_a_trace_question(self):
        with self.assertRaises(ValidationError) as caught:
            self.create([retrieval_trace()], [], schemas=[self.relevant])
        self.assertEqual(caught.exception.code, "span_schema")

    def test_control_items_are_refused_with_a_message(self):
        queue = self.create([retrieval_trace()], [SpanTarget(self.relevant, "RETRIEVER")])
        with self.assertRaises(ValidationError) as caught:
            quality.set_control_answers(
                item=queue.items.get(), answers={"relevant": True}, actor=make_admin()
            )
        self.assertEqual(caught.exception.code, "span_questions_control")


class SpanQueueTestData:
    @classmethod
    def setUpTestData(cls):
        cls.ann, cls.bob = make_reviewer(username="ann"), make_reviewer(username="bob")
        cls.admin = make_admin(username="boss")
        cls.helpful = make_schema("helpful", applies_to="trace")
        cls.relevant = make_schema("relevant")
        cls.trace = retrieval_trace()
        cls.retrievers = list(cls.trace.spans.filter(span_type="RETRIEVER"))
        cls.queue = queues.create_queue(
            name="Retrieval",
            traces=[cls.trace],
            schemas=[cls.helpful],
            span_targets=[SpanTarget(cls.relevant, span_type="RETRIEVER")],
            annotators=[cls.ann, cls.bob],
            overlap=2,
        )
        cls.item = cls.queue.items.get()

    def answer(self, user, first, second, helpful=True):
        turn = queues.next_assignment(queue=self.queue, user=user)
        spans = {
            (self.retrievers[0].span_id, "relevant"): first,
            (self.retrievers[1].span_id, "relevant"): second,
        }
        queues.submit(assignment=turn, values={"helpful": helpful}, span_values=spans, actor=user)
        return turn


class SubmitTests(SpanQueueTestData, TestCase):
    def test_each_matching_span_is_asked_in_tree_order(self):
        asked = span_questions.asked_spans(self.item)
        self.assertEqual([a.span for a in asked], self.retrievers)
        self.assertEqual([a.schemas for a in asked], [[self.relevant], [self.relevant]])

    def test_the_item_is_done_only_once_every_matching_span_is_answered(self):
        turn = queues.next_assignment(queue=self.queue, user=self.ann)
        first = self.retrievers[0].span_id
        with self.assertRaises(ValidationError) as caught:
            queues.submit(
                assignment=turn,
                values={"helpful": True},
                span_values={(first, "relevant"): True},
                actor=self.ann,
            )
        self.assertEqual(caught.exception.code, "required")
        only = self.retrievers[1]
        self.assertIn(f'"relevant" on retrieve_1 (span {only.span_id})', caught.exception.message)
        self.assertFalse(Assessment.objects.exists())
        turn.refresh_from_db()
        self.assertEqual(turn.status, Status.ASSIGNED)

    def test_a_refusal_names_each_question_once_with_a_count_and_a_few_span_ids(self):
        many = [make_span(self.trace, name="stock_api", span_type="RETRIEVER") for _ in range(40)]
        turn = queues.next_assignment(queue=self.queue, user=self.ann)
        first = self.retrievers[0].span_id
        with self.assertRaises(ValidationError) as caught:
            queues.submit(
                assignment=turn, values={}, span_values={(first, "relevant"): True}, actor=self.ann
            )
        header, helpful, relevant = caught.exception.messages
        self.assertEqual(header, "Nothing was saved: answer these first.")
        self.assertEqual(helpful, '"helpful"')
        self.assertRegex(
            relevant,
            r'^"relevant" on 41 spans named (retrieve_1, stock_api|stock_api, retrieve_1) '
            r"\(\w{16}, \w{16}, \w{16} and 38 more\)$",
        )
        unanswered = {self.retrievers[1].span_id} | {span.span_id for span in many}
        self.assertLessEqual(set(re.findall(r"\w{16}", relevant)), unanswered)
        self.assertEqual({e.code for e in caught.exception.error_list}, {"required"})
        self.assertFalse(Assessment.objects.exists())

    def test_answers_are_span_assessments_with_revisions(self):
        turn = self.answer(self.ann, True, False)
        turn.refresh_from_db()
        self.assertEqual(turn.status, Status.DONE)
        answers = Assessment.objects.filter(name="relevant").order_by("value")
        self.assertEqual(
            [(a.span_id, a.value) for a in answers],
            [(self.retrievers[1].span_id, False), (self.retrievers[0].span_id, True)],
        )
        self.assertEqual(AssessmentRevision.objects.filter(assessment__in=answers).count(), 2)
        self.assertEqual(queues.progress(self.queue).labels_done, 1)

    def test_a_second_submission_updates_the_span_answers(self):
        self.answer(self.ann, True, False)
        queues.reopen_item(item=self.item)
        self.answer(self.ann, False, False)
        self.assertEqual(
            sorted(Assessment.objects.filter(name="relevant").values_list("value", "version")),
            [(False, 2), (False, 2)],
        )

    def test_a_span_the_question_does_not_match_is_refused(self):
        turn = queues.next_assignment(queue=self.queue, user=self.ann)
        tool = self.trace.spans.get(name="search_web")
        with self.assertRaises(ValidationError) as caught:
            queues.submit(
                assignment=turn,
                values={"helpful": True},
                span_values={(tool.span_id, "relevant"): True},
                actor=self.ann,
            )
        self.assertEqual(caught.exception.code, "unknown_schema")

    def test_a_blind_annotator_does_not_see_others_span_answers(self):
        self.answer(self.ann, True, True)
        queues.next_assignment(queue=self.queue, user=self.bob)
        hidden = queues.hidden_answers(user=self.bob, traces=[self.trace])
        span_answers = Assessment.objects.filter(name="relevant")
        self.assertTrue(all(hidden.hides(a) for a in span_answers))
        visible = Assessment.objects.exclude(queues.hidden_answers_condition(user=self.bob))
        self.assertFalse(visible.filter(name="relevant").exists())


class ResultTests(SpanQueueTestData, TestCase):
    def setUp(self):
        self.answer(self.ann, True, True)
        self.answer(self.bob, True, False)

    def test_agreement_counts_each_span_as_a_unit(self):
        by_name = {row.schema.name: row for row in queues.queue_agreement(self.queue)}
        self.assertEqual(by_name["relevant"].items, 2)
        self.assertEqual(by_name["relevant"].pairable_items, 2)
        self.assertEqual(by_name["helpful"].items, 1)

    def test_a_disagreement_names_its_span(self):
        [found] = queues.disagreements(self.queue)
        self.assertEqual((found.schema, found.span_id), (self.relevant, self.retrievers[1].span_id))

    def test_a_decision_on_a_span_is_its_gold_value(self):
        span_id = self.retrievers[1].span_id
        decision = queues.adjudicate(
            item=self.item, schema=self.relevant, value=True, span_id=span_id, actor=self.admin
        )
        self.assertEqual(decision.span_id, span_id)
        [found] = queues.disagreements(self.queue)
        self.assertEqual(found.decision, decision)
        answers = queues.answers_to_decide(item=self.item, schema=self.relevant, span_id=span_id)
        self.assertEqual([a.annotator for a in answers], [self.ann, self.bob])
        gold = gold_by_question(Assessment.objects.all())
        self.assertEqual(gold[self.trace.pk, span_id, "relevant"].value, True)
        self.assertEqual(gold[self.trace.pk, span_id, "relevant"].source, GoldSource.DECISION)
        self.assertEqual(gold[self.trace.pk, self.retrievers[0].span_id, "relevant"].value, True)

    def test_export_rows_carry_the_span_id(self):
        traces = Trace.objects.filter(pk=self.trace.pk)
        rows = list(csv.DictReader(io.StringIO("".join(Export(traces, ExportOptions())))))
        span_rows = sorted(
            (row["span_id"], row["annotator"], row["value"])
            for row in rows
            if row["name"] == "relevant"
        )
        first, second = (s.span_id for s in self.retrievers)
        self.assertEqual(
            span_rows,
            sorted(
                [
                    (first, "ann", "true"),
                    (second, "ann", "true"),
                    (first, "bob", "true"),
                    (second, "bob", "false"),
                ]
            ),
        )
        lines = "".join(Export(traces, ExportOptions(format="jsonl"))).splitlines()
        records = [json.loads(line) for line in lines]
        self.assertEqual(
            {r["span_id"] for r in records if r["name"] == "relevant"}, {first, second}
        )
        self.assertEqual({r["span_id"] for r in records if r["name"] == "helpful"}, {None})


class AddItemsTests(TestCase):
    def test_traces_added_later_must_match_too_and_are_named(self):
        relevant = make_schema("relevant")
        first = retrieval_trace()
        queue = queues.create_queue(
            name="Retrieval",
            traces=[first],
            schemas=[],
            span_targets=[SpanTarget(relevant, name_pattern="retrieve_*")],
            annotators=[make_reviewer()],
        )
        queue.experiment = first.experiment
        queue.save(update_fields=["experiment"])
        bare = make_trace()
        make_span(bare, name="agent", span_type="AGENT")
        with self.assertRaisesMessage(ApiError, f"matches no span of {bare.trace_id}"):
            review_queues.add_items(
                queue=queue, item_ids=[bare.trace_id, retrieval_trace().trace_id]
            )
        self.assertEqual(queue.items.count(), 1)
