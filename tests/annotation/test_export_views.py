import csv
import io
import json
from urllib.parse import urlencode

from django.http import QueryDict, StreamingHttpResponse
from django.test import RequestFactory, TestCase
from django.urls import reverse

from accounts.tokens import create_token, revoke_token
from annotation import queues, services
from annotation.models import LabelSchema, Queue, QueueItem, SourceType
from tests.factories import make_admin, make_experiment, make_reviewer, make_trace, make_viewer
from traces.filters import TraceFilter
from traces.models import Trace

PAGE = reverse("annotation:export")
DOWNLOAD = reverse("annotation:export-download")


def body(response) -> str:
    return b"".join(response.streaming_content).decode("utf-8")


class ExportDataMixin:
    @classmethod
    def setUpTestData(cls):
        cls.reviewer = make_reviewer(username="rev")
        cls.viewer = make_viewer(username="view")
        cls.bot = make_experiment(name="Support Bot")
        cls.other = make_experiment(name="other")
        cls.traces = [
            make_trace(cls.bot, user="alice", state=Trace.State.ERROR, request_preview="refund"),
            make_trace(cls.bot, user="alice", state=Trace.State.OK, request_preview="refund"),
            make_trace(cls.bot, user="bob", state=Trace.State.ERROR, request_preview="hello"),
            make_trace(cls.other, user="alice", state=Trace.State.ERROR),
        ]
        for number, trace in enumerate(cls.traces):
            services.log_feedback(
                trace=trace, name="correct", value=number % 2 == 0, actor=cls.reviewer
            )
            services.log_feedback(trace=trace, name="rating", value=number, actor=cls.reviewer)


