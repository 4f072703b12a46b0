import threading
from collections import Counter

from django.core.exceptions import ValidationError
from django.db import connection
from django.test import TestCase, TransactionTestCase

from annotation import quality, queues, services
from annotation.models import (
    Assessment,
    AssessmentRevision,
    Kind,
    LabelSchema,
    Queue,
    QueueAssignment,
)
from tests.factories import make_admin, make_experiment, make_reviewer, make_trace, make_viewer

Status = QueueAssignment.Status


def make_schema(name="correct", **kwargs):
    defaults = {"value_type": LabelSchema.ValueType.BOOLEAN, "applies_to": "trace"}
    return LabelSchema.objects.create(name=name, **{**defaults, **kwargs})


def make_queue(annotators, traces, schemas, overlap=1, **kwargs):
    return queues.create_queue(
        name=kwargs.pop("name", f"queue-{len(traces)}-{overlap}-{id(traces)}"),
        traces=traces,
        schemas=schemas,
        annotators=annotators,
        overlap=overlap,
        **kwargs,
    )


class CreateQueueTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.reviewers = [make_reviewer() for _ in range(2)]
        cls.traces = [make_trace() for _ in range(3)]
        cls.schema = make_schema()

    def test_items_follow_the_given_order_once_each(self):
        traces = [self.traces[2], self.traces[0], self.traces[2]]
        queue = make_queue(self.reviewers, traces, [self.schema], overlap=2)
        self.assertEqual(
            [(i.position, i.trace) for i in queue.items.all()],
            [(1, self.traces[2]), (2, self.traces[0])],
        )

    def test_it_refuses_impossible_queues(self):
        span_schema = make_schema("span-only", applies_to="span")
        cases = {
            "overlap_out_of_range": dict(overlap=3),
            "no_traces": dict(traces=[]),
            "no_schemas": dict(schemas=[]),
            "span_schema": dict(schemas=[span_schema]),
            "read_only_annotator": dict(annotators=[make_viewer()], overlap=1),
        }
        for code, change in cases.items():
            with self.subTest(code=code):
                base = {
                    "annotators": self.reviewers,
                    "traces": self.traces,
                    "schemas": [self.schema],
                }
                args = {**base, **change}
                with self.assertRaises(ValidationError) as caught:
                    make_queue(**args)
                self.assertEqual(caught.exception.code, code)
        self.assertFalse(Queue.objects.exists())


class AssignmentTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.ann, cls.bob, cls.cy = (make_reviewer(username=n) for n in ("ann", "bob", "cy"))
        cls.traces = [make_trace() for _ in range(3)]
        cls.schema = make_schema()
        cls.queue = make_queue([cls.ann, cls.bob, cls.cy], cls.traces, [cls.schema], overlap=2)

    def label(self, user, value=True):
        assignment = queues.next_assignment(queue=self.queue, user=user)
        queues.submit(assignment=assignment, values={"correct": value}, actor=user)
        return assignment

    def test_overlap_is_honoured_and_nobody_gets_an_item_twice(self):
        for _ in range(3):
            for user in (self.ann, self.bob, self.cy):
                assignment = queues.next_assignment(queue=self.queue, user=user)
                if assignment:
                    queues.submit(assignment=assignment, values={"correct": True}, actor=user)
        per_item = Counter(QueueAssignment.objects.values_list("item__position", flat=True))
        self.assertEqual(per_item, {1: 2, 2: 2, 3: 2})
        pairs = QueueAssignment.objects.values_list("item", "annotator")
        self.assertEqual(len(set(pairs)), len(pairs))
        for user in (self.ann, self.bob, self.cy):
            self.assertIsNone(queues.next_assignment(queue=self.queue, user=user))
        self.assertEqual(queues.progress(self.queue).complete_items, 3)

    def test_items_fill_in_order_so_complete_items_come_early(self):
        first = queues.next_assignment(queue=self.queue, user=self.ann)
        second = queues.next_assignment(queue=self.queue, user=self.bob)
        third = queues.next_assignment(queue=self.queue, user=self.cy)
        self.assertEqual(first.item, second.item)
        self.assertEqual(third.item.position, 2)

    def test_an_item_in_progress_is_resumed(self):
        first = queues.next_assignment(queue=self.queue, user=self.ann)
        again = queues.next_assignment(queue=self.queue, user=self.ann)
        self.assertEqual(first.pk, again.pk)
        self.assertEqual(QueueAssignment.objects.filter(annotator=self.ann).count(), 1)

    def test_a_skip_needs_a_reason_and_frees_the_place(self):
        mine = queues.next_assignment(queue=self.queue, user=self.ann)
        with self.assertRaises(ValidationError):
            queues.skip(assignment=mine, reason="  ", actor=self.ann)
        queues.skip(assignment=mine, reason="Not in English", actor=self.ann)
        mine.refresh_from_db()
        self.assertEqual((mine.status, mine.skip_reason), (Status.SKIPPED, "Not in English"))
        self.assertNotEqual(queues.next_assignment(queue=self.queue, user=self.ann).item, mine.item)
        self.assertEqual(queues.next_assignment(queue=self.queue, user=self.bob).item, mine.item)
        self.assertEqual(queues.next_assignment(queue=self.queue, user=self.cy).item, mine.item)

    def test_submit_writes_through_services_and_updates_on_resubmit(self):
        assignment = self.label(self.ann, True)
        [answer] = Assessment.objects.filter(annotator=self.ann)
        self.assertEqual((answer.value, answer.kind, answer.version), (True, Kind.FEEDBACK, 1))
        self.assertEqual(answer.metadata, {queues.QUEUE_KEY: str(self.queue.pk)})
        queues.reopen_item(item=assignment.item)
        again = queues.next_assignment(queue=self.queue, user=self.ann)
        self.assertEqual(again.pk, assignment.pk)
        queues.submit(assignment=again, values={"correct": False}, actor=self.ann)
        answer.refresh_from_db()
        self.assertEqual((answer.value, answer.version), (False, 2))
        self.assertEqual(answer.revisions.count(), 2)

    def test_submit_checks_the_assignee(self):
        assignment = queues.next_assignment(queue=self.queue, user=self.ann)
        with self.assertRaises(ValidationError) as caught:
            queues.submit(assignment=assignment, values={"correct": True}, actor=self.bob)
        self.assertEqual(caught.exception.code, "not_assignee")
        self.assertFalse(Assessment.objects.exists())

    def test_a_closed_queue_hands_out_nothing(self):
        queues.set_status(queue=self.queue, status=Queue.Status.CLOSED)
        with self.assertRaises(ValidationError) as caught:
            queues.next_assignment(queue=self.queue, user=self.ann)
        self.assertEqual(caught.exception.code, "closed")
        queues.set_status(queue=self.queue, status=Queue.Status.OPEN)
        self.assertIsNotNone(queues.next_assignment(queue=self.queue, user=self.ann))

    def test_outsiders_get_nothing(self):
        with self.assertRaises(ValidationError) as caught:
            queues.next_assignment(queue=self.queue, user=make_reviewer())
        self.assertEqual(caught.exception.code, "not_annotator")

    def test_reassign_moves_an_unfinished_turn(self):
        assignment = queues.next_assignment(queue=self.queue, user=self.ann)
        queues.reassign(assignment=assignment, to_user=self.cy)
        assignment.refresh_from_db()
        self.assertEqual((assignment.annotator, assignment.status), (self.cy, Status.ASSIGNED))
        queues.next_assignment(queue=self.queue, user=self.bob)
        with self.assertRaises(ValidationError) as caught:
            queues.reassign(assignment=assignment, to_user=self.bob)
        self.assertEqual(caught.exception.code, "already_assigned")
        queues.submit(assignment=assignment, values={"correct": True}, actor=self.cy)
        with self.assertRaises(ValidationError) as caught:
            queues.reassign(assignment=assignment, to_user=self.ann)
        self.assertEqual(caught.exception.code, "done")

    def test_blind_mode_hides_others_answers_until_one_answers(self):
        self.label(self.ann, True)
        bobs = queues.next_assignment(queue=self.queue, user=self.bob)
        [anns] = queues.others_answers(item=bobs.item, user=self.bob)
        hidden = queues.hidden_answers(user=self.bob, traces=[bobs.item.trace])
        self.assertTrue(hidden.hides(anns))
        self.assertEqual(
            [(b.queue_name, b.position) for b in hidden.blindings_for(bobs.item.trace_id)],
            [(self.queue.name, bobs.item.position)],
        )
        [bobs_own] = queues.submit(assignment=bobs, values={"correct": False}, actor=self.bob)
        self.assertFalse(hidden.hides(bobs_own))
        hidden = queues.hidden_answers(user=self.bob, traces=[bobs.item.trace])
        self.assertFalse(hidden.hides(anns))
        self.assertEqual(hidden.blindings_for(bobs.item.trace_id), ())
        [seen] = queues.others_answers(item=bobs.item, user=self.bob)
        self.assertEqual((seen.annotator, seen.value), (self.ann, True))

    def test_an_open_queue_shows_others_answers_at_once(self):
        Queue.objects.filter(pk=self.queue.pk).update(blind=False)
        self.label(self.ann, True)
        bobs = queues.next_assignment(queue=self.queue, user=self.bob)
        [anns] = queues.others_answers(item=bobs.item, user=self.bob)
        hidden = queues.hidden_answers(user=self.bob, traces=[bobs.item.trace])
        self.assertFalse(hidden.hides(anns))

    def test_a_closed_queue_hides_nothing_and_a_skipped_item_stays_hidden(self):
        self.label(self.ann, True)
        bobs = queues.next_assignment(queue=self.queue, user=self.bob)
        [anns] = queues.others_answers(item=bobs.item, user=self.bob)
        queues.set_status(queue=self.queue, status=Queue.Status.CLOSED)
        self.assertFalse(queues.hidden_answers(user=self.bob, traces=[anns.trace]).hides(anns))
        queues.set_status(queue=self.queue, status=Queue.Status.OPEN)
        self.assertTrue(queues.hidden_answers(user=self.bob, traces=[anns.trace]).hides(anns))
        # Skipping gives no answer, so it reveals nothing.
        queues.skip(assignment=bobs, reason="Unreadable", actor=self.bob)
        self.assertTrue(queues.hidden_answers(user=self.bob, traces=[anns.trace]).hides(anns))

    def test_a_member_is_blind_on_items_not_handed_to_them_yet(self):
        self.label(self.ann, True)
        [anns] = Assessment.objects.filter(annotator=self.ann)
        self.assertFalse(QueueAssignment.objects.filter(annotator=self.bob).exists())
        hidden = queues.hidden_answers(user=self.bob, traces=[anns.trace])
        self.assertTrue(hidden.hides(anns))
        outsider = make_reviewer()
        self.assertFalse(queues.hidden_answers(user=outsider, traces=[anns.trace]).hides(anns))
        hidden_rows = Assessment.objects.filter(queues.hidden_answers_condition(user=self.bob))
        self.assertEqual(list(hidden_rows), [anns])

    def test_progress_counts_mine_and_others(self):
        self.label(self.ann)
        self.label(self.bob)
        self.label(self.ann)
        queues.next_assignment(queue=self.queue, user=self.cy)
        result = queues.progress(self.queue, self.ann)
        self.assertEqual(
            (result.items, result.labels_needed, result.labels_done, result.mine, result.others),
            (3, 6, 3, 2, 1),
        )
        self.assertEqual(result.complete_items, 1)
        rows = {row.user.username: row for row in queues.progress_by_annotator(self.queue)}
        self.assertEqual((rows["ann"].done, rows["cy"].assigned, rows["cy"].done), (2, 1, 0))
        self.assertEqual((rows["ann"].agreeing, rows["ann"].compared), (1, 1))


