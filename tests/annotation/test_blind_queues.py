"""Blind queues everywhere: while someone still has to answer an item of an open blind queue,
no page shows them others' human answers to the queue's schemas on that trace."""

import csv
import io

from django.http import HttpResponse
from django.test import Client, TestCase
from django.urls import reverse

from accounts.tokens import create_token
from annotation import queues, services
from annotation.models import Assessment, LabelSchema, Queue, SourceType
from tests.factories import make_admin, make_reviewer, make_span, make_trace

HTMX = {"HX-Request": "true"}
NOTICE = "Others' answers are hidden until you submit yours in queue"
V3 = "/api/3.0/mlflow/"


def api_client(user) -> Client:
    return Client(headers={"Authorization": f"Bearer {create_token(user=user)[1]}"})


class BlindQueueTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.ann = make_reviewer(username="ann")
        cls.bob = make_reviewer(username="bob")
        cls.boss = make_admin(username="boss")
        cls.chief = make_admin(username="chief")
        cls.cy = make_reviewer(username="cy")
        cls.trace = make_trace(session="chat/1")
        cls.span = make_span(cls.trace, name="retrieve")
        cls.elsewhere = make_trace(session="chat/1", request_time=cls.trace.request_time + 1)
        cls.correct = LabelSchema.objects.create(
            name="correct", value_type=LabelSchema.ValueType.BOOLEAN
        )
        cls.queue = queues.create_queue(
            name="Factuality",
            traces=[cls.trace],
            schemas=[cls.correct],
            annotators=[cls.ann, cls.bob, cls.boss],
            overlap=3,
        )
        assignment = queues.next_assignment(queue=cls.queue, user=cls.ann)
        queues.submit(
            assignment=assignment,
            values={"correct": False},
            rationales={"correct": "ANN-TRACE-ANSWER"},
            actor=cls.ann,
        )
        cls.anns = Assessment.objects.get(rationale="ANN-TRACE-ANSWER")
        services.log_feedback(
            trace=cls.trace,
            name="correct",
            value=False,
            span_id=cls.span.span_id,
            rationale="ANN-SPAN-ANSWER",
            actor=cls.ann,
        )
        services.log_feedback(
            trace=cls.trace, name="tone", value="calm", rationale="ANN-OTHER-NAME", actor=cls.ann
        )
        services.log_feedback(
            trace=cls.trace,
            name="correct",
            value=True,
            rationale="JUDGE-ANSWER",
            source_type=SourceType.LLM_JUDGE,
            source_id="judge-v1",
        )
        services.log_feedback(
            trace=cls.elsewhere,
            name="correct",
            value=True,
            rationale="ANN-ELSEWHERE",
            actor=cls.ann,
        )
        cls.review_url = cls.trace.get_absolute_url()

    def setUp(self):
        self.bobs = queues.next_assignment(queue=self.queue, user=self.bob)
        self.client.force_login(self.bob)

    def assertHidden(self, response, *also_hidden):
        self.assertContains(response, NOTICE)
        self.assertContains(response, reverse("annotation:queue-item", args=[self.queue.pk, 1]))
        for text in ("ANN-TRACE-ANSWER", "ANN-SPAN-ANSWER", *also_hidden):
            self.assertNotContains(response, text)

    def test_the_review_page_hides_others_answers_until_ones_own_is_in(self):
        span_url = f"{self.review_url}?span={self.span.span_id}"
        response = self.client.get(span_url)
        self.assertHidden(response)
        self.assertContains(response, "JUDGE-ANSWER")
        self.assertContains(response, "ANN-OTHER-NAME")
        services.log_feedback(
            trace=self.trace, name="correct", value=True, rationale="BOB-OWN", actor=self.bob
        )
        self.assertContains(self.client.get(self.review_url), "BOB-OWN")
        queues.submit(assignment=self.bobs, values={"correct": True}, actor=self.bob)
        response = self.client.get(span_url)
        self.assertNotContains(response, NOTICE)
        self.assertContains(response, "ANN-TRACE-ANSWER")
        self.assertContains(response, "ANN-SPAN-ANSWER")

    def test_every_partial_of_the_review_page_hides_them(self):
        response = self.client.get(
            self.review_url, headers={**HTMX, "HX-Target": "assessments-trace"}
        )
        self.assertHidden(response)
        # Ann's answer on the span is the only one there.
        response = self.client.get(self.review_url, headers={**HTMX, "HX-Target": "span-summary"})
        self.assertContains(response, "None yet.")
        response = self.client.get(
            f"{self.review_url}?span={self.span.span_id}",
            headers={**HTMX, "HX-Target": "span-panel"},
        )
        self.assertHidden(response)
        response = self.client.post(
            reverse("annotation:assessment-create", args=[self.trace.trace_id]),
            {"schema": "correct", "value": "true", "rationale": "BOB-OWN"},
            headers=HTMX,
        )
        self.assertHidden(response)
        self.assertContains(response, "BOB-OWN")

    def test_the_history_of_a_hidden_answer_is_hidden_too(self):
        url = reverse("annotation:assessment-history", args=[self.anns.assessment_id])
        for headers in ({}, HTMX):
            response = self.client.get(url, headers=headers)
            self.assertContains(response, NOTICE)
            self.assertNotContains(response, "Every change to this entry")
        queues.submit(assignment=self.bobs, values={"correct": True}, actor=self.bob)
        self.assertContains(self.client.get(url), "Every change to this entry")

    def test_the_session_view_hides_them_and_leaves_them_out_of_the_badges(self):
        url = reverse("annotation:session", args=["chat/1"])
        response = self.client.get(url)
        self.assertHidden(response)
        self.assertContains(response, "ANN-ELSEWHERE")
        self.assertContains(response, "JUDGE-ANSWER")
        # Turn 1 counts the judge's "correct" only, turn 2 ann's.
        self.assertContains(response, '<span class="visually-hidden">up</span> 1', count=2)
        self.assertContains(response, '<span class="visually-hidden">down</span> 0', count=2)

    def test_the_queue_item_links_to_the_review_page_from_the_start(self):
        response = self.client.get(reverse("annotation:queue-item", args=[self.queue.pk, 1]))
        self.assertContains(response, f'href="{self.review_url}"')
        self.assertContains(response, 'data-testid="blind-note"')
        self.assertNotContains(response, "ANN-TRACE-ANSWER")

    def test_other_traces_people_and_queues_are_not_affected(self):
        self.assertContains(self.client.get(self.elsewhere.get_absolute_url()), "ANN-ELSEWHERE")
        for person in (self.cy, self.chief):
            self.client.force_login(person)
            response = self.client.get(self.review_url)
            self.assertNotContains(response, NOTICE)
            self.assertContains(response, "ANN-TRACE-ANSWER")
        Queue.objects.filter(pk=self.queue.pk).update(blind=False)
        self.client.force_login(self.bob)
        self.assertContains(self.client.get(self.review_url), "ANN-TRACE-ANSWER")

    def test_an_admin_who_is_assigned_is_blind_too(self):
        queues.next_assignment(queue=self.queue, user=self.boss)
        self.client.force_login(self.boss)
        self.assertHidden(self.client.get(self.review_url))

    def test_the_disagreements_page_hides_them_from_a_deciding_member(self):
        queues.submit(assignment=self.bobs, values={"correct": True}, actor=self.bob)
        url = reverse("annotation:queue-disagreements", args=[self.queue.pk])
        decide = reverse("annotation:queue-adjudicate", args=[self.queue.pk, 1, self.correct.pk])
        self.client.force_login(self.chief)
        self.assertContains(self.client.get(url), decide)
        self.client.force_login(self.boss)
        self.assertNotContains(self.client.get(url), decide)
        self.assertIsNone(self.client.get(decide).context["found"])
        queues.submit(
            assignment=queues.next_assignment(queue=self.queue, user=self.boss),
            values={"correct": True},
            actor=self.boss,
        )
        self.assertContains(self.client.get(url), decide)

    def test_the_api_hides_them_from_a_members_token_only(self):
        url = f"/api/3.0/mlflow/traces/{self.trace.trace_id}"
        response = api_client(self.bob).get(url)
        self.assertEqual(response.status_code, 200)
        self.assertNotContains(response, "ANN-TRACE-ANSWER")
        self.assertNotContains(response, "ANN-SPAN-ANSWER")
        self.assertContains(response, "JUDGE-ANSWER")
        app = make_reviewer(username="judge-app")
        self.assertContains(api_client(app).get(url), "ANN-TRACE-ANSWER")

    def test_hides_reads_one_answer_and_asks_only_about_others_human_answers(self):
        judge = Assessment.objects.get(rationale="JUDGE-ANSWER")
        with self.assertNumQueries(0):
            self.assertFalse(queues.hides(judge, user=self.bob))
            self.assertFalse(queues.hides(self.anns, user=self.ann))
        self.assertTrue(queues.hides(self.anns, user=self.bob))
        self.assertFalse(queues.hides(self.anns, user=self.cy))  # not a member
        elsewhere = Assessment.objects.get(rationale="ANN-ELSEWHERE")
        self.assertFalse(queues.hides(elsewhere, user=self.bob))

    def list_badges(self, **params):
        """The trace list's badges on the queue's trace, as name → (up, down, count)."""
        response = self.client.get(reverse("traces:list"), params)
        [row] = [row for row in response.context["page"].rows if row.pk == self.trace.pk]
        return {b.name: (b.up, b.down, b.count) for b in row.feedback_badges}

    def listed(self, feedback):
        response = self.client.get(reverse("traces:list"), {"feedback": feedback}, headers=HTMX)
        return self.trace.trace_id in response.content.decode()

    def test_the_trace_list_badges_leave_out_hidden_answers_until_ones_own_is_in(self):
        # Ann's two "correct" answers (trace and span) are hidden; the judge's and "tone" are not.
        self.assertEqual(self.list_badges(), {"correct": (1, 0, 1), "tone": (0, 0, 1)})
        queues.submit(assignment=self.bobs, values={"correct": True}, actor=self.bob)
        self.assertEqual(self.list_badges(), {"correct": (2, 2, 4), "tone": (0, 0, 1)})

    def next_on_review_page(self, feedback):
        """The review page's "next trace" after ``elsewhere`` in the list filtered so."""
        url = self.elsewhere.get_absolute_url()
        response = self.client.get(url, {"from": f"feedback={feedback}"})
        return response.context["following"]

    def test_the_feedback_filter_cannot_find_a_trace_by_a_hidden_answer(self):
        self.assertFalse(self.listed("correct=false"))
        self.assertIsNone(self.next_on_review_page("correct=false"))
        self.assertTrue(self.listed("correct=true"))
        self.assertEqual(self.next_on_review_page("correct=true"), self.trace)
        queues.submit(assignment=self.bobs, values={"correct": True}, actor=self.bob)
        self.assertTrue(self.listed("correct=false"))
        self.assertEqual(self.next_on_review_page("correct=false"), self.trace)

    def test_the_overview_leaves_out_hidden_answers(self):
        url = reverse("annotation:overview", args=[self.trace.experiment_id])
        response = self.client.get(url)
        self.assertNotContains(response, self.trace.trace_id)
        self.assertContains(response, "No negative yes/no feedback.")
        self.assertContains(response, "100% positive")
        queues.submit(assignment=self.bobs, values={"correct": True}, actor=self.bob)
        response = self.client.get(url)
        self.assertContains(response, self.trace.trace_id)
        self.assertContains(response, "60% positive")

    def test_exports_leave_out_hidden_answers_until_ones_own_is_in(self):
        url = reverse("annotation:export-download")
        for shape in ("long", "revisions"):
            with self.subTest(shape=shape):
                body = b"".join(self.client.get(url, {"shape": shape}).streaming_content)
                self.assertNotIn(b"ANN-TRACE-ANSWER", body)
                self.assertNotIn(b"ANN-SPAN-ANSWER", body)
                self.assertIn(b"JUDGE-ANSWER", body)
                self.assertIn(b"ANN-ELSEWHERE", body)
        wide = self.client.get(url, {"shape": "wide", "per_annotator": "on"})
        rows = csv.DictReader(io.StringIO(b"".join(wide.streaming_content).decode()))
        [row] = [row for row in rows if row["trace_id"] == self.trace.trace_id]
        self.assertEqual((row["correct[ann]"], row["correct.count"]), ("", "1"))
        queues.submit(assignment=self.bobs, values={"correct": True}, actor=self.bob)
        body = b"".join(self.client.get(url, {"shape": "long"}).streaming_content)
        self.assertIn(b"ANN-TRACE-ANSWER", body)
        self.assertIn(b"ANN-SPAN-ANSWER", body)

    def test_the_list_and_overview_show_everything_to_others_and_in_open_queues(self):
        everything = {"correct": (1, 2, 3), "tone": (0, 0, 1)}
        overview_url = reverse("annotation:overview", args=[self.trace.experiment_id])
        for person in (self.cy, self.chief):
            self.client.force_login(person)
            self.assertEqual(self.list_badges(), everything)
            self.assertTrue(self.listed("correct=false"))
            self.assertContains(self.client.get(overview_url), self.trace.trace_id)
        Queue.objects.filter(pk=self.queue.pk).update(blind=False)
        self.client.force_login(self.bob)
        self.assertEqual(self.list_badges(), everything)
        self.assertTrue(self.listed("correct=false"))
        self.assertContains(self.client.get(overview_url), self.trace.trace_id)


