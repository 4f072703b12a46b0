import random
import statistics

from django.test import SimpleTestCase

from annotation import agreement, judges

# judge × gold: 20 true positives, 5 false positives, 10 false negatives, 15 true negatives.
TABLE = {(True, True): 20, (True, False): 5, (False, True): 10, (False, False): 15}


class KappaTests(SimpleTestCase):
    def test_kappa_of_a_hand_computed_table(self):
        # p_o = 35/50 = 0.7; p_e = (25·30 + 25·20) / 50² = 0.5; kappa = 0.2 / 0.5.
        self.assertAlmostEqual(judges.kappa(TABLE), 0.4)
        pairs = [pair for pair, n in TABLE.items() for _ in range(n)]
        self.assertAlmostEqual(judges.kappa(judges.confusion(pairs)), agreement.cohen_kappa(pairs))

    def test_kappa_is_undefined_without_variation(self):
        self.assertIsNone(judges.kappa({(True, True): 5}))
        self.assertIsNone(judges.kappa({}))

    def test_the_bootstrap_interval_brackets_the_kappa_and_narrows_with_more_items(self):
        small = judges.kappa_interval(TABLE)
        large = judges.kappa_interval({cell: n * 100 for cell, n in TABLE.items()})
        self.assertLess(small.low, 0.4)
        self.assertGreater(small.high, 0.4)
        self.assertLess(large.low, 0.4)
        self.assertGreater(large.high, 0.4)
        self.assertLess(large.high - large.low, 0.06)
        self.assertGreater(small.high - small.low, 0.3)
        # The seed is fixed: the same interval every time.
        self.assertEqual(judges.kappa_interval(TABLE), small)

    def test_binomial_draws_have_the_binomial_mean_and_variance(self):
        rng = random.Random(1)
        for n, p in [(1000, 0.3), (40, 0.05), (200, 0.9)]:
            draws = [judges.binomial(rng, n, p) for _ in range(4000)]
            self.assertTrue(all(0 <= d <= n for d in draws))
            self.assertAlmostEqual(statistics.fmean(draws), n * p, delta=0.05 * n * p + 0.2)
            self.assertAlmostEqual(
                statistics.pvariance(draws), n * p * (1 - p), delta=0.1 * n * p * (1 - p)
            )

    def test_a_resample_keeps_the_number_of_items(self):
        rng = random.Random(2)
        self.assertEqual(sum(judges.resample(rng, TABLE).values()), 50)

    def test_kappa_words(self):
        self.assertEqual(
            [judges.kappa_word(k) for k in (-0.1, 0.1, 0.3, 0.5, 0.68, 0.9)],
            ["poor", "slight", "fair", "moderate", "substantial", "almost perfect"],
        )


class ProportionTests(SimpleTestCase):
    def test_wilson_interval_of_eight_in_ten(self):
        interval = judges.wilson(8, 10)
        self.assertAlmostEqual(interval.low, 0.4902, places=4)
        self.assertAlmostEqual(interval.high, 0.9433, places=4)
        self.assertEqual(judges.wilson(0, 5).low, 0.0)
        self.assertIsNone(judges.wilson(0, 0))

    def test_newcombe_difference_interval_matches_the_paper(self):
        # Newcombe (1998), example (a), method 10: 56/70 − 48/80.
        interval = judges.newcombe(56, 70, 48, 80)
        self.assertAlmostEqual(interval.low, 0.0524, places=4)
        self.assertAlmostEqual(interval.high, 0.3339, places=4)

    def test_rates_of_a_yes_no_table(self):
        self.assertEqual(judges.rates(TABLE), (20, 30, 15, 20))


