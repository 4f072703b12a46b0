"""Span questions in the browser: set on the new-queue page, answered on the queue item,
decided per span."""

from django.db import connection
from django.test import Client, TestCase
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from annotation import queues, services
from annotation.models import Assessment, LabelSchema, Queue
from annotation.span_questions import SpanTarget
from tests.factories import make_admin, make_reviewer, make_span, make_trace
from traces.models import Span


def retrieval_trace():
    trace = make_trace()
    root = make_span(trace, name="agent", span_type="AGENT")
    for n in range(2):
        make_span(
            trace,
            parent=root,
            name=f"retrieve_{n}",
            span_type="RETRIEVER",
            outputs=[{"page_content": f"Returns policy, part {n}"}],
        )
    return trace


class SpanQuestionTestData:
    @classmethod
    def setUpTestData(cls):
        cls.admin = make_admin(username="boss")
        cls.ann, cls.bob = make_reviewer(username="ann"), make_reviewer(username="bob")
        cls.helpful = LabelSchema.objects.create(
            name="helpful", value_type="boolean", applies_to="trace"
        )
        cls.relevant = LabelSchema.objects.create(
            name="relevant", title="Relevant?", value_type="boolean", applies_to="span"
        )
        cls.trace = retrieval_trace()
        cls.retrievers = list(cls.trace.spans.filter(span_type="RETRIEVER"))


class CreateWithSpanQuestionsTests(SpanQuestionTestData, TestCase):
    def setUp(self):
        self.client.force_login(self.admin)

    def data(self, **overrides):
        data = {
            "name": "Retrieval",
            "source": "ids",
            "limit": "100",
            "trace_ids": self.trace.trace_id,
            "schemas": [self.helpful.pk],
            "annotators": [self.ann.pk, self.bob.pk],
            "overlap": "2",
            "spanq-TOTAL_FORMS": "2",
            "spanq-INITIAL_FORMS": "0",
            "spanq-0-schema": self.relevant.pk,
            "spanq-0-span_type": "RETRIEVER",
            "spanq-0-name_pattern": "retrieve_*",
        }
        data.update(overrides)
        return data

    def test_the_form_offers_span_schemas_and_explains_the_glob(self):
        response = self.client.get(reverse("annotation:queue-create"))
        self.assertContains(response, 'name="spanq-0-schema"')
        self.assertContains(response, "Glob syntax: search_*")
        self.assertContains(response, '<option value="RETRIEVER">')

    def test_it_creates_a_queue_with_a_span_question(self):
        response = self.client.post(reverse("annotation:queue-create"), self.data())
        queue = Queue.objects.get(name="Retrieval")
        self.assertRedirects(response, reverse("annotation:queue-detail", args=[queue.pk]))
        [question] = queue.span_questions.all()
        self.assertEqual(
            (question.schema, question.span_type, question.name_pattern),
            (self.relevant, "RETRIEVER", "retrieve_*"),
        )
        self.assertEqual(set(queue.required_schemas.all()), {self.helpful, self.relevant})

    def test_a_span_question_matching_nothing_is_refused_with_the_trace_named(self):
        data = self.data(**{"spanq-0-name_pattern": "search_*"})
        response = self.client.post(reverse("annotation:queue-create"), data)
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, f"matches no span of {self.trace.trace_id}")
        self.assertContains(response, "Change the span type or name pattern")
        self.assertNotContains(response, "leave those traces out")
        self.assertFalse(Queue.objects.exists())

    def test_a_known_span_type_in_any_case_is_stored_as_mlflow_writes_it(self):
        data = self.data(**{"spanq-0-span_type": " retriever "})
        self.client.post(reverse("annotation:queue-create"), data)
        [question] = Queue.objects.get(name="Retrieval").span_questions.all()
        self.assertEqual(question.span_type, "RETRIEVER")

    def test_an_unknown_span_type_keeps_its_case(self):
        data = self.data(**{"spanq-0-span_type": "myStep"})
        response = self.client.post(reverse("annotation:queue-create"), data)
        self.assertContains(response, "myStep")
        self.assertFalse(Queue.objects.exists())

    def test_a_row_without_a_target_says_so(self):
        data = self.data(**{"spanq-0-span_type": "", "spanq-0-name_pattern": ""})
        response = self.client.post(reverse("annotation:queue-create"), data)
        self.assertContains(response, "Give a span type, a name pattern or both.")
        self.assertFalse(Queue.objects.exists())


