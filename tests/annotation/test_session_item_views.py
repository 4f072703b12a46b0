"""Session items in the browser: building a queue from sessions, the conversation page, the
session page and the export."""

import csv
import io
import json

from django.test import Client, TestCase
from django.urls import reverse

from annotation import queues, session_items
from annotation.models import Assessment, LabelSchema, Queue
from tests.factories import make_admin, make_reviewer, make_trace, make_viewer

DOWNLOAD = reverse("annotation:export-download")


def body(response) -> str:
    return b"".join(response.streaming_content).decode("utf-8")


class SessionQueueViewTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.admin = make_admin(username="boss")
        cls.ann = make_reviewer(username="ann")
        cls.schema = LabelSchema.objects.create(name="resolved", value_type="boolean")
        cls.turns = [
            make_trace(
                session="sess-1",
                request_time=1000 + n,
                request_preview=json.dumps({"question": f"<script>turn {n}</script>"}),
                response_preview=json.dumps({"answer": f"answer {n} & more"}),
            )
            for n in range(3)
        ]
        cls.other = make_trace(session="sess-2", request_time=50)

    def create(self, **fields):
        data = {
            "name": "Chats",
            "limit": 100,
            "schemas": [self.schema.pk],
            "annotators": [self.ann.pk],
            "overlap": 1,
            **fields,
        }
        self.client.force_login(self.admin)
        return self.client.post(reverse("annotation:queue-create"), data)

    def session_queue(self):
        return session_items.create_session_queue(
            name="Chats", session_ids=["sess-1"], schemas=[self.schema], annotators=[self.ann]
        )

    def test_an_admin_builds_a_queue_from_session_ids(self):
        response = self.create(source="sessions", session_ids="sess-2\nsess-1\nsess-2")
        queue = Queue.objects.get(name="Chats")
        self.assertRedirects(response, reverse("annotation:queue-detail", args=[queue.pk]))
        self.assertEqual(
            [(i.session_id, i.trace) for i in queue.items.all()],
            [("sess-2", self.other), ("sess-1", self.turns[-1])],
        )

    def test_an_admin_builds_a_queue_from_the_sessions_of_a_filter(self):
        self.create(source="filter", filter_query="?session=sess-1", whole_sessions="on")
        queue = Queue.objects.get(name="Chats")
        self.assertEqual([i.session_id for i in queue.items.all()], ["sess-1"])

    def test_a_filter_without_sessions_is_refused_on_the_form(self):
        make_trace(user="loner")
        response = self.create(source="filter", filter_query="user=loner", whole_sessions="on")
        self.assertContains(response, "No session matches; the queue would be empty.")
        self.assertFalse(Queue.objects.exists())

    def test_unknown_sessions_are_refused_on_the_form(self):
        response = self.create(source="sessions", session_ids="sess-1, nowhere")
        self.assertContains(response, "No traces in session nowhere.")
        self.assertFalse(Queue.objects.exists())

    def test_the_trace_list_links_admins_to_a_queue_of_its_sessions(self):
        self.client.force_login(self.admin)
        response = self.client.get(reverse("traces:list"), {"session": "sess-1"})
        self.assertContains(response, "?sessions=1&amp;filter=session%3Dsess-1")
        form = self.client.get(
            reverse("annotation:queue-create"), {"sessions": "1", "filter": "session=sess-1"}
        )
        self.assertContains(form, 'id="id_whole_sessions" checked')

    def test_add_sessions_is_for_admins_and_dedupes(self):
        queue = self.session_queue()
        url = reverse("annotation:queue-add-sessions", args=[queue.pk])
        self.assertEqual(self.client.post(url, {"session_ids": "sess-2"}).status_code, 302)
        self.client.force_login(self.ann)
        self.assertEqual(self.client.post(url, {"session_ids": "sess-2"}).status_code, 403)
        self.client.force_login(make_viewer())
        self.assertEqual(self.client.post(url, {"session_ids": "sess-2"}).status_code, 403)
        self.assertEqual(queue.items.count(), 1)
        admin = Client(enforce_csrf_checks=True)
        admin.force_login(self.admin)
        self.assertEqual(admin.post(url, {"session_ids": "sess-2"}).status_code, 403)
        self.client.force_login(self.admin)
        response = self.client.post(url, {"session_ids": "sess-2\nsess-1"}, follow=True)
        self.assertContains(response, "Added 1 session item(s) (1 already in the queue).")
        self.assertContains(response, "Session <code>sess-2</code>")
        response = self.client.post(url, {"session_ids": "nowhere"}, follow=True)
        self.assertContains(response, "No traces in session nowhere.")
        self.assertEqual(queue.items.count(), 2)

    def test_the_item_page_shows_the_conversation_escaped_with_links_to_each_turn(self):
        queue = self.session_queue()
        queues.next_assignment(queue=queue, user=self.ann)
        self.client.force_login(self.ann)
        response = self.client.get(reverse("annotation:queue-item", args=[queue.pk, 1]))
        self.assertContains(response, 'data-testid="conversation"')
        self.assertContains(response, "&lt;script&gt;turn 0&lt;/script&gt;")
        self.assertNotContains(response, "<script>turn")
        self.assertContains(response, "answer 2 &amp; more")
        for trace in self.turns:
            self.assertContains(response, f'href="{trace.get_absolute_url()}"')
        self.assertNotContains(response, 'id="span-tree"')

    def test_answers_land_on_the_last_trace_and_show_on_the_session_page(self):
        queue = self.session_queue()
        queues.next_assignment(queue=queue, user=self.ann)
        self.client.force_login(self.ann)
        url = reverse("annotation:queue-item", args=[queue.pk, 1])
        self.client.post(
            url,
            {
                f"s{self.schema.pk}-value": "true",
                f"s{self.schema.pk}-rationale": "Solved <b>it</b>",
            },
        )
        answer = Assessment.objects.get(name="resolved")
        self.assertEqual(answer.trace, self.turns[-1])
        self.assertEqual(answer.metadata[queues.SESSION_KEY], "sess-1")
        with self.assertNumQueries(6):
            page = self.client.get(reverse("annotation:session", args=["sess-1"]))
        self.assertContains(page, 'data-testid="about-session"')
        self.assertContains(page, "Solved &lt;b&gt;it&lt;/b&gt;")
        self.assertEqual(page.context["about_session"], [answer])
        self.assertNotIn(answer, page.context["turns"][-1].shown_assessments)

    def test_the_decide_page_links_the_whole_conversation(self):
        queue = session_items.create_session_queue(
            name="Pair",
            session_ids=["sess-1"],
            schemas=[self.schema],
            annotators=[self.ann, self.admin],
            overlap=2,
        )
        for person, value in ((self.ann, True), (self.admin, False)):
            turn = queues.next_assignment(queue=queue, user=person)
            queues.submit(assignment=turn, values={"resolved": value}, actor=person)
        self.client.force_login(self.admin)
        url = reverse("annotation:queue-adjudicate", args=[queue.pk, 1, self.schema.pk])
        response = self.client.get(url)
        session_url = reverse("annotation:session", args=["sess-1"])
        self.assertContains(response, f'href="{session_url}"')
        self.assertContains(response, "Session <code>sess-1</code></h2>", html=False)
        self.assertNotContains(response, f"Trace <code>{self.turns[-1].trace_id}</code>")
        listed = self.client.get(reverse("annotation:queue-disagreements", args=[queue.pk]))
        self.assertContains(
            listed, f'<a href="{session_url}">Session <code>sess-1</code></a>', count=1
        )
        self.assertNotContains(listed, self.turns[-1].trace_id)

    def test_the_assignments_download_names_each_items_session(self):
        queue = self.session_queue()
        session_items.add_sessions(queue=queue, session_ids=["sess-2"])
        plain = make_trace()
        queue.items.create(trace=plain, position=3)
        self.client.force_login(self.admin)
        while (turn := queues.next_assignment(queue=queue, user=self.ann)) is not None:
            queues.submit(assignment=turn, values={"resolved": True}, actor=self.ann)
        response = self.client.get(reverse("annotation:queue-assignments", args=[queue.pk]))
        rows = list(csv.DictReader(io.StringIO(body(response))))
        self.assertEqual(
            [(r["position"], r["trace_id"], r["session_id"]) for r in rows],
            [
                ("1", self.turns[-1].trace_id, "sess-1"),
                ("2", self.other.trace_id, "sess-2"),
                ("3", plain.trace_id, ""),
            ],
        )

    def test_the_export_names_the_session_of_session_answers(self):
        queue = self.session_queue()
        turn = queues.next_assignment(queue=queue, user=self.ann)
        queues.submit(assignment=turn, values={"resolved": True}, actor=self.ann)
        plain = queues.create_queue(
            name="Plain", traces=[self.other], schemas=[self.schema], annotators=[self.ann]
        )
        turn = queues.next_assignment(queue=plain, user=self.ann)
        queues.submit(assignment=turn, values={"resolved": False}, actor=self.ann)
        self.client.force_login(self.ann)
        lines = body(self.client.get(DOWNLOAD, {"format": "jsonl"})).splitlines()
        rows = {row["trace_id"]: row for row in map(json.loads, lines)}
        self.assertEqual(rows[self.turns[-1].trace_id]["session_id"], "sess-1")
        self.assertEqual(rows[self.other.trace_id]["session_id"], "")
        table = list(
            csv.DictReader(io.StringIO(body(self.client.get(DOWNLOAD, {"format": "csv"}))))
        )
        self.assertEqual(
            {r["trace_id"]: r["session_id"] for r in table},
            {self.turns[-1].trace_id: "sess-1", self.other.trace_id: ""},
        )
        revisions = body(self.client.get(DOWNLOAD, {"format": "jsonl", "shape": "revisions"}))
        self.assertEqual(
            sorted(json.loads(line)["session_id"] for line in revisions.splitlines()),
            ["", "sess-1"],
        )
