import csv
import io
import json

from django.db import connection
from django.test import Client, TestCase
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.tokens import create_token
from annotation import datasets, queues, services
from annotation.export import parse_value
from annotation.models import EvaluationDataset, LabelSchema, Queue
from tests.factories import (
    make_admin,
    make_experiment,
    make_judge_entry,
    make_reviewer,
    make_span,
    make_trace,
    make_viewer,
)


def judged_item(experiment, judge_value, gold_value, people, *, source="judge-a", **trace):
    """A trace the judge scored; with ``gold_value`` two people agree on it."""
    item = make_trace(experiment, **trace)
    make_judge_entry(item, judge_value, rationale="judge says so", source_id=source)
    if gold_value is not None:
        for person in people:
            services.log_feedback(
                trace=item, name="correct", value=gold_value, rationale="checked", actor=person
            )
    return item


class JudgePagesData:
    @classmethod
    def setUpTestData(cls):
        cls.admin = make_admin()
        cls.rita, cls.ravi = make_reviewer(username="rita"), make_reviewer(username="ravi")
        cls.viewer = make_viewer()
        cls.schema = LabelSchema.objects.create(
            name="correct", value_type="boolean", applies_to="trace"
        )
        cls.experiment = make_experiment(name="bot")
        people = (cls.rita, cls.ravi)
        cls.wrong = judged_item(cls.experiment, True, False, people)
        cls.right = [judged_item(cls.experiment, v, v, people) for v in (True, False, True)]
        cls.open = judged_item(cls.experiment, False, None, people)
        cls.list_url = reverse("annotation:judges", args=[cls.experiment.pk])
        cls.detail_url = reverse("annotation:judge-detail", args=[cls.experiment.pk])
        cls.queue_url = reverse("annotation:judge-queue", args=[cls.experiment.pk])
        cls.pairs_url = reverse("annotation:judge-pairs", args=[cls.experiment.pk])


class JudgeListTests(JudgePagesData, TestCase):
    def test_it_requires_login(self):
        response = self.client.get(self.list_url)
        self.assertEqual(response.status_code, 302)

    def test_it_lists_each_judge_with_its_verdict(self):
        self.client.force_login(self.viewer)
        page = self.client.get(self.list_url)
        [report] = page.context["reports"]
        self.assertEqual((report.key.name, report.key.source_id), ("correct", "judge-a"))
        self.assertEqual((report.figures.n, report.figures.judged), (4, 5))
        self.assertContains(page, report.verdict)
        self.assertContains(page, "4 / 5")
        self.assertContains(page, f"{self.detail_url}?name=correct&amp;source=judge-a")

    def test_the_page_runs_the_same_queries_however_many_items(self):
        self.client.force_login(self.viewer)
        with CaptureQueriesContext(connection) as few:
            self.client.get(self.list_url)
        people = (self.rita, self.ravi)
        for n in range(12):
            judged_item(self.experiment, n % 2 == 0, n % 3 == 0, people)
            judged_item(self.experiment, True, None, people, source="judge-b")
        with self.assertNumQueries(len(few)):
            page = self.client.get(self.list_url)
        self.assertEqual(len(page.context["reports"]), 2)

    def test_the_overview_links_to_the_judges(self):
        self.client.force_login(self.viewer)
        page = self.client.get(reverse("annotation:overview", args=[self.experiment.pk]))
        self.assertContains(page, f'href="{self.list_url}"')


class JudgeDetailTests(JudgePagesData, TestCase):
    def test_it_shows_the_confusion_matrix_and_links_disagreements_to_review_pages(self):
        self.client.force_login(self.viewer)
        page = self.client.get(self.detail_url, {"name": "correct", "source": "judge-a"})
        figures = page.context["report"].figures
        self.assertEqual(figures.matrix, [(True, [2, 1]), (False, [0, 1])])
        self.assertEqual([p.trace_id for p in page.context["disagreeing"]], [self.wrong.trace_id])
        self.assertContains(page, f'href="{self.wrong.get_absolute_url()}"')
        # Only Admins get the queue form.
        self.assertNotContains(page, self.queue_url)

    def test_an_unknown_judge_is_404(self):
        self.client.force_login(self.viewer)
        for params in ({"name": "correct", "source": "nobody"}, {}):
            with self.subTest(params):
                response = self.client.get(self.detail_url, params)
                self.assertEqual(response.status_code, 404)

    def test_the_page_runs_the_same_queries_however_many_items(self):
        self.client.force_login(self.admin)
        params = {"name": "correct", "source": "judge-a"}
        with CaptureQueriesContext(connection) as few:
            self.client.get(self.detail_url, params)
        for n in range(10):
            judged_item(self.experiment, True, n % 2 == 0, (self.rita, self.ravi))
        with self.assertNumQueries(len(few)):
            self.client.get(self.detail_url, params)


