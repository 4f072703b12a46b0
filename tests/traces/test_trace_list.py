import html
import json
import re
from unittest import mock

from django.test import TestCase
from django.urls import reverse

from annotation import services
from tests.factories import (
    make_admin,
    make_experiment,
    make_reviewer,
    make_span,
    make_trace,
    make_viewer,
)
from traces import feedback
from traces.models import Span, Trace
from traces.pagination import DEFAULT_SORT, PAGE_SIZE, keyset_page

LIST = reverse("traces:list")
HTMX = {"HX-Request": "true"}
T0 = 1_700_000_000_000  # ms


def trace_ids(response):
    """Trace ids in the order the rows show them (partials included, which carry no context)."""
    return re.findall(r'data-trace-link href="/traces/(tr-[0-9a-f]+)/\?', response.content.decode())


def link(response, rel):
    """The query string of the page's rel="next" / rel="prev" link, or None."""
    found = re.search(rf'rel="{rel}" href="\?([^"]*)"', response.content.decode())
    return html.unescape(found.group(1)) if found else None


class TraceListTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.viewer = make_viewer()
        cls.trace = make_trace(
            request_time=T0,
            user="ada",
            session="s-1",
            request_preview='{"question": "How do refunds work?"}',
            response_preview='"Within 30 days."',
        )

    def setUp(self):
        self.client.force_login(self.viewer)

    def test_it_requires_login(self):
        self.client.logout()
        response = self.client.get(LIST)
        self.assertRedirects(response, f"{reverse('login')}?next={LIST}")

    def test_it_renders_the_full_page_with_layout_and_filters(self):
        response = self.client.get(LIST)
        self.assertContains(response, "<h1>Traces</h1>", html=True)
        self.assertContains(response, 'id="trace-filters"')
        self.assertContains(response, "How do refunds work?")
        self.assertContains(response, "Within 30 days.")
        self.assertContains(
            response, reverse("annotation:trace-review", args=[self.trace.trace_id])
        )
        self.assertContains(response, reverse("annotation:session", args=["s-1"]))
        self.assertContains(response, "Viewer")

    def test_it_renders_only_the_results_partial_for_htmx(self):
        response = self.client.get(LIST, headers=HTMX)
        self.assertContains(response, 'id="trace-results"')
        self.assertContains(response, "How do refunds work?")
        self.assertNotContains(response, "<html")
        self.assertNotContains(response, 'id="trace-filters"')
        self.assertIn("HX-Request", response["Vary"])

    def test_a_boosted_request_gets_the_full_page(self):
        response = self.client.get(LIST, headers={**HTMX, "HX-Boosted": "true"})
        self.assertContains(response, "<html")

    def test_it_escapes_trace_content(self):
        payload = '<script>alert("x")</script><img src=x onerror=alert(1)>'
        make_trace(request_preview=payload, response_preview=payload, user="<b>eve</b>")
        for headers in ({}, HTMX):
            response = self.client.get(LIST, headers=headers)
            self.assertNotContains(response, "<script>alert")
            self.assertNotContains(response, "<img src=x")
            self.assertNotContains(response, "<b>eve</b>")
            self.assertContains(response, "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;")

    def test_it_shows_readable_previews_with_the_raw_json_one_click_away(self):
        chat = {"messages": [{"role": "user", "content": "Refund \u2192 card?"}]}
        answer = {"choices": [{"message": {"role": "assistant", "content": "Yes, in 5 days."}}]}
        make_trace(request_preview=json.dumps(chat), response_preview=json.dumps(answer))
        for headers in ({}, HTMX):
            response = self.client.get(LIST, headers=headers)
            self.assertContains(response, '<div class="clamp">Refund → card?</div>', html=True)
            self.assertContains(response, '<div class="clamp">Yes, in 5 days.</div>', html=True)
            self.assertContains(
                response, '<div class="clamp">How do refunds work?</div>', html=True
            )
            self.assertContains(
                response,
                '<details class="raw-json"><summary>JSON</summary>'
                f"<pre>{html.escape(json.dumps(chat))}</pre></details>",
                html=True,
            )
            # A plain string has no JSON worth showing behind it.
            self.assertContains(response, '<div class="clamp">Within 30 days.</div>', html=True)
            self.assertContains(response, "<summary>JSON</summary>", count=3)

    def test_a_failed_trace_without_a_response_shows_what_went_wrong(self):
        stopped = make_trace(
            state=Trace.State.ERROR, request_preview='"Cancel my order"', response_preview=""
        )
        # The agent fails with its step; the list says where the failure started.
        root = make_span(
            stopped, name="agent", status=Span.Status.ERROR, status_message="Agent failed"
        )
        make_span(stopped, parent=root, status=Span.Status.ERROR, status_message="<b>timed out</b>")
        make_span(stopped, parent=root, status=Span.Status.ERROR, status_message="later")
        raised = make_trace(state=Trace.State.ERROR, response_preview="")
        exception = {"exception.type": "KeyError", "exception.message": "'plan'"}
        make_span(
            raised,
            status=Span.Status.ERROR,
            events=[{"name": "retry"}, {"name": "exception", "attributes": exception}],
        )
        silent = make_trace(state=Trace.State.ERROR, response_preview="")
        answered = make_trace(state=Trace.State.ERROR, response_preview='"Partly done"')
        make_span(answered, status=Span.Status.ERROR, status_message="not shown")
        for headers in ({}, HTMX):
            response = self.client.get(LIST, headers=headers)
            failures = re.findall(
                r'<p class="failure"><strong>Error</strong>: (.*?)</p>', response.content.decode()
            )
            self.assertEqual(
                sorted(failures),
                sorted(["&lt;b&gt;timed out&lt;/b&gt;", "KeyError: &#x27;plan&#x27;", "Failed"]),
            )
            self.assertContains(response, '<div class="clamp">Partly done</div>', html=True)
        self.assertTrue(silent.trace_id in response.content.decode())

    def test_it_escapes_readable_previews(self):
        payload = '<script>alert("x")</script>'
        make_trace(
            request_preview=json.dumps({"question": payload}),
            response_preview=json.dumps({"messages": [{"role": "assistant", "content": payload}]}),
        )
        response = self.client.get(LIST)
        self.assertNotContains(response, "<script>alert")
        self.assertContains(response, "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;", count=2)

    def test_it_shows_how_to_send_traces_when_there_are_none(self):
        Trace.objects.all().delete()
        response = self.client.get(LIST)
        self.assertContains(response, "No traces yet")
        self.assertContains(response, "MLFLOW_TRACKING_URI=http://testserver")

    def test_it_offers_to_clear_filters_when_nothing_matches(self):
        response = self.client.get(LIST, {"user": "nobody"}, headers=HTMX)
        self.assertContains(response, "No traces match")
        self.assertContains(response, f'href="{LIST}"')
        self.assertNotContains(response, "No traces yet")

    def test_it_shows_feedback_summary_badges(self):
        reviewer = make_reviewer()
        other = make_reviewer()
        services.log_feedback(trace=self.trace, name="helpful", value=True, actor=reviewer)
        services.log_feedback(trace=self.trace, name="helpful", value=True, actor=other)
        services.log_feedback(trace=self.trace, name="helpful", value=False)
        services.log_feedback(trace=self.trace, name="quality", value=4, actor=reviewer)
        services.log_feedback(trace=self.trace, name="quality", value=5, actor=other)
        services.log_feedback(trace=self.trace, name="tone", value="formal")
        deleted = services.log_feedback(trace=self.trace, name="tone", value="rude")
        services.delete_assessment(assessment_id=deleted.assessment_id)
        judged = services.log_feedback(
            trace=self.trace, name="safe", value=False, source_type="LLM_JUDGE"
        )
        services.override_feedback(assessment_id=judged.assessment_id, value=True, actor=other)

        response = self.client.get(LIST)

        [row] = response.context["page"].rows
        badges = {badge.name: badge for badge in row.feedback_badges}
        self.assertEqual((badges["helpful"].up, badges["helpful"].down), (2, 1))
        self.assertEqual(badges["quality"].mean, 4.5)
        self.assertEqual(badges["tone"].count, 1)
        self.assertEqual((badges["safe"].up, badges["safe"].down), (1, 0))
        self.assertContains(response, '<span class="visually-hidden">up</span> 2')
        self.assertContains(response, '<span class="visually-hidden">mean</span> 4.5')
        self.assertContains(response, "×1")

    def test_admins_may_queue_the_listed_traces_or_their_sessions(self):
        self.client.force_login(make_admin())
        response = self.client.get(LIST, {"user": "ada", "after": "x"})
        queue_url = reverse("annotation:queue-create")
        self.assertContains(
            response, f'<a class="export-link" href="{queue_url}?filter=user%3Dada%26after%3Dx">'
        )
        self.assertContains(response, "Queue these traces</a>")
        self.assertContains(response, "Queue these traces' sessions</a>")
        self.client.force_login(make_reviewer())
        self.assertNotContains(self.client.get(LIST), "Queue these traces")

    def test_rows_link_the_user_filter_and_the_session(self):
        response = self.client.get(LIST)
        self.assertContains(response, 'href="?user=ada"')

    def test_rows_link_the_review_page_with_the_list_query_in_from(self):
        review = self.trace.get_absolute_url()
        response = self.client.get(LIST)
        self.assertContains(response, f'data-trace-link href="{review}?from=sort%3D-time"')
        params = {"user": "ada", "state": "", "sort": "time", "q": "refunds"}
        for headers in ({}, HTMX):
            response = self.client.get(LIST, params, headers=headers)
            self.assertContains(
                response,
                f'data-trace-link href="{review}?from=user%3Dada%26sort%3Dtime%26q%3Drefunds"',
            )


class TraceListFilterTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.me = make_reviewer()
        cls.colleague = make_reviewer()
        cls.other_experiment = make_experiment(name="support-bot")
        cls.a = make_trace(
            request_time=T0,
            user="ada",
            session="s-1",
            client_request_id="req-a",
            state=Trace.State.OK,
            request_preview="How do I reset my password?",
            response_preview="Use the reset link.",
            tags={"env": "prod", "mlflow.traceName": "chat"},
            trace_metadata={"release": "1.2", "region": "eu"},
        )
        cls.b = make_trace(
            request_time=T0 + 60_000,
            user="bob",
            session="s-2",
            client_request_id="req-b",
            state=Trace.State.ERROR,
            request_preview="What are your opening hours?",
            response_preview="Timeout calling the calendar tool.",
            tags={"env": "staging"},
            trace_metadata={"release": "1.3"},
        )
        cls.c = make_trace(
            experiment=cls.other_experiment,
            request_time=T0 + 120_000,
            execution_duration=None,
            user="ada",
            session="s-1",
            state=Trace.State.IN_PROGRESS,
            request_preview="Second turn about passwords",
            response_preview="",
            tags={"env": "prod"},
        )
        services.log_feedback(trace=cls.a, name="helpful", value=True, actor=cls.me)
        services.log_feedback(trace=cls.b, name="helpful", value=False, actor=cls.colleague)
        services.log_feedback(trace=cls.b, name="quality", value=4.0, actor=cls.colleague)
        services.log_feedback(trace=cls.c, name="category", value="billing")
        services.log_feedback(trace=cls.c, name="quality", value=4, actor=cls.colleague)

    def setUp(self):
        self.client.force_login(self.me)

    def assertListed(self, params, expected):
        response = self.client.get(LIST, params, headers=HTMX)
        self.assertEqual(response.status_code, 200)
        self.assertCountEqual(trace_ids(response), [t.trace_id for t in expected], params)

    def test_without_filters_it_lists_every_trace_newest_first(self):
        response = self.client.get(LIST)
        self.assertEqual(trace_ids(response), [self.c.trace_id, self.b.trace_id, self.a.trace_id])

    def test_experiment(self):
        self.assertListed({"experiment": self.other_experiment.pk}, [self.c])

    def test_time_range(self):
        # T0 is 2023-11-14 22:13:20 UTC.
        self.assertListed({"since": "2023-11-14T22:14"}, [self.b, self.c])
        self.assertListed({"until": "2023-11-14T22:14"}, [self.a])
        self.assertListed({"since": "2023-11-14T22:14", "until": "2023-11-14T22:15"}, [self.b])

    def test_state(self):
        self.assertListed({"state": "OK"}, [self.a])
        self.assertListed({"state": "ERROR"}, [self.b])
        self.assertListed({"state": "IN_PROGRESS"}, [self.c])

    def test_user_session_and_client_request_id(self):
        self.assertListed({"user": "ada"}, [self.a, self.c])
        self.assertListed({"session": "s-2"}, [self.b])
        self.assertListed({"client_request_id": "req-a"}, [self.a])

    def test_tag_key_value(self):
        self.assertListed({"tag": "env=prod"}, [self.a, self.c])
        self.assertListed({"tag": "mlflow.traceName=chat"}, [self.a])
        self.assertListed({"tag": "env=nowhere"}, [])

    def test_metadata_key_value(self):
        self.assertListed({"metadata": "release=1.3"}, [self.b])
        self.assertListed({"metadata": "region = eu"}, [self.a])

    def test_key_value_filters_need_an_equals_sign(self):
        response = self.client.get(LIST, {"tag": "env"})
        self.assertContains(response, "Write it as key=value.")
        self.assertEqual(len(trace_ids(response)), 3)

    def test_has_feedback_name(self):
        self.assertListed({"feedback": "helpful"}, [self.a, self.b])
        self.assertListed({"feedback": "category"}, [self.c])

    def test_has_feedback_name_and_value(self):
        self.assertListed({"feedback": "helpful=true"}, [self.a])
        self.assertListed({"feedback": "helpful=false"}, [self.b])
        self.assertListed({"feedback": "quality=4"}, [self.b, self.c])
        self.assertListed({"feedback": "category=billing"}, [self.c])
        self.assertListed({"feedback": "category=other"}, [])

    def test_deleted_feedback_does_not_count(self):
        feedback = self.a.assessments.get(name="helpful")
        services.delete_assessment(assessment_id=feedback.assessment_id)
        self.assertListed({"feedback": "helpful"}, [self.b])

    def test_reviewed_by_me_or_not(self):
        self.assertListed({"reviewed": "me"}, [self.a])
        self.assertListed({"reviewed": "not-me"}, [self.b, self.c])

    def test_feedback_filters_within_an_experiment(self):
        experiment = self.other_experiment.pk
        self.assertListed({"feedback": "quality=4", "experiment": experiment}, [self.c])
        self.assertListed({"feedback": "helpful", "experiment": experiment}, [])
        self.assertListed({"reviewed": "me", "experiment": experiment}, [])
        self.assertListed({"reviewed": "not-me", "experiment": experiment}, [self.c])

    def test_text_search_in_request_and_response(self):
        self.assertListed({"q": "password"}, [self.a, self.c])
        self.assertListed({"q": "TIMEOUT"}, [self.b])

    def test_filters_combine(self):
        self.assertListed({"user": "ada", "tag": "env=prod", "state": "OK"}, [self.a])

    def test_sort_by_time_and_duration(self):
        Trace.objects.filter(pk=self.a.pk).update(execution_duration=900)
        Trace.objects.filter(pk=self.b.pk).update(execution_duration=30)

        def listed(sort):
            return trace_ids(self.client.get(LIST, {"sort": sort}, headers=HTMX))

        self.assertEqual(listed("time"), [self.a.trace_id, self.b.trace_id, self.c.trace_id])
        self.assertEqual(listed("-time"), [self.c.trace_id, self.b.trace_id, self.a.trace_id])
        # The in-progress trace has no duration yet, so it has no place in that order.
        self.assertEqual(listed("-duration"), [self.a.trace_id, self.b.trace_id])
        self.assertEqual(listed("duration"), [self.b.trace_id, self.a.trace_id])

    def test_an_unknown_sort_is_reported_and_the_default_kept(self):
        response = self.client.get(LIST, {"sort": "size"})
        self.assertEqual(trace_ids(response)[0], self.c.trace_id)
        self.assertContains(response, "Select a valid choice")


