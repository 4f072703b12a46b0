"""Control items, accuracy and pace (annotation.quality) and their pages."""

import csv
import io
import re
from datetime import timedelta
from unittest import mock

from django.db import connection
from django.test import TestCase
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from annotation import export, quality, queues, services
from annotation.models import LabelSchema, QueueAssignment
from tests.factories import make_admin, make_reviewer, make_trace

Status = QueueAssignment.Status


def make_schema(name="correct", **kwargs):
    defaults = {"value_type": "boolean", "applies_to": "trace"}
    return LabelSchema.objects.create(name=name, **{**defaults, **kwargs})


def answer(queue, person, values):
    """The person takes their next item and answers it; returns the item."""
    assignment = queues.next_assignment(queue=queue, user=person)
    queues.submit(assignment=assignment, values=values, actor=person)
    return assignment.item


class QualityTestData:
    @classmethod
    def setUpTestData(cls):
        cls.admin = make_admin(username="boss")
        cls.ann = make_reviewer(username="ann")
        cls.bob = make_reviewer(username="bob")
        cls.correct = make_schema()
        cls.rating = make_schema("rating", value_type="numeric", min_value=1, max_value=5, step=1)
        cls.traces = [make_trace(user=f"u{n}") for n in range(4)]

    def make_queue(self, *, rate=50, overlap=1, controls=(3, 4), name="QA", threshold=0.7):
        queue = queues.create_queue(
            name=name,
            traces=self.traces,
            schemas=[self.correct, self.rating],
            required_schemas=[self.correct],
            annotators=[self.ann, self.bob],
            overlap=overlap,
            control_rate=rate,
            accuracy_threshold=threshold,
        )
        for position in controls:
            item = queue.items.get(position=position)
            quality.set_control_answers(
                item=item, answers={"correct": True, "rating": 4}, actor=self.admin
            )
        return queue


class ControlHandoutTests(QualityTestData, TestCase):
    def test_control_items_come_at_the_queues_rate_spread_out(self):
        queue = self.make_queue(rate=50)
        order = []
        while (assignment := queues.next_assignment(queue=queue, user=self.ann)) is not None:
            order.append(assignment.item.is_control)
            queues.submit(assignment=assignment, values={"correct": True}, actor=self.ann)
        self.assertEqual(order, [False, True, False, True])

    def test_every_annotator_gets_each_control_item_whatever_the_overlap(self):
        queue = self.make_queue(rate=50, overlap=1)
        seen = {self.ann.pk: [], self.bob.pk: []}
        for person in (self.ann, self.bob):
            while (assignment := queues.next_assignment(queue=queue, user=person)) is not None:
                seen[person.pk].append(assignment.item.position)
                queues.submit(assignment=assignment, values={"correct": True}, actor=person)
        for positions in seen.values():
            self.assertLessEqual({3, 4}, set(positions))
        # The two ordinary items went to one person each (overlap 1).
        ordinary = [p for ps in seen.values() for p in ps if p in (1, 2)]
        self.assertEqual(sorted(ordinary), [1, 2])

    def test_a_rate_of_zero_hands_out_no_control_item(self):
        queue = self.make_queue(rate=0, overlap=2)
        handed = []
        while (assignment := queues.next_assignment(queue=queue, user=self.ann)) is not None:
            handed.append(assignment.item.position)
            queues.submit(assignment=assignment, values={"correct": True}, actor=self.ann)
        self.assertEqual(handed, [1, 2])

    def test_known_answers_must_fit_the_schema(self):
        queue = self.make_queue(controls=())
        item = queue.items.get(position=1)
        with self.assertRaisesMessage(Exception, "5"):
            quality.set_control_answers(item=item, answers={"rating": 9}, actor=self.admin)
        item.refresh_from_db()
        self.assertFalse(item.is_control)


