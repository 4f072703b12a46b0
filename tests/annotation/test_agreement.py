"""Agreement coefficients against published worked examples and small hand-computed tables."""

import math
from unittest import TestCase

from annotation.agreement import (
    Level,
    aggregate,
    agreement_by_rater,
    cohen_kappa,
    fleiss_kappa,
    krippendorff_alpha,
    level_for,
)

_ = None
# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C:
# four coders, twelve units, values 1-5, missing values marked _.
KRIPPENDORFF_2011 = list(
    zip(
        [1, 2, 3, 3, 2, 1, 4, 1, 2, _, _, _],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, _, 3],
        [_, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, _],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, _],
        strict=True,
    )
)

# Fleiss (1971) as worked on Wikipedia's "Fleiss' kappa" page: 10 subjects, 14 raters each,
# counts of raters per category 1..5.
FLEISS_TABLE = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def units_from_counts(table):
    return [[category for category, n in enumerate(row, 1) for _ in range(n)] for row in table]


# A small table worked by hand: two raters, three units.
#   alpha (nominal): o_aa=2, o_ab=o_ba=1, o_bb=2; n_a=n_b=3, n=6
#                    1 - (6-1) * 2 / (2*3*3) = 4/9
#   Cohen: p_o = 2/3, p_e = (2*1 + 1*2)/9 = 4/9, kappa = (2/9)/(5/9) = 0.4
#   Fleiss: P = (1 + 0 + 1)/3 = 2/3, P_e = 0.5, kappa = 1/3
SMALL = [("a", "a"), ("a", "b"), ("b", "b")]


class KrippendorffAlphaTests(TestCase):
    def test_published_example_at_each_level(self):
        expected = {Level.NOMINAL: 0.743, Level.ORDINAL: 0.815, Level.INTERVAL: 0.849}
        for level, alpha in expected.items():
            with self.subTest(level=level):
                self.assertAlmostEqual(krippendorff_alpha(KRIPPENDORFF_2011, level), alpha, 3)

    def test_small_nominal_table_by_hand(self):
        self.assertAlmostEqual(krippendorff_alpha(SMALL, Level.NOMINAL), 4 / 9)

    def test_small_interval_table_by_hand(self):
        # o_12 = o_21 = 1, o_33 = 2; n = 4; D_o sum = 2; D_e sum = 2*(1*1*1 + 1*2*4 + 1*2*1) = 22
        self.assertAlmostEqual(krippendorff_alpha([(1, 2), (3, 3)], Level.INTERVAL), 1 - 3 * 2 / 22)

    def test_perfect_agreement_is_one(self):
        self.assertEqual(krippendorff_alpha([(1, 1, 1), (2, 2, _), (3, 3, 3)]), 1.0)

    def test_units_with_a_single_value_are_not_pairable(self):
        with_lonely_unit = [*SMALL, ("a", _), (_, _)]
        self.assertAlmostEqual(krippendorff_alpha(with_lonely_unit), 4 / 9)

    def test_it_is_undefined_without_variation_or_pairs(self):
        self.assertIsNone(krippendorff_alpha([(True, True), (True, True)]))
        self.assertIsNone(krippendorff_alpha([(1, _), (_, 2)]))
        self.assertIsNone(krippendorff_alpha([]))

    def test_ordinal_ignores_distances_between_ranks(self):
        # Same order, stretched scale: ordinal alpha is unchanged, interval alpha is not.
        stretched = [tuple(v if v is None or v < 5 else 50 for v in u) for u in KRIPPENDORFF_2011]
        self.assertAlmostEqual(
            krippendorff_alpha(stretched, Level.ORDINAL),
            krippendorff_alpha(KRIPPENDORFF_2011, Level.ORDINAL),
        )
        self.assertNotAlmostEqual(
            krippendorff_alpha(stretched, Level.INTERVAL),
            krippendorff_alpha(KRIPPENDORFF_2011, Level.INTERVAL),
        )