class ExportDownloadTests(ExportDataMixin, TestCase):
    def test_it_redirects_anonymous_browsers_to_sign_in(self):
        response = self.client.get(DOWNLOAD)
        self.assertEqual(response.status_code, 302)
        self.assertIn(reverse("login"), response["Location"])

    def test_it_refuses_a_bad_token_with_401(self):
        for header in ("Bearer nope", "Bearer ", "Basic dXNlcjpwYXNz", "tmk_x"):
            with self.subTest(header=header):
                response = self.client.get(DOWNLOAD, headers={"Authorization": header})
                self.assertEqual(response.status_code, 401)
                self.assertEqual(response["WWW-Authenticate"], 'Bearer realm="tracemark"')

    def test_a_token_works_until_revoked(self):
        token, raw = create_token(user=self.viewer)
        response = self.client.get(
            DOWNLOAD, {"format": "jsonl"}, headers={"Authorization": f"Bearer {raw}"}
        )
        self.assertEqual(response.status_code, 200)
        self.assertEqual(len(body(response).splitlines()), 8)
        revoke_token(token)
        response = self.client.get(DOWNLOAD, headers={"Authorization": f"Bearer {raw}"})
        self.assertEqual(response.status_code, 401)

    def test_viewers_may_export_and_it_streams(self):
        self.client.force_login(self.viewer)
        response = self.client.get(DOWNLOAD, {"experiment": self.bot.pk, "state": "ERROR"})
        self.assertEqual(response.status_code, 200)
        self.assertIsInstance(response, StreamingHttpResponse)
        self.assertEqual(response["Content-Type"], "text/csv; charset=utf-8")
        self.assertEqual(response["X-Accel-Buffering"], "no")
        disposition = response["Content-Disposition"]
        self.assertTrue(disposition.startswith('attachment; filename="tracemark_support-bot_'))
        self.assertIn("state-error_long_", disposition)
        self.assertTrue(disposition.endswith('.csv"'))

    def test_jsonl_content_type_and_file_name(self):
        self.client.force_login(self.viewer)
        response = self.client.get(DOWNLOAD, {"format": "jsonl", "shape": "wide"})
        self.assertEqual(response["Content-Type"], "application/x-ndjson; charset=utf-8")
        self.assertRegex(
            response["Content-Disposition"], r'tracemark_all_wide_\d{4}-\d\d-\d\d\.jsonl"$'
        )

    def test_bad_options_or_filters_get_400_not_a_bigger_export(self):
        self.client.force_login(self.viewer)
        for params in ({"format": "xlsx"}, {"state": "NOPE"}, {"experiment": "999"}):
            with self.subTest(params=params):
                response = self.client.get(DOWNLOAD, params)
                self.assertEqual(response.status_code, 400)
                self.assertEqual(response["Content-Type"], "text/plain")

    def test_it_exports_a_queue(self):
        queue = Queue.objects.create(name="Refunds")
        for position, trace in enumerate(self.traces[:2]):
            QueueItem.objects.create(queue=queue, trace=trace, position=position)
        self.client.force_login(self.viewer)
        response = self.client.get(DOWNLOAD, {"queue": queue.pk, "format": "jsonl"})
        self.assertEqual(response.status_code, 200)
        self.assertIn("tracemark_queue_refunds_long_", response["Content-Disposition"])
        self.client.force_login(make_admin())
        detail = self.client.get(reverse("annotation:queue-detail", args=[queue.pk]))
        self.assertContains(detail, f'href="{PAGE}?queue={queue.pk}"')
        page = self.client.get(PAGE, {"queue": queue.pk})
        self.assertContains(page, "The traces of queue <strong>Refunds</strong>")

    def test_a_queue_export_holds_the_queue_labels_and_decisions_only(self):
        """Judge entries, other questions, other people's answers and control items stay out."""
        admin = make_admin(username="adm")
        schema = LabelSchema.objects.create(
            name="correct", value_type=LabelSchema.ValueType.BOOLEAN, applies_to="trace"
        )
        queue = queues.create_queue(
            name="Refunds", traces=self.traces[:2], schemas=[schema], annotators=[self.reviewer]
        )
        QueueItem.objects.create(queue=queue, trace=self.traces[2], position=9, is_control=True)
        outsider = make_reviewer(username="outsider")
        services.log_feedback(trace=self.traces[1], name="correct", value=True, actor=outsider)
        services.log_feedback(
            trace=self.traces[1],
            name="correct",
            value=False,
            source_type=SourceType.LLM_JUDGE,
            source_id="judge",
        )
        item = queue.items.get(trace=self.traces[0])
        decision = queues.adjudicate(item=item, schema=schema, value=False, actor=admin)

        def rows(**params):
            response = self.client.get(DOWNLOAD, {"queue": queue.pk, "format": "jsonl", **params})
            return [json.loads(line) for line in body(response).splitlines()]

        self.client.force_login(self.viewer)
        found = {(r["trace_id"], r["name"], r["annotator"], r["value"]) for r in rows()}
        self.assertEqual(
            found,
            {
                (self.traces[0].trace_id, "correct", "adm", False),
                (self.traces[1].trace_id, "correct", "rev", False),
            },
        )
        overridden = rows(include_invalid="on")
        self.assertEqual(len(overridden), 3)
        self.assertIn(decision.assessment_id, {r["assessment_id"] for r in overridden})
        (wide,) = [r for r in rows(shape="wide") if r["trace_id"] == self.traces[1].trace_id]
        self.assertEqual(wide["correct.count"], 1)
        self.assertNotIn("rating", wide)


