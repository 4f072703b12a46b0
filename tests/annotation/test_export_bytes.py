"""The export's exact bytes on a rich fixture, as written by the writer the current one
replaced (one row dict and one cell check at a time): every type and formula-safety rule
the docs give, on each database. jsonb orders an object's keys its own way, so each
database has its own expected files under export_bytes/."""

from pathlib import Path

from django.db import connection
from django.test import TestCase

from annotation import queues, services
from annotation.export import Export, ExportOptions
from annotation.models import Assessment
from tests.factories import make_admin, make_experiment, make_reviewer, make_span, make_trace
from traces.models import Trace

EXPECTED = Path(__file__).parent / "export_bytes"
VALUES = [
    *(True, False, 0, 4, 4.0, -0.0, 1e20, -3, -2.5, 1e-7, 10**18),
    *("4", "-3", "=SUM(A1)", "+x", "@a", "\tt", "\rr", " =x", "\u00a0-1", "\uff1d1"),
    *("naïve café — 日本語 🚀", 'comma, "q"', "l1\nl2", ""),
    [1, "a", None, True, 2.0, -0.0, 1e20],
    {"n": {"l": [1.5, "é"], "e": {}}, "=": "=1"},
    [],
    None,
]
RUNS = {
    "plain": {},
    "include_inputs": {"include_inputs": True},
    "include_invalid-include_deleted": {"include_invalid": True, "include_deleted": True},
    "raw-bom": {"raw": True, "bom": True},
}


class ExportBytesTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        experiment = make_experiment(name="=exp, 日本", id=9001)
        alice, bob = make_reviewer(username="=alice"), make_reviewer(username="bob")
        admin = make_admin(username="admin")
        for n, value in enumerate(VALUES):
            trace = make_trace(
                experiment,
                trace_id=f"tr-{n:03d}",
                request_time=1_700_000_000_000 + n,
                user="-u" if n % 2 else "u",
                session=f"s{n % 3}",
                request_preview="=req" if n % 3 else "ok",
                response_preview="" if n % 4 == 0 else "r",
            )
            make_span(trace, span_id=f"sp{n}", inputs={"q": value}, outputs=value)
            first = services.log_feedback(
                trace=trace,
                name=f"q{n % 4}",
                value=value,
                actor=alice,
                rationale="-because" if n % 2 else "",
            )
            second = services.log_feedback(
                trace=trace,
                name=f"q{n % 4}",
                value=value,
                actor=bob,
                span_id=f"sp{n}" if n % 3 == 0 else None,
                metadata={queues.SESSION_KEY: f"=sess{n}"} if n % 5 == 0 else {},
            )
            if n % 4 == 1:
                services.delete_assessment(assessment_id=second.assessment_id, actor=bob)
            if n % 4 == 2:
                services.override_feedback(
                    assessment_id=first.assessment_id,
                    value=not bool(value),
                    actor=admin,
                    metadata={queues.ADJUDICATION_KEY: "q1"},
                )
            services.log_feedback(
                trace=trace,
                name="judge",
                value=n * 0.5,
                source_type="LLM_JUDGE",
                source_id="=judge",
                error={"error_code": "-E", "error_message": "@bad"} if n % 2 else None,
            )
        # Fixed ids and times, so the bytes can be compared.
        ordered = Assessment.objects.order_by("trace__trace_id", "create_time", "id")
        for n, pk in enumerate(ordered.values_list("pk", flat=True), start=1):
            Assessment.objects.filter(pk=pk).update(
                assessment_id=f"a-{n:04d}",
                create_time=1_700_000_100_000 + n,
                last_update_time=1_700_000_200_000 + n,
            )

    def check(self, shape: str, fmt: str, name: str, options: dict):
        export = Export(Trace.objects.all(), ExportOptions(format=fmt, shape=shape, **options))
        text = "".join(export) + f"\nROWS={export.rows}"
        expected = EXPECTED / connection.vendor
        self.assertEqual(text, (expected / f"{shape}-{fmt}-{name}").read_bytes().decode())

    def test_long_and_wide_bytes(self):
        for shape in ("long", "wide"):
            for fmt in ("csv", "jsonl"):
                runs = dict(RUNS)
                if fmt == "jsonl":
                    del runs["raw-bom"]
                if shape == "wide":
                    runs["per_annotator"] = {"per_annotator": True}
                for name, options in runs.items():
                    with self.subTest(shape=shape, format=fmt, run=name):
                        self.check(shape, fmt, name, options)
