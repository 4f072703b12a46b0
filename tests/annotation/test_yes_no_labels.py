"""A yes/no schema's own labels ("Helpful" / "Unhelpful") wherever its answers show; keys
stay y and n, exports stay true and false."""

from django.test import TestCase
from django.urls import reverse

from annotation import queues, services
from annotation.models import LabelSchema
from tests.factories import make_admin, make_judge_entry, make_reviewer, make_span, make_trace

HELPFUL = '<span aria-hidden="true">✓</span> Helpful'
UNHELPFUL = '<span aria-hidden="true">✗</span> Unhelpful'


class YesNoLabelTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.admin = make_admin(username="boss")
        cls.ann = make_reviewer(username="ann")
        cls.bob = make_reviewer(username="bob")
        cls.schema = LabelSchema.objects.create(
            name="helpful", value_type="boolean", positive_label="Helpful",
            negative_label="Unhelpful",
        )  # fmt: skip
        cls.plain = LabelSchema.objects.create(name="correct", value_type="boolean")
        cls.trace = make_trace()
        cls.span = make_span(cls.trace, name="answer")
        cls.queue = queues.create_queue(
            name="Helpfulness", traces=[cls.trace], schemas=[cls.schema],
            annotators=[cls.ann, cls.bob], overlap=2, blind=False, created_by=cls.admin,
        )  # fmt: skip
        cls.bobs = services.log_feedback(
            trace=cls.trace, name="helpful", value=False, actor=cls.bob
        )
        services.log_feedback(
            trace=cls.trace, span_id=cls.span.span_id, name="helpful", value=True, actor=cls.bob
        )

    def test_the_review_pages_buttons_cards_and_span_summary_use_the_schemas_labels(self):
        self.client.force_login(self.ann)
        page = self.client.get(self.trace.get_absolute_url())
        self.assertContains(page, f'{HELPFUL} <kbd aria-hidden="true">y</kbd>')
        self.assertContains(page, f'{UNHELPFUL} <kbd aria-hidden="true">n</kbd>')
        self.assertContains(page, 'data-key="y"')
        self.assertContains(page, f'<span class="thumb down">{UNHELPFUL}</span>')
        summary = page.content.decode().split('id="span-summary"', 1)[1].split("</section>")[0]
        self.assertIn(f'<span class="thumb up">{HELPFUL}</span>', summary)

    def test_a_schema_without_labels_keeps_yes_and_no(self):
        self.client.force_login(self.ann)
        services.log_feedback(trace=self.trace, name="correct", value=True, actor=self.bob)
        page = self.client.get(self.trace.get_absolute_url())
        self.assertContains(page, '<span aria-hidden="true">✓</span> Yes <kbd')
        self.assertContains(
            page, '<span class="thumb up"><span aria-hidden="true">✓</span> Yes</span>'
        )

    def test_the_history_shows_the_labels(self):
        services.update_assessment(
            assessment_id=self.bobs.assessment_id, value=True, expected_version=1, actor=self.bob
        )
        self.client.force_login(self.bob)
        page = self.client.get(
            reverse("annotation:assessment-history", args=[self.bobs.assessment_id])
        )
        self.assertContains(page, f'<span class="old"><span class="thumb down">{UNHELPFUL}</span>')
        self.assertContains(page, f'<span class="new"><span class="thumb up">{HELPFUL}</span>')

    def test_the_queue_item_asks_with_the_labels_and_shows_others_answers_with_them(self):
        self.client.force_login(self.ann)
        queues.next_assignment(queue=self.queue, user=self.ann)
        page = self.client.get(reverse("annotation:queue-item", args=[self.queue.pk, 1]))
        self.assertContains(
            page, f'aria-keyshortcuts="y"> {HELPFUL} <kbd aria-hidden="true">y</kbd>'
        )
        self.assertContains(
            page, f'aria-keyshortcuts="n"> {UNHELPFUL} <kbd aria-hidden="true">n</kbd>'
        )
        self.assertContains(page, f'<span class="thumb down">{UNHELPFUL}</span>')

    def test_the_decide_page_shows_answers_and_offers_the_labels(self):
        services.log_feedback(trace=self.trace, name="helpful", value=True, actor=self.ann)
        self.client.force_login(self.admin)
        url = reverse("annotation:queue-adjudicate", args=[self.queue.pk, 1, self.schema.pk])
        page = self.client.get(url)
        self.assertContains(page, f'<span class="thumb up">{HELPFUL}</span>')
        self.assertContains(page, f'<span class="thumb down">{UNHELPFUL}</span>')
        self.assertContains(page, 'value="true"')
        self.assertContains(page, f'aria-keyshortcuts="y"> {HELPFUL} <kbd')
        self.assertNotContains(page, "Thumbs up")
        listing = self.client.get(reverse("annotation:queue-disagreements", args=[self.queue.pk]))
        self.assertContains(listing, f'<span class="thumb up">{HELPFUL}</span>')

    def test_the_judge_page_shows_the_labels(self):
        services.log_feedback(trace=self.trace, name="helpful", value=False, actor=self.ann)
        make_judge_entry(self.trace, True, name="helpful", source_id="judge-kind")
        self.client.force_login(self.admin)
        url = reverse("annotation:judge-detail", args=[self.trace.experiment_id])
        page = self.client.get(url, {"name": "helpful", "source": "judge-kind"})
        rows = page.content.decode().split("</thead>")[-1]
        self.assertIn(f'<td><span class="thumb up">{HELPFUL}</span>', rows)
        self.assertIn(f'<td><span class="thumb down">{UNHELPFUL}</span>', rows)

    def test_labels_are_escaped(self):
        LabelSchema.objects.filter(pk=self.schema.pk).update(positive_label="<b>Helpful</b>")
        self.client.force_login(self.ann)
        page = self.client.get(self.trace.get_absolute_url())
        self.assertContains(page, "&lt;b&gt;Helpful&lt;/b&gt;")
        self.assertNotContains(page, "<b>Helpful</b>")

    def test_the_export_keeps_true_and_false(self):
        self.client.force_login(self.admin)
        response = self.client.get(reverse("annotation:export-download"), {"format": "jsonl"})
        body = b"".join(response.streaming_content).decode()
        self.assertIn('"value": false', body)
        self.assertNotIn("Unhelpful", body)
