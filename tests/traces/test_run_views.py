"""The Runs pages, the trace list's run filter and the run on the review page."""

from django.test import TestCase
from django.urls import reverse

from tests.factories import make_experiment, make_reviewer, make_trace, make_viewer
from traces import runs


def _run(experiment, name, metrics, params=None, start_time=1_700_000_000_000):
    run = runs.create_run(
        experiment=experiment, name=name, user_id="ci", start_time=start_time, tags={}
    )
    entries = [{"key": k, "value": v, "timestamp": 1, "step": 0} for k, v in metrics.items()]
    return runs.log_batch(run=run, metrics=entries, params=params or {}, tags={})


class RunListTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.viewer = make_viewer()
        cls.experiment = make_experiment("evals")
        cls.old = _run(cls.experiment, "old", {"exact/mean": 0.5}, {"model": "small"})
        cls.new = _run(
            cls.experiment, "new", {"exact/mean": 0.75, "length/mean": 3},
            {"model": "large"}, start_time=1_700_000_100_000,
        )  # fmt: skip
        cls.url = reverse("traces:run-list", args=[cls.experiment.pk])

    def test_it_requires_login(self):
        response = self.client.get(self.url)
        self.assertEqual(response.status_code, 302)

    def test_it_lists_runs_newest_first_with_a_column_per_metric(self):
        self.client.force_login(self.viewer)
        response = self.client.get(self.url)
        self.assertEqual([run for run, _ in response.context["rows"]], [self.new, self.old])
        self.assertEqual(response.context["metric_keys"], ["exact/mean", "length/mean"])
        self.assertEqual(response.context["rows"][1][1], [0.5, None])
        self.assertContains(response, f'href="/?run={self.old.run_id}"')
        self.assertContains(
            response, '<time datetime="2023-11-14T22:15:00+00:00">2023-11-14 22:15:00</time>'
        )
        self.assertNotContains(response, ">1700000100000<")

    def test_comparing_one_run_says_two_are_needed(self):
        self.client.force_login(self.viewer)
        response = self.client.get(self.url, {"compare": [self.old.run_id]})
        self.assertContains(response, "Tick two runs to compare them.")
        self.assertEqual(response.context["compared"], [])
        self.assertNotContains(self.client.get(self.url), "Tick two runs to compare them.")

    def test_two_runs_side_by_side(self):
        self.client.force_login(self.viewer)
        response = self.client.get(self.url, {"compare": [self.old.run_id, self.new.run_id]})
        self.assertEqual(
            response.context["comparison"],
            [
                ("Metric", "exact/mean", 0.5, 0.75),
                ("Metric", "length/mean", None, 3),
                ("Param", "model", "small", "large"),
            ],
        )

    def test_its_queries_do_not_grow_with_the_runs(self):
        self.client.force_login(self.viewer)
        self.client.get(self.url)
        with self.assertNumQueries(5):
            self.client.get(self.url)
        for n in range(5):
            _run(self.experiment, f"more {n}", {"other": n})
        with self.assertNumQueries(5):
            self.client.get(self.url)


class RunTracesTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.reviewer = make_reviewer()
        cls.experiment = make_experiment("evals")
        cls.judged = _run(cls.experiment, "judged", {"exact/mean": 1.0})
        cls.inside = make_trace(
            cls.experiment, trace_metadata={"mlflow.sourceRun": cls.judged.run_id}
        )
        cls.outside = make_trace(cls.experiment)

    def test_the_trace_list_filters_by_run(self):
        self.client.force_login(self.reviewer)
        response = self.client.get(reverse("traces:list"), {"run": self.judged.run_id})
        self.assertEqual([trace.pk for trace in response.context["page"].rows], [self.inside.pk])

    def test_the_trace_list_filters_by_a_runs_name(self):
        again = _run(self.experiment, "judged", {})
        rerun = make_trace(self.experiment, trace_metadata={"mlflow.sourceRun": again.run_id})
        self.client.force_login(self.reviewer)
        response = self.client.get(reverse("traces:list"), {"run": "judged"})
        self.assertEqual(
            {trace.pk for trace in response.context["page"].rows}, {self.inside.pk, rerun.pk}
        )
        self.assertContains(response, "Run id or name")
        nothing = self.client.get(reverse("traces:list"), {"run": "never-ran"})
        self.assertEqual(list(nothing.context["page"].rows), [])

    def test_the_review_page_names_the_run(self):
        self.client.force_login(self.reviewer)
        page = self.client.get(self.inside.get_absolute_url())
        self.assertContains(page, f'href="{self.judged.get_absolute_url()}">judged</a>')
        other = self.client.get(self.outside.get_absolute_url())
        self.assertNotContains(other, "Run <a")

    def test_the_run_page_counts_its_traces(self):
        self.client.force_login(self.reviewer)
        page = self.client.get(self.judged.get_absolute_url())
        self.assertContains(page, "1 trace<")
        self.assertContains(page, "exact/mean")
