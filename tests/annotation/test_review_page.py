"""The trace review page: full page, htmx partials, span selection, query counts, escaping."""

from django.test import TestCase
from django.urls import resolve, reverse

from annotation import services
from annotation.models import LabelSchema, SourceType
from annotation.views import trace_review
from tests.factories import make_reviewer, make_span, make_trace, make_viewer

XSS = '<script>alert(1)</script><img src=x onerror="alert(2)">'


class TraceReviewPageTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.reviewer = make_reviewer(username="rita")
        cls.viewer = make_viewer(username="vic")
        cls.trace = make_trace(tags={"mlflow.traceName": "answer_question"})
        cls.root = make_span(cls.trace, name="agent", span_type="AGENT")
        cls.llm = make_span(
            cls.trace,
            parent=cls.root,
            name="chat",
            span_type="CHAT_MODEL",
            inputs={"messages": [{"role": "user", "content": "Hi there"}]},
            outputs={"choices": [{"message": {"role": "assistant", "content": "Hello!"}}]},
        )
        cls.retriever = make_span(
            cls.trace,
            parent=cls.root,
            name="retrieve",
            span_type="RETRIEVER",
            outputs=[{"page_content": "Tracemark is a review tool.", "metadata": {"doc_uri": "kb/1"}}],
        )
        cls.deep = make_span(cls.trace, parent=cls.retriever, name="embed", span_type="EMBEDDING")
        cls.helpful = LabelSchema.objects.create(
            name="helpful", value_type=LabelSchema.ValueType.BOOLEAN, applies_to="both"
        )
        cls.rating = LabelSchema.objects.create(
            name="rating",
            value_type=LabelSchema.ValueType.NUMERIC,
            min_value=1,
            max_value=5,
            step=1,
            applies_to="trace",
        )
        services.log_feedback(
            trace=cls.trace,
            name="relevance",
            value=False,
            span_id=cls.retriever.span_id,
            source_type=SourceType.LLM_JUDGE,
            source_id="gpt-judge",
            rationale="Off topic",
        )
        services.log_feedback(
            trace=cls.trace,
            name="groundedness",
            source_type=SourceType.LLM_JUDGE,
            source_id="gpt-judge",
            error={"error_code": "RATE_LIMIT", "error_message": "Judge was rate limited"},
        )

    def url(self, **query):
        url = reverse("traces:detail", args=[self.trace.trace_id])
        return f"{url}?span={query['span']}" if "span" in query else url

    def test_traces_detail_is_the_review_page(self):
        self.assertIs(resolve(self.url()).func, trace_review)

    def test_it_requires_login(self):
        response = self.client.get(self.url())
        self.assertRedirects(response, f"{reverse('login')}?next={self.url()}")

    def test_it_renders_tree_widgets_and_assessments(self):
        self.client.force_login(self.reviewer)
        response = self.client.get(self.url())
        self.assertContains(response, 'role="tree"')
        self.assertContains(response, "agent")
        self.assertContains(response, "retrieve")
        # Only the top levels: the embedding span under the retriever loads on demand.
        self.assertNotContains(response, ">embed<")
        self.assertContains(response, 'data-key="y"')
        self.assertContains(response, 'data-key="5"')
        self.assertContains(response, "RATE_LIMIT")
        self.assertContains(response, "Judge was rate limited")
        print(response.content.decode()[-9000:])
