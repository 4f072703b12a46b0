"""Session items: building them from sessions, the last trace, dedupe, answers' metadata."""

from unittest import mock

from django.core.exceptions import ValidationError
from django.test import TestCase
from django.urls import reverse

from annotation import quality, queues, services, session_items, span_questions
from annotation.models import Assessment, LabelSchema, QueueItem
from tests.factories import make_experiment, make_reviewer, make_span, make_trace

SESSION_KEY = queues.SESSION_KEY


def make_session(session, turns, start=1_000_000, **kwargs):
    return [
        make_trace(session=session, request_time=start + n * 1000, **kwargs) for n in range(turns)
    ]


class BuildSessionItemsTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.ann, cls.bob = make_reviewer(), make_reviewer()
        cls.schema = LabelSchema.objects.create(name="resolved", value_type="boolean")
        cls.a = make_session("sess-a", 3)
        cls.b = make_session("sess-b", 2)

    def make_queue(self, session_ids, **kwargs):
        return session_items.create_session_queue(
            name=kwargs.pop("name", "Conversations"),
            session_ids=session_ids,
            schemas=[self.schema],
            annotators=[self.ann, self.bob],
            **kwargs,
        )

    def test_one_item_per_session_on_its_last_trace_in_the_given_order(self):
        queue = self.make_queue(["sess-b", "sess-a", "sess-b"])
        self.assertEqual(
            [(i.position, i.session_id, i.trace) for i in queue.items.all()],
            [(1, "sess-b", self.b[-1]), (2, "sess-a", self.a[-1])],
        )

    def test_the_last_trace_breaks_time_ties_by_trace_id(self):
        twins = [
            make_trace(session="sess-tie", request_time=5, trace_id=t) for t in ("tr-2", "tr-1")
        ]
        self.assertEqual(session_items.last_traces(["sess-tie"])["sess-tie"], twins[0])

    def test_it_refuses_sessions_without_traces(self):
        with self.assertRaises(ValidationError) as caught:
            self.make_queue(["sess-a", "sess-nowhere"])
        self.assertEqual(caught.exception.code, "unknown_session")
        self.assertFalse(QueueItem.objects.exists())

    def test_adding_sessions_appends_only_new_ones(self):
        queue = self.make_queue(["sess-a"])
        make_session("sess-c", 1)
        added = session_items.add_sessions(queue=queue, session_ids=["sess-a", "sess-c", "sess-c"])
        self.assertEqual([(i.position, i.session_id) for i in added], [(2, "sess-c")])
        again = session_items.add_sessions(queue=queue, session_ids=["sess-c"])
        self.assertEqual(again, [])
        self.assertEqual(queue.items.count(), 2)

    def test_a_trace_item_for_the_same_last_trace_counts_as_the_session(self):
        queue = queues.create_queue(
            name="Traces", traces=[self.b[-1]], schemas=[self.schema], annotators=[self.ann]
        )
        self.assertEqual(session_items.add_sessions(queue=queue, session_ids=["sess-b"]), [])

    def test_adding_sessions_checks_the_schemas_experiments(self):
        scoped = LabelSchema.objects.create(name="scoped", value_type="boolean")
        scoped.experiments.set([self.a[0].experiment])
        queue = session_items.create_session_queue(
            name="Scoped", session_ids=["sess-a"], schemas=[scoped], annotators=[self.ann]
        )
        make_session("sess-elsewhere", 1, experiment=make_experiment())
        with self.assertRaises(ValidationError) as caught:
            session_items.add_sessions(queue=queue, session_ids=["sess-elsewhere"])
        self.assertEqual(caught.exception.code, "schema_not_in_experiment")

    def test_sessions_take_no_span_questions(self):
        target = span_questions.SpanTarget(self.schema, span_type="LLM")
        with self.assertRaises(ValidationError) as caught:
            self.make_queue(["sess-a"], span_targets=[target])
        self.assertEqual(caught.exception.code, "session_span_question")
        traced = make_trace(session="sess-spans")
        make_span(traced, span_type="LLM")
        queue = queues.create_queue(
            name="Spans", traces=[traced], schemas=[], span_targets=[target], annotators=[self.ann]
        )
        with self.assertRaises(ValidationError) as caught:
            session_items.add_sessions(queue=queue, session_ids=["sess-a"])
        self.assertEqual(caught.exception.code, "session_span_question")

    def test_answers_land_on_the_last_trace_and_name_the_session(self):
        queue = self.make_queue(["sess-a"], overlap=2)
        for person, value in ((self.ann, True), (self.bob, False)):
            turn = queues.next_assignment(queue=queue, user=person)
            queues.submit(assignment=turn, values={"resolved": value}, actor=person)
        answers = Assessment.objects.filter(name="resolved")
        self.assertEqual({a.trace_id for a in answers}, {self.a[-1].pk})
        self.assertEqual({a.metadata[SESSION_KEY] for a in answers}, {"sess-a"})
        self.assertEqual(queues.progress(queue).complete_items, 1)
        [found] = queues.disagreements(queue)
        decision = queues.adjudicate(
            item=found.item, schema=self.schema, value=True, actor=self.ann
        )
        self.assertEqual(decision.metadata[SESSION_KEY], "sess-a")
        self.assertEqual(decision.trace_id, self.a[-1].pk)

    def test_a_session_answer_is_kept_apart_from_an_answer_about_its_last_turn(self):
        queue = self.make_queue(["sess-a"], overlap=2)
        about_turn = services.log_feedback(
            trace=self.a[-1], name="resolved", value=False, actor=self.ann
        )
        turn = queues.next_assignment(queue=queue, user=self.ann)
        self.assertEqual(queues.own_answers(item=turn.item, user=self.ann), [])
        self.client.force_login(self.ann)
        url = reverse("annotation:queue-item", args=[queue.pk, turn.item.position])
        page = self.client.get(url)
        self.assertFalse(page.context["forms"].forms[0].initial.get("value"))
        self.client.post(url, {f"s{self.schema.pk}-value": "true"})
        turn.refresh_from_db()
        self.assertEqual(turn.status, "done")
        about_turn.refresh_from_db()
        self.assertEqual((about_turn.value, about_turn.version), (False, 1))
        self.assertNotIn(SESSION_KEY, about_turn.metadata)
        [about_session] = Assessment.objects.filter(metadata__has_key=SESSION_KEY)
        self.assertEqual((about_session.value, about_session.trace), (True, self.a[-1]))
        self.assertEqual(queues.own_answers(item=turn.item, user=self.ann), [about_session])
        # The queue's results count the answer about the session only.
        self.assertEqual(queues.progress(queue).labels_done, 1)
        self.assertEqual(queues.disagreements(queue), [])
        # The review page's widget edits the answer about the turn.
        review = self.client.get(self.a[-1].get_absolute_url())
        widgets = review.context["trace_region"].widgets
        self.assertEqual([w.current for w in widgets], [about_turn])
        # Each is still one per person: a second answer about either is refused.
        for metadata in ({SESSION_KEY: "sess-a"}, {}):
            with self.assertRaises(ValidationError) as caught:
                services.log_feedback(
                    trace=self.a[-1], name="resolved", value=True, metadata=metadata, actor=self.ann
                )
            self.assertEqual(caught.exception.code, "duplicate")

    def test_accuracy_on_a_session_control_item_reads_the_answer_about_the_session(self):
        queue = self.make_queue(["sess-a"], control_rate=100)
        [item] = queue.items.all()
        quality.set_control_answers(item=item, answers={"resolved": True}, actor=self.ann)
        services.log_feedback(trace=self.a[-1], name="resolved", value=False, actor=self.bob)
        turn = queues.next_assignment(queue=queue, user=self.bob)
        queues.submit(assignment=turn, values={"resolved": True}, actor=self.bob)
        accuracy = quality.accuracy_by_annotator(queue)[self.bob.pk]
        self.assertEqual((accuracy.correct, accuracy.n), (1, 1))
        [row] = quality.assignment_records(queue)
        self.assertEqual((row["control_correct"], row["control_compared"]), (1, 1))

    def test_a_session_that_gains_turns_keeps_its_item_on_the_queued_trace(self):
        queue = self.make_queue(["sess-a"])
        later = make_trace(session="sess-a", request_time=9_000_000)
        session_items.add_sessions(queue=queue, session_ids=["sess-a"])
        [item] = queue.items.all()
        self.assertEqual(item.trace, self.a[-1])
        shown = session_items.conversation(item)
        self.assertEqual([t.trace for t in shown.turns], self.a)
        self.assertEqual([t.number for t in shown.turns], [1, 2, 3])
        self.assertEqual(shown.later_turns, 1)
        self.assertNotIn(later, [t.trace for t in shown.turns])

    def test_a_trace_item_has_no_conversation(self):
        queue = queues.create_queue(
            name="Traces", traces=[self.b[0]], schemas=[self.schema], annotators=[self.ann]
        )
        self.assertIsNone(session_items.conversation(queue.items.get()))

    def test_long_sessions_show_their_latest_turns(self):
        make_session("sess-long", 4)
        queue = self.make_queue(["sess-long"])
        with mock.patch.object(session_items, "CONVERSATION_TURNS", 2):
            shown = session_items.conversation(queue.items.get())
        self.assertEqual([t.number for t in shown.turns], [3, 4])
        self.assertEqual(shown.earlier_turns, 2)
