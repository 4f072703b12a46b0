"""Evaluation datasets in the browser: adding traces from a filter or a queue, the dataset
page and its export."""

import json

from django.test import Client, TestCase
from django.urls import reverse

from accounts.tokens import create_token
from annotation import datasets, queues, services
from annotation.models import DatasetRecord, EvaluationDataset, LabelSchema
from tests.factories import make_experiment, make_reviewer, make_span, make_trace, make_viewer


class DatasetViewTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.reviewer = make_reviewer(username="rita")
        cls.viewer = make_viewer()
        cls.experiment = make_experiment("support")
        cls.traces = [make_trace(cls.experiment, user=f"u{n}") for n in range(3)]
        for n, trace in enumerate(cls.traces):
            make_span(trace, inputs={"question": f"q{n}"}, outputs={"answer": f"a{n}"})
        services.log_expectation(
            trace=cls.traces[0], name="ideal", value="gold", source_id="rita", actor=cls.reviewer
        )
        services.log_feedback(
            trace=cls.traces[0], name="correct", value=True, source_id="rita", actor=cls.reviewer
        )
        cls.add_url = reverse("annotation:dataset-add")

    def test_adding_a_filtered_list_makes_records_with_inputs_and_expectations(self):
        client = Client(enforce_csrf_checks=True)
        client.force_login(self.reviewer)
        page = client.get(self.add_url, {"user": "u0"})
        self.assertContains(page, "user=u0")
        token = page.context["csrf_token"]
        response = client.post(
            self.add_url,
            {
                "name": "gold set",
                "filter_query": "user=u0",
                "limit": 10,
                "csrfmiddlewaretoken": token,
            },
        )
        dataset = EvaluationDataset.objects.get(name="gold set")
        self.assertRedirects(response, dataset.get_absolute_url())
        [record] = dataset.records.all()
        self.assertEqual(record.inputs, {"question": "q0"})
        self.assertEqual(record.outputs, {"answer": "a0"})
        self.assertEqual(record.expectations, {"ideal": "gold"})
        self.assertEqual((record.source_type, record.source_id), ("TRACE", self.traces[0].trace_id))
        self.assertEqual(dataset.created_by, "rita")

    def test_adding_again_merges_instead_of_repeating(self):
        self.client.force_login(self.reviewer)
        self.client.post(self.add_url, {"name": "all", "filter_query": "", "limit": 10})
        dataset = EvaluationDataset.objects.get(name="all")
        self.client.post(self.add_url, {"dataset": dataset.pk, "filter_query": "", "limit": 10})
        self.assertEqual(dataset.records.count(), 3)

    def test_a_queues_traces_can_be_added(self):
        schema = LabelSchema.objects.create(name="ok", value_type="boolean", applies_to="trace")
        queue = queues.create_queue(
            name="q", traces=self.traces[1:], schemas=[schema], annotators=[self.reviewer]
        )
        self.client.force_login(self.reviewer)
        page = self.client.get(self.add_url, {"queue": queue.pk})
        self.assertContains(page, "Completed items only")
        self.client.post(
            self.add_url, {"name": "from queue", "queue": queue.pk, "items": "all", "limit": 10}
        )
        dataset = EvaluationDataset.objects.get(name="from queue")
        self.assertEqual(
            sorted(dataset.records.values_list("source_id", flat=True)),
            sorted(t.trace_id for t in self.traces[1:]),
        )

    def test_a_queue_gives_its_completed_items_unless_every_item_is_chosen(self):
        schema = LabelSchema.objects.create(name="ok", value_type="boolean", applies_to="trace")
        queue = queues.create_queue(
            name="q", traces=self.traces, schemas=[schema], annotators=[self.reviewer]
        )
        done = queues.next_assignment(queue=queue, user=self.reviewer)
        queues.submit(assignment=done, values={"ok": True}, actor=self.reviewer)
        skipped = queues.next_assignment(queue=queue, user=self.reviewer)
        queues.skip(assignment=skipped, reason="unclear", actor=self.reviewer)
        self.client.force_login(self.reviewer)
        self.client.post(self.add_url, {"name": "done", "queue": queue.pk, "limit": 10})
        dataset = EvaluationDataset.objects.get(name="done")
        self.assertEqual(
            list(dataset.records.values_list("source_id", flat=True)),
            [done.item.trace.trace_id],
        )

    def test_a_dataset_is_linked_to_the_experiments_of_the_traces_added(self):
        other = make_experiment("billing")
        elsewhere = make_trace(other, user="u9")
        make_span(elsewhere, inputs={"question": "q9"}, outputs="a9")
        schema = LabelSchema.objects.create(name="ok", value_type="boolean", applies_to="trace")
        queue = queues.create_queue(
            name="q", traces=self.traces[1:], schemas=[schema], annotators=[self.reviewer]
        )
        self.client.force_login(self.reviewer)
        self.client.post(
            self.add_url, {"name": "from queue", "queue": queue.pk, "items": "all", "limit": 10}
        )
        self.client.post(self.add_url, {"name": "listed", "filter_query": "", "limit": 10})
        from_queue = EvaluationDataset.objects.get(name="from queue")
        self.assertEqual(list(from_queue.experiments.all()), [self.experiment])
        listed = EvaluationDataset.objects.get(name="listed")
        self.assertEqual(set(listed.experiments.all()), {self.experiment, other})
        self.client.post(
            self.add_url, {"dataset": from_queue.pk, "filter_query": "user=u9", "limit": 10}
        )
        self.assertEqual(set(from_queue.experiments.all()), {self.experiment, other})

    def test_records_are_those_the_mlflow_client_builds_from_the_trace(self):
        trace = make_trace(self.experiment, user="u7")
        root = make_span(trace, inputs={"question": "Capital of Canada?"}, outputs="Ottawa.")
        make_span(trace, parent=root, inputs={"q": "inner"}, outputs={"a": "inner"})
        services.log_expectation(
            trace=trace,
            span_id=root.span_id,
            name="expected_response",
            value="Ottawa",
            source_id="evaluate",
            actor=self.reviewer,
        )
        services.log_expectation(
            trace=trace, name="score", value=1, source_id="rita", actor=self.reviewer
        )
        self.client.force_login(self.reviewer)
        self.client.post(self.add_url, {"name": "ui", "filter_query": "user=u7", "limit": 10})
        [record] = EvaluationDataset.objects.get(name="ui").records.all()
        self.assertEqual(record.inputs, {"question": "Capital of Canada?"})
        self.assertEqual(record.outputs, "Ottawa.")
        self.assertEqual(record.expectations, {"expected_response": "Ottawa", "score": 1.0})
        self.assertIsInstance(record.expectations["score"], float)

    def test_viewers_and_strangers_may_not_add(self):
        self.assertEqual(self.client.post(self.add_url, {"name": "x"}).status_code, 302)
        self.client.force_login(self.viewer)
        self.assertEqual(self.client.post(self.add_url, {"name": "x"}).status_code, 403)
        self.assertFalse(EvaluationDataset.objects.exists())

    def test_the_dataset_page_links_source_traces_and_exports(self):
        dataset = datasets.create_dataset(name="shown", experiments=[], tags={})
        datasets.merge_records(
            dataset=dataset, records=datasets.records_from_traces(self.traces[:2])
        )
        datasets.merge_records(dataset=dataset, records=[{"inputs": {"q": "=1+1"}}])
        self.client.force_login(self.viewer)
        with self.assertNumQueries(7):
            page = self.client.get(dataset.get_absolute_url())
        self.assertContains(page, f'href="{self.traces[0].get_absolute_url()}"')
        self.assertContains(page, "3 records")

        export = reverse("annotation:dataset-export", args=[dataset.dataset_id])
        lines = b"".join(self.client.get(export, {"format": "jsonl"}).streaming_content)
        rows = [json.loads(line) for line in lines.decode().splitlines()]
        self.assertIn({"question": "q0"}, [row["inputs"] for row in rows])
        self.assertEqual(len(rows), DatasetRecord.objects.filter(dataset=dataset).count())
        csv_text = b"".join(self.client.get(export, {"format": "csv"}).streaming_content).decode()
        self.assertIn("dataset_record_id,inputs,outputs", csv_text.splitlines()[0])
        self.assertIn('{""question"": ""q0""}', csv_text)

    def test_the_export_takes_an_api_token(self):
        dataset = datasets.create_dataset(name="scripted", experiments=[], tags={})
        datasets.merge_records(dataset=dataset, records=[{"inputs": {"q": 1}}])
        export = reverse("annotation:dataset-export", args=[dataset.dataset_id])
        _, token = create_token(user=self.viewer, name="script")
        response = self.client.get(export, headers={"Authorization": f"Bearer {token}"})
        self.assertEqual(response.status_code, 200)
        self.assertIn(b'"q": 1', b"".join(response.streaming_content))
        wrong = self.client.get(export, headers={"Authorization": "Bearer tmk_wrong"})
        self.assertEqual(wrong.status_code, 401)
        self.assertEqual(self.client.get(export).status_code, 302)

    def test_a_records_outputs_may_be_any_json_value_as_in_mlflow(self):
        dataset = datasets.create_dataset(name="plain", experiments=[], tags={})
        datasets.merge_records(dataset=dataset, records=[{"inputs": {"q": 1}, "outputs": "A"}])
        self.assertEqual(dataset.records.get().outputs, "A")
        dataset.refresh_from_db()
        self.assertEqual(dataset.schema["outputs"], {})