class ControlItemAnswersTests(QualityTestData, TestCase):
    """A control item is answered like any item: an earlier answer is shown and edited."""

    def setUp(self):
        self.queue = self.make_queue(rate=100, overlap=1, controls=(1,))
        self.item = self.queue.items.get(position=1)
        self.url = reverse("annotation:queue-item", args=[self.queue.pk, 1])

    def test_an_answer_from_the_review_page_is_shown_and_edited(self):
        earlier = services.log_feedback(
            trace=self.traces[0], name="correct", value=False, actor=self.ann
        )
        assignment = queues.next_assignment(queue=self.queue, user=self.ann)
        self.assertEqual(assignment.item, self.item)
        self.assertEqual(
            [a.pk for a in queues.own_answers(item=self.item, user=self.ann)], [earlier.pk]
        )
        self.client.force_login(self.ann)
        response = self.client.post(self.url, {f"s{self.correct.pk}-value": "true"})
        self.assertEqual(response.status_code, 302)
        assignment.refresh_from_db()
        self.assertEqual(assignment.status, Status.DONE)
        earlier.refresh_from_db()
        self.assertIs(earlier.value, True)
        self.assertEqual(self.traces[0].assessments.filter(annotator=self.ann).count(), 1)

    def test_a_reopened_control_item_is_answered_again(self):
        answer(self.queue, self.ann, {"correct": False})
        queues.reopen_item(item=self.item)
        self.client.force_login(self.ann)
        response = self.client.post(self.url, {f"s{self.correct.pk}-value": "true"})
        self.assertEqual(response.status_code, 302)
        [given] = self.traces[0].assessments.filter(annotator=self.ann)
        self.assertIs(given.value, True)
        self.assertEqual(self.item.assignments.get(annotator=self.ann).status, Status.DONE)
        self.assertEqual(quality.accuracy_by_annotator(self.queue)[self.ann.pk].correct, 1)


class ControlItemsStayOutOfResultsTests(QualityTestData, TestCase):
    def setUp(self):
        self.queue = self.make_queue(rate=50, overlap=2)
        # ann and bob disagree on every item, control items included.
        for person, value in ((self.ann, True), (self.bob, False)):
            while (assignment := queues.next_assignment(queue=self.queue, user=person)) is not None:
                queues.submit(assignment=assignment, values={"correct": value}, actor=person)

    def test_progress_counts_ordinary_items_only(self):
        progress = queues.progress(self.queue, self.ann)
        self.assertEqual((progress.items, progress.labels_needed, progress.labels_done), (2, 4, 4))
        self.assertEqual((progress.mine, progress.others, progress.complete_items), (2, 2, 2))
        done = {row.user.pk: row.done for row in queues.progress_by_annotator(self.queue)}
        self.assertEqual(done, {self.ann.pk: 2, self.bob.pk: 2})

    def test_what_annotators_see_counts_control_items_like_any_item(self):
        progress = queues.progress(self.queue, self.ann, as_annotator=True)
        # 2 ordinary items at overlap 2, and 2 control items for both annotators.
        self.assertEqual((progress.items, progress.labels_needed, progress.labels_done), (4, 8, 8))
        self.assertEqual((progress.mine, progress.others, progress.complete_items), (4, 4, None))

    def test_disagreements_and_agreement_leave_control_items_out(self):
        positions = {d.item.position for d in queues.disagreements(self.queue)}
        self.assertEqual(positions, {1, 2})
        [correct] = [a for a in queues.queue_agreement(self.queue) if a.schema == self.correct]
        self.assertEqual(correct.pairable_items, 2)

    def test_the_queues_export_leaves_control_items_out(self):
        scope = export.scope_for({}, user=self.admin, queue=self.queue)
        exported = set(scope.traces.values_list("trace_id", flat=True))
        self.assertEqual(exported, {t.trace_id for t in self.traces[:2]})