class BlindOnEveryItemTests(TestCase):
    """A member who has answered nothing sees no one's answers on any item of the queue, the
    ones not handed to them yet included, on every page and through their own API token."""

    @classmethod
    def setUpTestData(cls):
        cls.rita = make_reviewer(username="rita")
        cls.ravi = make_reviewer(username="ravi")
        cls.app = make_reviewer(username="judge-app")
        cls.helpful = LabelSchema.objects.create(
            name="helpful", value_type=LabelSchema.ValueType.BOOLEAN
        )
        cls.traces = [make_trace(session="s/every") for _ in range(3)]
        cls.queue = queues.create_queue(
            name="Helpfulness",
            traces=cls.traces,
            schemas=[cls.helpful],
            annotators=[cls.rita, cls.ravi],
            overlap=2,
        )
        for n in (1, 2):
            queues.submit(
                assignment=queues.next_assignment(queue=cls.queue, user=cls.rita),
                values={"helpful": False},
                rationales={"helpful": f"RITA-{n}"},
                actor=cls.rita,
            )
        cls.second = cls.traces[1]
        cls.ritas = Assessment.objects.get(rationale="RITA-2")
        services.log_feedback(
            trace=cls.second,
            name="helpful",
            value=True,
            rationale="JUDGE-2",
            source_type=SourceType.LLM_JUDGE,
            actor=cls.app,
        )

    def setUp(self):
        self.client.force_login(self.ravi)
        self.api = api_client(self.ravi)

    def api_get(self, path, **params):
        """The response, with a streamed body (traces/get) read once so it can be checked
        more than once."""
        response = self.api.get(f"{V3}{path}", params)
        self.assertEqual(response.status_code, 200, path)
        if response.streaming:
            read = HttpResponse(b"".join(response.streaming_content))
            read.request = response.request
            return read
        return response

    def search(self, client, filter_string=""):
        body = {
            "locations": [{"mlflow_experiment": {"experiment_id": str(self.second.experiment_id)}}],
            "filter": filter_string,
        }
        response = client.post(f"{V3}traces/search", body, content_type="application/json")
        self.assertEqual(response.status_code, 200, response.content)
        return response

    def test_pages_hide_answers_on_items_never_handed_out(self):
        self.assertFalse(self.queue.items.get(position=2).assignments.filter(annotator=self.ravi))
        review = self.client.get(self.second.get_absolute_url())
        self.assertContains(review, NOTICE)
        # Not theirs to open yet: the notice leads to the queue instead of the item.
        self.assertContains(
            review, f'href="{reverse("annotation:queue-detail", args=[self.queue.pk])}"'
        )
        self.assertNotContains(review, reverse("annotation:queue-item", args=[self.queue.pk, 2]))
        self.assertNotContains(review, "RITA-2")
        self.assertContains(review, "JUDGE-2")
        session = self.client.get(reverse("annotation:session", args=["s/every"]))
        self.assertNotContains(session, "RITA-1")
        self.assertNotContains(session, "RITA-2")
        history = reverse("annotation:assessment-history", args=[self.ritas.assessment_id])
        self.assertContains(self.client.get(history), NOTICE)
        listed = self.client.get(reverse("traces:list"), {"feedback": "helpful=false"})
        self.assertNotContains(listed, self.second.trace_id)

    def test_every_api_read_with_a_members_token_hides_them(self):
        responses = [
            self.api_get(f"traces/{self.second.trace_id}"),
            self.api_get("traces/get", trace_id=self.second.trace_id),
            self.api_get("traces/batchGet", trace_ids=[t.trace_id for t in self.traces]),
            self.api_get("traces/batchGetInfos", trace_ids=[self.second.trace_id]),
            self.search(self.api),
        ]
        for response in responses:
            with self.subTest(url=response.request["PATH_INFO"]):
                self.assertNotContains(response, "RITA-1")
                self.assertNotContains(response, "RITA-2")
                self.assertContains(response, "JUDGE-2")
        one = f"{V3}traces/{self.second.trace_id}/assessments/{self.ritas.assessment_id}"
        missing = self.api.get(one)
        self.assertEqual(missing.status_code, 404)
        self.assertEqual(missing.json()["error_code"], "RESOURCE_DOES_NOT_EXIST")
        self.assertNotContains(self.search(self.api, "feedback.helpful = 'false'"), "RITA-")
        self.assertNotIn(
            self.second.trace_id,
            self.search(self.api, "feedback.helpful = 'false'").content.decode(),
        )

    def test_the_export_with_a_members_token_leaves_them_out(self):
        url = reverse("annotation:export-download")
        for client, shown in ((self.api, False), (api_client(self.app), True)):
            response = client.get(url, {"shape": "long", "format": "jsonl"})
            self.assertEqual(response.status_code, 200)
            body = b"".join(response.streaming_content)
            self.assertEqual(b"RITA-2" in body, shown)
            self.assertIn(b"JUDGE-2", body)

    def test_tokens_of_non_members_see_everything(self):
        app = api_client(self.app)
        response = app.get(f"{V3}traces/get", {"trace_id": self.second.trace_id})
        self.assertContains(response, "RITA-2")
        one = f"{V3}traces/{self.second.trace_id}/assessments/{self.ritas.assessment_id}"
        self.assertContains(app.get(one), "RITA-2")
        self.assertContains(self.search(app, "feedback.helpful = 'false'"), self.second.trace_id)

    def test_answering_one_item_reveals_that_item_only_and_skipping_reveals_nothing(self):
        skipped = queues.next_assignment(queue=self.queue, user=self.ravi)
        queues.skip(assignment=skipped, reason="unclear", actor=self.ravi)
        self.assertNotContains(self.client.get(self.traces[0].get_absolute_url()), "RITA-1")
        queues.submit(
            assignment=queues.next_assignment(queue=self.queue, user=self.ravi),
            values={"helpful": True},
            actor=self.ravi,
        )
        self.assertContains(self.client.get(self.second.get_absolute_url()), "RITA-2")
        self.assertContains(self.api_get("traces/get", trace_id=self.second.trace_id), "RITA-2")
        self.assertNotContains(self.client.get(self.traces[0].get_absolute_url()), "RITA-1")
        self.assertNotContains(
            self.api_get("traces/get", trace_id=self.traces[0].trace_id), "RITA-1"
        )

    def test_closing_the_queue_shows_everything(self):
        queues.set_status(queue=self.queue, status=Queue.Status.CLOSED)
        self.assertContains(self.client.get(self.second.get_absolute_url()), "RITA-2")
        self.assertContains(self.api_get("traces/get", trace_id=self.second.trace_id), "RITA-2")


