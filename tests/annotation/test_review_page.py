"""The trace review page: full page, htmx partials, span selection, roles, queries, escaping."""

import html
import re
from urllib.parse import quote

from django.test import TestCase
from django.urls import resolve, reverse

from annotation import services
from annotation.models import LabelSchema, SourceType
from annotation.views import trace_review
from tests.factories import make_experiment, make_reviewer, make_span, make_trace, make_viewer
from traces.models import Span

XSS_SCRIPT = "<script>alert(1)</script>"
XSS_IMG = '<img src=x onerror="window.pwned=1">'


def review_url(trace, **query):
    url = reverse("annotation:trace-review", args=[trace.trace_id])
    return f"{url}?span={query['span']}" if "span" in query else url


class TraceReviewPageTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.reviewer = make_reviewer(username="rita")
        cls.viewer = make_viewer(username="vic")
        cls.trace = make_trace(tags={"mlflow.traceName": "answer_question"}, request_time=2_000)
        cls.older = make_trace(experiment=cls.trace.experiment, request_time=1_000)
        cls.newer = make_trace(experiment=cls.trace.experiment, request_time=3_000)
        cls.root = make_span(cls.trace, name="agent", span_type="AGENT")
        cls.chat = make_span(
            cls.trace,
            parent=cls.root,
            name="chat",
            span_type="CHAT_MODEL",
            inputs={"messages": [{"role": "user", "content": "Which plan fits me?"}]},
            outputs={"choices": [{"message": {"role": "assistant", "content": "The team plan."}}]},
        )
        cls.retriever = make_span(
            cls.trace,
            parent=cls.root,
            name="retrieve",
            span_type="RETRIEVER",
            outputs=[{"page_content": "Plans start at 5 seats.", "metadata": {"doc_uri": "kb/7"}}],
        )
        cls.deep = make_span(
            cls.trace, parent=cls.retriever, name="embed_query", span_type="EMBEDDING"
        )
        cls.helpful = LabelSchema.objects.create(
            name="helpful", value_type=LabelSchema.ValueType.BOOLEAN
        )
        cls.rating = LabelSchema.objects.create(
            name="rating",
            value_type=LabelSchema.ValueType.NUMERIC,
            min_value=1,
            max_value=5,
            step=1,
            applies_to=LabelSchema.AppliesTo.TRACE,
        )
        cls.doc_ok = LabelSchema.objects.create(
            name="doc_relevant",
            value_type=LabelSchema.ValueType.BOOLEAN,
            applies_to=LabelSchema.AppliesTo.SPAN,
            span_types=["RETRIEVER"],
        )
        cls.judged = services.log_feedback(
            trace=cls.trace,
            name="relevance",
            value=False,
            span_id=cls.retriever.span_id,
            source_type=SourceType.LLM_JUDGE,
            source_id="judge-v2",
            rationale="Misses the pricing page",
        )
        services.log_feedback(
            trace=cls.trace,
            name="groundedness",
            source_type=SourceType.LLM_JUDGE,
            source_id="judge-v2",
            error={"error_code": "RATE_LIMITED", "error_message": "The judge was rate limited"},
        )

    def setUp(self):
        self.client.force_login(self.reviewer)

    def test_a_traces_own_page_is_the_review_page(self):
        self.assertEqual(self.trace.get_absolute_url(), f"/traces/{self.trace.trace_id}/")
        self.assertIs(resolve(self.trace.get_absolute_url()).func, trace_review)

    def test_it_requires_login(self):
        self.client.logout()
        response = self.client.get(review_url(self.trace))
        self.assertRedirects(response, f"{reverse('login')}?next={review_url(self.trace)}")

    def test_it_404s_for_an_unknown_trace_or_span(self):
        self.assertEqual(self.client.get(review_url(self.trace, span="ffff")).status_code, 404)
        missing = reverse("annotation:trace-review", args=["tr-missing"])
        self.assertEqual(self.client.get(missing).status_code, 404)

    def test_it_renders_the_top_of_the_tree_and_leaves_deeper_levels_to_load(self):
        response = self.client.get(review_url(self.trace))
        self.assertContains(response, 'role="tree"')
        self.assertContains(
            response,
            f'<span class="span-name" id="name-{self.root.span_id}">agent</span>',
            html=True,
        )
        self.assertContains(
            response,
            f'<span class="span-name" id="name-{self.retriever.span_id}">retrieve</span>',
            html=True,
        )
        self.assertNotContains(response, "embed_query")
        children_url = reverse(
            "traces:span-children", args=[self.trace.trace_id, self.retriever.span_id]
        )
        self.assertContains(response, f'data-children-url="{children_url}?level=3"')

    def test_it_lists_trace_assessments_with_source_and_judge_errors(self):
        response = self.client.get(review_url(self.trace))
        self.assertContains(response, "groundedness")
        self.assertContains(response, "LLM_JUDGE")
        self.assertContains(response, "judge-v2")
        self.assertContains(response, "RATE_LIMITED")
        self.assertContains(response, "The judge was rate limited")
        # Span assessments are summarised beside the tree.
        self.assertContains(response, "Misses the pricing page", count=0)
        self.assertContains(response, 'id="span-summary"')
        self.assertContains(response, "relevance")

    def test_it_shows_widgets_from_schemas_that_apply_to_the_trace(self):
        response = self.client.get(review_url(self.trace))
        self.assertContains(response, 'data-key="y"')
        self.assertContains(response, 'aria-label="4 of 5"')
        self.assertNotContains(response, "doc_relevant")

    def test_span_type_badges_read_as_words_not_cut_off(self):
        untyped = make_span(self.trace, parent=self.root, name="helper", span_type="UNKNOWN")
        response = self.client.get(review_url(self.trace), {"span": untyped.span_id})
        self.assertContains(response, '<span class="span-type type-unknown">Span</span>')
        self.assertNotContains(response, "Unknow<")

    def test_a_schema_without_comments_shows_no_rationale_box(self):
        box = 'placeholder="Why? (optional)"'
        shown = self.client.get(review_url(self.trace)).content.decode().count(box)
        LabelSchema.objects.filter(name="helpful").update(enable_comment=False)
        response = self.client.get(review_url(self.trace))
        self.assertContains(response, 'data-key="y"')
        self.assertContains(response, box, count=shown - 1)

    def test_deep_link_selects_a_span_and_expands_the_path_to_it(self):
        response = self.client.get(review_url(self.trace, span=self.deep.span_id))
        self.assertContains(response, "<html", status_code=200)
        self.assertContains(response, "embed_query")
        self.assertContains(response, f'id="node-{self.deep.span_id}"')
        self.assertContains(response, 'aria-selected="true"', count=1)
        self.assertContains(response, f'id="assessments-span-{self.deep.span_id}"')

    def test_span_detail_shows_conversations_and_documents(self):
        response = self.client.get(review_url(self.trace, span=self.chat.span_id))
        self.assertContains(response, '<ol class="chat">')
        self.assertContains(response, "Which plan fits me?")
        self.assertContains(response, "The team plan.")
        response = self.client.get(review_url(self.trace, span=self.retriever.span_id))
        self.assertContains(response, '<ol class="documents">')
        self.assertContains(response, "kb/7")

    def test_span_widgets_respect_applies_to_and_span_types(self):
        response = self.client.get(review_url(self.trace, span=self.retriever.span_id))
        panel = response.content.decode().split('id="span-panel"')[1]
        self.assertIn("doc_relevant", panel)
        self.assertIn('name="schema" value="helpful"', panel)
        self.assertNotIn('name="schema" value="rating"', panel)
        response = self.client.get(review_url(self.trace, span=self.chat.span_id))
        self.assertNotContains(response, "doc_relevant")

    def test_htmx_span_selection_returns_only_the_span_panel(self):
        response = self.client.get(
            review_url(self.trace, span=self.retriever.span_id),
            headers={"HX-Request": "true", "HX-Target": "span-panel"},
        )
        self.assertNotContains(response, "<html")
        self.assertNotContains(response, 'role="tree"')
        self.assertContains(response, 'id="span-panel"')
        self.assertContains(response, "Misses the pricing page")
        self.assertContains(response, "Override")
        self.assertIn("HX-Request", response["Vary"])

    def test_htmx_can_refresh_the_trace_region_or_span_summary(self):
        response = self.client.get(
            review_url(self.trace),
            headers={"HX-Request": "true", "HX-Target": "assessments-trace"},
        )
        self.assertTrue(
            response.content.decode().strip().startswith('<section id="assessments-trace"')
        )
        response = self.client.get(
            review_url(self.trace), headers={"HX-Request": "true", "HX-Target": "span-summary"}
        )
        self.assertTrue(response.content.decode().strip().startswith('<section id="span-summary"'))

    def test_next_and_previous_follow_list_order_within_the_experiment(self):
        response = self.client.get(review_url(self.trace))
        self.assertContains(
            response,
            f'rel="next" aria-keyshortcuts="j" '
            f'href="{self.older.get_absolute_url()}?back={self.trace.trace_id}"',
        )
        self.assertContains(
            response, f'rel="prev" aria-keyshortcuts="k" href="{self.newer.get_absolute_url()}"'
        )

    def test_next_and_previous_follow_the_list_filter_and_sort_carried_in_from(self):
        failed = make_trace(request_time=500, state="ERROR")
        url = review_url(self.trace) + "?from=" + quote("state=ERROR")
        response = self.client.get(url)
        self.assertContains(
            response,
            f'href="{failed.get_absolute_url()}?from=state%3DERROR&amp;back={self.trace.trace_id}"',
        )
        self.assertNotContains(response, 'rel="prev"')
        response = self.client.get(review_url(self.trace) + "?from=" + quote("sort=time"))
        self.assertContains(
            response, f'rel="next" aria-keyshortcuts="j" href="{self.newer.get_absolute_url()}'
        )
        self.assertContains(response, 'href="/?sort=time"')

    def test_next_follows_a_user_filter_from_the_list(self):
        mine = make_trace(experiment=self.trace.experiment, user="ada", request_time=2_000)
        make_trace(experiment=self.trace.experiment, user="bob", request_time=1_500)
        older = make_trace(experiment=self.trace.experiment, user="ada", request_time=1_000)
        listed = self.client.get(reverse("traces:list"), {"user": "ada"})
        url = re.search(rf'href="({mine.get_absolute_url()}\?from=[^"]+)"', listed.content.decode())
        response = self.client.get(html.unescape(url.group(1)))
        self.assertContains(
            response,
            f'rel="next" aria-keyshortcuts="j" '
            f'href="{older.get_absolute_url()}?from=user%3Dada&amp;back={mine.trace_id}"',
        )
        self.assertNotContains(response, 'rel="prev"')
        self.assertContains(response, 'href="/?user=ada">All traces')

    def test_previous_retraces_next_when_labeling_took_a_trace_out_of_the_filter(self):
        first = make_trace(experiment=self.trace.experiment, request_time=9_000)
        second = make_trace(experiment=self.trace.experiment, request_time=8_000)
        walked = f"from={quote('reviewed=not-me')}&back={first.trace_id}"
        services.log_feedback(trace=first, name="ok", value=True, actor=self.reviewer)
        response = self.client.get(f"{second.get_absolute_url()}?{walked}")
        self.assertContains(
            response,
            f'rel="prev" aria-keyshortcuts="k" '
            f'href="{first.get_absolute_url()}?from=reviewed%3Dnot-me"',
        )
        self.assertContains(response, f"back={first.trace_id}%2C{second.trace_id}")

    def test_an_error_trace_opens_at_its_first_failing_span(self):
        failed = make_trace(experiment=self.trace.experiment, state="ERROR")
        root = make_span(failed, name="agent", start_time_ns=0)
        make_span(failed, parent=root, name="late", status="ERROR", start_time_ns=20)
        first = make_span(
            failed,
            parent=root,
            name="early",
            status="ERROR",
            start_time_ns=10,
            status_message="KeyError: 'plan'",
        )
        response = self.client.get(review_url(failed))
        self.assertEqual(response.context["span"], first)
        self.assertContains(response, "KeyError: &#x27;plan&#x27;")
        # An OK trace opens with nothing selected.
        self.assertIsNone(self.client.get(review_url(self.trace)).context["span"])

    def test_a_malformed_trail_is_ignored(self):
        response = self.client.get(f"{review_url(self.trace)}?back=%3Cscript%3E,x")
        self.assertContains(
            response, f'rel="prev" aria-keyshortcuts="k" href="{self.newer.get_absolute_url()}"'
        )

    def test_viewers_see_assessments_but_no_widgets_or_actions(self):
        self.client.force_login(self.viewer)
        response = self.client.get(review_url(self.trace, span=self.retriever.span_id))
        self.assertContains(response, "Misses the pricing page")
        self.assertNotContains(response, "hx-post")
        self.assertNotContains(response, 'action="/assessments/')
        self.assertNotContains(response, 'action="/traces/')
        self.assertNotContains(response, "data-key=")

    def test_without_schemas_a_named_feedback_form_is_offered_open(self):
        LabelSchema.objects.all().delete()
        response = self.client.get(review_url(self.trace))
        self.assertContains(response, '<details class="named" open>')
        self.assertContains(response, 'name="value_type"')