class ExportFilterTests(ExportDataMixin, TestCase):
    """The export holds exactly the traces the trace list's FilterSet gives."""

    FILTERS = [
        {},
        {"experiment": "EXPERIMENT"},
        {"experiment": "EXPERIMENT", "state": "ERROR"},
        {"user": "alice"},
        {"q": "refund"},
        {"feedback": "correct=true"},
        {"feedback": "rating"},
        {"reviewed": "me"},
        {"state": "ERROR", "sort": "time"},
    ]

    def test_exports_hold_exactly_the_filtered_traces(self):
        self.client.force_login(self.reviewer)
        self.request = RequestFactory().get("/")
        self.request.user = self.reviewer
        for raw in self.FILTERS:
            params = {k: str(self.bot.pk) if v == "EXPERIMENT" else v for k, v in raw.items()}
            query = QueryDict(urlencode(params))
            filterset = TraceFilter(query, queryset=Trace.objects.all(), request=self.request)
            self.assertTrue(filterset.is_valid())
            expected = set(filterset.qs.values_list("trace_id", flat=True))
            with self.subTest(params=params):
                long = self.client.get(DOWNLOAD, params)
                wide = self.client.get(DOWNLOAD, {**params, "shape": "wide"})
                long_ids = {row["trace_id"] for row in csv.DictReader(io.StringIO(body(long)))}
                wide_ids = [row["trace_id"] for row in csv.DictReader(io.StringIO(body(wide)))]
                self.assertEqual(long_ids, expected)
                self.assertEqual(set(wide_ids), expected)
                self.assertEqual(len(wide_ids), len(expected))
                self.assertLess(len(expected), 5)

    def test_the_list_links_to_an_export_of_its_filters(self):
        self.client.force_login(self.viewer)
        response = self.client.get(reverse("traces:list"), {"state": "ERROR", "user": "alice"})
        self.assertContains(response, f'href="{PAGE}?state=ERROR&amp;user=alice"')

    def test_the_list_shows_the_same_traces(self):
        self.client.force_login(self.reviewer)
        params = {"experiment": self.bot.pk, "state": "ERROR"}
        listed = self.client.get(reverse("traces:list"), params)
        exported = self.client.get(DOWNLOAD, {**params, "shape": "wide"})
        ids = [row["trace_id"] for row in csv.DictReader(io.StringIO(body(exported)))]
        self.assertEqual(len(ids), 2)
        for trace in self.traces:
            if trace.trace_id in ids:
                self.assertContains(listed, trace.trace_id)
            else:
                self.assertNotContains(listed, trace.trace_id)


class ExportPageTests(ExportDataMixin, TestCase):
    def test_it_requires_login(self):
        response = self.client.get(PAGE)
        self.assertEqual(response.status_code, 302)

    def test_it_says_span_answers_are_in_the_long_shape(self):
        self.client.force_login(self.viewer)
        response = self.client.get(PAGE)
        self.assertContains(response, "One row per trace holds answers about traces only.")

    def test_it_summarises_the_export_and_carries_the_filters(self):
        self.client.force_login(self.viewer)
        response = self.client.get(PAGE, {"experiment": self.bot.pk, "user": "alice"})
        self.assertContains(response, "<strong>4</strong> rows")
        self.assertContains(
            response, f'<input type="hidden" name="experiment" value="{self.bot.pk}">'
        )
        self.assertContains(response, '<input type="hidden" name="user" value="alice">')
        self.assertContains(response, "tracemark_support-bot_user-alice_long_")
        self.assertContains(response, f'action="{DOWNLOAD}"')

    def test_htmx_gets_the_summary_only(self):
        self.client.force_login(self.viewer)
        response = self.client.get(PAGE, {"shape": "revisions"}, headers={"HX-Request": "true"})
        self.assertContains(response, 'id="export-summary"')
        self.assertNotContains(response, "<html")
        self.assertContains(response, "<strong>8</strong> rows")
        self.assertContains(response, "_revisions_")

    def test_invalid_filters_are_shown_not_ignored(self):
        self.client.force_login(self.viewer)
        response = self.client.get(PAGE, {"state": "NOPE"})
        self.assertContains(response, 'role="alert"')
        self.assertNotContains(response, "rows in")

    def test_query_count_does_not_grow_with_rows(self):
        self.client.force_login(self.viewer)
        self.client.get(PAGE)
        with self.assertNumQueries(5):
            self.client.get(PAGE, {"experiment": self.bot.pk})