class AccuracyTests(QualityTestData, TestCase):
    def test_accuracy_counts_answers_matching_the_known_ones(self):
        queue = self.make_queue(rate=100, overlap=2, controls=(1, 2))
        answers = {
            self.ann.pk: [{"correct": True, "rating": 4}, {"correct": True, "rating": 4}],
            self.bob.pk: [{"correct": False, "rating": 4}, {"correct": True, "rating": 2}],
        }
        for person in (self.ann, self.bob):
            for values in answers[person.pk]:
                item = answer(queue, person, values)
                self.assertTrue(item.is_control)
        accuracy = quality.accuracy_by_annotator(queue)
        self.assertEqual((accuracy[self.ann.pk].correct, accuracy[self.ann.pk].n), (4, 4))
        self.assertEqual((accuracy[self.bob.pk].correct, accuracy[self.bob.pk].n), (2, 4))
        self.assertTrue(quality.below_threshold(queue, accuracy[self.bob.pk]))
        self.assertFalse(quality.below_threshold(queue, accuracy[self.ann.pk]))

    def test_numbers_match_within_half_a_step(self):
        schema = LabelSchema(name="score", value_type="numeric", step=0.5)
        self.assertTrue(quality.matches(schema, 3.25, 3))
        self.assertFalse(quality.matches(schema, 3.5, 3))
        self.assertFalse(quality.matches(schema, True, 1))

    def test_too_few_control_answers_never_warn(self):
        queue = self.make_queue()
        self.assertFalse(quality.below_threshold(queue, quality.Accuracy(correct=0, n=2)))

    def test_suggested_answers_start_from_an_admins_decision(self):
        queue = self.make_queue(rate=0, controls=())
        item = answer(queue, self.ann, {"correct": True, "rating": 2})
        queues.adjudicate(item=item, schema=self.rating, value=5, actor=self.admin)
        self.assertEqual(quality.suggested_answers(item), {"rating": 5})


class PaceTests(QualityTestData, TestCase):
    def test_active_time_adds_only_short_gaps(self):
        queue = self.make_queue(controls=())
        assignment = queues.next_assignment(queue=queue, user=self.ann)
        start = timezone.now()
        for seconds in (0, 10, 100, 110):  # the 90 s gap is an idle or hidden tab
            assignment.refresh_from_db()
            quality.record_activity(assignment, now=start + timedelta(seconds=seconds))
        assignment.refresh_from_db()
        self.assertEqual(assignment.active_ms, 20_000)
        self.assertEqual(assignment.shown_at, start)

    def test_a_hidden_tab_closes_the_stretch_and_counts_nothing_until_seen_again(self):
        queue = self.make_queue(controls=())
        assignment = queues.next_assignment(queue=queue, user=self.ann)
        start = timezone.now()
        signs = [
            (0, quality.Activity.ACTIVE),  # shown
            (15, quality.Activity.ACTIVE),  # heartbeat
            (21, quality.Activity.HIDDEN),
            (56, quality.Activity.RESUMED),  # 35 s hidden, within ACTIVE_GAP
            (60, quality.Activity.ACTIVE),  # answered
        ]
        for seconds, state in signs:
            assignment.refresh_from_db()
            quality.record_activity(assignment, now=start + timedelta(seconds=seconds), state=state)
        assignment.refresh_from_db()
        self.assertEqual(assignment.active_ms, 25_000)

    def test_a_lost_hidden_sign_still_counts_no_hidden_time(self):
        queue = self.make_queue(controls=())
        assignment = queues.next_assignment(queue=queue, user=self.ann)
        start = timezone.now()
        for seconds, state in ((0, "active"), (15, "active"), (50, "resumed"), (55, "active")):
            assignment.refresh_from_db()
            quality.record_activity(assignment, now=start + timedelta(seconds=seconds), state=state)
        assignment.refresh_from_db()
        self.assertEqual(assignment.active_ms, 20_000)

    def test_an_idle_tab_counts_nothing_after_its_last_heartbeat(self):
        queue = self.make_queue(controls=())
        assignment = queues.next_assignment(queue=queue, user=self.ann)
        start = timezone.now()
        for seconds, state in ((0, "active"), (15, "active"), (30, "idle"), (40, "active")):
            assignment.refresh_from_db()
            quality.record_activity(assignment, now=start + timedelta(seconds=seconds), state=state)
        assignment.refresh_from_db()
        self.assertEqual(assignment.active_ms, 15_000)

    def test_a_finished_turn_gains_no_more_time(self):
        queue = self.make_queue(controls=())
        assignment = queues.next_assignment(queue=queue, user=self.ann)
        quality.record_activity(assignment)
        queues.submit(assignment=assignment, values={"correct": True}, actor=self.ann)
        assignment.refresh_from_db()
        quality.record_activity(assignment, now=timezone.now() + timedelta(seconds=5))
        assignment.refresh_from_db()
        self.assertEqual(assignment.active_ms, 0)

    def test_pace_from_hand_made_turns(self):
        turns = [
            (Status.DONE, 10_000),
            (Status.DONE, 30_000),
            (Status.DONE, 20_000),
            (Status.SKIPPED, 60_000),
            (Status.ASSIGNED, 999_000),
        ]
        pace = quality.pace(turns)
        self.assertEqual(pace.median_seconds, 20)
        # 3 answered in 120 s of finished turns: 90 an hour.
        self.assertAlmostEqual(pace.items_per_hour, 90)
        self.assertAlmostEqual(pace.skip_rate, 0.25)

    def test_turns_without_active_time_are_not_measured(self):
        untimed = [(Status.DONE, 0), (Status.DONE, 0), (Status.SKIPPED, 0)]
        pace = quality.pace(untimed)
        self.assertEqual((pace.answered, pace.median_seconds, pace.items_per_hour), (2, None, None))
        # One timed answer of 10 s beside untimed ones: 10 s, 360 an hour, not 1,080.
        pace = quality.pace([*untimed, (Status.DONE, 10_000)])
        self.assertEqual(pace.median_seconds, 10)
        self.assertAlmostEqual(pace.items_per_hour, 360)

    def test_no_turns_no_figures(self):
        pace = quality.pace([])
        self.assertEqual((pace.median_seconds, pace.items_per_hour, pace.skip_rate), (None,) * 3)


