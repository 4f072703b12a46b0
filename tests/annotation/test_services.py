from django.core.exceptions import ValidationError
from django.test import TestCase

from annotation import services
from annotation.models import Assessment, AssessmentRevision, Kind, LabelSchema, SourceType
from tests.factories import make_admin, make_reviewer, make_span, make_trace, make_viewer

Action = AssessmentRevision.Action


def reload(assessment: Assessment) -> Assessment:
    return Assessment.objects.get(pk=assessment.pk)


class LogFeedbackTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.reviewer = make_reviewer(username="rev")
        cls.trace = make_trace()
        cls.span = make_span(cls.trace)

    def test_it_writes_one_revision_with_a_full_snapshot(self):
        feedback = services.log_feedback(
            trace=self.trace,
            name="helpful",
            value=True,
            span_id=self.span.span_id,
            rationale="answers the question",
            source_id="rev",
            metadata={"team": "qa"},
            actor=self.reviewer,
        )
        [revision] = feedback.revisions.all()
        self.assertEqual(revision.action, Action.CREATE)
        self.assertEqual(revision.version, 1)
        self.assertEqual(revision.actor, self.reviewer)
        self.assertEqual(revision.actor_label, "rev")
        self.assertEqual(
            {k: revision.snapshot[k] for k in ("name", "value", "rationale", "span_id", "kind")},
            {
                "name": "helpful",
                "value": True,
                "rationale": "answers the question",
                "span_id": self.span.span_id,
                "kind": "feedback",
            },
        )
        self.assertEqual(revision.snapshot["metadata"], {"team": "qa"})
        self.assertTrue(feedback.assessment_id.startswith("a-"))
        self.assertEqual(len(feedback.assessment_id), 34)

    def test_it_names_the_traces_experiment_given_the_trace_or_its_id(self):
        by_trace = services.log_feedback(trace=self.trace, name="a", value=1)
        by_id = services.log_feedback(
            trace=self.trace.trace_id, name="b", value=1, span_id=self.span.span_id
        )
        self.assertEqual(reload(by_trace).experiment_id, self.trace.experiment_id)
        self.assertEqual(reload(by_id).experiment_id, self.trace.experiment_id)

    def test_values_keep_their_json_type(self):
        cases = [True, False, 1, 1.5, 0, "1", "", [1, "a", None, True], {"a": {"b": [1.0, 2]}}]
        for value in cases:
            with self.subTest(value=value):
                stored = reload(services.log_feedback(trace=self.trace, name="v", value=value))
                self.assertEqual(stored.value, value)
                self.assertIs(type(stored.value), type(value))
                if isinstance(value, list):
                    self.assertEqual(
                        [type(item) for item in stored.value], [type(item) for item in value]
                    )

    def test_a_float_that_looks_whole_stays_a_float(self):
        stored = reload(services.log_feedback(trace=self.trace, name="score", value=4.0))
        self.assertIsInstance(stored.value, float)

    def test_an_error_only_feedback_has_no_value(self):
        error = {"error_code": "RATE_LIMIT", "error_message": "429", "stack_trace": "tb"}
        stored = reload(
            services.log_feedback(
                trace=self.trace, name="judge", error=error, source_type=SourceType.LLM_JUDGE
            )
        )
        self.assertIsNone(stored.value)
        self.assertEqual(stored.error, error)

    def test_it_rejects_values_json_cannot_hold(self):
        for value in [float("nan"), float("inf"), {1: "a"}, object(), {1, 2}]:
            with self.subTest(value=value), self.assertRaises(ValidationError) as caught:
                services.log_feedback(trace=self.trace, name="v", value=value)
            self.assertEqual(caught.exception.code, "invalid_value")
        self.assertFalse(Assessment.objects.exists())

    def test_it_rejects_bad_metadata_names_sources_and_spans(self):
        bad_calls = {
            "invalid_metadata": {"metadata": {"n": 2}},
            "invalid_name": {"name": " "},
            "invalid_source": {"source_type": "ROBOT"},
            "unknown_span": {"span_id": "ffffffffffffffff"},
        }
        for code, kwargs in bad_calls.items():
            with self.subTest(code=code), self.assertRaises(ValidationError) as caught:
                services.log_feedback(trace=self.trace, **{"name": "v", "value": 1, **kwargs})
            self.assertEqual(caught.exception.code, code)
        self.assertFalse(AssessmentRevision.objects.exists())

    def test_expectations_are_stored_as_expectations(self):
        expectation = services.log_expectation(
            trace=self.trace, name="answer", value={"facts": ["a", "b"]}
        )
        self.assertEqual(reload(expectation).kind, Kind.EXPECTATION)
        self.assertEqual(reload(expectation).value, {"facts": ["a", "b"]})


class UpdateAssessmentTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.alice = make_reviewer(username="alice")
        cls.bob = make_reviewer(username="bob")
        cls.trace = make_trace()

    def setUp(self):
        self.rating = services.log_feedback(
            trace=self.trace, name="rating", value=3, rationale="ok", actor=self.alice
        )

    def test_it_changes_only_the_given_fields_and_records_the_new_state(self):
        updated = services.update_assessment(
            assessment_id=self.rating.assessment_id, value=5, expected_version=1, actor=self.alice
        )
        self.assertEqual((updated.value, updated.rationale, updated.version), (5, "ok", 2))
        latest = updated.revisions.last()
        self.assertEqual(
            (latest.action, latest.version, latest.actor), (Action.UPDATE, 2, self.alice)
        )
        self.assertEqual(latest.snapshot["value"], 5)
        self.assertGreaterEqual(updated.last_update_time, updated.create_time)

    def test_history_reconstructs_every_past_value(self):
        values = [4, 2, 5, 1]
        for version, value in enumerate(values, start=1):
            services.update_assessment(
                assessment_id=self.rating.assessment_id,
                value=value,
                expected_version=version,
                actor=self.alice,
            )
        history = [r.snapshot["value"] for r in self.rating.revisions.order_by("version")]
        self.assertEqual(history, [3, *values])
        self.assertEqual(
            list(self.rating.revisions.values_list("version", flat=True)), [1, 2, 3, 4, 5]
        )

    def test_a_stale_version_raises_a_conflict_and_changes_nothing(self):
        # The author, from a second tab.
        services.update_assessment(
            assessment_id=self.rating.assessment_id, value=4, expected_version=1, actor=self.alice
        )
        with self.assertRaises(services.ConflictError) as caught:
            services.update_assessment(
                assessment_id=self.rating.assessment_id,
                value=1,
                rationale="mine",
                expected_version=1,
                actor=self.alice,
            )
        self.assertEqual(caught.exception.code, "conflict")
        self.assertEqual(caught.exception.current.value, 4)
        stored = reload(self.rating)
        self.assertEqual((stored.value, stored.rationale, stored.version), (4, "ok", 2))
        self.assertEqual(stored.revisions.count(), 2)

    def test_metadata_is_merged_and_errors_can_be_cleared(self):
        services.update_assessment(
            assessment_id=self.rating.assessment_id, metadata={"k": "v"}, error={"error_code": "X"}
        )
        updated = services.update_assessment(
            assessment_id=self.rating.assessment_id, metadata={"j": "w"}, error=None
        )
        self.assertEqual(updated.metadata, {"k": "v", "j": "w"})
        self.assertIsNone(updated.error)

    def test_a_deleted_assessment_cannot_be_updated(self):
        services.delete_assessment(assessment_id=self.rating.assessment_id)
        with self.assertRaises(Assessment.DoesNotExist):
            services.update_assessment(assessment_id=self.rating.assessment_id, value=1)


class OverrideDeleteRestoreTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.human = make_reviewer(username="hannah")
        cls.trace = make_trace()

    def setUp(self):
        self.judge = services.log_feedback(
            trace=self.trace,
            name="correct",
            value=False,
            source_type=SourceType.LLM_JUDGE,
            source_id="gpt-judge",
        )

    def override(self):
        return services.override_feedback(
            assessment_id=self.judge.assessment_id,
            value=True,
            rationale="the judge missed the citation",
            actor=self.human,
            source_id="hannah",
        )

    def test_override_creates_a_new_valid_feedback_and_invalidates_the_old(self):
        new = self.override()
        old = reload(self.judge)
        self.assertEqual((new.value, new.valid, new.overrides_id), (True, True, old.pk))
        self.assertEqual((old.value, old.valid, old.version), (False, False, 2))
        self.assertEqual(new.revisions.get().action, Action.OVERRIDE)
        self.assertEqual(old.revisions.last().action, Action.INVALIDATE)
        self.assertEqual(new.revisions.get().snapshot["overrides"], old.assessment_id)

    def test_expectations_cannot_be_overridden(self):
        expectation = services.log_expectation(trace=self.trace, name="answer", value="x")
        with self.assertRaises(ValidationError):
            services.override_feedback(assessment_id=expectation.assessment_id, value="y")

    def test_delete_is_soft_and_keeps_history(self):
        deleted = services.delete_assessment(assessment_id=self.judge.assessment_id)
        self.assertIsNotNone(reload(deleted).deleted_at)
        self.assertFalse(Assessment.objects.live().filter(pk=deleted.pk).exists())
        self.assertEqual(
            list(deleted.revisions.values_list("action", flat=True)), [Action.CREATE, Action.DELETE]
        )
        self.assertTrue(deleted.revisions.last().snapshot["deleted"])

    def test_restore_brings_it_back_with_a_revision(self):
        services.delete_assessment(assessment_id=self.judge.assessment_id)
        restored = services.restore(assessment_id=self.judge.assessment_id, expected_version=2)
        self.assertIsNone(reload(restored).deleted_at)
        self.assertEqual(restored.version, 3)
        self.assertEqual(restored.revisions.last().action, Action.RESTORE)

    def test_restoring_a_live_assessment_is_refused(self):
        with self.assertRaises(Assessment.DoesNotExist):
            services.restore(assessment_id=self.judge.assessment_id)

    def test_deleting_the_override_makes_the_old_one_valid_again(self):
        new = self.override()
        services.delete_assessment(assessment_id=new.assessment_id, actor=self.human)
        old = reload(self.judge)
        self.assertTrue(old.valid)
        self.assertEqual(old.revisions.last().action, Action.REVALIDATE)
        services.restore(assessment_id=new.assessment_id, actor=self.human)
        self.assertFalse(reload(self.judge).valid)

    def test_delete_with_a_stale_version_conflicts(self):
        self.override()
        with self.assertRaises(services.ConflictError):
            services.delete_assessment(assessment_id=self.judge.assessment_id, expected_version=1)
        self.assertIsNone(reload(self.judge).deleted_at)


class AuthorOnlyTests(TestCase):
    """``services.permits``: every entry stays its author's, whoever writes and however."""

    @classmethod
    def setUpTestData(cls):
        cls.rita = make_reviewer(username="rita")
        cls.ravi = make_reviewer(username="ravi")
        cls.ada = make_admin(username="ada")
        cls.app = make_reviewer(username="judge-app")
        cls.trace = make_trace()

    def setUp(self):
        self.ravis = services.log_feedback(
            trace=self.trace, name="helpful", value=False, actor=self.ravi
        )
        self.judged = services.log_feedback(
            trace=self.trace,
            name="groundedness",
            value=False,
            source_type=SourceType.LLM_JUDGE,
            actor=self.app,
        )

    def assert_refused(self, write, **kwargs):
        with self.assertRaises(ValidationError) as caught:
            write(**kwargs)
        self.assertEqual(caught.exception.code, services.PERMISSION_DENIED)

    def test_only_the_author_changes_or_deletes_a_human_entry(self):
        for someone in (self.rita, self.ada):
            with self.subTest(someone=someone.username):
                self.assert_refused(
                    services.update_assessment,
                    assessment_id=self.ravis.assessment_id,
                    value=True,
                    actor=someone,
                )
                self.assert_refused(
                    services.delete_assessment,
                    assessment_id=self.ravis.assessment_id,
                    actor=someone,
                )
        stored = reload(self.ravis)
        self.assertEqual((stored.value, stored.version, stored.deleted_at), (False, 1, None))
        self.assertEqual(stored.revisions.count(), 1)
        services.update_assessment(
            assessment_id=self.ravis.assessment_id, value=True, actor=self.ravi
        )
        services.delete_assessment(assessment_id=self.ravis.assessment_id, actor=self.ravi)
        services.restore(assessment_id=self.ravis.assessment_id, actor=self.ravi)
        self.assertEqual(reload(self.ravis).version, 4)

    def test_a_refusal_comes_before_any_conflict(self):
        services.update_assessment(
            assessment_id=self.ravis.assessment_id, value=True, actor=self.ravi
        )
        self.assert_refused(
            services.update_assessment,
            assessment_id=self.ravis.assessment_id,
            value=False,
            expected_version=1,
            actor=self.rita,
        )

    def test_only_the_author_restores_a_deleted_human_entry(self):
        services.delete_assessment(assessment_id=self.ravis.assessment_id, actor=self.ravi)
        self.assert_refused(
            services.restore, assessment_id=self.ravis.assessment_id, actor=self.ada
        )
        self.assertIsNotNone(reload(self.ravis).deleted_at)

    def test_only_an_admin_overrides_another_persons_answer(self):
        self.assert_refused(
            services.override_feedback,
            assessment_id=self.ravis.assessment_id,
            value=True,
            actor=self.rita,
        )
        self.assertTrue(reload(self.ravis).valid)
        decision = services.override_feedback(
            assessment_id=self.ravis.assessment_id, value=True, actor=self.ada
        )
        self.assertEqual(decision.annotator, self.ada)
        stored = reload(self.ravis)
        self.assertEqual((stored.annotator, stored.value, stored.valid), (self.ravi, False, False))

    def test_reviewers_override_judge_entries_but_only_admins_delete_them(self):
        self.assert_refused(
            services.delete_assessment, assessment_id=self.judged.assessment_id, actor=self.rita
        )
        self.assert_refused(
            services.update_assessment,
            assessment_id=self.judged.assessment_id,
            value=True,
            actor=self.rita,
        )
        override = services.override_feedback(
            assessment_id=self.judged.assessment_id, value=True, actor=self.rita
        )
        self.assertEqual(override.annotator, self.rita)
        services.delete_assessment(assessment_id=self.judged.assessment_id, actor=self.ada)
        self.assertIsNotNone(reload(self.judged).deleted_at)

    def test_an_apps_own_entries_stay_its_own_to_change(self):
        services.update_assessment(
            assessment_id=self.judged.assessment_id, value=True, actor=self.app
        )
        services.delete_assessment(assessment_id=self.judged.assessment_id, actor=self.app)
        self.assertEqual(reload(self.judged).version, 3)

    def test_viewers_may_do_nothing_and_the_system_anything(self):
        viewer = make_viewer()
        for action in (services.UPDATE, services.DELETE, services.OVERRIDE):
            with self.subTest(action=action):
                self.assertFalse(services.permits(viewer, action, self.judged))
                self.assertTrue(services.permits(None, action, self.ravis))


class SchemaValidationTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.trace = make_trace()
        cls.span = make_span(cls.trace)
        cls.reviewer = make_reviewer()
        LabelSchema.objects.create(name="thumbs", value_type="boolean", applies_to="trace")
        LabelSchema.objects.create(
            name="rating", value_type="numeric", min_value=1, max_value=5, step=1
        )
        LabelSchema.objects.create(
            name="tone", value_type="categorical", options=["polite", "rude"], applies_to="span"
        )
        LabelSchema.objects.create(name="note", value_type="text", one_per_annotator=False)
        LabelSchema.objects.create(name="facts", value_type="structured", kind="expectation")

    def assert_rejected(self, code, **kwargs):
        kwargs.setdefault("trace", self.trace)
        kwargs.setdefault("actor", self.reviewer)
        log = (
            services.log_expectation if kwargs.pop("expectation", False) else services.log_feedback
        )
        with self.assertRaises(ValidationError) as caught:
            log(**kwargs)
        self.assertEqual(caught.exception.code, code, caught.exception.messages)
        return caught.exception.messages[0]

    def test_values_outside_the_schema_are_rejected_with_clear_messages(self):
        self.assertIn("true or false", self.assert_rejected("wrong_type", name="thumbs", value=1))
        self.assertIn("at most 5", self.assert_rejected("out_of_range", name="rating", value=6))
        self.assertIn("at least 1", self.assert_rejected("out_of_range", name="rating", value=0))
        self.assert_rejected("off_step", name="rating", value=2.5)
        self.assert_rejected("wrong_type", name="rating", value=True)
        message = self.assert_rejected(
            "not_an_option", name="tone", value="angry", span_id=self.span.span_id
        )
        self.assertIn("polite, rude", message)
        self.assert_rejected("wrong_type", name="note", value=["x"])
        self.assert_rejected("wrong_type", name="facts", value="x", expectation=True)
        self.assertFalse(Assessment.objects.exists())

    def test_schemas_restrict_targets_and_kinds(self):
        child = make_span(self.trace, parent=self.span)
        self.assert_rejected("wrong_target", name="thumbs", value=True, span_id=child.span_id)
        self.assert_rejected("wrong_target", name="tone", value="polite")
        self.assert_rejected("wrong_kind", name="facts", value={"a": 1})

    def test_valid_values_pass(self):
        services.log_feedback(trace=self.trace, name="thumbs", value=False)
        services.log_feedback(trace=self.trace, name="rating", value=4.0)
        services.log_feedback(
            trace=self.trace, name="tone", value="rude", span_id=self.span.span_id
        )
        services.log_feedback(trace=self.trace, name="note", value="fine")
        services.log_expectation(trace=self.trace, name="facts", value=["a"])
        self.assertEqual(Assessment.objects.count(), 5)

    def test_a_trace_question_takes_an_answer_on_the_root_span(self):
        # mlflow.genai.evaluate() logs a dataset's expectations (as HUMAN) on the root span.
        for trace in (self.trace, self.trace.trace_id):
            services.log_feedback(trace=trace, name="thumbs", value=True, span_id=self.span.span_id)
        self.assertEqual(Assessment.objects.filter(span_id=self.span.span_id).count(), 2)

    def test_judges_and_code_verdicts_are_kept_as_sent(self):
        child = make_span(self.trace, parent=self.span)
        for source_type in (SourceType.LLM_JUDGE, SourceType.CODE):
            services.log_feedback(
                trace=self.trace, name="rating", value=0.87, source_type=source_type
            )
            services.log_feedback(
                trace=self.trace,
                name="thumbs",
                value="yes",
                span_id=child.span_id,
                source_type=source_type,
            )
        self.assertEqual(Assessment.objects.filter(valid=True).count(), 4)
        self.assert_rejected("out_of_range", name="rating", value=0.87)

    def test_updates_are_validated_too(self):
        rating = services.log_feedback(trace=self.trace, name="rating", value=3)
        with self.assertRaises(ValidationError):
            services.update_assessment(assessment_id=rating.assessment_id, value=9)
        self.assertEqual(reload(rating).value, 3)

    def test_one_answer_per_annotator_when_the_schema_says_so(self):
        services.log_feedback(trace=self.trace, name="rating", value=3, actor=self.reviewer)
        self.assert_rejected("duplicate", name="rating", value=4, actor=self.reviewer)
        services.log_feedback(trace=self.trace, name="note", value="a", actor=self.reviewer)
        services.log_feedback(trace=self.trace, name="note", value="b", actor=self.reviewer)


