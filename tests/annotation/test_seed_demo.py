from io import StringIO

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db.models import Sum
from django.test import TestCase
from django.urls import reverse

from accounts.roles import Role, role_of
from annotation import judge_report, queues
from annotation.demo import (
    BIG_TRACE_SPANS,
    DEMO_QUEUE,
    JUDGE_DATASET,
    SESSION_COUNT,
    SESSION_QUEUE,
    SPAN_QUEUE,
    TRACE_COUNT,
)
from annotation.models import (
    Assessment,
    AssessmentRevision,
    EvaluationDataset,
    LabelSchema,
    Queue,
    SourceType,
)
from traces.models import Experiment, Run, Span, Trace
from traces.runs import traces_of


class SeedDemoTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.output = StringIO()
        call_command("seed_demo", password="demo-pass", stdout=cls.output)

    def counts(self):
        return [
            model.objects.count()
            for model in (
                Experiment, Trace, Span, Assessment, AssessmentRevision, LabelSchema, Run, Queue,
                EvaluationDataset,
            )
        ]  # fmt: skip

    def test_running_it_twice_adds_nothing(self):
        before = self.counts()
        again = StringIO()
        call_command("seed_demo", password="demo-pass", stdout=again)
        self.assertEqual(self.counts(), before)
        self.assertIn("created nothing new", again.getvalue())

    def test_it_makes_the_promised_shape_of_data(self):
        self.assertEqual(Trace.objects.count(), TRACE_COUNT + 1)
        self.assertEqual(
            Trace.objects.exclude(session="sess-audit").values("session").distinct().count(),
            SESSION_COUNT,
        )
        self.assertGreaterEqual(Trace.objects.values("user").distinct().count(), 15)
        errors = Trace.objects.filter(state=Trace.State.ERROR).count()
        self.assertTrue(0.02 * TRACE_COUNT <= errors <= 0.09 * TRACE_COUNT, errors)
        big = Trace.objects.get(client_request_id="req-big-run")
        self.assertEqual(big.spans.count(), BIG_TRACE_SPANS)
        self.assertEqual(big.span_count, BIG_TRACE_SPANS)
        self.assertEqual(big.span_bytes, big.spans.aggregate(n=Sum("size_bytes"))["n"])
        self.assertFalse(Trace.objects.filter(span_bytes=0).exists())
        span_types = set(Span.objects.values_list("span_type", flat=True))
        self.assertLessEqual({"LLM", "RETRIEVER", "TOOL", "CHAIN"}, span_types)
        self.assertEqual(
            set(Assessment.objects.values_list("source_type", flat=True)), set(SourceType.values)
        )
        self.assertTrue(Assessment.objects.filter(version__gte=4).exists())
        self.assertTrue(Assessment.objects.filter(valid=False).exists())
        self.assertTrue(Assessment.objects.exclude(error_code="").exists())
        issues = Assessment.objects.filter(kind="issue")
        self.assertEqual(issues.count(), errors)
        self.assertEqual(set(issues.values_list("value", flat=True)), {"Order lookup times out"})
        llm = Span.objects.filter(span_type="LLM").exclude(trace=big).first()
        usage = llm.attributes["mlflow.chat.tokenUsage"]
        self.assertEqual(usage["total_tokens"], usage["input_tokens"] + usage["output_tokens"])

    def test_the_demo_judges_show_one_good_and_one_biased_judge(self):
        admin = get_user_model().objects.get(username="admin")
        experiment = Experiment.objects.get(name="bookshop-support-prod")
        reports = {
            r.key.source_id: r
            for r in judge_report.build(experiment, user=admin)
            if r.key.name == "helpful"
        }
        careful, lenient = reports["judge-helpful-careful"], reports["judge-helpful-lenient"]
        self.assertGreaterEqual(careful.figures.n, 50)
        self.assertEqual(careful.flags, [])
        self.assertEqual([c.title for c in lenient.flags], ["Agreement by response length"])
        self.assertGreater(careful.figures.kappa, lenient.figures.kappa + 0.05)
        self.assertIn("long responses", lenient.flags[0].worst.label)
        self.assertGreater(lenient.figures.raw_pass_rate, lenient.figures.corrected_pass_rate)

    def test_every_trace_span_tree_is_connected(self):
        for trace in Trace.objects.all()[:20]:
            ids = set(trace.spans.values_list("span_id", flat=True))
            parents = set(
                trace.spans.exclude(parent_span_id=None).values_list("parent_span_id", flat=True)
            )
            self.assertLessEqual(parents, ids)
            self.assertEqual(trace.spans.filter(parent_span_id=None).count(), 1)

    def test_it_creates_accounts_and_says_how_to_sign_in(self):
        admin = get_user_model().objects.get(username="admin")
        self.assertTrue(admin.check_password("demo-pass"))
        self.assertEqual(role_of(admin), Role.ADMIN)
        self.assertEqual(role_of(get_user_model().objects.get(username="vera")), Role.VIEWER)
        self.assertIn("admin / demo-pass", self.output.getvalue())

    def test_it_shows_schemas_per_experiment_and_a_queue_with_an_optional_schema(self):
        scoped = LabelSchema.objects.get(name="policy_followed")
        self.assertEqual(
            list(scoped.experiments.values_list("name", flat=True)), ["returns-agent-eval"]
        )
        queue = Queue.objects.get(name=DEMO_QUEUE)
        self.assertEqual(
            set(queue.schemas.values_list("name", flat=True)),
            {"helpful", "policy_followed", "issue_category"},
        )
        self.assertEqual(
            set(queue.required_schemas.values_list("name", flat=True)),
            {"helpful", "policy_followed"},
        )
        self.assertEqual(
            set(queue.items.values_list("trace__experiment__name", flat=True)),
            {"returns-agent-eval"},
        )

    def test_it_shows_a_queue_with_a_span_question_and_a_span_disagreement(self):
        queue = Queue.objects.get(name=SPAN_QUEUE)
        [question] = queue.span_questions.all()
        self.assertEqual(
            (question.schema.name, question.span_type), ("retrieval_relevant", "RETRIEVER")
        )
        [disagreement] = queues.disagreements(queue)
        self.assertIsNotNone(disagreement.span_id)
        self.assertEqual(disagreement.schema.name, "retrieval_relevant")

    def test_it_shows_a_queue_of_whole_sessions_with_a_disagreement(self):
        queue = Queue.objects.get(name=SESSION_QUEUE)
        items = list(queue.items.select_related("trace"))
        self.assertEqual(len(items), 6)
        for item in items:
            self.assertEqual(item.trace.session, item.session_id)
            later = Trace.objects.filter(
                session=item.session_id, request_time__gt=item.trace.request_time
            )
            self.assertFalse(later.exists())
            self.assertGreater(Trace.objects.filter(session=item.session_id).count(), 1)
        answers = Assessment.objects.filter(name="conversation_resolved")
        self.assertEqual(answers.count(), 7)
        self.assertEqual(
            {a.metadata[queues.SESSION_KEY] for a in answers}, {i.session_id for i in items[:4]}
        )
        self.assertEqual(len(queues.disagreements(queue)), 1)

    def test_it_shows_evaluation_runs_an_mlflow_queue_and_a_dataset(self):
        runs = list(Run.objects.order_by("name"))
        self.assertEqual([run.name for run in runs], ["baseline-eval", "candidate-eval"])
        self.assertEqual(traces_of(runs[0]).count(), 20)
        queue = Queue.objects.get(name="Evaluation triage")
        self.assertTrue(queue.shared_status)
        self.assertEqual(queue.items.count(), 8)
        self.assertEqual(list(queue.schemas.values_list("positive_label", flat=True)), ["Resolved"])
        dataset = EvaluationDataset.objects.get(name="support gold answers")
        self.assertTrue(dataset.records.exists())
        self.assertTrue(all("expected_answer" in r.expectations for r in dataset.records.all()))

    def test_it_shows_a_dataset_of_a_judges_disagreements_on_the_datasets_page(self):
        dataset = EvaluationDataset.objects.get(name=JUDGE_DATASET)
        experiment = dataset.experiments.get()
        key = judge_report.JudgeKey("helpful", "judge-helpful-lenient")
        admin = get_user_model().objects.get(username="admin")
        [report] = judge_report.build(experiment, user=admin, key=key)
        gold = judge_report.gold_expectations(report)
        records = list(dataset.records.all())
        # Traces asking the same thing share a record: it is keyed by its inputs.
        self.assertTrue(0 < len(records) <= len(gold))
        self.assertTrue(all(type(r.expectations["helpful"]) is bool for r in records))
        self.client.force_login(admin)
        page = self.client.get(reverse("annotation:dataset-list"))
        self.assertContains(page, dataset.name)