class RequiredSchemaTests(TestCase):
    """A queue whose 'correct' and 'tone' are required and whose 'note' is optional."""

    @classmethod
    def setUpTestData(cls):
        cls.ann = make_reviewer(username="ann")
        cls.correct = make_schema()
        cls.tone = make_schema("tone", value_type="categorical", options=["ok", "rude"])
        cls.note = make_schema("note", value_type="text")
        cls.queue = make_queue(
            [cls.ann],
            [make_trace(), make_trace()],
            [cls.correct, cls.tone, cls.note],
            required_schemas=[cls.correct, cls.tone],
        )

    def setUp(self):
        self.assignment = queues.next_assignment(queue=self.queue, user=self.ann)

    def submit(self, **values):
        return queues.submit(assignment=self.assignment, values=values, actor=self.ann)

    def assert_not_done_and_nothing_saved(self, code, **values):
        with self.assertRaises(ValidationError) as caught:
            self.submit(**values)
        self.assertEqual(caught.exception.code, code)
        self.assignment.refresh_from_db()
        self.assertEqual(self.assignment.status, Status.ASSIGNED)
        self.assertFalse(Assessment.objects.exists())
        return caught.exception

    def test_an_empty_submission_is_refused_and_changes_nothing(self):
        error = self.assert_not_done_and_nothing_saved("empty", correct=None, tone=None, note=None)
        self.assertIn("Nothing was answered", error.message)
        self.assert_not_done_and_nothing_saved("empty")

    def test_an_item_is_not_done_until_every_required_schema_is_answered(self):
        error = self.assert_not_done_and_nothing_saved(
            "required", correct=True, tone=None, note="fine"
        )
        self.assertEqual(error.message, 'Nothing was saved: answer "tone" first.')

    def test_optional_schemas_may_stay_empty(self):
        self.submit(correct=True, tone="ok", note=None)
        self.assignment.refresh_from_db()
        self.assertEqual(self.assignment.status, Status.DONE)
        self.assertEqual(
            set(Assessment.objects.values_list("name", flat=True)), {"correct", "tone"}
        )

    def test_answers_given_before_count_towards_the_required_ones(self):
        services.log_feedback(
            trace=self.assignment.item.trace, name="tone", value="ok", actor=self.ann
        )
        self.submit(correct=False)
        self.assignment.refresh_from_db()
        self.assertEqual(self.assignment.status, Status.DONE)

    def test_every_schema_is_required_unless_the_queue_says_otherwise(self):
        queue = make_queue([self.ann], [make_trace()], [self.correct, self.note], name="all")
        self.assertEqual(set(queue.required_schemas.all()), {self.correct, self.note})

    def test_required_schemas_must_be_among_the_queue_schemas(self):
        with self.assertRaises(ValidationError) as caught:
            make_queue([self.ann], [make_trace()], [self.note], required_schemas=[self.tone])
        self.assertEqual(caught.exception.code, "required_not_chosen")

    def test_items_say_which_schemas_are_required(self):
        schemas = queues.item_schemas(self.assignment.item)
        self.assertEqual(
            [(s.name, s.required) for s in schemas],
            [("correct", True), ("note", False), ("tone", True)],
        )