class TraceReviewEscapingTests(TestCase):
    def test_span_content_is_escaped_everywhere(self):
        reviewer = make_reviewer()
        trace = make_trace(request_preview=XSS_SCRIPT, response_preview=XSS_IMG)
        span = make_span(
            trace,
            name=f"tool {XSS_SCRIPT}",
            inputs={"html": XSS_SCRIPT, "messages": [{"role": "user", "content": XSS_IMG}]},
            outputs=XSS_IMG,
            attributes={"note": XSS_SCRIPT, XSS_IMG: "key"},
            events=[{"name": "exception", "attributes": {"exception.message": XSS_IMG}}],
            status=Span.Status.ERROR,
            status_message=XSS_SCRIPT,
        )
        services.log_feedback(trace=trace, name="note", value=XSS_IMG, rationale=XSS_SCRIPT)
        self.client.force_login(reviewer)
        response = self.client.get(review_url(trace, span=span.span_id))
        body = response.content.decode()
        self.assertNotIn(XSS_SCRIPT, body)
        self.assertNotIn("<img src=x", body)
        self.assertIn("&lt;script&gt;alert(1)&lt;/script&gt;", body)
        self.assertIn("&lt;img src=x onerror=", body)


class TraceReviewQueryTests(TestCase):
    """The page's query count does not grow with the number of spans or assessments."""

    @classmethod
    def setUpTestData(cls):
        cls.reviewer = make_reviewer()
        LabelSchema.objects.create(name="helpful", value_type=LabelSchema.ValueType.BOOLEAN)

    def build(self, fanout):
        trace = make_trace()
        root = make_span(trace, name="root")
        last = root
        for i in range(fanout):
            child = make_span(trace, parent=root, name=f"step {i}")
            last = make_span(trace, parent=child, name=f"leaf {i}")
            services.log_feedback(trace=trace, name="helpful", value=True, span_id=child.span_id)
        services.log_feedback(trace=trace, name="helpful", value=True, actor=self.reviewer)
        return trace, last

    def test_review_page_queries_are_constant(self):
        self.client.force_login(self.reviewer)
        for fanout in (2, 40):
            trace, _ = self.build(fanout)
            # One of them asks which answers blind queues hide from the reader.
            with self.assertNumQueries(13):
                self.client.get(review_url(trace))

    def test_deep_linked_review_page_queries_are_constant(self):
        self.client.force_login(self.reviewer)
        for fanout in (2, 40):
            trace, leaf = self.build(fanout)
            with self.assertNumQueries(15):
                self.client.get(review_url(trace, span=leaf.span_id))


class ReviewSchemaScopeTests(TestCase):
    """'refund' applies to the returns experiment, 'helpful' and 'details' to every one."""

    @classmethod
    def setUpTestData(cls):
        cls.reviewer = make_reviewer(username="rita")
        cls.returns, cls.support = make_experiment("returns"), make_experiment("support")
        LabelSchema.objects.create(name="helpful", value_type=LabelSchema.ValueType.BOOLEAN)
        LabelSchema.objects.create(name="details", value_type=LabelSchema.ValueType.STRUCTURED)
        refund = LabelSchema.objects.create(
            name="refund", title="Refund right?", value_type=LabelSchema.ValueType.BOOLEAN
        )
        refund.experiments.set([cls.returns])

    def setUp(self):
        self.client.force_login(self.reviewer)

    def widgets(self, trace) -> list[str]:
        page = self.client.get(review_url(trace))
        return [w.schema.name for w in page.context["trace_region"].widgets]

    def test_a_trace_shows_the_schemas_of_its_experiment_only(self):
        self.assertEqual(self.widgets(make_trace(self.returns)), ["details", "helpful", "refund"])
        self.assertEqual(self.widgets(make_trace(self.support)), ["details", "helpful"])