class BlindRuleFormsAgreeTests(TestCase):
    """The blind rule has a form for pages (``hidden_answers``), one inside queries
    (``hidden_answers_condition``) and one for a single entry (``hides``): in every state
    a queue, an item and an answer can be in, the three hide the same entries."""

    @classmethod
    def setUpTestData(cls):
        ann, cls.bob, cy = (make_reviewer(username=n) for n in ("ann", "bob", "cy"))
        correct = LabelSchema.objects.create(name="correct", value_type="boolean")
        LabelSchema.objects.create(name="tone", value_type="boolean")
        cls.traces = [make_trace(request_time=n) for n in range(8)]
        done, skipped, never_handed_out, closed, not_blind, not_member, both, none = cls.traces

        def queue(name, traces, annotators, **options):
            return queues.create_queue(
                name=name, traces=traces, schemas=[correct], annotators=annotators, **options
            )

        # Items are handed out in order: bob finishes the first and skips the second.
        blind = queue("open", [done, skipped, never_handed_out, both], [ann, cls.bob], overlap=2)
        queue("closed", [closed], [ann, cls.bob])
        Queue.objects.filter(name="closed").update(status=Queue.Status.CLOSED)
        queue("not blind", [not_blind, both], [ann, cls.bob], blind=False)
        queue("without bob", [not_member], [ann, cy])
        for trace in cls.traces:
            for name in ("correct", "tone"):
                services.log_feedback(trace=trace, name=name, value=True, actor=ann)
            services.log_feedback(
                trace=trace, name="correct", value=False, source_type=SourceType.LLM_JUDGE
            )
            services.log_feedback(trace=trace, name="correct", value=True, source_id="ext")
        turn = queues.next_assignment(queue=blind, user=cls.bob)
        queues.submit(assignment=turn, values={"correct": False}, actor=cls.bob)
        turn = queues.next_assignment(queue=blind, user=cls.bob)
        queues.skip(assignment=turn, reason="Unclear", actor=cls.bob)

    def forms(self, user) -> tuple[set, set, set]:
        page = queues.hidden_answers(user=user, traces=self.traces)
        condition = queues.hidden_answers_condition(user=user)
        entries = Assessment.objects.all()
        return (
            {a.pk for a in entries if page.hides(a)},
            set(Assessment.objects.filter(condition).values_list("pk", flat=True)),
            {a.pk for a in entries if queues.hides(a, user=user)},
        )

    def test_the_three_forms_hide_the_same_entries(self):
        by_page, in_queries, one_by_one = self.forms(self.bob)
        self.assertEqual(by_page, in_queries)
        self.assertEqual(one_by_one, in_queries)
        hidden = Assessment.objects.filter(pk__in=in_queries).select_related("annotator", "trace")
        # Others' human answers to the question of an open blind queue, on the items bob
        # has not finished: skipped, never handed out, and the one in a queue that is not blind.
        self.assertEqual(
            {(a.trace.request_time, a.source_id or a.annotator.username) for a in hidden},
            {(t, who) for t in (1, 2, 6) for who in ("ann", "ext")},
        )
        self.assertEqual(self.forms(make_reviewer(username="outsider")), (set(), set(), set()))
