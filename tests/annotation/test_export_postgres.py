"""The long CSV that PostgreSQL renders (annotation.export_postgres) against the bytes of
annotation.export's own writer, on rows made to tell them apart: numbers in every form
jsonb keeps, documents, formula signs, agreement and its ties, decisions, overrides of a
judge, times the query does not write, metadata of other types, and every option."""

import csv
import io
import itertools
import sys
from unittest import skipUnless

from django.db import connection
from django.db.models import Q
from django.test import TestCase, TransactionTestCase

from annotation import export_postgres, queues, services
from annotation.export import Export, ExportOptions, long_table, starts_formula, write_table
from annotation.models import Assessment
from tests.factories import make_admin, make_experiment, make_reviewer, make_trace
from traces.models import Trace

# Stored as jsonb text, as another writer (or an older Tracemark) may have left them.
STORED_NUMBERS = [
    *("0", "4", "-3", "1.5", "-2.25", "0.0", "5.0", "1.50", "0.00001", "0.0001"),
    *("123456789012345.5", "1000000000000000.0", "0.30000000000000004", "1" + "0" * 300),
    *("1" + "0" * 299, "-0.00000000000000000", "9007199254740993"),
]
STORED_DOCUMENTS = [
    '{"a": 1.5, "b": "x"}',
    '{"a": 1.50}',
    '[1, 2.0, "3", null, true]',
    "[0.00001]",
    '{"s": "1.50, \\"q\\"", "n": [0.1, {"m": -7}]}',
    '{"long": 1.23456789012345678}',
    '{"=": "=1", "é": "日本"}',
    "[]",
    "{}",
]
TEXTS = ["=1+1", "+x", "-y", "@z", "\tt", "\rr", " =x", "\u00a0-1", "\uff1d1", "\u200b@"]
TEXTS += ['comma, "quote"', "l1\nl2\r\nl3", "naïve — 日本語 🚀", "", "plain"]


def python_csv(traces, options: ExportOptions) -> str:
    """annotation.export's own writer, which export_postgres stands in for."""
    return "".join(write_table(long_table(traces, options), bom=options.bom, raw=options.raw))


def csv_rows(text: str):
    return csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))


def store(assessment: Assessment, **columns: str) -> None:
    """Set columns to SQL values directly (jsonb text that the services would not write)."""
    sets = ", ".join(f"{name} = {value}" for name, value in columns.items())
    with connection.cursor() as cursor:
        update = f"UPDATE annotation_assessment SET {sets} WHERE id = %s"  # noqa: S608 (test SQL)
        cursor.execute(update, [assessment.pk])