class JudgeQueueTests(JudgePagesData, TestCase):
    def post(self, client=None, follow=False, **data):
        payload = {
            "name": "correct",
            "source": "judge-a",
            "items": "disagreeing",
            "annotators": [self.rita.pk, self.ravi.pk],
            "overlap": 2,
            **data,
        }
        return (client or self.client).post(self.queue_url, payload, follow=follow)

    def test_only_admins_make_queues(self):
        self.assertEqual(self.post().status_code, 302)
        for person in (self.viewer, self.rita):
            self.client.force_login(person)
            self.assertEqual(self.post().status_code, 403)
        self.assertFalse(Queue.objects.exists())

    def test_a_queue_of_the_disagreements_turns_them_into_gold_and_moves_the_figures(self):
        self.client.force_login(self.admin)
        params = {"name": "correct", "source": "judge-a"}
        before = self.client.get(self.detail_url, params).context["report"].figures
        response = self.post(items="without_gold")
        queue = Queue.objects.get()
        self.assertRedirects(response, reverse("annotation:queue-detail", args=[queue.pk]))
        self.assertEqual([i.trace for i in queue.items.all()], [self.open])
        self.assertEqual(list(queue.schemas.all()), [self.schema])
        for person in (self.rita, self.ravi):
            assignment = queues.next_assignment(queue=queue, user=person)
            queues.submit(assignment=assignment, values={"correct": True}, actor=person)
        after = self.client.get(self.detail_url, params).context["report"].figures
        self.assertEqual((before.n, after.n), (4, 5))
        self.assertEqual(after.matrix, [(True, [2, 1]), (False, [1, 1])])

    def test_a_queue_of_disagreeing_items(self):
        self.client.force_login(self.admin)
        self.post()
        self.assertEqual([i.trace for i in Queue.objects.get().items.all()], [self.wrong])

    def test_without_a_schema_it_says_what_to_do(self):
        self.client.force_login(self.admin)
        judged_item(self.experiment, True, False, (self.rita, self.ravi), source="judge-b")
        LabelSchema.objects.all().delete()
        response = self.post(source="judge-b", follow=True)
        self.assertContains(response, "Define a schema named")
        self.assertFalse(Queue.objects.exists())

    def test_an_invalid_choice_comes_back_with_its_error(self):
        self.client.force_login(self.admin)
        response = self.post(annotators=[self.rita.pk], follow=True)
        self.assertContains(response, "Overlap must be between 1 and the number of annotators")
        self.assertFalse(Queue.objects.exists())
        self.assertEqual(self.post(name="nothing").status_code, 404)

    def test_a_refused_form_goes_back_to_the_judge_page_with_its_errors(self):
        self.client.force_login(self.admin)
        response = self.post(annotators=[], overlap=1)
        page = f"{self.detail_url}?name=correct&source=judge-a#judge-queue"
        self.assertRedirects(response, page, fetch_redirect_response=False)
        page = self.client.get(response["Location"])
        form = page.context["queue_form"]
        self.assertEqual(form["overlap"].value(), "1")
        self.assertEqual(form.errors["annotators"], ["This field is required."])
        self.assertContains(page, 'role="alert"')
        self.assertContains(page, "The queue was not made</a>: Annotators: This field is required.")
        self.assertContains(
            page, 'id="judge-queue" aria-labelledby="judge-queue-title" tabindex="-1" autofocus'
        )
        self.assertFalse(Queue.objects.exists())
        # Shown once: the next visit has a fresh form.
        self.assertFalse(self.client.get(response["Location"]).context["queue_form"].is_bound)

    def test_csrf_is_enforced(self):
        client = Client(enforce_csrf_checks=True)
        client.force_login(self.admin)
        self.assertEqual(self.post(client).status_code, 403)


