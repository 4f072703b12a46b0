from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client, TestCase
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from annotation import queue_views, queues, services
from annotation.models import Assessment, LabelSchema, Queue, QueueAssignment, QueueItem
from tests.factories import make_admin, make_experiment, make_reviewer, make_trace, make_viewer
from traces.models import Trace

Status = QueueAssignment.Status


def make_schema(name="correct", **kwargs):
    defaults = {"value_type": "boolean", "applies_to": "trace"}
    return LabelSchema.objects.create(name=name, **{**defaults, **kwargs})


class QueueViewTestData:
    @classmethod
    def setUpTestData(cls):
        cls.admin = make_admin(username="boss")
        cls.ann = make_reviewer(username="ann")
        cls.bob = make_reviewer(username="bob")
        cls.outsider = make_reviewer(username="out")
        cls.viewer = make_viewer(username="vic")
        cls.traces = [make_trace(user=f"u{n}") for n in range(3)]
        cls.correct = make_schema()
        cls.note = make_schema("note", value_type="text")
        cls.queue = queues.create_queue(
            name="First pass",
            traces=cls.traces,
            schemas=[cls.correct, cls.note],
            required_schemas=[cls.correct],
            annotators=[cls.ann, cls.bob],
            overlap=2,
            created_by=cls.admin,
        )

    def item_url(self, position, queue=None):
        return reverse("annotation:queue-item", args=[(queue or self.queue).pk, position])


class QueuePermissionTests(QueueViewTestData, TestCase):
    def setUp(self):
        self.assignment = queues.next_assignment(queue=self.queue, user=self.ann)
        q = self.queue.pk
        self.admin_posts = {
            reverse("annotation:queue-create"): {"name": "x"},
            reverse("annotation:queue-status", args=[q]): {"status": "closed"},
            reverse("annotation:queue-item-reopen", args=[q, 1]): {},
            reverse("annotation:queue-reassign", args=[q, self.assignment.pk]): {
                "to_user": self.bob.pk
            },
            reverse("annotation:queue-adjudicate", args=[q, 1, self.correct.pk]): {"value": "true"},
        }
        self.labeling_posts = {
            reverse("annotation:queue-next", args=[q]): {},
            self.item_url(1): {f"s{self.correct.pk}-value": "true"},
            reverse("annotation:queue-skip", args=[q, 1]): {"reason": "no"},
        }

    def assert_nothing_changed(self):
        self.assignment.refresh_from_db()
        self.assertEqual(
            (self.assignment.annotator, self.assignment.status), (self.ann, Status.ASSIGNED)
        )
        self.assertEqual(QueueAssignment.objects.count(), 1)
        self.assertEqual(Queue.objects.get().status, Queue.Status.OPEN)
        self.assertFalse(Assessment.objects.exists())

    def test_anonymous_people_are_sent_to_sign_in(self):
        for url, data in {**self.admin_posts, **self.labeling_posts}.items():
            with self.subTest(url=url):
                response = self.client.post(url, data)
                self.assertEqual(response.status_code, 302)
                self.assertIn("/accounts/login/", response["Location"])
        self.assert_nothing_changed()

    def test_viewers_are_refused_everywhere(self):
        self.client.force_login(self.viewer)
        self.assertEqual(self.client.get(reverse("annotation:queue-list")).status_code, 403)
        for url, data in {**self.admin_posts, **self.labeling_posts}.items():
            with self.subTest(url=url):
                self.assertEqual(self.client.post(url, data).status_code, 403)
        self.assert_nothing_changed()

    def test_reviewers_cannot_manage(self):
        self.client.force_login(self.ann)
        for url, data in self.admin_posts.items():
            with self.subTest(url=url):
                self.assertEqual(self.client.post(url, data).status_code, 403)
        self.assertEqual(
            self.client.get(
                reverse("annotation:queue-disagreements", args=[self.queue.pk])
            ).status_code,
            403,
        )
        self.assert_nothing_changed()

    def test_reviewers_outside_the_queue_do_not_see_it(self):
        self.client.force_login(self.outsider)
        self.assertEqual(
            self.client.get(reverse("annotation:queue-detail", args=[self.queue.pk])).status_code,
            404,
        )
        for url, data in self.labeling_posts.items():
            with self.subTest(url=url):
                self.assertEqual(self.client.post(url, data).status_code, 404)
        self.assertNotContains(self.client.get(reverse("annotation:queue-list")), "First pass")
        self.assert_nothing_changed()

    def test_an_item_belongs_to_its_assignee(self):
        self.client.force_login(self.bob)
        detail = reverse("annotation:queue-detail", args=[self.queue.pk])
        # A member sent another's item (or one not handed out) is told how items come.
        for response in (
            self.client.get(self.item_url(1)),
            self.client.post(self.item_url(1), {f"s{self.correct.pk}-value": "true"}),
        ):
            self.assertRedirects(response, detail)
        told = [str(m) for m in get_messages(response.wsgi_request)]
        self.assertIn("Item 1 is not yours to label yet", " ".join(told))
        self.assertFalse(Assessment.objects.filter(annotator=self.bob).exists())
        self.assertEqual(self.client.get(self.item_url(99)).status_code, 404)


