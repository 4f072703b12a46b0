import csv
import datetime
import io
import json
import math

from django.db import connection
from django.db.models import JSONField, Value
from django.test import TestCase
from django.test.utils import CaptureQueriesContext

from annotation import queues, services
from annotation.export import (
    Export,
    ExportOptions,
    count_rows,
    csv_cell,
    export_filename,
    iso_ms,
    parse_value,
    starts_formula,
    wide_value,
)
from annotation.models import Assessment, LabelSchema, SourceType
from tests.factories import make_admin, make_experiment, make_reviewer, make_span, make_trace
from traces.models import Trace

TRICKY_VALUES = [
    True,
    False,
    0,
    4,
    4.0,
    -3,
    -2.5,
    1e-7,
    10**18,
    "4",
    "true",
    "",
    "naïve café — 日本語 🚀",
    "comma, \"quotes\" and 'single'",
    "line one\nline two\r\nline three\rend",
    "x" * 100_000,
    "  leading spaces",
    "null",
    [1, "a", None, True, 2.0],
    {"nested": {"list": [1.5, "é"], "empty": {}}},
    [],
    None,
]


def run(traces, **options) -> str:
    return "".join(Export(traces, ExportOptions(**options)))


def parse_csv(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def split_outside_quotes(line: str, separator: str) -> list[str]:
    """How a spreadsheet set to another separator cuts a line: never inside quotes."""
    cells, current, quoted = [], [], False
    for char in line:
        if char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            cells.append("".join(current))
            current = []
            continue
        current.append(char)
    return [*cells, "".join(current)]


def parse_jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def ms_from_iso(text: str) -> int:
    moment = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")
    return int(moment.replace(tzinfo=datetime.UTC).timestamp()) * 1000 + moment.microsecond // 1000


class RoundTripTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.reviewer = make_reviewer(username="rosa")
        cls.experiment = make_experiment(name="support, bot")
        cls.trace = make_trace(
            cls.experiment,
            user="alice",
            session="s-1",
            client_request_id="req-1",
            request_preview='{"q": "Comma, \\"quote\\"\\nnewline"}',
            request_time=1_717_171_717_123,
        )
        for number, value in enumerate(TRICKY_VALUES):
            services.log_feedback(
                trace=cls.trace,
                name=f"f{number:02d}",
                value=value,
                rationale=value if isinstance(value, str) else "plain",
                metadata={"k": 'v, "q"\n', "ü": "1"},
                actor=cls.reviewer,
                create_time=1_700_000_000_000 + number,
                error={"error_code": "E"} if value is None else None,
            )
        cls.traces = Trace.objects.filter(pk=cls.trace.pk)

    def stored(self):
        return {a.assessment_id: a for a in Assessment.objects.select_related("trace")}

    def test_csv_gives_back_the_stored_values_and_types(self):
        rows = parse_csv(run(self.traces))
        stored = self.stored()
        self.assertEqual(len(rows), len(TRICKY_VALUES))
        for row in rows:
            original = stored[row["assessment_id"]]
            with self.subTest(name=original.name):
                value = parse_value(row["value"], row["value_type"])
                self.assertEqual(value, original.value)
                self.assertIs(type(value), type(original.value))
                if isinstance(original.value, list):
                    self.assertEqual([type(v) for v in value], [type(v) for v in original.value])
                self.assertEqual(row["rationale"], original.rationale)
                self.assertEqual(json.loads(row["metadata"]), original.metadata)
                self.assertEqual(ms_from_iso(row["created"]), original.create_time)
                self.assertEqual(int(row["version"]), original.version)
                self.assertEqual(row["valid"], "true")
                self.assertEqual(row["annotator"], "rosa")
                self.assertEqual(row["experiment"], "support, bot")
                self.assertEqual(row["request_preview"], self.trace.request_preview)
                self.assertEqual(ms_from_iso(row["trace_time"]), 1_717_171_717_123)

    def test_jsonl_gives_back_native_types(self):
        rows = parse_jsonl(run(self.traces, format="jsonl"))
        stored = self.stored()
        self.assertEqual(len(rows), len(TRICKY_VALUES))
        for row in rows:
            original = stored[row["assessment_id"]]
            with self.subTest(name=original.name):
                self.assertEqual(row["value"], original.value)
                self.assertIs(type(row["value"]), type(original.value))
                self.assertEqual(row["rationale"], original.rationale)
                self.assertEqual(row["metadata"], original.metadata)
                self.assertIs(row["valid"], True)
                self.assertIs(row["deleted"], False)
                self.assertEqual(row["version"], original.version)

    def test_ints_stay_ints_and_floats_stay_floats_in_csv_cells(self):
        cells = {row["name"]: row["value"] for row in parse_csv(run(self.traces))}
        self.assertEqual(cells["f03"], "4")
        self.assertEqual(cells["f04"], "4.0")
        self.assertEqual(cells["f05"], "-3")
        self.assertEqual(cells["f00"], "true")
        self.assertEqual(cells["f01"], "false")
        self.assertEqual(cells["f08"], "1000000000000000000")

    def test_csv_follows_rfc_4180_line_ends_and_quoting(self):
        text = run(self.traces)
        header = text.split("\r\n", 1)[0]
        self.assertTrue(header.startswith("trace_id,experiment_id,experiment,"))
        self.assertIn('"comma, ""quotes"" and \'single\'"', text)

    def test_bom_is_optional(self):
        self.assertFalse(run(self.traces).startswith("\ufeff"))
        with_bom = run(self.traces, bom=True)
        self.assertTrue(with_bom.startswith("\ufeff"))
        decoded = with_bom.encode("utf-8").decode("utf-8-sig")
        self.assertEqual(len(parse_csv(decoded)), len(TRICKY_VALUES))

    def test_the_header_and_the_first_line_go_out_alone(self):
        header, *rest = Export(self.traces, ExportOptions())
        self.assertEqual(header.count("\r\n"), 1)
        self.assertTrue(header.startswith("trace_id,"))
        self.assertGreater(len(rest), 1)
        first, *rest = Export(self.traces, ExportOptions(format="jsonl"))
        self.assertEqual(first.count("\n"), 1)
        self.assertGreater(len(rest), 1)

    def test_error_only_feedback_exports_its_error(self):
        [row] = [r for r in parse_csv(run(self.traces)) if r["value_type"] == "null"]
        self.assertEqual(row["value"], "")
        self.assertEqual(row["error_code"], "E")


class ExactNumberTests(TestCase):
    """Floats come back as the same floats on both databases (jsonb keeps no float form)."""

    NUMBERS = [1e20, 1.7976931348623157e308, -0.0, -1e300, 1e-7, 5e-324, 0.0, 2.5]

    @classmethod
    def setUpTestData(cls):
        cls.trace = make_trace()
        for number, value in enumerate(cls.NUMBERS):
            services.log_feedback(trace=cls.trace, name=f"n{number}", value=value)
        cls.traces = Trace.objects.filter(pk=cls.trace.pk)

    def assert_same_float(self, got, written):
        self.assertIs(type(got), float, got)
        self.assertEqual(got, written)
        self.assertEqual(math.copysign(1, got), math.copysign(1, written))

    def test_csv_keeps_each_float_and_says_it_is_a_number(self):
        rows = {row["name"]: row for row in parse_csv(run(self.traces))}
        for number, written in enumerate(self.NUMBERS):
            row = rows[f"n{number}"]
            with self.subTest(written=written):
                self.assertEqual(row["value_type"], "number")
                self.assertEqual(row["value"], repr(written))
                self.assert_same_float(parse_value(row["value"], row["value_type"]), written)

    def test_jsonl_and_revision_history_keep_each_float(self):
        rows = {row["name"]: row for row in parse_jsonl(run(self.traces, format="jsonl"))}
        history = parse_jsonl(run(self.traces, format="jsonl", shape="revisions"))
        by_name = {row["name"]: row for row in history}
        for number, written in enumerate(self.NUMBERS):
            with self.subTest(written=written):
                self.assert_same_float(rows[f"n{number}"]["value"], written)
                self.assertEqual(rows[f"n{number}"]["value_type"], "number")
                self.assert_same_float(by_name[f"n{number}"]["value"], written)

    def test_stored_values_read_back_as_written(self):
        stored = dict(Assessment.objects.values_list("name", "value"))
        for number, written in enumerate(self.NUMBERS):
            with self.subTest(written=written):
                self.assert_same_float(stored[f"n{number}"], written)


class FormulaInjectionTests(TestCase):
    DANGEROUS = ["=1+1", "+1", "-1+2", "@SUM(A1)", "\tx", "\rx", '=HYPERLINK("http://x")']

    @classmethod
    def setUpTestData(cls):
        cls.trace = make_trace(user="=cmd|' /C calc'!A0", request_preview="@evil")
        for number, text in enumerate(cls.DANGEROUS):
            services.log_feedback(trace=cls.trace, name=f"t{number}", value=text, rationale=text)
        services.log_feedback(trace=cls.trace, name="=danger", value=-3, rationale="")
        services.log_feedback(trace=cls.trace, name="neg_float", value=-0.5)
        services.log_feedback(trace=cls.trace, name="neg_list", value=[-1, "=x"])
        cls.traces = Trace.objects.filter(pk=cls.trace.pk)

    def test_text_cells_are_neutralised(self):
        rows = {row["assessment_id"]: row for row in parse_csv(run(self.traces))}
        by_name = {row["name"]: row for row in rows.values()}
        for number, text in enumerate(self.DANGEROUS):
            row = by_name[f"t{number}"]
            with self.subTest(text=text):
                self.assertEqual(row["value"], "'" + text)
                self.assertEqual(row["rationale"], "'" + text)
                self.assertEqual(row["value_type"], "string")
        self.assertIn("'=danger", by_name)
        any_row = next(iter(rows.values()))
        self.assertEqual(any_row["user"], "'=cmd|' /C calc'!A0")
        self.assertEqual(any_row["request_preview"], "'@evil")

    def test_negative_numbers_and_json_are_left_alone(self):
        by_name = {row["name"]: row for row in parse_csv(run(self.traces))}
        self.assertEqual(by_name["'=danger"]["value"], "-3")
        self.assertEqual(by_name["neg_float"]["value"], "-0.5")
        self.assertEqual(json.loads(by_name["neg_list"]["value"]), [-1, "=x"])

    def test_raw_mode_leaves_text_as_it_is(self):
        by_name = {row["name"]: row for row in parse_csv(run(self.traces, raw=True))}
        for number, text in enumerate(self.DANGEROUS):
            self.assertEqual(by_name[f"t{number}"]["value"], text)
        self.assertIn("=danger", by_name)

    def test_jsonl_is_never_altered(self):
        rows = parse_jsonl(run(self.traces, format="jsonl"))
        self.assertEqual(
            sorted(r["value"] for r in rows if r["name"].startswith("t")), sorted(self.DANGEROUS)
        )

    def test_triggers_after_spaces_or_invisible_characters_and_wide_signs_are_neutralised(self):
        hidden = [" =1+1", "\u00a0=1+1", "\u200b=1+1", "\ufeff=1+1", "\n=1+1", " \u3000-2+3"]
        wide = ["\uff1d1+1", "\ufe661+1", "\uff0b1", "\uff0d1", "\uff20SUM(A1)", "\u22121+1"]
        for text in hidden + wide:
            with self.subTest(text=text):
                self.assertTrue(starts_formula(text))
                self.assertEqual(csv_cell(text, raw=False), "'" + text)
        for text in ["  leading spaces", "\u00a0plain", "", " ", "x=1", "naïve", "日本"]:
            with self.subTest(text=text):
                self.assertFalse(starts_formula(text))

    def test_every_text_cell_is_quoted_so_semicolon_readers_see_one_cell(self):
        trace = make_trace(user="x;=1+1")
        services.log_feedback(trace=trace, name="x;=2+2", value="y;=3+3", rationale="plain")
        services.log_feedback(trace=trace, name="count", value=-4)
        text = run(Trace.objects.filter(pk=trace.pk), shape="long")
        for line in text.split("\r\n")[1:-1]:
            for cell in split_outside_quotes(line, ";")[1:]:
                self.assertFalse(starts_formula(cell), line)
        self.assertIn('"x;=1+1"', text)
        self.assertIn('"plain"', text)
        self.assertIn(",-4,", text)
        wide = run(Trace.objects.filter(pk=trace.pk), shape="wide").split("\r\n", 1)[0]
        self.assertIn('"x;=2+2"', wide)

    def test_header_cells_are_neutralised_too(self):
        header = run(self.traces, shape="wide").split("\r\n", 1)[0]
        self.assertIn("'=danger", header)
        self.assertNotIn(",=danger", header)


class CellTests(TestCase):
    def test_cells(self):
        self.assertEqual(csv_cell(None, raw=False), "")
        self.assertEqual(csv_cell(True, raw=False), "true")
        self.assertEqual(csv_cell(-1, raw=False), "-1")
        self.assertEqual(csv_cell(0.1, raw=False), "0.1")
        self.assertEqual(csv_cell("-1", raw=False), "'-1")
        self.assertEqual(csv_cell("-1", raw=False, as_json=True), '"-1"')
        self.assertEqual(csv_cell({"a": "é"}, raw=False), '{"a": "é"}')

    def test_iso_ms_is_exact(self):
        self.assertEqual(iso_ms(1_700_000_000_001), "2023-11-14T22:13:20.001Z")
        self.assertIsNone(iso_ms(None))

    def test_wide_value(self):
        self.assertEqual(wide_value([True, True, False]), True)
        self.assertIsNone(wide_value([True, False]))
        self.assertIsNone(wide_value([]))
        self.assertEqual(wide_value([4]), 4)
        self.assertIs(type(wide_value([4, 4])), int)
        self.assertEqual(wide_value([4, 5]), 4.5)
        self.assertEqual(wide_value([4.0]), 4.0)
        self.assertIs(type(wide_value([4.0])), float)
        self.assertEqual(wide_value(["a", "b", "a", None]), "a")
        self.assertIsNone(wide_value([{"a": 1}]))

    def test_filename(self):
        name = export_filename(
            ["Support Bot", "state-ERROR"], ExportOptions(), datetime.date(2025, 1, 31)
        )
        self.assertEqual(name, "tracemark_support-bot_state-error_long_2025-01-31.csv")
        self.assertEqual(
            export_filename(
                [], ExportOptions(format="jsonl", shape="wide"), datetime.date(2025, 1, 2)
            ),
            "tracemark_all_wide_2025-01-02.jsonl",
        )


class ShapeTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.alice = make_reviewer(username="alice")
        cls.bob = make_reviewer(username="bob")
        cls.first = make_trace(request_time=2_000, request_preview="first")
        cls.second = make_trace(request_time=1_000, request_preview="second")
        cls.unlabeled = make_trace(request_time=500)
        root = make_span(cls.first, inputs={"question": "hi"}, outputs="hello")
        make_span(cls.first, parent=root, inputs={"inner": True})
        services.log_feedback(trace=cls.first, name="correct", value=True, actor=cls.alice)
        services.log_feedback(trace=cls.first, name="correct", value=True, actor=cls.bob)
        services.log_feedback(trace=cls.first, name="rating", value=4, actor=cls.alice)
        services.log_feedback(trace=cls.first, name="rating", value=5, actor=cls.bob)
        services.log_expectation(trace=cls.first, name="answer", value="hello", actor=cls.alice)
        judged = services.log_feedback(
            trace=cls.second,
            name="correct",
            value=True,
            source_type=SourceType.LLM_JUDGE,
            source_id="judge-v1",
        )
        cls.override = services.override_feedback(
            assessment_id=judged.assessment_id, value=False, actor=cls.alice
        )
        cls.judged = judged
        gone = services.log_feedback(trace=cls.second, name="rating", value=1, actor=cls.bob)
        services.delete_assessment(assessment_id=gone.assessment_id, actor=cls.bob)
        cls.gone = gone
        cls.traces = Trace.objects.all()

    def test_long_leaves_out_overridden_and_deleted_unless_asked(self):
        ids = {row["assessment_id"] for row in parse_jsonl(run(self.traces, format="jsonl"))}
        self.assertNotIn(self.judged.assessment_id, ids)
        self.assertNotIn(self.gone.assessment_id, ids)
        self.assertIn(self.override.assessment_id, ids)
        rows = parse_jsonl(
            run(self.traces, format="jsonl", include_invalid=True, include_deleted=True)
        )
        by_id = {row["assessment_id"]: row for row in rows}
        self.assertIs(by_id[self.judged.assessment_id]["valid"], False)
        self.assertIs(by_id[self.gone.assessment_id]["deleted"], True)
        self.assertEqual(by_id[self.override.assessment_id]["overrides"], self.judged.assessment_id)
        self.assertEqual(by_id[self.judged.assessment_id]["source_id"], "judge-v1")

    def test_long_groups_rows_by_trace(self):
        rows = parse_jsonl(run(self.traces, format="jsonl"))
        self.assertEqual(
            [row["trace_id"] for row in rows],
            [self.first.trace_id] * 5 + [self.second.trace_id],
        )

    def test_root_span_inputs_and_outputs(self):
        rows = parse_jsonl(run(self.traces, format="jsonl", include_inputs=True))
        first = next(row for row in rows if row["trace_id"] == self.first.trace_id)
        self.assertEqual(first["root_span_inputs"], {"question": "hi"})
        self.assertEqual(first["root_span_outputs"], "hello")
        second = next(row for row in rows if row["trace_id"] == self.second.trace_id)
        self.assertIsNone(second["root_span_inputs"])
        [csv_first, *_] = parse_csv(run(self.traces, include_inputs=True))
        self.assertEqual(json.loads(csv_first["root_span_inputs"]), {"question": "hi"})
        self.assertEqual(csv_first["root_span_outputs"], '"hello"')

    def test_wide_has_a_row_per_trace_and_aggregates(self):
        rows = parse_jsonl(run(self.traces, format="jsonl", shape="wide"))
        self.assertEqual(
            [row["trace_id"] for row in rows],
            [self.first.trace_id, self.second.trace_id, self.unlabeled.trace_id],
        )
        first, second, unlabeled = rows
        self.assertEqual(first["correct"], True)
        self.assertEqual(first["correct.count"], 2)
        self.assertEqual(first["rating"], 4.5)
        self.assertEqual(first["expectation:answer"], "hello")
        self.assertEqual(second["correct"], False)
        self.assertEqual(second["correct.count"], 1)
        self.assertIsNone(second["rating"])
        self.assertEqual(second["rating.count"], 0)
        self.assertIsNone(unlabeled["correct"])
        self.assertEqual(
            list(first)[-3:],
            ["expectation:answer", "expectation:answer.count", "expectation:answer.gold"],
        )

    def test_wide_holds_answers_about_traces_and_leaves_span_answers_to_long(self):
        trace = make_trace(request_time=100)
        spans = [make_span(trace, name="stock_api", span_type="TOOL") for _ in range(2)]
        services.log_feedback(trace=trace, name="tool_ok", value=True, actor=self.alice)
        for span, value in zip(spans, (False, False), strict=True):
            services.log_feedback(
                trace=trace, name="tool_ok", value=value, span_id=span.span_id, actor=self.bob
            )
        services.log_feedback(
            trace=trace, name="span_only", value=1, span_id=spans[0].span_id, actor=self.bob
        )
        rows = parse_jsonl(run(Trace.objects.filter(pk=trace.pk), format="jsonl", shape="wide"))
        [row] = rows
        self.assertEqual((row["tool_ok"], row["tool_ok.count"]), (True, 1))
        self.assertNotIn("span_only", row)
        long = parse_jsonl(run(Trace.objects.filter(pk=trace.pk), format="jsonl"))
        self.assertEqual(
            sorted((r["name"], r["span_id"] or "") for r in long),
            sorted(
                [("tool_ok", ""), ("span_only", spans[0].span_id)]
                + [("tool_ok", span.span_id) for span in spans]
            ),
        )

    def test_wide_per_annotator(self):
        rows = parse_csv(run(self.traces, shape="wide", per_annotator=True))
        first = rows[0]
        self.assertEqual(first["correct[alice]"], "true")
        self.assertEqual(first["rating[bob]"], "5")
        self.assertEqual(rows[1]["correct[alice]"], "false")
        with_invalid = parse_csv(
            run(self.traces, shape="wide", per_annotator=True, include_invalid=True)
        )
        self.assertEqual(with_invalid[1]["correct[judge-v1]"], "true")
        self.assertEqual(with_invalid[1]["correct.count"], "2")
        self.assertEqual(with_invalid[1]["correct"], "")

    def test_revisions_have_a_row_per_change(self):
        rows = parse_jsonl(
            run(self.traces, format="jsonl", shape="revisions", include_invalid=True)
        )
        judged = [row for row in rows if row["assessment_id"] == self.judged.assessment_id]
        self.assertEqual(
            [(r["version"], r["action"]) for r in judged], [(1, "create"), (2, "invalidate")]
        )
        self.assertEqual([r["valid"] for r in judged], [True, False])
        self.assertEqual(judged[1]["actor"], "alice")
        self.assertEqual(
            len(rows),
            count_rows(self.traces, ExportOptions(shape="revisions", include_invalid=True)),
        )
        self.assertNotIn(self.gone.assessment_id, {row["assessment_id"] for row in rows})

    def test_row_counts_match_what_is_written(self):
        for shape in ("long", "wide", "revisions"):
            options = ExportOptions(shape=shape, include_deleted=True)
            export = Export(self.traces, options)
            text = "".join(export)
            with self.subTest(shape=shape):
                self.assertEqual(export.rows, count_rows(self.traces, options))
                self.assertEqual(len(parse_csv(text)), export.rows)


class QueryCountTests(TestCase):
    """Query counts depend on chunks, never on rows."""

    def queries(self, **options) -> int:
        with CaptureQueriesContext(connection) as captured:
            run(Trace.objects.all(), **options)
        # PostgreSQL exports run in a transaction: a savepoint inside the test's own.
        return sum(
            not query["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))
            for query in captured.captured_queries
        )

    def add_traces(self, count: int) -> None:
        reviewer = make_reviewer()
        for _ in range(count):
            trace = make_trace()
            make_span(trace)
            services.log_feedback(trace=trace, name="correct", value=True, actor=reviewer)
            services.log_feedback(trace=trace, name="note", value="ok", actor=reviewer)

    def test_counts_stay_the_same_as_rows_grow(self):
        shapes = [
            {"shape": "long", "include_inputs": True},
            {"shape": "wide", "include_inputs": True, "per_annotator": True},
            {"shape": "revisions"},
        ]
        self.add_traces(2)
        few = [self.queries(**options) for options in shapes]
        self.add_traces(20)
        many = [self.queries(**options) for options in shapes]
        self.assertEqual(few, many)
        self.assertEqual(few[0], 1)
        self.assertEqual(few[2], 1)


class GoldExportTests(TestCase):
    """A decision is the gold value, never one more vote (annotation.gold)."""

    @classmethod
    def setUpTestData(cls):
        cls.rita = make_reviewer(username="rita")
        cls.ravi = make_reviewer(username="ravi")
        admin = make_admin(username="boss")
        rating = LabelSchema.objects.create(
            name="rating", value_type="numeric", min_value=1, max_value=5, step=1
        )
        cls.decided, cls.agreed, cls.corrected = (
            make_trace(request_time=t) for t in (3000, 2000, 1000)
        )
        for person, value in [(cls.rita, 4), (cls.ravi, 5)]:
            services.log_feedback(trace=cls.decided, name="rating", value=value, actor=person)
        queue = queues.create_queue(
            name="ratings", traces=[cls.decided], schemas=[rating], annotators=[cls.rita, cls.ravi]
        )
        cls.decision = queues.adjudicate(
            item=queue.items.get(), schema=rating, value=4, rationale="Rubric", actor=admin
        )
        cls.agreeing = [
            services.log_feedback(trace=cls.agreed, name="rating", value=2, actor=person)
            for person in (cls.rita, cls.ravi)
        ]
        judged = services.log_feedback(
            trace=cls.corrected,
            name="rating",
            value=5,
            source_type=SourceType.LLM_JUDGE,
            source_id="judge",
        )
        cls.override = services.override_feedback(
            assessment_id=judged.assessment_id, value=1, actor=cls.rita
        )
        cls.traces = Trace.objects.all()

    def test_wide_gold_column_holds_the_decision_and_aggregates_own_answers(self):
        for fmt, parse, expected in [
            ("jsonl", parse_jsonl, (4.5, 2, 4, 5, 4, 2, 1)),
            ("csv", parse_csv, ("4.5", "2", "4", "5", "4", "2", "1")),
        ]:
            with self.subTest(fmt):
                decided, agreed, corrected = parse(
                    run(self.traces, format=fmt, shape="wide", per_annotator=True)
                )
                self.assertEqual(
                    (
                        decided["rating"],
                        decided["rating.count"],
                        decided["rating[rita]"],
                        decided["rating[ravi]"],
                        decided["rating.gold"],
                        agreed["rating.gold"],
                        corrected["rating.gold"],
                    ),
                    expected,
                )
                self.assertNotIn("rating[boss]", decided)

    def test_long_rows_mark_gold_entries_and_decisions(self):
        gold_ids = {
            self.decision.assessment_id,
            self.override.assessment_id,
            *(a.assessment_id for a in self.agreeing),
        }
        for fmt, parse, true in [("jsonl", parse_jsonl, True), ("csv", parse_csv, "true")]:
            with self.subTest(fmt):
                rows = parse(run(self.traces, format=fmt))
                self.assertEqual(
                    {row["assessment_id"] for row in rows if row["is_gold"] == true}, gold_ids
                )
                self.assertEqual(
                    [row["assessment_id"] for row in rows if row["adjudication"] == true],
                    [self.decision.assessment_id],
                )

    def test_a_lone_answer_is_gold_only_as_a_decision_or_an_override(self):
        rating = LabelSchema.objects.get(name="rating")
        alone, decided_alone = make_trace(request_time=500), make_trace(request_time=400)
        lone = services.log_feedback(trace=alone, name="rating", value=3, actor=self.rita)
        queue = queues.create_queue(
            name="one answer", traces=[decided_alone], schemas=[rating], annotators=[self.rita]
        )
        answer = services.log_feedback(trace=decided_alone, name="rating", value=4, actor=self.rita)
        decision = queues.adjudicate(
            item=queue.items.get(), schema=rating, value=2, actor=make_admin(username="chief")
        )
        # The answer decided on is withdrawn: the decision is the question's one entry.
        services.delete_assessment(assessment_id=answer.assessment_id, actor=self.rita)
        rows = parse_jsonl(
            run(Trace.objects.filter(pk__in=[alone.pk, decided_alone.pk]), format="jsonl")
        )
        gold = {row["assessment_id"]: row["is_gold"] for row in rows}
        self.assertEqual(gold, {lone.assessment_id: False, decision.assessment_id: True})

    def test_a_lone_override_without_a_value_is_not_gold(self):
        """Neither SQL's NULL nor JSON's null is a value, whichever writer reads it."""
        overrides = {}
        for stored in (None, Value(None, JSONField())):
            trace = make_trace(request_time=300)
            judged = services.log_feedback(
                trace=trace, name="rating", value=5, source_type=SourceType.LLM_JUDGE, source_id="j"
            )
            entry = services.override_feedback(
                assessment_id=judged.assessment_id, value=1, actor=self.rita
            )
            Assessment.objects.filter(pk=entry.pk).update(value=stored)
            overrides[entry.assessment_id] = trace.pk
        traces = Trace.objects.filter(pk__in=overrides.values())
        for fmt, parse, false in [("jsonl", parse_jsonl, False), ("csv", parse_csv, "false")]:
            with self.subTest(fmt):
                rows = parse(run(traces, format=fmt))
                gold = {row["assessment_id"]: row["is_gold"] for row in rows}
                self.assertEqual(
                    {key: gold[key] for key in overrides}, dict.fromkeys(overrides, false)
                )

    def test_an_overridden_answer_keeps_its_column_when_invalid_entries_are_asked_for(self):
        [decided, *_] = parse_jsonl(
            run(self.traces, format="jsonl", shape="wide", per_annotator=True, include_invalid=True)
        )
        self.assertEqual((decided["rating"], decided["rating.count"]), (4.5, 2))
