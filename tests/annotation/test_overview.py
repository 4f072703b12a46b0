from django.test import TestCase
from django.urls import reverse

from annotation import overview, services
from annotation.models import SourceType
from tests.factories import make_experiment, make_reviewer, make_trace, make_viewer

DAY = 86_400_000
START = 1_735_689_600_000  # 2025-01-01T00:00:00Z


class OverviewTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.viewer = make_viewer()
        cls.reviewer = make_reviewer(username="rev")
        cls.experiment = make_experiment(name="bot")
        cls.other = make_experiment(name="other")
        cls.bad = make_trace(cls.experiment, request_preview="the bad one")
        cls.good = make_trace(cls.experiment, request_preview="the good one")
        cls.mixed = make_trace(cls.experiment)
        log = services.log_feedback
        log(trace=cls.bad, name="correct", value=False, create_time=START)
        log(trace=cls.bad, name="correct", value=False, create_time=START + 1, source_id="x")
        log(trace=cls.good, name="correct", value=True, create_time=START + 2 * DAY)
        log(trace=cls.mixed, name="correct", value=False, create_time=START + 2 * DAY)
        log(trace=cls.mixed, name="correct", value=True, create_time=START + 2 * DAY)
        log(
            trace=cls.good,
            name="correct",
            value=True,
            source_type=SourceType.LLM_JUDGE,
            create_time=START + 2 * DAY,
        )
        for value in (1, 4, 4, 5, 0):
            log(trace=cls.good, name="rating", value=value, create_time=START + DAY)
        log(trace=cls.good, name="score", value=0.25, create_time=START)
        log(trace=cls.good, name="score", value=0.75, create_time=START)
        log(trace=cls.good, name="note", value="false", create_time=START)
        deleted = log(trace=cls.good, name="correct", value=False, create_time=START)
        services.delete_assessment(assessment_id=deleted.assessment_id)
        log(trace=make_trace(cls.other), name="correct", value=False)

    def test_counts_by_name_and_source(self):
        summary = overview.build(self.experiment, user=self.reviewer)
        self.assertEqual(summary.total, 14)
        activity = {item.name: item for item in summary.activity}
        self.assertEqual(activity["correct"].by_source["HUMAN"], 5)
        self.assertEqual(activity["correct"].by_source["LLM_JUDGE"], 1)
        self.assertEqual(summary.activity[0].name, "correct")
        chart = activity["correct"].chart
        titles = sorted(bar.title for bar in chart.bars)
        self.assertEqual(
            titles,
            [
                "2025-01-01: 2 from Human",
                "2025-01-03: 1 from LLM judge",
                "2025-01-03: 3 from Human",
            ],
        )
        self.assertEqual(summary.period, "day")

    def test_boolean_rates_ignore_strings_and_numbers(self):
        [rate] = overview.build(self.experiment, user=self.reviewer).rates
        self.assertEqual((rate.name, rate.positive, rate.negative), ("correct", 3, 3))
        self.assertEqual(rate.positive_percent, 50)

    def test_rating_distributions(self):
        rating, score = overview.build(self.experiment, user=self.reviewer).distributions
        self.assertEqual(rating.name, "rating")
        self.assertEqual(
            rating.counts, [("0", 1), ("1", 1), ("2", 0), ("3", 0), ("4", 2), ("5", 1)]
        )
        self.assertEqual(rating.mean, 2.8)
        self.assertEqual(score.total, 2)
        self.assertEqual(len(score.counts), 10)

    def test_worst_traces_first(self):
        worst = overview.build(self.experiment, user=self.reviewer).worst
        self.assertEqual(
            [(row.trace, row.negative, row.positive) for row in worst],
            [(self.bad, 2, 0), (self.mixed, 1, 1)],
        )

    def test_long_ranges_use_longer_periods(self):
        experiment = make_experiment()
        trace = make_trace(experiment)
        for day in (0, 200, 364):
            services.log_feedback(trace=trace, name="ok", value=True, create_time=START + day * DAY)
        summary = overview.build(experiment, user=self.reviewer)
        self.assertEqual(summary.period, "7 days")
        self.assertLessEqual(len(summary.activity[0].chart.bars), 60)

    def test_page_renders_svg_charts_for_viewers(self):
        self.client.force_login(self.viewer)
        url = reverse("annotation:overview", args=[self.experiment.pk])
        with self.assertNumQueries(10):
            response = self.client.get(url)
        self.assertContains(response, '<svg role="img" aria-labelledby="activity-0-title', 1)
        self.assertContains(response, '<title id="activity-0-title">correct: feedback per day')
        self.assertContains(response, "50% positive")
        self.assertContains(response, "the bad one")
        self.assertNotContains(response, "<script>")

    def test_page_requires_login_and_a_real_experiment(self):
        url = reverse("annotation:overview", args=[self.experiment.pk])
        self.assertEqual(self.client.get(url).status_code, 302)
        self.client.force_login(self.viewer)
        missing = reverse("annotation:overview", args=[999])
        self.assertEqual(self.client.get(missing).status_code, 404)

    def test_index_redirects_to_the_chosen_or_newest_experiment(self):
        self.client.force_login(self.viewer)
        index = reverse("annotation:overview-index")
        response = self.client.get(index, {"experiment": self.experiment.pk})
        self.assertRedirects(response, reverse("annotation:overview", args=[self.experiment.pk]))
        response = self.client.get(index)
        self.assertRedirects(response, reverse("annotation:overview", args=[self.other.pk]))

    def test_an_experiment_without_feedback(self):
        self.client.force_login(self.viewer)
        empty = make_experiment()
        response = self.client.get(reverse("annotation:overview", args=[empty.pk]))
        self.assertContains(response, "No feedback yet.")
        self.assertContains(response, "No numeric feedback yet.")