class QueueCreateTests(QueueViewTestData, TestCase):
    def setUp(self):
        self.client.force_login(self.admin)

    def data(self, **overrides):
        data = {
            "name": "Second pass",
            "description": "Check the answers",
            "source": "filter",
            "filter_query": "",
            "limit": "100",
            "trace_ids": "",
            "schemas": [self.correct.pk],
            "annotators": [self.ann.pk, self.bob.pk],
            "overlap": "2",
            "blind": "on",
        }
        data.update(overrides)
        return data

    def test_from_a_trace_list_filter(self):
        url = reverse("annotation:queue-create")
        page = self.client.get(url, {"filter": "user=u1"})
        self.assertContains(page, 'value="user=u1"')
        response = self.client.post(url, self.data(filter_query="/?user=u1&cursor=abc"))
        queue = Queue.objects.get(name="Second pass")
        self.assertRedirects(response, reverse("annotation:queue-detail", args=[queue.pk]))
        self.assertEqual([i.trace for i in queue.items.all()], [self.traces[1]])
        self.assertEqual(queue.filter_query, "user=u1")
        self.assertEqual((queue.overlap, queue.blind, queue.created_by), (2, True, self.admin))

    def test_from_trace_ids_in_the_given_order(self):
        ids = f"{self.traces[2].trace_id}, {self.traces[0].trace_id}\n"
        self.client.post(reverse("annotation:queue-create"), self.data(source="ids", trace_ids=ids))
        queue = Queue.objects.get(name="Second pass")
        self.assertEqual([i.trace for i in queue.items.all()], [self.traces[2], self.traces[0]])

    def test_mistakes_re_render_the_form(self):
        cases = {
            "Unknown trace ids": self.data(source="ids", trace_ids="tr-nope"),
            "No trace matches": self.data(filter_query="user=nobody"),
            "Overlap cannot exceed": self.data(overlap="3"),
            "already exists": self.data(name="First pass"),
            "This filter does not work": self.data(filter_query="state=SLEEPY"),
        }
        for message, data in cases.items():
            with self.subTest(message=message):
                response = self.client.post(reverse("annotation:queue-create"), data)
                self.assertContains(response, message)
        self.assertEqual(Queue.objects.count(), 1)

    def test_every_chosen_schema_is_required_unless_ticked_optional(self):
        url = reverse("annotation:queue-create")
        self.client.post(url, self.data(schemas=[self.correct.pk, self.note.pk]))
        queue = Queue.objects.get(name="Second pass")
        self.assertEqual(set(queue.required_schemas.all()), {self.correct, self.note})
        data = self.data(
            name="Third pass",
            schemas=[self.correct.pk, self.note.pk],
            optional_schemas=[self.note.pk],
        )
        self.client.post(url, data)
        queue = Queue.objects.get(name="Third pass")
        self.assertEqual(list(queue.required_schemas.all()), [self.correct])

    def test_an_optional_schema_must_be_chosen(self):
        data = self.data(schemas=[self.correct.pk], optional_schemas=[self.note.pk])
        response = self.client.post(reverse("annotation:queue-create"), data)
        self.assertContains(response, "Tick only schemas chosen for the queue.")
        self.assertEqual(Queue.objects.count(), 1)

    def test_schemas_of_other_experiments_are_refused_with_a_message(self):
        returns = make_experiment("returns")
        refund = make_schema("refund", title="Refund right?")
        refund.experiments.set([returns])
        response = self.client.post(
            reverse("annotation:queue-create"), self.data(schemas=[self.correct.pk, refund.pk])
        )
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, "&#x27;Refund right?&#x27; does not apply to Default")
        self.assertEqual(Queue.objects.count(), 1)

    def test_only_people_who_may_label_are_offered(self):
        page = self.client.get(reverse("annotation:queue-create"))
        offered = {user.username for user in page.context["form"].fields["annotators"].queryset}
        self.assertEqual(offered, {"boss", "ann", "bob", "out"})