class SchemaScopeTests(TestCase):
    """'refund' applies to the returns experiment only; 'correct' to every experiment."""

    @classmethod
    def setUpTestData(cls):
        cls.ann = make_reviewer(username="ann")
        cls.returns, cls.support = make_experiment("returns"), make_experiment("support")
        cls.correct = make_schema()
        cls.refund = make_schema("refund", title="Refund right?")
        cls.refund.experiments.set([cls.returns])
        cls.returns_trace = make_trace(cls.returns)
        cls.support_trace = make_trace(cls.support)

    def test_a_queue_refuses_schemas_that_leave_out_some_of_its_experiments(self):
        with self.assertRaises(ValidationError) as caught:
            make_queue(
                [self.ann], [self.returns_trace, self.support_trace], [self.correct, self.refund]
            )
        self.assertEqual(caught.exception.code, "schema_not_in_experiment")
        self.assertIn("'Refund right?' does not apply to support", caught.exception.message)
        self.assertFalse(Queue.objects.exists())

    def test_a_queue_takes_schemas_that_apply_to_all_its_experiments(self):
        queue = make_queue([self.ann], [self.returns_trace], [self.correct, self.refund])
        self.assertEqual(set(queue.schemas.all()), {self.correct, self.refund})

    def test_an_item_offers_only_the_schemas_of_its_experiment(self):
        queue = make_queue([self.ann], [self.returns_trace], [self.correct, self.refund])
        self.refund.experiments.set([self.support])
        assignment = queues.next_assignment(queue=queue, user=self.ann)
        self.assertEqual([s.name for s in queues.item_schemas(assignment.item)], ["correct"])
        # A required schema that no longer applies is not asked for, nor accepted.
        with self.assertRaises(ValidationError) as caught:
            queues.submit(assignment=assignment, values={"refund": True}, actor=self.ann)
        self.assertEqual(caught.exception.code, "unknown_schema")
        queues.submit(assignment=assignment, values={"correct": True}, actor=self.ann)
        assignment.refresh_from_db()
        self.assertEqual(assignment.status, Status.DONE)

    def test_schemas_for_an_experiment(self):
        other = make_schema("other")
        other.experiments.set([self.support, self.returns])
        self.assertEqual(
            list(LabelSchema.objects.for_experiment(self.returns.pk).order_by("name")),
            [self.correct, other, self.refund],
        )
        self.assertEqual(
            list(LabelSchema.objects.for_experiment(self.support_trace.experiment_id)),
            [self.correct, other],
        )