@skipUnless(connection.vendor == "postgresql", "the writer PostgreSQL uses")
class SameBytesTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        experiment = make_experiment(name="=exp, 日本")
        cls.alice, cls.bob = make_reviewer(username="=alice"), make_reviewer(username="bob")
        carol, admin = make_reviewer(username="carol"), make_admin(username="admin")
        people = [cls.alice, cls.bob, carol]
        number = itertools.count()

        def trace(**fields):
            n = next(number)
            fields.setdefault("request_time", 1_700_000_000_000 + n)
            return make_trace(experiment, trace_id=f"tr-{n:03d}", **fields)

        for text in TEXTS:
            t = trace(user=text, session=text, request_preview=text, response_preview=text)
            for person in people[:2]:
                services.log_feedback(
                    trace=t, name=text or "empty", value=text, rationale=text, actor=person
                )
            services.log_feedback(
                trace=t, name="judge", value=0.5, source_type="LLM_JUDGE", source_id=text
            )
        for stored in STORED_NUMBERS + STORED_DOCUMENTS:
            t = trace()
            for person in people:
                entry = services.log_feedback(trace=t, name="q", value=1, actor=person)
                store(entry, value=f"'{stored}'::jsonb")
            services.log_feedback(trace=t, name="other", value="x", actor=cls.alice)
        # Agreement, a tie, a decision, an override of a judge, an error-only feedback.
        t = trace()
        for person, value in zip(people, [4, 4.0, 5], strict=True):
            services.log_feedback(trace=t, name="rating", value=value, actor=person)
        for person, value in zip(people[:2], ["a", "b"], strict=True):
            services.log_feedback(trace=t, name="tie", value=value, actor=person, span_id=None)
        first = services.log_feedback(trace=t, name="decided", value=True, actor=cls.alice)
        services.log_feedback(trace=t, name="decided", value=False, actor=cls.bob)
        services.override_feedback(
            assessment_id=first.assessment_id,
            value=False,
            actor=admin,
            metadata={queues.ADJUDICATION_KEY: "decided"},
        )
        judged = services.log_feedback(
            trace=t, name="judged", value=True, source_type="LLM_JUDGE", source_id="j"
        )
        services.override_feedback(assessment_id=judged.assessment_id, value=False, actor=carol)
        services.log_feedback(
            trace=t, name="failed", error={"error_code": "-E", "error_message": "@bad"}
        )
        services.log_expectation(
            trace=t, name="expected", value={"answer": ["x", 2]}, actor=cls.bob
        )
        session = services.log_feedback(
            trace=t, name="in_session", value="=s", actor=carol, metadata={"k": "v"}
        )
        store(session, metadata=f"""'{{"{queues.SESSION_KEY}": "=sess"}}'::jsonb""")
        deleted = services.log_feedback(trace=t, name="gone", value=1, actor=cls.alice)
        services.delete_assessment(assessment_id=deleted.assessment_id, actor=cls.alice)
        store(services.log_feedback(trace=t, name="invalid", value=2, actor=carol), valid="false")
        # A trace whose only answer was deleted: in the export only with deleted entries.
        gone = services.log_feedback(trace=trace(), name="q", value=1, actor=carol)
        services.delete_assessment(assessment_id=gone.assessment_id, actor=carol)
        # What the query leaves to Python: other metadata and times beyond its years.
        odd = trace()
        store(
            services.log_feedback(trace=odd, name="meta", value=1, actor=carol),
            metadata="""'{"n": 1, "list": [1]}'::jsonb""",
        )
        services.log_feedback(trace=odd, name="meta", value=1, actor=cls.alice)
        early = trace(request_time=-1)
        store(services.log_feedback(trace=early, name="q", value=1), create_time="-5")
        late = trace(request_time=export_postgres.LAST_MS + 1)
        store(
            services.log_feedback(trace=late, name="q", value=1),
            last_update_time=str(export_postgres.LAST_MS + 1),
        )
        cls.traces = Trace.objects.all()

    def assert_same(self, **options):
        options = ExportOptions(**options)
        self.assertTrue(export_postgres.applies(self.traces, options))
        export = Export(self.traces, options)
        text = "".join(export)
        self.assertEqual(text, python_csv(self.traces, options))
        data_lines = len(list(csv_rows(text))) - 1
        self.assertEqual(export.rows, data_lines)
        return text

    def test_every_option_gives_the_same_bytes(self):
        runs = [
            {},
            {"raw": True},
            {"bom": True},
            {"include_invalid": True, "include_deleted": True},
            {"hidden": Q(annotator=self.bob)},
            {"entries": Q(name__in=["q", "rating", "decided"])},
        ]
        for options in runs:
            with self.subTest(**{key: str(value) for key, value in options.items()}):
                self.assert_same(**options)

    def test_the_query_renders_most_rows_itself(self):
        """Only the rows the module docstring names go through Python's writer."""
        sql, params = export_postgres._query(self.traces, ExportOptions())
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL extra_float_digits = 1")
            count = f"""SELECT count(*) FILTER (WHERE id IS NOT NULL AND text IS NULL),
                    count(*) FILTER (WHERE id IS NULL AND text IS NULL)
                FROM ({sql}) AS x"""  # noqa: S608 (this module's SQL)
            cursor.execute(count, params)
            [(python_rows, python_traces)] = cursor.fetchall()
        total = Export(self.traces, ExportOptions())
        "".join(total)
        self.assertGreater(python_rows, 0)
        self.assertLess(python_rows, total.rows / 2)
        self.assertEqual(python_traces, 2)  # the times before 1970 and after 9999

    def test_a_selection_of_traces(self):
        some = self.traces.filter(trace_id__in=["tr-000", "tr-020", "tr-040"])
        options = ExportOptions()
        text = "".join(Export(some, options))
        self.assertEqual(text, python_csv(some, options))
        self.assertEqual(
            {row[0] for row in list(csv_rows(text))[1:]}, {"tr-000", "tr-020", "tr-040"}
        )

    def test_no_rows_gives_the_header(self):
        none = self.traces.none()
        self.assertEqual("".join(Export(none, ExportOptions())), python_csv(none, ExportOptions()))


@skipUnless(connection.vendor == "postgresql", "the writer PostgreSQL uses")
class FormulaPatternTests(TestCase):
    def test_every_code_point_is_flagged_as_python_flags_it(self):
        """A text cell starting with each code point, alone and before a sign."""
        cell = export_postgres._text("chr(n) || s.tail", raw=False, nullable=False)
        plain = export_postgres._text("chr(n) || s.tail", raw=True, nullable=False)
        with connection.cursor() as cursor:
            cursor.execute(
                f"""SELECT s.tail, array_agg(n ORDER BY n) FROM generate_series(1, %s) AS n,
                    (VALUES (''), ('='), ('x'), ('\u200b+')) AS s(tail)
                WHERE n NOT BETWEEN 55296 AND 57343 AND {cell} <> {plain}
                GROUP BY s.tail""",  # noqa: S608 (this module's SQL)
                [sys.maxunicode],
            )
            flagged = {tail: set(points) for tail, points in cursor.fetchall()}
        for tail in ("", "=", "x", "\u200b+"):
            expected = {
                n
                for n in range(1, sys.maxunicode + 1)
                if not 0xD800 <= n <= 0xDFFF and starts_formula(chr(n) + tail)
            }
            with self.subTest(tail=tail):
                self.assertEqual(flagged.get(tail, set()), expected)


@skipUnless(connection.vendor == "postgresql", "the writer PostgreSQL uses")
class StreamingTests(TransactionTestCase):
    def setUp(self):
        experiment = make_experiment(name="stream")
        person = make_reviewer(username="r")
        for n in range(400):
            trace = make_trace(experiment, trace_id=f"s-{n:04d}", request_preview="x" * 400)
            services.log_feedback(trace=trace, name="q", value="y" * 200, actor=person)

    def test_the_download_goes_out_in_chunks_and_may_stop_early(self):
        chunks = iter(Export(Trace.objects.all(), ExportOptions()))
        header, first = next(chunks), next(chunks)
        self.assertTrue(header.startswith("trace_id,"))
        self.assertIn('"s-0000"', first)
        self.assertNotIn('"s-0399"', first)
        chunks.close()  # the client went away
        self.assertEqual(Trace.objects.count(), 400)  # the connection is fit for use
        self.assertEqual(
            len("".join(Export(Trace.objects.all(), ExportOptions())).splitlines()), 401
        )