class LabelingFlowTests(QueueViewTestData, TestCase):
    def test_next_submit_and_next_again(self):
        self.client.force_login(self.ann)
        response = self.client.post(reverse("annotation:queue-next", args=[self.queue.pk]))
        self.assertRedirects(response, self.item_url(1))
        page = self.client.get(self.item_url(1))
        self.assertContains(page, self.traces[0].trace_id)
        self.assertContains(page, "0 / 6 done")
        response = self.client.post(
            self.item_url(1),
            {f"s{self.correct.pk}-value": "true", f"s{self.correct.pk}-rationale": "fine"},
        )
        self.assertRedirects(response, self.item_url(2))
        [answer] = Assessment.objects.filter(annotator=self.ann)
        self.assertEqual((answer.name, answer.value, answer.rationale), ("correct", True, "fine"))
        self.assertContains(self.client.get(self.item_url(2)), "1 / 6 done · mine 1, others 0")

    def test_with_nothing_left_the_queue_page_says_so_instead_of_offering_an_item(self):
        self.client.force_login(self.ann)
        detail = reverse("annotation:queue-detail", args=[self.queue.pk])
        self.assertContains(self.client.get(detail), "Label next item")
        self.client.post(reverse("annotation:queue-next", args=[self.queue.pk]))
        for position in (1, 2, 3):  # each submit hands out the next item
            self.assertTrue(queues.has_work_left(queue=self.queue, user=self.ann))
            self.client.post(self.item_url(position), {f"s{self.correct.pk}-value": "true"})
        page = self.client.get(detail)
        self.assertNotContains(page, "Label next item")
        self.assertContains(page, "Nothing left for you to label here")
        # The same rule as handing out items: nothing would be given.
        self.assertFalse(queues.has_work_left(queue=self.queue, user=self.ann))
        self.assertIsNone(queues.next_assignment(queue=self.queue, user=self.ann))
        self.assertTrue(queues.has_work_left(queue=self.queue, user=self.bob))

    def post_first_item(self, data):
        """Ann takes item 1 and posts ``data`` to it; the answer must leave it unfinished."""
        self.client.force_login(self.ann)
        self.client.post(reverse("annotation:queue-next", args=[self.queue.pk]))
        response = self.client.post(self.item_url(1), data)
        self.assertEqual(response.status_code, 200)
        assignment = QueueAssignment.objects.get(annotator=self.ann)
        self.assertEqual((assignment.status, assignment.item.position), (Status.ASSIGNED, 1))
        self.assertFalse(Assessment.objects.exists())
        return response

    def test_a_required_answer_is_asked_for(self):
        response = self.post_first_item({f"s{self.note.pk}-value": "hm"})
        self.assertContains(response, "Nothing was saved: answer &quot;correct&quot; first.")
        self.assertContains(response, ">\nhm</textarea>")
        self.assertNotContains(response, "This field is required.")
        required = '<span class="muted">(required)</span>'
        self.assertContains(response, f"<legend>correct {required}</legend>", html=True)
        self.assertContains(response, "<legend>note</legend>", html=True)

    def test_an_empty_submission_gets_a_message_and_changes_nothing(self):
        response = self.post_first_item({f"s{self.correct.pk}-rationale": " "})
        self.assertContains(response, "Nothing was answered, so nothing was saved.")
        self.assertNotContains(response, "This field is required.")

    def test_a_rationale_without_a_value_is_not_dropped(self):
        data = {f"s{self.correct.pk}-value": "true", f"s{self.note.pk}-rationale": "see span 3"}
        response = self.post_first_item(data)
        self.assertContains(response, "This field is required.")
        self.assertContains(response, "see span 3")

    def test_resume_where_one_left_off(self):
        self.client.force_login(self.ann)
        self.client.post(reverse("annotation:queue-next", args=[self.queue.pk]))
        page = self.client.get(reverse("annotation:queue-detail", args=[self.queue.pk]))
        self.assertContains(page, "Resume at item 1")
        response = self.client.post(reverse("annotation:queue-next", args=[self.queue.pk]))
        self.assertRedirects(response, self.item_url(1))

    def test_skip_with_a_reason_moves_on(self):
        self.client.force_login(self.ann)
        self.client.post(reverse("annotation:queue-next", args=[self.queue.pk]))
        url = reverse("annotation:queue-skip", args=[self.queue.pk, 1])
        response = self.client.post(url, {"reason": ""})
        self.assertRedirects(response, self.item_url(1))
        response = self.client.post(url, {"reason": "Broken trace"})
        self.assertRedirects(response, self.item_url(2))
        skipped = QueueAssignment.objects.get(annotator=self.ann, item__position=1)
        self.assertEqual((skipped.status, skipped.skip_reason), (Status.SKIPPED, "Broken trace"))

    def test_blind_queue_hides_others_until_one_answers(self):
        assignment = queues.next_assignment(queue=self.queue, user=self.ann)
        queues.submit(assignment=assignment, values={"correct": False}, actor=self.ann)
        self.client.force_login(self.bob)
        self.client.post(reverse("annotation:queue-next", args=[self.queue.pk]))
        page = self.client.get(self.item_url(1))
        self.assertContains(page, "Hidden until you submit your own answer")
        self.assertNotContains(page, "<strong>ann</strong>", html=True)
        # The review page hides them too, so it is linked from the start.
        self.assertContains(page, "Open on the review page")
        self.client.post(self.item_url(1), {f"s{self.correct.pk}-value": "true"})
        page = self.client.get(self.item_url(1))
        self.assertContains(page, "<strong>ann</strong>", html=True)
        self.assertNotContains(page, "Hidden until you submit your own answer")

    def test_when_nothing_is_left_the_queue_page_says_so(self):
        for _ in range(3):
            assignment = queues.next_assignment(queue=self.queue, user=self.ann)
            queues.submit(assignment=assignment, values={"correct": True}, actor=self.ann)
        self.client.force_login(self.ann)
        response = self.client.post(reverse("annotation:queue-next", args=[self.queue.pk]))
        self.assertRedirects(response, reverse("annotation:queue-detail", args=[self.queue.pk]))
        [message] = get_messages(response.wsgi_request)
        self.assertIn("Nothing left for you", str(message))

    def test_a_closed_queue_sends_people_back(self):
        queues.set_status(queue=self.queue, status=Queue.Status.CLOSED)
        self.client.force_login(self.ann)
        response = self.client.post(reverse("annotation:queue-next", args=[self.queue.pk]))
        self.assertRedirects(response, reverse("annotation:queue-detail", args=[self.queue.pk]))

    def test_the_queue_list_shows_my_queues(self):
        self.client.force_login(self.ann)
        page = self.client.get(reverse("annotation:queue-list"))
        self.assertContains(page, "First pass")
        self.assertContains(page, ">Label</button>")