class QualityViewTests(QualityTestData, TestCase):
    def setUp(self):
        self.queue = self.make_queue(rate=100, overlap=2, controls=(1, 2, 3), threshold=0.9)

    def test_the_heartbeat_adds_time_to_ones_own_turn_only(self):
        assignment = queues.next_assignment(queue=self.queue, user=self.ann)
        url = reverse("annotation:queue-item-activity", args=[self.queue.pk, 1])
        self.client.force_login(self.bob)
        self.assertEqual(self.client.post(url).status_code, 404)
        self.client.force_login(self.ann)
        self.assertEqual(self.client.get(url).status_code, 405)
        self.assertEqual(self.client.post(url).status_code, 204)
        assignment.refresh_from_db()
        self.assertIsNotNone(assignment.shown_at)

    def test_time_while_the_tab_is_hidden_is_not_active(self):
        """Visible for 21 s, hidden for 35 s, then answered: 21 s active, not 56."""
        queue = self.make_queue(rate=0, controls=(), name="Timed")
        assignment = queues.next_assignment(queue=queue, user=self.ann)
        item_url = reverse("annotation:queue-item", args=[queue.pk, assignment.item.position])
        activity_url = reverse(
            "annotation:queue-item-activity", args=[queue.pk, assignment.item.position]
        )
        start = timezone.now()
        self.client.force_login(self.ann)
        with mock.patch("django.utils.timezone.now") as now:
            for seconds, send in (
                (0, lambda: self.client.get(item_url)),
                (15, lambda: self.client.post(activity_url, {"state": "active"})),
                (21, lambda: self.client.post(activity_url, {"state": "hidden"})),
                (56, lambda: self.client.post(activity_url, {"state": "resumed"})),
                (56, lambda: self.client.post(item_url, {f"s{self.correct.pk}-value": "true"})),
            ):
                now.return_value = start + timedelta(seconds=seconds)
                self.assertLess(send().status_code, 400)
        assignment.refresh_from_db()
        self.assertEqual(assignment.status, Status.DONE)
        self.assertEqual(assignment.active_ms, 21_000)
        refused = self.client.post(activity_url, {"state": "asleep"})
        self.assertEqual(refused.status_code, 400)

    def test_showing_the_item_records_when_it_was_shown(self):
        assignment = queues.next_assignment(queue=self.queue, user=self.ann)
        self.client.force_login(self.ann)
        self.client.get(reverse("annotation:queue-item", args=[self.queue.pk, 1]))
        assignment.refresh_from_db()
        self.assertIsNotNone(assignment.shown_at)

    def test_control_items_are_not_told_apart_in_the_annotators_html(self):
        twin = make_trace(
            user="u0",
            request_preview=self.traces[0].request_preview,
            response_preview=self.traces[0].response_preview,
        )
        plain = queues.create_queue(
            name="Plain",
            traces=[twin],
            schemas=[self.correct, self.rating],
            required_schemas=[self.correct],
            annotators=[self.ann],
        )
        pages = []
        self.client.force_login(self.ann)
        for queue, trace in ((self.queue, self.traces[0]), (plain, twin)):
            queues.next_assignment(queue=queue, user=self.ann)
            html = self.client.get(
                reverse("annotation:queue-item", args=[queue.pk, 1])
            ).content.decode()
            html = html.replace(trace.trace_id, "TRACE").replace(queue.name, "QUEUE")
            html = re.sub(r"[A-Za-z0-9]{32,}", "TOKEN", html)
            pages.append(re.sub(r"\d+", "N", html))
        self.assertEqual(pages[0], pages[1])
        self.assertNotRegex(pages[0].lower(), r"control(?!\+enter)")

    def test_the_counters_annotators_see_move_alike_on_control_items(self):
        queue = self.make_queue(rate=50, overlap=1, controls=(3, 4), name="Counted")
        header = re.compile(
            r"of (\d+)</span></h1>.*?(\d+) / (\d+) done · mine (\d+), others (\d+)", re.S
        )
        self.client.force_login(self.ann)
        seen = []
        while (assignment := queues.next_assignment(queue=queue, user=self.ann)) is not None:
            url = reverse("annotation:queue-item", args=[queue.pk, assignment.item.position])
            page = self.client.get(url).content.decode()
            seen.append((assignment.item.is_control, *map(int, header.search(page).groups())))
            self.client.post(url, {f"s{self.correct.pk}-value": "true"})
        # Items, done, needed (2 ordinary at overlap 1, 2 control for both), mine, others.
        self.assertEqual(
            seen,
            [
                (False, 4, 0, 6, 0, 0),
                (True, 4, 1, 6, 1, 0),
                (False, 4, 2, 6, 2, 0),
                (True, 4, 3, 6, 3, 0),
            ],
        )
        answer(queue, self.bob, {"correct": True})  # a control item: no ordinary one is left
        queue_page = self.client.get(reverse("annotation:queue-detail", args=[queue.pk]))
        self.assertContains(queue_page, "5 / 6</strong> labels done")
        self.assertContains(queue_page, "· 4 items\n")
        self.assertContains(queue_page, "mine 4, others 1")
        self.assertNotContains(queue_page, "items complete")
        listed = self.client.get(reverse("annotation:queue-list")).content.decode()
        self.assertIn('<td class="num">4</td>\n      <td class="num">4</td>', listed)
        self.client.force_login(self.admin)
        results = self.client.get(reverse("annotation:queue-detail", args=[queue.pk]))
        self.assertContains(results, "2 / 2</strong> labels done")
        self.assertContains(results, "2 of 2 items complete")

    def test_the_queue_page_warns_about_low_accuracy(self):
        for person, value in ((self.ann, True), (self.bob, False)):
            for _ in range(3):
                answer(self.queue, person, {"correct": value, "rating": 4})
        self.client.force_login(self.admin)
        response = self.client.get(reverse("annotation:queue-detail", args=[self.queue.pk]))
        warnings = response.content.decode().split('data-testid="accuracy-warning"')[1:]
        self.assertEqual(len(warnings), 1)
        self.assertIn("bob", warnings[0][:200])
        self.assertContains(response, "3 of 6 control answers")

    def test_too_few_control_answers_to_warn_are_said_so_beside_the_figure(self):
        for person, value in ((self.ann, True), (self.bob, False)):
            for _ in range(2):
                answer(self.queue, person, {"correct": value})
        self.client.force_login(self.admin)
        response = self.client.get(reverse("annotation:queue-detail", args=[self.queue.pk]))
        self.assertNotContains(response, 'data-testid="accuracy-warning"')
        self.assertContains(response, "(n &lt; 3, too few to judge)", count=2)
        page = self.client.get(reverse("accounts:annotator-detail", args=[self.bob.pk]))
        self.assertContains(page, '0% <span class="muted">of 2</span>')
        self.assertContains(page, "(n &lt; 3, too few to judge)", count=1)
        answer(self.queue, self.bob, {"correct": False})
        response = self.client.get(reverse("annotation:queue-detail", args=[self.queue.pk]))
        self.assertContains(response, "(n &lt; 3, too few to judge)", count=1)
        self.assertContains(response, 'data-testid="accuracy-warning"', count=1)

    def test_the_queue_page_shows_no_pace_for_untimed_assignments(self):
        """Hand-made rows: answered turns with no active time recorded (and one timed one)."""
        items = list(self.queue.items.all())
        for item in items[:3]:
            QueueAssignment.objects.create(
                item=item, annotator=self.ann, status=Status.DONE, completed_at=timezone.now()
            )
        self.client.force_login(self.admin)
        url = reverse("annotation:queue-detail", args=[self.queue.pk])
        page = self.client.get(url)
        self.assertContains(page, "Pace: median — (no active time recorded)")
        self.assertNotContains(page, "items per hour")
        [row] = [row for row in page.context["by_annotator"] if row["progress"].user == self.ann]
        self.assertEqual((row["pace"].median_seconds, row["pace"].items_per_hour), (None, None))
        QueueAssignment.objects.create(
            item=items[3], annotator=self.ann, status=Status.DONE, active_ms=30_000
        )
        page = self.client.get(url)
        self.assertContains(page, "median 30 s of active time per item · 120 items per hour")

    def test_the_queue_page_runs_the_same_queries_with_more_control_items(self):
        url = reverse("annotation:queue-detail", args=[self.queue.pk])
        self.client.force_login(self.admin)
        answer(self.queue, self.ann, {"correct": True})
        with CaptureQueriesContext(connection) as before:
            self.client.get(url)
        for _ in range(2):
            answer(self.queue, self.ann, {"correct": True})
            answer(self.queue, self.bob, {"correct": False})
        with self.assertNumQueries(len(before.captured_queries)):
            self.client.get(url)

    def test_only_admins_edit_control_items(self):
        url = reverse("annotation:queue-control-item", args=[self.queue.pk, 4])
        self.client.force_login(self.ann)
        self.assertEqual(self.client.get(url).status_code, 403)
        self.assertEqual(self.client.post(url, {"control": "true"}).status_code, 403)

    def test_an_admin_makes_an_item_a_control_item_and_back(self):
        url = reverse("annotation:queue-control-item", args=[self.queue.pk, 4])
        self.client.force_login(self.admin)
        page = self.client.get(url)
        self.assertContains(page, "known answer")
        data = {"control": "true", f"s{self.correct.pk}-value": "false"}
        self.assertRedirects(
            self.client.post(url, data), reverse("annotation:queue-detail", args=[self.queue.pk])
        )  # noqa: E501
        item = self.queue.items.get(position=4)
        self.assertTrue(item.is_control)
        self.assertEqual(
            [(c.schema.name, c.value) for c in item.control_answers.all()], [("correct", False)]
        )  # noqa: E501
        empty = self.client.post(url, {"control": "true"})
        self.assertContains(empty, "at least one known answer")
        self.client.post(url, {"control": "false"})
        item.refresh_from_db()
        self.assertFalse(item.is_control)
        self.assertFalse(item.control_answers.exists())

    def test_the_assignments_download_has_pace_and_accuracy(self):
        answer(self.queue, self.ann, {"correct": True, "rating": 4})
        answer(self.queue, self.bob, {"correct": False, "rating": 4})
        self.client.force_login(self.admin)
        response = self.client.get(reverse("annotation:queue-assignments", args=[self.queue.pk]))
        self.assertEqual(response["Content-Type"], "text/csv; charset=utf-8")
        rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
        by_person = {row["annotator"]: row for row in rows}
        self.assertEqual(by_person["ann"]["control_correct"], "2")
        self.assertEqual(by_person["bob"]["control_correct"], "1")
        self.assertEqual(by_person["bob"]["control_compared"], "2")
        self.assertEqual(by_person["ann"]["status"], "done")
        self.client.force_login(self.ann)
        forbidden = self.client.get(reverse("annotation:queue-assignments", args=[self.queue.pk]))
        self.assertEqual(forbidden.status_code, 403)

    def test_the_annotator_page_shows_pace_and_accuracy_per_queue(self):
        for _ in range(3):
            answer(self.queue, self.bob, {"correct": False, "rating": 4})
        self.client.force_login(self.admin)
        page = self.client.get(reverse("accounts:annotator-detail", args=[self.bob.pk]))
        self.assertContains(page, 'data-queue="QA"')
        self.assertContains(page, "50% <span")
        self.assertContains(page, "below 90%")