class CohenKappaTests(TestCase):
    def test_textbook_example(self):
        # 50 proposals read by two readers: 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no;
        # p_o = 0.7, p_e = 0.5, kappa = 0.4.
        pairs = [("y", "y")] * 20 + [("y", "n")] * 5 + [("n", "y")] * 10 + [("n", "n")] * 15
        self.assertAlmostEqual(cohen_kappa(pairs), 0.4)

    def test_small_table_by_hand(self):
        self.assertAlmostEqual(cohen_kappa(SMALL), 0.4)

    def test_missing_answers_are_left_out(self):
        self.assertAlmostEqual(cohen_kappa([*SMALL, ("a", _), (_, "b")]), 0.4)

    def test_it_is_undefined_when_chance_agreement_is_certain(self):
        self.assertIsNone(cohen_kappa([(True, True), (True, True)]))
        self.assertIsNone(cohen_kappa([]))


class FleissKappaTests(TestCase):
    def test_published_example(self):
        self.assertAlmostEqual(fleiss_kappa(units_from_counts(FLEISS_TABLE)), 0.210, 3)

    def test_small_table_by_hand(self):
        self.assertAlmostEqual(fleiss_kappa(SMALL), 1 / 3)

    def test_it_needs_the_same_number_of_ratings_per_unit(self):
        self.assertIsNone(fleiss_kappa([("a", "a"), ("a", "b", "b")]))
        # A unit with one rating carries no pairs and is left out rather than spoiling it.
        self.assertAlmostEqual(fleiss_kappa([*SMALL, ("a", _, _)]), 1 / 3)


class AggregateTests(TestCase):
    def test_majority_with_a_missing_answer(self):
        result = aggregate([True, True, False, None], "boolean")
        self.assertIs(result.value, True)
        self.assertEqual((result.count, result.missing), (3, 1))
        self.assertEqual(result.counts, {True: 2, False: 1})
        self.assertTrue(result.disagreement)

    def test_a_tie_has_no_majority_and_names_the_tied_values(self):
        result = aggregate(["good", "bad", None, "good", "bad", "meh"], "categorical")
        self.assertIsNone(result.value)
        self.assertEqual(set(result.tied), {"good", "bad"})
        self.assertEqual(result.missing, 1)

    def test_numeric_mean_and_spread(self):
        result = aggregate([1, 2, None, 3], "numeric")
        self.assertEqual(result.value, 2)
        self.assertEqual(result.spread, 2)
        self.assertAlmostEqual(result.stdev, math.sqrt(2 / 3))
        self.assertEqual((result.minimum, result.maximum, result.missing), (1, 3, 1))

    def test_nobody_answered(self):
        result = aggregate([None, None], "numeric")
        self.assertIsNone(result.value)
        self.assertEqual((result.count, result.missing), (0, 2))
        self.assertIsNone(result.spread)
        self.assertFalse(result.disagreement)

    def test_unanimous_answers(self):
        result = aggregate(["x", "x"], "text")
        self.assertTrue(result.unanimous)
        self.assertEqual(result.value, "x")

    def test_structured_values_are_counted_not_combined(self):
        result = aggregate([{"a": 1}, None], "structured")
        self.assertIsNone(result.value)
        self.assertEqual((result.count, result.missing), (1, 1))


class AgreementByRaterTests(TestCase):
    def test_each_rater_is_compared_with_the_others_on_shared_units(self):
        units = [
            {"ann": "a", "bob": "a", "cy": "b"},
            {"ann": "b", "bob": "a"},
            {"ann": "a", "cy": None},
        ]
        self.assertEqual(agreement_by_rater(units), {"ann": (1, 3), "bob": (1, 3), "cy": (0, 2)})


class LevelTests(TestCase):
    def test_levels_follow_the_value_type(self):
        self.assertEqual(level_for("boolean"), Level.NOMINAL)
        self.assertEqual(level_for("categorical"), Level.NOMINAL)
        self.assertEqual(level_for("numeric", step=1), Level.ORDINAL)
        self.assertEqual(level_for("numeric"), Level.INTERVAL)
        self.assertIsNone(level_for("text"))
        self.assertIsNone(level_for("structured"))
