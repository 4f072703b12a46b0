from django.test import TestCase, override_settings

from annotation import judge_report, queues, services
from annotation.judge_report import JudgeKey
from annotation.models import LabelSchema
from tests.factories import (
    make_admin,
    make_experiment,
    make_judge_entry,
    make_reviewer,
    make_trace,
)
from traces.models import Trace

WEEK = 7 * 86_400_000
START = 1_767_225_600_000  # 2026-01-01T00:00:00Z, a Thursday
JUDGE_A = JudgeKey("correct", "judge-a")


def judge(trace, value, *, source="judge-a", **fields):
    return make_judge_entry(trace, value, source_id=source, **fields)


class JudgeReportTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.rita, cls.ravi = make_reviewer(), make_reviewer()
        cls.experiment = make_experiment()
        LabelSchema.objects.create(name="correct", value_type="boolean", applies_to="trace")

    def agree(self, trace, value, name="correct"):
        for person in (self.rita, self.ravi):
            services.log_feedback(trace=trace, name=name, value=value, actor=person)

    def report(self, key=JUDGE_A, user=None):
        [found] = judge_report.build(self.experiment, user=user or self.rita, key=key)
        return found

    def test_the_judges_own_value_counts_where_a_person_overrode_it(self):
        trace = make_trace(self.experiment)
        entry = judge(trace, True)
        services.override_feedback(assessment_id=entry.assessment_id, value=False, actor=self.rita)
        [pair] = self.report().pairs
        self.assertEqual((pair.value, pair.gold.value, pair.agrees), (True, False, False))
        self.assertEqual(pair.gold.source, "override")

    def test_the_newest_entry_per_question_counts_and_errors_do_not(self):
        trace = make_trace(self.experiment)
        judge(trace, False, create_time=START)
        judge(trace, True, create_time=START + 1)
        judge(make_trace(self.experiment), None, error={"error_code": "429"})
        self.agree(trace, True)
        report = self.report()
        self.assertEqual([(p.value, p.agrees) for p in report.pairs], [(True, True)])
        # Totals and pass rates count entries, a re-run too; the error has no value.
        self.assertEqual((report.figures.n, report.figures.judged), (1, 2))

    def test_a_judge_too_lenient_on_long_answers_is_flagged(self):
        for n in range(60):
            long = n % 2 == 0
            trace = make_trace(self.experiment, response_preview="x" * (500 if long else 20 + n))
            truth = n % 4 < 2
            judge(trace, True if long else truth, source="lenient")
            judge(trace, truth, source="careful")
            self.agree(trace, truth)
        lenient = self.report(JudgeKey("correct", "lenient"))
        careful = self.report(JudgeKey("correct", "careful"))
        self.assertEqual([c.flagged for c in lenient.biases], [True, False])
        self.assertIn("long responses", lenient.flags[0].worst.label)
        self.assertEqual(careful.flags, [])
        self.assertTrue(careful.verdict.startswith("agrees with people beyond chance: almost"))
        self.assertEqual(careful.figures.kappa, 1.0)
        # Lenient passes 45 of 60 where people pass 30: the correction brings it back down.
        self.assertAlmostEqual(lenient.figures.raw_pass_rate, 0.75)
        self.assertLess(lenient.figures.corrected_pass_rate, lenient.figures.raw_pass_rate)
        self.assertAlmostEqual(careful.figures.corrected_pass_rate, 0.5)

    @override_settings(TRACEMARK_JUDGE_VERSION_KEY="prompt")
    def test_drift_per_week_and_per_version(self):
        for week, version, agrees in [(0, "v1", True), (0, "v1", False), (1, "v2", True)]:
            trace = make_trace(self.experiment)
            judge(trace, True, create_time=START + week * WEEK, metadata={"prompt": version})
            self.agree(trace, agrees)
        report = self.report()
        self.assertEqual(
            [(label, f.n, f.agreeing) for label, f in report.by_week],
            [("2026-W01", 2, 1), ("2026-W02", 1, 1)],
        )
        self.assertEqual([(label, f.n) for label, f in report.by_version], [("v1", 2), ("v2", 1)])
        self.assertEqual([c.id for c in report.charts], ["drift-week", "drift-version"])
        self.assertEqual(len(report.charts[0].bars), 2)

    def test_numeric_and_categorical_judges(self):
        LabelSchema.objects.create(name="rating", value_type="numeric", step=1)
        for judged, truth in [(4, 5), (2, 2), (5, 3)]:
            trace = make_trace(self.experiment)
            judge(trace, judged, name="rating")
            judge(trace, "a" if judged > 3 else "b", name="topic")
            self.agree(trace, truth, name="rating")
            self.agree(trace, "a", name="topic")
        rating = self.report(JudgeKey("rating", "judge-a")).figures
        self.assertAlmostEqual(rating.mae, 1.0)
        self.assertAlmostEqual(rating.within_step, 2 / 3)
        self.assertAlmostEqual(rating.spearman, 0.5)
        topic = self.report(JudgeKey("topic", "judge-a")).figures
        self.assertEqual(topic.value_type, "categorical")
        self.assertEqual(topic.per_class, [("a", 1.0, 2 / 3), ("b", 0.0, None)])

    def test_gold_a_blind_queue_hides_from_the_reader_is_left_out(self):
        trace = make_trace(self.experiment)
        judge(trace, True)
        self.agree(trace, True)
        carla = make_reviewer()
        schema = LabelSchema.objects.get(name="correct")
        queue = queues.create_queue(
            name="blind", traces=[trace], schemas=[schema], annotators=[carla], blind=True
        )
        queues.next_assignment(queue=queue, user=carla)
        self.assertIsNone(self.report(user=carla).pairs[0].gold)
        self.assertIsNotNone(self.report(user=make_admin()).pairs[0].gold)

    def test_an_experiment_without_judges_has_no_reports(self):
        make_trace(self.experiment)
        self.assertEqual(judge_report.build(self.experiment, user=self.rita), [])
        self.assertFalse(Trace.objects.filter(assessments__isnull=False).exists())
