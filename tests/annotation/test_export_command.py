import csv
import io
import json
import os
import tempfile

from django.core.management import CommandError, call_command
from django.test import TestCase

from annotation import queues, services
from annotation.models import LabelSchema
from tests.factories import make_experiment, make_reviewer, make_trace
from traces.models import Trace


class ExportAssessmentsCommandTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.reviewer = make_reviewer(username="rev")
        cls.bot = make_experiment(name="bot")
        cls.error = make_trace(cls.bot, state=Trace.State.ERROR)
        cls.ok = make_trace(cls.bot, state=Trace.State.OK)
        cls.elsewhere = make_trace(make_experiment(name="elsewhere"))
        for trace in (cls.error, cls.ok, cls.elsewhere):
            services.log_feedback(trace=trace, name="correct", value=True, actor=cls.reviewer)
            services.log_feedback(trace=trace, name="note", value="=1+1", actor=cls.reviewer)

    def export(self, *args) -> tuple[str, str]:
        out, err = io.StringIO(), io.StringIO()
        call_command("export_assessments", *args, stdout=out, stderr=err)
        return out.getvalue(), err.getvalue()

    def test_it_writes_csv_to_stdout_and_the_summary_to_stderr(self):
        out, err = self.export()
        rows = list(csv.DictReader(io.StringIO(out, newline="")))
        self.assertEqual(len(rows), 6)
        self.assertIn("'=1+1", {row["value"] for row in rows})
        self.assertEqual(err.strip(), "Exported 6 rows.")

    def test_filters_experiment_and_format(self):
        out, _ = self.export(
            "--experiment", "bot", "--filter", "state=ERROR", "--format", "jsonl", "--raw"
        )
        rows = [json.loads(line) for line in out.splitlines()]
        self.assertEqual({row["trace_id"] for row in rows}, {self.error.trace_id})
        self.assertIn("=1+1", {row["value"] for row in rows})
        by_id, _ = self.export("--experiment", str(self.bot.pk), "--shape", "wide")
        self.assertEqual(len(list(csv.DictReader(io.StringIO(by_id)))), 2)

    def test_it_writes_a_file_and_replaces_it_on_a_second_run(self):
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "labels.csv")
            for _ in range(2):
                out, _ = self.export("--output", path, "--bom", "--shape", "wide")
                self.assertEqual(out.strip(), f"Exported 3 rows to {path}.")
            with open(path, encoding="utf-8-sig", newline="") as handle:
                rows = list(csv.DictReader(handle))
            self.assertEqual(len(rows), 3)
            self.assertEqual(os.listdir(folder), ["labels.csv"])

    def test_it_exports_a_queue_by_name(self):
        """The queue's labels: its question ("correct"), not the other entries on its trace."""
        schema = LabelSchema.objects.create(
            name="correct", value_type=LabelSchema.ValueType.BOOLEAN, applies_to="trace"
        )
        queues.create_queue(
            name="Errors", traces=[self.error], schemas=[schema], annotators=[self.reviewer]
        )
        out, _ = self.export("--queue", "Errors", "--format", "jsonl")
        [row] = [json.loads(line) for line in out.splitlines()]
        self.assertEqual((row["trace_id"], row["name"]), (self.error.trace_id, "correct"))

    def test_it_refuses_bad_input(self):
        for args in (
            ["--experiment", "nope"],
            ["--queue", "nope"],
            ["--filter", "state=NOPE"],
            ["--filter", "reviewed=me"],
            ["--user", "nobody"],
        ):
            with self.subTest(args=args), self.assertRaises(CommandError):
                self.export(*args)

    def test_reviewed_by_a_user(self):
        out, _ = self.export("--filter", "reviewed=me", "--user", "rev", "--format", "jsonl")
        self.assertEqual(len(out.splitlines()), 6)
