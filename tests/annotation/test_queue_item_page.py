"""The queue item page shows the review page's trace view beside the queue's questions."""

from django.test import TestCase
from django.urls import reverse

from annotation import queues, services
from annotation.models import LabelSchema
from tests.factories import make_admin, make_reviewer, make_span, make_trace

HTMX_SPAN = {"HX-Request": "true", "HX-Target": "span-panel"}


class QueueItemTraceViewTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.ann = make_reviewer(username="ann")
        cls.failed = make_trace(state="ERROR", response_preview="")
        cls.root = make_span(cls.failed, name="agent", span_type="AGENT", status="ERROR")
        cls.ok_child = make_span(cls.failed, parent=cls.root, name="plan", start_time_ns=10)
        cls.tool = make_span(
            cls.failed,
            parent=cls.root,
            name="lookup_order",
            span_type="TOOL",
            status="ERROR",
            status_message="TimeoutError: order service did not answer",
            inputs={"order": 42},
        )
        schemas = [
            LabelSchema.objects.create(name="correct", value_type="boolean"),
            LabelSchema.objects.create(
                name="rating", value_type="numeric", min_value=1, max_value=5, step=1
            ),
            LabelSchema.objects.create(
                name="issue", value_type="categorical", options=["none", "tool error"]
            ),
        ]
        cls.queue = queues.create_queue(
            name="Errors",
            traces=[cls.failed],
            schemas=schemas,
            annotators=[cls.ann],
            created_by=make_admin(),
        )
        cls.url = reverse("annotation:queue-item", args=[cls.queue.pk, 1])

    def setUp(self):
        self.client.force_login(self.ann)
        queues.next_assignment(queue=self.queue, user=self.ann)

    def test_it_shows_the_span_tree_and_opens_an_error_trace_at_its_first_failing_span(self):
        response = self.client.get(self.url)
        self.assertContains(response, 'role="tree"')
        self.assertContains(response, f'id="node-{self.tool.span_id}"')
        self.assertContains(response, 'aria-selected="true"', count=1)
        self.assertEqual(response.context["detail"]["span"], self.root)
        self.assertContains(response, 'class="error-box"')

    def test_a_span_chosen_in_the_tree_renders_only_its_detail(self):
        response = self.client.get(self.url, {"span": self.tool.span_id}, headers=HTMX_SPAN)
        html = response.content.decode().strip()
        self.assertTrue(html.startswith('<section id="span-panel"'))
        self.assertIn("TimeoutError: order service did not answer", html)
        self.assertNotIn("Submit and next", html)

    def test_a_span_of_another_trace_is_not_found_and_a_malformed_one_is_ignored(self):
        other = make_span(make_trace(), name="elsewhere")
        self.assertEqual(self.client.get(self.url, {"span": other.span_id}).status_code, 404)
        response = self.client.get(self.url, {"span": "<script>"})
        self.assertEqual(response.status_code, 200)
        self.assertNotContains(response, "<script>")

    def test_a_schema_without_comments_shows_no_rationale_box(self):
        box = 'placeholder="Why? (optional)"'
        self.assertContains(self.client.get(self.url), box, count=3)
        LabelSchema.objects.filter(name="correct").update(enable_comment=False)
        self.assertContains(self.client.get(self.url), box, count=2)

    def test_a_multi_select_question_offers_checkboxes_with_its_letters(self):
        LabelSchema.objects.filter(name="issue").update(multi_select=True)
        response = self.client.get(self.url)
        self.assertContains(response, 'type="checkbox"', count=2)
        self.assertContains(response, 'value="tool error" data-key="b"')

    def test_questions_offer_the_review_page_keys(self):
        response = self.client.get(self.url)
        self.assertContains(response, "data-autofocus-question")
        self.assertContains(response, 'data-key="y"')
        self.assertContains(response, 'data-key="n"')
        for point in range(1, 6):
            self.assertContains(response, f'value="{point}" data-key="{point}"')
        self.assertContains(response, 'value="none" data-key="a"')
        self.assertContains(response, 'value="tool error" data-key="b"')

    def test_a_submitted_answer_shows_as_chosen(self):
        schemas = {s.name: s for s in self.queue.schemas.all()}
        data = {
            f"s{schemas['correct'].pk}-value": "false",
            f"s{schemas['rating'].pk}-value": "2",
            f"s{schemas['issue'].pk}-value": "tool error",
        }
        self.client.post(self.url, data)
        response = self.client.get(self.url)
        self.assertContains(response, 'value="false" data-key="n" aria-keyshortcuts="n" checked')
        self.assertContains(response, 'value="2" data-key="2" aria-keyshortcuts="2" checked')
        self.assertContains(response, 'data-key="b" aria-keyshortcuts="b" checked')

    def test_an_answer_given_before_says_where_it_came_from(self):
        response = self.client.get(self.url)
        self.assertNotContains(response, "Filled in from your answer")
        services.log_feedback(trace=self.failed, name="correct", value=False, actor=self.ann)
        response = self.client.get(self.url)
        self.assertContains(response, "Filled in from your answer of", count=1)
        self.assertContains(response, 'value="false" data-key="n" aria-keyshortcuts="n" checked')
