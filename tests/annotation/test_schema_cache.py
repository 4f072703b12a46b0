"""Each worker checks writes against its copy of the label schemas (annotation.schema_cache)."""

from django.core.exceptions import ValidationError
from django.test import TestCase, override_settings

from annotation import schema_cache, services
from annotation.models import LabelSchema
from tests.factories import make_experiment, make_trace


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def make_stars() -> LabelSchema:
    schema = LabelSchema.objects.create(name="stars", value_type="numeric", max_value=5)
    schema_cache.schemas_changed()
    return schema


@override_settings(TRACEMARK_SCHEMA_CACHE_SECONDS=2)
class SchemaCacheTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.trace = make_trace(make_experiment("cached"))

    def setUp(self):
        # Another worker process: its own copy and clock.
        self.clock = Clock()
        self.other = schema_cache.SchemaCache(clock=self.clock)

    def test_a_fresh_copy_costs_no_query(self):
        self.other.get("stars")
        self.clock.now += 1.9
        with self.assertNumQueries(0):
            self.assertIsNone(self.other.get("stars"))

    def test_another_worker_sees_a_new_schema_within_the_bound(self):
        self.assertIsNone(self.other.get("stars"))
        make_stars()
        self.clock.now += 1
        self.assertIsNone(self.other.get("stars"))
        self.clock.now += 1
        with self.assertNumQueries(2):  # the version, then the schemas
            self.assertEqual(self.other.get("stars").max_value, 5)

    def test_an_unchanged_version_keeps_the_copy(self):
        make_stars()
        self.other.get("stars")
        self.clock.now += 2
        with self.assertNumQueries(1):
            self.assertIsNotNone(self.other.get("stars"))

    def test_changes_and_deletions_reach_another_worker(self):
        schema = make_stars()
        self.assertEqual(self.other.get("stars").max_value, 5)
        schema.max_value = 3
        schema.save()
        schema_cache.schemas_changed()
        self.clock.now += 2
        self.assertEqual(self.other.get("stars").max_value, 3)
        schema.delete()
        schema_cache.schemas_changed()
        self.clock.now += 2
        self.assertIsNone(self.other.get("stars"))

    def test_the_worker_that_changes_a_schema_checks_against_it_at_once(self):
        services.log_feedback(trace=self.trace, name="stars", value=9)
        make_stars()
        with self.assertRaisesMessage(ValidationError, "at most 5"):
            services.log_feedback(trace=self.trace, name="stars", value=9)

    def test_writes_read_the_copy_not_the_table(self):
        make_stars()
        services.log_feedback(trace=self.trace, name="stars", value=4)
        # The assessment and its revision (a savepoint around them, as tests run in one).
        with self.assertNumQueries(4):
            services.log_feedback(trace=self.trace.trace_id, name="stars", value=5)
        with self.assertRaisesMessage(ValidationError, "at most 5"):
            services.log_feedback(trace=self.trace.trace_id, name="stars", value=6)

    def test_a_trace_or_span_the_insert_does_not_find_is_refused(self):
        with self.assertRaises(type(self.trace).DoesNotExist):
            services.log_feedback(trace="tr-missing", name="x", value=1)
        with self.assertRaisesMessage(ValidationError, "is not part of trace"):
            services.log_feedback(
                trace=self.trace.trace_id, name="x", value=1, span_id="0123456789abcdef"
            )
        self.assertFalse(self.trace.assessments.exists())