class JudgeDatasetTests(JudgePagesData, TestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        cls.dataset_url = reverse("annotation:judge-dataset", args=[cls.experiment.pk])
        make_span(cls.wrong, inputs={"question": "is it?"}, outputs={"answer": "yes"})

    def post(self, client=None, **data):
        payload = {"name": "correct", "source": "judge-a", "dataset_name": "hard cases", **data}
        return (client or self.client).post(self.dataset_url, payload)

    def test_only_admins_add_to_datasets(self):
        self.assertEqual(self.post().status_code, 302)
        for person in (self.viewer, self.rita):
            self.client.force_login(person)
            self.assertEqual(self.post().status_code, 403)
        self.assertFalse(EvaluationDataset.objects.exists())
        client = Client(enforce_csrf_checks=True)
        client.force_login(self.admin)
        self.assertEqual(self.post(client).status_code, 403)

    def test_disagreements_become_records_with_the_gold_value_as_expectation(self):
        self.client.force_login(self.admin)
        page = self.client.get(self.detail_url, {"name": "correct", "source": "judge-a"})
        self.assertContains(page, self.dataset_url)
        response = self.post()
        dataset = EvaluationDataset.objects.get()
        self.assertRedirects(response, dataset.get_absolute_url())
        self.assertEqual(list(dataset.experiments.all()), [self.experiment])
        [record] = dataset.records.all()
        self.assertEqual(record.inputs, {"question": "is it?"})
        self.assertEqual(record.expectations, {"correct": False})
        self.assertEqual((record.source_type, record.source_id), ("TRACE", self.wrong.trace_id))
        self.assertEqual(dataset.created_by, self.admin.username)

    def test_adding_twice_merges_into_the_chosen_dataset(self):
        self.client.force_login(self.admin)
        self.post()
        dataset = EvaluationDataset.objects.get()
        response = self.post(dataset=dataset.pk, dataset_name="")
        self.assertRedirects(response, dataset.get_absolute_url())
        self.assertEqual(dataset.records.count(), 1)
        self.assertEqual(EvaluationDataset.objects.count(), 1)

    def test_only_the_experiments_datasets_can_be_chosen_and_a_new_one_needs_a_name(self):
        self.client.force_login(self.admin)
        other = datasets.create_dataset(name="elsewhere", experiments=[], tags={})
        response = self.post(dataset=other.pk)
        self.assertContains(response, "Select a valid choice")
        response = self.post(dataset_name=" ")
        self.assertContains(response, "Name the new dataset, or choose one.")
        self.assertFalse(other.records.exists())
        self.assertEqual(EvaluationDataset.objects.count(), 1)

    def test_a_judge_without_disagreements_adds_nothing(self):
        self.client.force_login(self.admin)
        judged_item(self.experiment, True, True, (self.rita, self.ravi), source="judge-b")
        response = self.post(source="judge-b")
        self.assertContains(response, "nothing would be added")
        self.assertFalse(EvaluationDataset.objects.exists())


class JudgePairsTests(JudgePagesData, TestCase):
    def test_csv_and_jsonl_round_trip(self):
        self.client.force_login(self.viewer)
        params = {"name": "correct", "source": "judge-a"}
        jsonl = b"".join(self.client.get(self.pairs_url, {**params, "format": "jsonl"}))
        records = [json.loads(line) for line in jsonl.decode().splitlines()]
        response = self.client.get(self.pairs_url, {**params, "format": "csv"})
        self.assertEqual(response["Content-Type"], "text/csv; charset=utf-8")
        rows = list(csv.DictReader(io.StringIO(b"".join(response).decode(), newline="")))
        self.assertEqual(len(rows), 4)
        for row, record in zip(rows, records, strict=True):
            self.assertEqual(
                parse_value(row["judge_value"], row["judge_value_type"]), record["judge_value"]
            )
            self.assertEqual(
                parse_value(row["gold_value"], row["gold_value_type"]), record["gold_value"]
            )
            self.assertEqual(row["trace_id"], record["trace_id"])
            self.assertEqual(row["gold_source"], "agreement")
        wrong = next(r for r in records if r["trace_id"] == self.wrong.trace_id)
        self.assertEqual(
            (wrong["judge_value"], wrong["gold_value"], wrong["agrees"], wrong["judge_rationale"]),
            (True, False, False, "judge says so"),
        )
        self.assertEqual(wrong["gold_rationale"], "checked")

    def test_scripts_download_with_an_api_token(self):
        _, raw = create_token(user=self.viewer)
        client = Client()
        response = client.get(
            self.pairs_url, {"format": "jsonl"}, headers={"Authorization": f"Bearer {raw}"}
        )
        self.assertEqual(response.status_code, 200)
        self.assertEqual(len(b"".join(response).splitlines()), 4)
        refused = client.get(self.pairs_url, headers={"Authorization": "Bearer nope"})
        self.assertEqual(refused.status_code, 401)

    def test_bad_options_get_400(self):
        self.client.force_login(self.viewer)
        self.assertEqual(self.client.get(self.pairs_url, {"format": "xls"}).status_code, 400)