class RoganGladenTests(SimpleTestCase):
    def test_corrected_pass_rate(self):
        # (0.6 + 0.8 − 1) / (0.9 + 0.8 − 1) = 0.4 / 0.7
        self.assertAlmostEqual(judges.rogan_gladen(0.6, 0.9, 0.8), 4 / 7)

    def test_it_clips_to_zero_and_one(self):
        self.assertEqual(judges.rogan_gladen(0.05, 0.9, 0.8), 0.0)
        self.assertEqual(judges.rogan_gladen(0.99, 0.9, 0.8), 1.0)

    def test_it_is_undefined_for_a_judge_no_better_than_chance(self):
        self.assertIsNone(judges.rogan_gladen(0.5, 0.5, 0.5))
        self.assertIsNone(judges.rogan_gladen(0.5, None, 0.9))

    def test_its_interval_brackets_the_corrected_rate(self):
        table = {cell: n * 10 for cell, n in TABLE.items()}
        # TPR 2/3, TNR 3/4; a judge passing 60% of 2,000 items: (0.6 + 0.75 − 1) / (5/12).
        corrected = judges.rogan_gladen(0.6, 2 / 3, 0.75)
        interval = judges.corrected_interval(table, 1200, 2000)
        self.assertAlmostEqual(corrected, 0.84)
        self.assertLess(interval.low, corrected)
        self.assertGreater(interval.high, corrected)
        self.assertLessEqual(interval.high, 1.0)


class ClassAndNumberTests(SimpleTestCase):
    def test_precision_and_recall_per_class(self):
        table = {("a", "a"): 3, ("a", "b"): 1, ("b", "b"): 2, ("b", "a"): 2}
        self.assertEqual(
            judges.per_class(table, ["a", "b", "c"]),
            [("a", 0.75, 0.6), ("b", 0.5, 2 / 3), ("c", None, None)],
        )

    def test_spearman_rho(self):
        # d = −1, 1, −1, 1: rho = 1 − 6·4 / (4·15) = 0.6
        self.assertAlmostEqual(judges.spearman([(1, 2), (2, 1), (3, 4), (4, 3)]), 0.6)
        # Ties get average ranks: x ranks 1.5, 1.5, 3 against 1, 2, 3.
        self.assertAlmostEqual(judges.spearman([(1, 1), (1, 2), (2, 3)]), 1.5 / 3**0.5)
        self.assertIsNone(judges.spearman([(1, 1), (1, 2)]))

    def test_mean_absolute_error_and_share_within_one_step(self):
        pairs = [(1, 2), (3, 3), (5, 2)]
        self.assertAlmostEqual(judges.mean_absolute_error(pairs), 4 / 3)
        self.assertAlmostEqual(judges.within_step(pairs, 1), 2 / 3)
        self.assertIsNone(judges.mean_absolute_error([]))


class BiasTests(SimpleTestCase):
    def test_terciles_rank_items_by_length_keeping_ties_together(self):
        self.assertEqual(judges.terciles([5, 1, 9, 3, 7, 2]), [1, 0, 2, 1, 2, 0])
        self.assertEqual(judges.terciles([4, 4, 4]), [1, 1, 1])
        self.assertEqual(judges.terciles([1, 2, 9, 9, 9, 9]), [0, 0, 1, 1, 1, 1])

    def test_a_gap_beyond_its_interval_is_flagged(self):
        check = judges.bias_check("length", [("short", 90, 100), ("long", 60, 100)])
        self.assertTrue(check.flagged)
        self.assertEqual(check.worst.label, "long")

    def test_a_gap_within_noise_is_not_flagged(self):
        self.assertFalse(judges.bias_check("state", [("OK", 8, 10), ("ERROR", 7, 10)]).flagged)
        self.assertFalse(judges.bias_check("state", [("OK", 8, 10), ("ERROR", 0, 0)]).flagged)

    def test_groups_too_small_to_compare_are_not_flagged(self):
        check = judges.bias_check("state", [("OK", 12, 14), ("ERROR", 0, 1)])
        self.assertFalse(check.flagged)
        self.assertEqual(len(check.groups), 2)