class ResultsTests(TestCase):
    """Three annotators, overlap three, a boolean and a rating schema."""

    @classmethod
    def setUpTestData(cls):
        cls.admin = make_admin(username="boss")
        cls.people = [make_reviewer(username=n) for n in ("ann", "bob", "cy")]
        cls.traces = [make_trace() for _ in range(4)]
        cls.correct = make_schema()
        cls.stars = make_schema("stars", value_type="numeric", min_value=1, max_value=5, step=1)
        cls.queue = make_queue(
            cls.people,
            cls.traces,
            [cls.correct, cls.stars],
            overlap=3,
            required_schemas=[cls.correct],
        )
        answers = {  # per person: (correct, stars) per item
            "ann": [(True, 5), (True, 4), (False, 1), (True, 3)],
            "bob": [(True, 5), (False, 4), (False, 2), (True, None)],
            "cy": [(True, 4), (True, 4), (False, 1), (False, 3)],
        }
        for person in cls.people:
            for correct, stars in answers[person.username]:
                assignment = queues.next_assignment(queue=cls.queue, user=person)
                queues.submit(
                    assignment=assignment,
                    values={"correct": correct, "stars": stars},
                    actor=person,
                )

    def test_agreement_per_schema(self):
        results = {r.schema.name: r for r in queues.queue_agreement(self.queue)}
        correct, stars = results["correct"], results["stars"]
        self.assertEqual((correct.level, correct.items, correct.raters), ("nominal", 4, 3))
        self.assertIsNone(correct.cohen)
        # Units TTT, TFT, FFF, TTF. Alpha: o_TT=5, o_FF=3, o_TF=o_FT=2, n_T=7, n_F=5, n=12,
        # 1 - 11 * 4 / (2 * 7 * 5) = 26/70. Fleiss: P = 2/3, P_e = (49 + 25)/144, kappa = 22/70.
        self.assertAlmostEqual(correct.alpha, 26 / 70)
        self.assertAlmostEqual(correct.fleiss, 22 / 70)
        self.assertEqual(stars.level, "ordinal")
        self.assertIsNone(stars.fleiss)  # one item has two ratings, the others three
        self.assertIsNotNone(stars.alpha)

    def test_disagreements_and_adjudication_by_override(self):
        found = queues.disagreements(self.queue)
        self.assertEqual(
            [(d.item.position, d.schema.name) for d in found],
            [(1, "stars"), (2, "correct"), (3, "stars"), (4, "correct")],
        )
        second = found[1]
        self.assertIs(second.summary.value, True)
        self.assertEqual(
            [(u.username, v) for u, v in second.answers],
            [("ann", True), ("bob", False), ("cy", True)],
        )
        decision = queues.adjudicate(
            item=second.item,
            schema=self.correct,
            value=True,
            rationale="bob misread",
            actor=self.admin,
        )
        bobs = Assessment.objects.get(
            trace=second.item.trace, annotator__username="bob", name="correct"
        )
        self.assertEqual(decision.overrides, bobs)
        self.assertFalse(bobs.valid)
        self.assertEqual(decision.revisions.get().action, AssessmentRevision.Action.OVERRIDE)
        # A second decision edits the first rather than piling up.
        again = queues.adjudicate(
            item=second.item, schema=self.correct, value=False, actor=self.admin
        )
        self.assertEqual((again.pk, again.value, again.version), (decision.pk, False, 2))
        resolved = [d for d in queues.disagreements(self.queue) if d.decision]
        self.assertEqual([d.decision.pk for d in resolved], [decision.pk])
        # Agreement still measures the annotators' own answers.
        [correct] = [r for r in queues.queue_agreement(self.queue) if r.schema.name == "correct"]
        self.assertEqual(correct.items, 4)

    def test_a_second_admins_decision_overrides_the_first_and_leaves_it_theirs(self):
        item = self.queue.items.get(position=2)
        first = queues.adjudicate(item=item, schema=self.correct, value=True, actor=self.admin)
        other_admin = make_admin(username="abe")
        second = queues.adjudicate(item=item, schema=self.correct, value=False, actor=other_admin)
        first.refresh_from_db()
        self.assertEqual((second.overrides, second.annotator), (first, other_admin))
        self.assertEqual((first.value, first.annotator, first.valid), (True, self.admin, False))
        [decided] = [d for d in queues.disagreements(self.queue) if d.item == item]
        self.assertEqual(decided.decision, second)

    def test_adjudication_of_an_expectation_schema_is_an_expectation(self):
        LabelSchema.objects.filter(pk=self.stars.pk).update(kind=Kind.EXPECTATION)
        item = self.queue.items.get(position=1)
        decision = queues.adjudicate(
            item=item, schema=LabelSchema.objects.get(pk=self.stars.pk), value=5, actor=self.admin
        )
        self.assertEqual(
            (decision.kind, decision.value, decision.annotator), (Kind.EXPECTATION, 5, self.admin)
        )