class SpanQuestionItemTests(SpanQuestionTestData, TestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        cls.queue = queues.create_queue(
            name="Retrieval",
            traces=[cls.trace],
            schemas=[cls.helpful],
            span_targets=[SpanTarget(cls.relevant, span_type="RETRIEVER")],
            annotators=[cls.ann, cls.bob],
            overlap=2,
        )
        cls.url = reverse("annotation:queue-item", args=[cls.queue.pk, 1])

    def field(self, span, name="value"):
        return f"span{span.span_id}-s{self.relevant.pk}-{name}"

    def label(self, user, first, second):
        client = Client()
        client.force_login(user)
        client.post(reverse("annotation:queue-next", args=[self.queue.pk]))
        data = {
            f"s{self.helpful.pk}-value": "true",
            self.field(self.retrievers[0]): first,
            self.field(self.retrievers[1]): second,
        }
        return client.post(self.url, data)

    def test_each_matching_span_shows_its_outputs_and_question_with_keys(self):
        self.client.force_login(self.ann)
        self.client.post(reverse("annotation:queue-next", args=[self.queue.pk]))
        response = self.client.get(self.url)
        self.assertContains(response, 'data-testid="span-question"', count=2)
        self.assertContains(response, "Returns policy, part 1")
        for span in self.retrievers:
            self.assertContains(response, f'name="{self.field(span)}" value="true" data-key="y"')
            self.assertContains(response, f'id="question-span{span.span_id}-s{self.relevant.pk}"')

    def test_the_page_takes_the_same_queries_however_many_spans_match(self):
        self.client.force_login(self.ann)
        self.client.post(reverse("annotation:queue-next", args=[self.queue.pk]))
        with CaptureQueriesContext(connection) as two:
            self.client.get(self.url)
        for n in range(3):
            make_span(self.trace, name=f"more_{n}", span_type="RETRIEVER")
        with self.assertNumQueries(len(two)):
            response = self.client.get(self.url)
        self.assertContains(response, 'data-testid="span-question"', count=5)

    def test_answers_are_saved_per_span_and_the_next_item_follows(self):
        response = self.label(self.ann, "true", "false")
        self.assertRedirects(response, reverse("annotation:queue-detail", args=[self.queue.pk]))
        self.assertEqual(
            dict(Assessment.objects.filter(name="relevant").values_list("span_id", "value")),
            {self.retrievers[0].span_id: True, self.retrievers[1].span_id: False},
        )

    def test_a_missing_span_answer_is_asked_for_by_span_name(self):
        response = self.label(self.ann, "true", "")
        span_id = self.retrievers[1].span_id
        self.assertContains(
            response, f"answer &quot;Relevant?&quot; on retrieve_1 (span {span_id}) first"
        )
        self.assertFalse(Assessment.objects.exists())

    def test_the_queue_page_names_the_spans_asked_of_each_item(self):
        self.label(self.ann, "true", "true")
        asked = (
            'spans retrieve_0 <span class="tag">RETRIEVER</span>, '
            'retrieve_1 <span class="tag">RETRIEVER</span>'
        )
        self.client.force_login(self.ann)
        page = self.client.get(reverse("annotation:queue-detail", args=[self.queue.pk]))
        self.assertContains(page, asked, count=1)  # your answers
        self.client.force_login(self.admin)
        page = self.client.get(reverse("annotation:queue-detail", args=[self.queue.pk]))
        self.assertContains(page, asked, count=1)  # the items table

    def test_no_control_item_is_offered_in_a_queue_of_span_questions(self):
        self.client.force_login(self.admin)
        page = self.client.get(reverse("annotation:queue-detail", args=[self.queue.pk]))
        self.assertNotContains(page, "Make control item")
        self.assertNotContains(
            page, reverse("annotation:queue-control-item", args=[self.queue.pk, 1])
        )
        url = reverse("annotation:queue-control-item", args=[self.queue.pk, 1])
        editor = self.client.get(url)
        self.assertContains(editor, "This queue asks span questions, so it has no control items")
        self.assertNotContains(editor, '<form method="post" class="panel stacked"')
        self.assertNotContains(editor, "Relevant?")
        refused = self.client.post(url, {"control": "true", f"s{self.helpful.pk}-value": "true"})
        self.assertContains(refused, "so it has no control items")
        self.assertFalse(self.queue.items.get(position=1).is_control)

    def test_the_queue_page_finds_asked_spans_in_constant_queries(self):
        self.client.force_login(self.admin)
        with CaptureQueriesContext(connection) as one:
            self.client.get(reverse("annotation:queue-detail", args=[self.queue.pk]))
        more = queues.create_queue(
            name="More retrieval",
            traces=[retrieval_trace() for _ in range(3)],
            schemas=[self.helpful],
            span_targets=[SpanTarget(self.relevant, span_type="RETRIEVER")],
            annotators=[self.ann, self.bob],
            overlap=2,
        )
        with self.assertNumQueries(len(one.captured_queries)):
            page = self.client.get(reverse("annotation:queue-detail", args=[more.pk]))
        self.assertContains(page, "spans retrieve_0", count=3)

    def test_span_disagreements_are_named_with_one_query_for_all_their_spans(self):
        self.label(self.ann, "true", "true")
        self.label(self.bob, "true", "false")
        self.client.force_login(self.admin)
        url = reverse("annotation:queue-disagreements", args=[self.queue.pk])
        with CaptureQueriesContext(connection) as one:
            self.client.get(url)
        anns = Assessment.objects.get(annotator=self.ann, span_id=self.retrievers[0].span_id)
        services.update_assessment(assessment_id=anns.assessment_id, value=False, actor=self.ann)
        with self.assertNumQueries(len(one.captured_queries)):
            listing = self.client.get(url)
        self.assertEqual(len(listing.context["disagreements"]), 2)
        self.assertContains(listing, "on span retrieve_0")

    def test_the_admin_decides_a_span_disagreement(self):
        self.label(self.ann, "true", "true")
        self.label(self.bob, "true", "false")
        self.client.force_login(self.admin)
        span = self.retrievers[1]
        listing = self.client.get(reverse("annotation:queue-disagreements", args=[self.queue.pk]))
        decide = (
            reverse("annotation:queue-adjudicate", args=[self.queue.pk, 1, self.relevant.pk])
            + f"?span={span.span_id}"
        )
        self.assertContains(listing, decide)
        self.assertContains(listing, 'on span retrieve_1 <span class="tag">RETRIEVER</span>')
        self.assertNotContains(listing, f"<code>{span.span_id}</code>")
        Span.objects.filter(pk=span.pk).update(inputs={"query": "refund window"})
        page = self.client.get(decide)
        self.assertContains(page, "Decide Relevant? for item 1, span retrieve_1")
        self.assertEqual(len(page.context["answers"]), 2)
        self.assertNotContains(page, "Thumbs")
        html = page.content.decode()
        decision_form = html.index('id="decision-form"')
        self.assertLess(decision_form, html.index("decide-trace-title"))
        self.assertIn('data-key="y"', html[decision_form:])
        self.assertIn("Yes <kbd", html[decision_form:])
        self.assertContains(page, "Returns policy, part 1")
        self.assertContains(page, "refund window")
        self.client.post(decide, {"value": "true", "rationale": "Part 1 has the policy."})
        decision = Assessment.objects.get(metadata__has_key=queues.ADJUDICATION_KEY)
        self.assertEqual((decision.span_id, decision.value), (span.span_id, True))