class AdminQueuePageTests(QueueViewTestData, TestCase):
    def setUp(self):
        self.client.force_login(self.admin)
        for person, values in ((self.ann, [True, True]), (self.bob, [True, False])):
            for value in values:
                assignment = queues.next_assignment(queue=self.queue, user=person)
                queues.submit(assignment=assignment, values={"correct": value}, actor=person)

    def test_progress_agreement_and_disagreements(self):
        page = self.client.get(reverse("annotation:queue-detail", args=[self.queue.pk]))
        self.assertContains(page, "4 / 6")
        self.assertContains(page, "Disagreements: 1")
        by_annotator = [row["progress"] for row in page.context["by_annotator"]]
        rows = {row.user.username: row for row in by_annotator}
        self.assertEqual((rows["ann"].done, rows["bob"].done), (2, 2))
        self.assertEqual((rows["ann"].agreeing, rows["ann"].compared), (1, 2))

    def test_the_admin_page_runs_the_same_queries_however_many_items(self):
        url = reverse("annotation:queue-detail", args=[self.queue.pk])
        with CaptureQueriesContext(connection) as before:
            self.client.get(url)
        more = queues.create_queue(
            name="Bigger",
            traces=[*self.traces, *(make_trace() for _ in range(5))],
            schemas=[self.correct],
            annotators=[self.ann, self.bob],
            overlap=2,
        )
        for person in (self.ann, self.bob):
            for _ in range(6):
                assignment = queues.next_assignment(queue=more, user=person)
                queues.submit(assignment=assignment, values={"correct": True}, actor=person)
        with self.assertNumQueries(len(before.captured_queries)):
            self.client.get(reverse("annotation:queue-detail", args=[more.pk]))

    def test_items_are_listed_a_page_at_a_time(self):
        big = queues.create_queue(
            name="Large",
            traces=[make_trace() for _ in range(queue_views.ITEMS_PER_PAGE + 3)],
            schemas=[self.correct],
            annotators=[self.ann],
            overlap=1,
        )
        url = reverse("annotation:queue-detail", args=[big.pk])
        first = self.client.get(url)
        self.assertEqual(len(first.context["items"]), queue_views.ITEMS_PER_PAGE)
        self.assertContains(first, 'rel="next" href="?page=2"')
        last = self.client.get(url, {"page": 2})
        self.assertEqual([item.position for item in last.context["items"]], [101, 102, 103])
        self.assertContains(last, "Page 2 of 2")

    def test_the_progress_fragment_for_htmx_polling(self):
        url = reverse("annotation:queue-detail", args=[self.queue.pk])
        response = self.client.get(url, headers={"HX-Request": "true"})
        content = response.content.decode()
        self.assertTrue(content.strip().startswith('<section id="queue-progress"'))
        self.assertNotIn("<html", content)

    def test_close_and_reopen_the_queue(self):
        url = reverse("annotation:queue-status", args=[self.queue.pk])
        self.client.post(url, {"status": "closed"})
        self.assertEqual(Queue.objects.get().status, Queue.Status.CLOSED)
        self.client.post(url, {"status": "open"})
        self.assertEqual(Queue.objects.get().status, Queue.Status.OPEN)

    def test_reopen_an_item_sends_it_back(self):
        self.client.post(reverse("annotation:queue-item-reopen", args=[self.queue.pk, 2]))
        statuses = QueueAssignment.objects.filter(item__position=2).values_list("status", flat=True)
        self.assertEqual(set(statuses), {Status.ASSIGNED})

    def test_it_says_which_answers_it_counts_and_how_many_came_from_elsewhere(self):
        url = reverse("annotation:queue-detail", args=[self.queue.pk])
        page = self.client.get(url)
        self.assertContains(page, "Counts every answer these annotators gave to this queue's")
        self.assertEqual(page.context["answers_elsewhere"], 0)
        self.assertNotContains(page, "not given in this queue")
        # On the review page, by an annotator (counted) and by someone else (not counted).
        services.log_feedback(trace=self.traces[2], name="correct", value=True, actor=self.ann)
        services.log_feedback(trace=self.traces[2], name="correct", value=True, actor=self.outsider)
        page = self.client.get(url)
        self.assertContains(page, "1 of the answers counted was not given in this queue.")

    def test_an_item_not_handed_out_has_no_reopen_and_is_refused(self):
        page = self.client.get(reverse("annotation:queue-detail", args=[self.queue.pk]))
        self.assertContains(page, 'aria-label="Reopen item 2"')
        self.assertNotContains(page, 'aria-label="Reopen item 3"')
        response = self.client.post(
            reverse("annotation:queue-item-reopen", args=[self.queue.pk, 3]), follow=True
        )
        self.assertContains(response, "Item 3 is not handed out yet: there is nothing to reopen.")
        self.assertFalse(QueueItem.objects.get(queue=self.queue, position=3).reopened)

    def test_reassign_an_unfinished_turn(self):
        carl = make_reviewer(username="carl")
        self.queue.annotators.add(carl)
        assignment = queues.next_assignment(queue=self.queue, user=self.ann)
        url = reverse("annotation:queue-reassign", args=[self.queue.pk, assignment.pk])
        self.client.post(url, {"to_user": carl.pk})
        assignment.refresh_from_db()
        self.assertEqual(assignment.annotator, carl)

    def test_adjudicate_a_disagreement_with_an_overriding_feedback(self):
        listing = self.client.get(reverse("annotation:queue-disagreements", args=[self.queue.pk]))
        self.assertContains(listing, "Decide")
        url = reverse("annotation:queue-adjudicate", args=[self.queue.pk, 2, self.correct.pk])
        self.assertContains(self.client.get(url), "bob")
        response = self.client.post(url, {"value": "true", "rationale": "Bob misread it"})
        self.assertRedirects(
            response, reverse("annotation:queue-disagreements", args=[self.queue.pk])
        )
        decision = Assessment.objects.get(annotator=self.admin)
        self.assertEqual((decision.value, decision.rationale), (True, "Bob misread it"))
        self.assertEqual(decision.overrides.annotator, self.bob)
        self.assertEqual(decision.revisions.count(), 1)
        listing = self.client.get(reverse("annotation:queue-disagreements", args=[self.queue.pk]))
        self.assertContains(listing, "Change")

    def test_the_decide_page_shows_the_trace_and_every_answer_with_rationale_and_author(self):
        item = self.queue.items.get(position=2)
        Trace.objects.filter(pk=item.trace_id).update(
            request_preview="Where is my refund?", response_preview="Refunds take 5 days."
        )
        bobs = Assessment.objects.get(annotator=self.bob, trace_id=item.trace_id)
        services.update_assessment(
            assessment_id=bobs.assessment_id, rationale="Cites no policy", actor=self.bob
        )
        url = reverse("annotation:queue-adjudicate", args=[self.queue.pk, 2, self.correct.pk])
        page = self.client.get(url)
        self.assertContains(page, "Where is my refund?")
        self.assertContains(page, "Refunds take 5 days.")
        self.assertContains(page, f'href="{item.trace.get_absolute_url()}"')
        self.assertEqual(
            [(a.annotator.username, a.value) for a in page.context["answers"]],
            [("ann", True), ("bob", False)],
        )
        self.assertContains(page, "Cites no policy")
        self.client.post(url, {"value": "true", "rationale": "Bob misread it"})
        page = self.client.get(url)
        # The answer the decision overrode is still shown, marked, and is not the decision.
        self.assertEqual([a.annotator.username for a in page.context["answers"]], ["ann", "bob"])
        self.assertContains(page, "overridden by the decision")

    def test_csrf_is_enforced_on_queue_posts(self):
        client = Client(enforce_csrf_checks=True)
        client.force_login(self.admin)
        url = reverse("annotation:queue-status", args=[self.queue.pk])
        self.assertEqual(client.post(url, {"status": "closed"}).status_code, 403)
        self.assertEqual(Queue.objects.get().status, Queue.Status.OPEN)