class SearchedFeedbackFilterTests(TraceListFilterTests):
    """The same filters where matching feedback is too common to collect first: the list
    then asks the database with an EXISTS (traces.feedback.narrowed_to)."""

    def setUp(self):
        super().setUp()
        patcher = mock.patch.object(feedback, "COLLECT_AT_MOST", 0)
        patcher.start()
        self.addCleanup(patcher.stop)


class TraceListPaginationTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.viewer = make_viewer()
        # 2.5 pages; pairs of traces share a request_time so ties must break on trace_id.
        cls.traces = [
            make_trace(
                trace_id=f"tr-{i:032x}",
                request_time=T0 + (i // 2) * 1000,
                execution_duration=(i * 37) % 101,
                user="many",
            )
            for i in range(PAGE_SIZE * 2 + PAGE_SIZE // 2)
        ]

    def setUp(self):
        self.client.force_login(self.viewer)

    def walk(self, query="", rel="next"):
        """Follow rel links from LIST?query like a reader would; return the pages' rows."""
        pages = []
        while query is not None:
            response = self.client.get(f"{LIST}?{query}", headers=HTMX)
            pages.append(trace_ids(response))
            last, query = response, link(response, rel)
        return pages, last

    def test_next_links_visit_every_trace_once_in_time_order(self):
        pages, last = self.walk()
        self.assertEqual([len(p) for p in pages], [PAGE_SIZE, PAGE_SIZE, PAGE_SIZE // 2])
        flat = [trace_id for page in pages for trace_id in page]
        # Newest first; equal times in trace_id order.
        expected = sorted(self.traces, key=lambda t: (-t.request_time, t.trace_id))
        self.assertEqual(flat, [t.trace_id for t in expected])
        self.assertIsNone(link(last, "next"))

    def test_previous_links_walk_back_to_the_first_page(self):
        forward, last = self.walk()
        backward, first = self.walk(link(last, "prev"), rel="prev")
        self.assertEqual(backward, forward[-2::-1])
        self.assertIsNone(link(first, "prev"))
        self.assertIsNotNone(link(first, "next"))

    def test_duration_sort_pages_through_ties(self):
        pages, _ = self.walk("sort=-duration")
        flat = [trace_id for page in pages for trace_id in page]
        expected = sorted(self.traces, key=lambda t: (-t.execution_duration, t.trace_id))
        self.assertEqual(flat, [t.trace_id for t in expected])
        # Ascending is the exact reverse, ties included, so both directions use the index.
        ascending, _ = self.walk("sort=duration")
        self.assertEqual([trace_id for page in ascending for trace_id in page], flat[::-1])

    def test_the_first_page_has_no_previous_link_and_links_keep_filters(self):
        response = self.client.get(LIST, {"user": "many", "sort": "time"})
        self.assertIsNone(link(response, "prev"))
        self.assertTrue(link(response, "next").startswith("user=many&sort=time&after="))
        self.assertContains(response, f"{len(self.traces)} traces")

    def test_a_cursor_from_another_sort_or_a_broken_one_starts_over(self):
        page_two = link(self.client.get(LIST), "next")
        response = self.client.get(f"{LIST}?{page_two}&sort=time")
        oldest = sorted(self.traces, key=lambda t: (-t.request_time, t.trace_id))[-1]
        self.assertEqual(trace_ids(response)[0], oldest.trace_id)
        self.assertIsNone(link(response, "prev"))
        response = self.client.get(LIST, {"after": "not-a-cursor!"})
        self.assertEqual(response.status_code, 200)
        self.assertIsNone(link(response, "prev"))

    def test_the_count_stops_at_its_limit(self):
        page = keyset_page(Trace.objects.all(), DEFAULT_SORT, {}, count_limit=100)
        self.assertEqual(page.total, 101)
        self.assertTrue(page.total_is_capped)
        response = self.client.get(LIST)
        self.assertFalse(response.context["page"].total_is_capped)


class TraceListQueryCountTests(TestCase):
    """Session, user, role, one per feedback filter (how common its matches are), the rows,
    the bounded count, the badges (and on the full page the experiment choices): the same
    for one row as for a full page."""

    FULL_PAGE_QUERIES = 9
    PARTIAL_QUERIES = 8

    @classmethod
    def setUpTestData(cls):
        cls.reviewer = make_reviewer()

    def setUp(self):
        self.client.force_login(self.reviewer)

    def add_traces(self, n):
        for i in range(n):
            trace = make_trace(user="u", tags={"env": "prod"}, request_time=T0 + i)
            services.log_feedback(trace=trace, name="helpful", value=i % 2 == 0)
            services.log_feedback(trace=trace, name="quality", value=i % 5)

    def assertQueriesPerPage(self, rows):
        params = {"user": "u", "tag": "env=prod", "feedback": "helpful", "reviewed": "not-me"}
        with self.assertNumQueries(self.FULL_PAGE_QUERIES):
            response = self.client.get(LIST, params)
        self.assertEqual(len(trace_ids(response)), rows)
        with self.assertNumQueries(self.PARTIAL_QUERIES):
            response = self.client.get(LIST, params, headers=HTMX)
        self.assertEqual(len(trace_ids(response)), rows)

    def test_failed_traces_without_a_response_add_one_query_whatever_their_number(self):
        self.add_traces(PAGE_SIZE)
        self.FULL_PAGE_QUERIES += 1
        self.PARTIAL_QUERIES += 1
        for trace in Trace.objects.all()[:3]:
            Trace.objects.filter(pk=trace.pk).update(state="ERROR", response_preview="")
            make_span(trace, status=Span.Status.ERROR, status_message="timed out")
        self.assertQueriesPerPage(PAGE_SIZE)
        Trace.objects.update(state=Trace.State.ERROR, response_preview="")
        self.assertQueriesPerPage(PAGE_SIZE)

    def test_the_query_count_does_not_grow_with_the_rows(self):
        self.add_traces(1)
        self.assertQueriesPerPage(1)
        self.add_traces(PAGE_SIZE + 5)
        self.assertQueriesPerPage(PAGE_SIZE)