THREADS = 8


class ConcurrentNextItemTests(TransactionTestCase):
    """Eight annotators ask for their next item at the same moment, again and again."""

    def label_all_at_once(self, queue, people) -> list[tuple[int, int]]:
        """Every person labels until nothing is left, all starting together; the
        (item, annotator) pairs handed out, after checking that no thread failed and no
        pair came twice."""
        barrier = threading.Barrier(len(people))
        failures = []

        def work(user):
            try:
                barrier.wait()
                while (assignment := queues.next_assignment(queue=queue, user=user)) is not None:
                    queues.submit(assignment=assignment, values={"correct": True}, actor=user)
            except Exception as exc:  # surfaced below: a thread must not fail silently
                failures.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=work, args=(user,)) for user in people]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        self.assertEqual(failures, [])
        pairs = list(QueueAssignment.objects.values_list("item_id", "annotator_id"))
        self.assertEqual(len(pairs), len(set(pairs)))
        return pairs

    def test_no_item_goes_twice_to_anyone_nor_beyond_its_overlap(self):
        people = [make_reviewer() for _ in range(THREADS)]
        traces = [make_trace() for _ in range(12)]
        queue = make_queue(people, traces, [make_schema()], overlap=3)

        pairs = self.label_all_at_once(queue, people)

        per_item = Counter(item for item, _ in pairs)
        self.assertEqual(sorted(per_item.values()), [3] * 12)
        self.assertEqual(Assessment.objects.count(), 36)

    def test_control_items_go_once_to_everyone_amid_the_rush(self):
        people = [make_reviewer() for _ in range(THREADS)]
        traces = [make_trace() for _ in range(12)]
        queue = make_queue(people, traces, [make_schema()], overlap=2)
        queue.control_rate = 25
        queue.save(update_fields=["control_rate"])
        controls = list(queue.items.filter(position__in=[3, 6, 9]))
        for item in controls:
            quality.set_control_answers(item=item, answers={"correct": True}, actor=None)

        pairs = self.label_all_at_once(queue, people)

        per_item = Counter(item for item, _ in pairs)
        control_ids = {item.pk for item in controls}
        self.assertEqual({per_item[pk] for pk in control_ids}, {THREADS})
        ordinary = [n for pk, n in per_item.items() if pk not in control_ids]
        self.assertEqual(sorted(ordinary), [2] * 9)