class OneLiveAnswerTests(TestCase):
    """The database holds the one-answer and one-override rules; services explain a refusal."""

    @classmethod
    def setUpTestData(cls):
        cls.reviewer = make_reviewer(username="rosa")
        cls.trace = make_trace()
        cls.span = make_span(cls.trace)
        LabelSchema.objects.create(name="thumbs", value_type="boolean")

    def answer(self, value=True, **kwargs):
        return services.log_feedback(
            trace=self.trace, name="thumbs", value=value, actor=self.reviewer, **kwargs
        )

    def test_restoring_a_second_live_answer_is_refused_by_the_constraint(self):
        first = self.answer()
        services.delete_assessment(assessment_id=first.assessment_id)
        self.answer(False)
        with self.assertRaises(ValidationError) as caught:
            services.restore(assessment_id=first.assessment_id)
        self.assertEqual(caught.exception.code, "duplicate")
        self.assertIn("You already gave 'thumbs' here", caught.exception.messages[0])
        self.assertTrue(reload(first).is_deleted)
        self.assertEqual(reload(first).version, 2)

    def test_trace_and_span_answers_are_separate_targets(self):
        self.answer()
        self.answer(span_id=self.span.span_id)
        self.assertEqual(Assessment.objects.filter(one_per_annotator=True).count(), 2)

    def test_judges_and_schemas_allowing_many_answers_are_not_constrained(self):
        LabelSchema.objects.create(name="note", value_type="text", one_per_annotator=False)
        for text in ("a", "b"):
            services.log_feedback(trace=self.trace, name="note", value=text, actor=self.reviewer)
            services.log_feedback(
                trace=self.trace, name="thumbs", value=True, source_type=SourceType.LLM_JUDGE
            )
        self.assertEqual(Assessment.objects.filter(one_per_annotator=True).count(), 0)

    def test_a_person_may_override_their_own_answer(self):
        mine = self.answer()
        new = services.override_feedback(
            assessment_id=mine.assessment_id, value=False, actor=self.reviewer
        )
        self.assertEqual(
            (reload(mine).valid, new.valid, new.one_per_annotator), (False, True, True)
        )

    def test_a_second_override_of_one_entry_is_refused(self):
        judge = services.log_feedback(
            trace=self.trace, name="correct", value=False, source_type=SourceType.LLM_JUDGE
        )
        first = services.override_feedback(assessment_id=judge.assessment_id, value=True)
        with self.assertRaises(ValidationError) as caught:
            services.override_feedback(assessment_id=judge.assessment_id, value=True)
        self.assertEqual(caught.exception.code, "duplicate")
        self.assertEqual(reload(judge).version, 2)
        services.delete_assessment(assessment_id=first.assessment_id)
        second = services.override_feedback(assessment_id=judge.assessment_id, value=True)
        with self.assertRaises(ValidationError) as caught:
            services.restore(assessment_id=first.assessment_id)
        self.assertEqual(caught.exception.code, "duplicate")
        self.assertEqual(Assessment.objects.live().get(overrides=judge), second)
