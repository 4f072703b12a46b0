from unittest import skipUnless

from django.db import connection
from django.test import SimpleTestCase, TestCase
from django.test.utils import CaptureQueriesContext

from annotation.services import delete_assessment, log_expectation, log_feedback, override_feedback
from tests.factories import make_experiment, make_span, make_trace
from traces.models import Trace
from traces.search import (
    Comparison,
    OrderKey,
    SearchError,
    filter_conditions,
    parse_filter,
    parse_order_by,
    search_traces,
)

TIE_BREAKERS = [
    OrderKey("attribute", "timestamp_ms", False),
    OrderKey("attribute", "request_id", True),
]


class FilterParsingTests(SimpleTestCase):
    def assertParses(self, filter_string, *expected):
        self.assertEqual(parse_filter(filter_string), list(expected))

    def assertRejects(self, filter_string, message):
        with self.assertRaises(SearchError) as caught:
            parse_filter(filter_string)
        self.assertEqual(str(caught.exception), message)

    def test_it_returns_nothing_for_an_empty_filter(self):
        self.assertEqual(parse_filter(None), [])
        self.assertEqual(parse_filter("  "), [])

    def test_it_treats_a_key_without_entity_as_an_attribute(self):
        for prefix in ("", "attributes.", "attribute.", "trace.", "`trace`."):
            with self.subTest(prefix=prefix):
                self.assertParses(
                    f"{prefix}status = 'OK'", Comparison("attribute", "status", "=", "OK")
                )

    def test_it_resolves_attribute_aliases(self):
        self.assertParses(
            "timestamp > 5 AND execution_time <= 2.5 AND end_time != 7",
            Comparison("attribute", "timestamp_ms", ">", 5),
            Comparison("attribute", "execution_time_ms", "<=", 2.5),
            Comparison("attribute", "end_time_ms", "!=", 7),
        )

    def test_it_maps_name_run_id_prompt_and_text_elsewhere(self):
        self.assertParses(
            "name = 'root' AND run_id = 'r1' AND prompt = 'qa/2' AND text LIKE '%x%'",
            Comparison("tag", "mlflow.traceName", "=", "root"),
            Comparison("metadata", "mlflow.sourceRun", "=", "r1"),
            Comparison("tag", "mlflow.linkedPrompts", "=", "qa/2"),
            Comparison("span", "content", "LIKE", "%x%"),
        )

    def test_it_reads_backticked_keys_and_both_quote_styles(self):
        self.assertParses(
            "tags.`mlflow.trace.user` = \"alice\" AND metadata.`k` = 'v' AND tags.a.b = 'c'",
            Comparison("tag", "mlflow.trace.user", "=", "alice"),
            Comparison("metadata", "k", "=", "v"),
            Comparison("tag", "a.b", "=", "c"),
        )

    def test_it_accepts_every_entity_alias(self):
        self.assertParses(
            "tag.a = '1' AND request_metadata.b = '2' AND `metadata`.`my key` = '3'",
            Comparison("tag", "a", "=", "1"),
            Comparison("metadata", "b", "=", "2"),
            Comparison("metadata", "my key", "=", "3"),
        )

    def test_comparators_and_keywords_are_case_insensitive(self):
        self.assertParses(
            "tags.a like 'x%' and tags.b ilike 'y' and tags.c rlike '^z' and tags.d is null "
            "And tags.e Is Not Null and status not in ('OK') and status in ('ERROR')",
            Comparison("tag", "a", "LIKE", "x%"),
            Comparison("tag", "b", "ILIKE", "y"),
            Comparison("tag", "c", "RLIKE", "^z"),
            Comparison("tag", "d", "IS NULL", None),
            Comparison("tag", "e", "IS NOT NULL", None),
            Comparison("attribute", "status", "NOT IN", ("OK",)),
            Comparison("attribute", "status", "IN", ("ERROR",)),
        )

    def test_it_reads_lists_for_in(self):
        self.assertParses(
            "trace.client_request_id IN ('cid-001','cid-002', \"cid 3\")",
            Comparison("attribute", "client_request_id", "IN", ("cid-001", "cid-002", "cid 3")),
        )

    def test_it_reads_span_keys(self):
        self.assertParses(
            "span.name IN ('a', 'b') AND span.type = 'LLM' AND span.status != 'OK' "
            "AND span.attributes.`gen_ai.model` RLIKE 'gpt' AND span.content ILIKE '%x%'",
            Comparison("span", "name", "IN", ("a", "b")),
            Comparison("span", "type", "=", "LLM"),
            Comparison("span", "status", "!=", "OK"),
            Comparison("span", "attributes.gen_ai.model", "RLIKE", "gpt"),
            Comparison("span", "content", "ILIKE", "%x%"),
        )

    def test_it_reads_assessment_values(self):
        self.assertParses(
            "feedback.`is_correct` = 'true' AND feedback.score >= 0.5 AND "
            "expectation.answer LIKE '%x%' AND feedback.rating < -2 AND feedback.x IS NULL",
            Comparison("feedback", "is_correct", "=", "true"),
            Comparison("feedback", "score", ">=", 0.5),
            Comparison("expectation", "answer", "LIKE", "%x%"),
            Comparison("feedback", "rating", "<", -2),
            Comparison("feedback", "x", "IS NULL", None),
        )

    def test_quoted_values_keep_keywords_quotes_and_spaces(self):
        self.assertParses(
            "tags.a='x AND y OR z' AND tags.b = \"it's\" AND tags.c = ' (1, 2) '",
            Comparison("tag", "a", "=", "x AND y OR z"),
            Comparison("tag", "b", "=", "it's"),
            Comparison("tag", "c", "=", " (1, 2) "),
        )

    def test_it_reads_issue_ids(self):
        self.assertParses("issue.id = 'iss-1'", Comparison("issue", "id", "=", "iss-1"))

    def test_it_rejects_or_and_not(self):
        self.assertRejects(
            "trace.status = 'OK' OR trace.status = 'ERROR'",
            "Invalid clause(s) in filter string: 'OR'",
        )
        self.assertRejects("NOT trace.status = 'OK'", "Invalid clause(s) in filter string: 'NOT'")

    def test_it_names_clauses_it_cannot_read(self):
        self.assertRejects("foo bar baz", "Invalid clause(s) in filter string: 'foo bar baz'")
        self.assertRejects(
            "status = 'OK' AND (status = 'x') AND",
            "Invalid clause(s) in filter string: '(status = 'x')', ''",
        )
        self.assertRejects("status <> 'OK'", "Invalid clause(s) in filter string: 'status <> 'OK''")
        self.assertRejects(
            "tags.my-key = 'x'", "Invalid clause(s) in filter string: 'tags.my-key = 'x''"
        )
        self.assertRejects("status IN 'OK'", "Invalid clause(s) in filter string: 'status IN 'OK''")

    def test_it_rejects_unknown_entities_and_attribute_keys(self):
        self.assertRejects(
            "assessment.`label` = 'bad'",
            "Invalid entity type 'assessment'. Valid values are {'attribute', 'attributes', "
            "'expectation', 'feedback', 'issue', 'metadata', 'request_metadata', 'span', "
            "'tag', 'tags', 'trace'}",
        )
        valid = (
            "{'client_request_id', 'end_time', 'end_time_ms', 'execution_time', "
            "'execution_time_ms', 'name', 'prompt', 'request_id', 'run_id', 'status', 'text', "
            "'timestamp', 'timestamp_ms'}"
        )
        for key in ("state", "request_preview", "nope"):
            with self.subTest(key=key):
                self.assertRejects(
                    f"attributes.{key} = 'x'",
                    f"Invalid attribute key '{key}' specified. Valid keys are '{valid}'",
                )

    def test_it_rejects_unquoted_strings(self):
        self.assertRejects(
            "tags.custom_tag = t1",
            "Parameter value is either not quoted or unidentified quote types used for string "
            "value t1. Use either single or double quotes.",
        )

    def test_it_rejects_in_where_mlflow_does(self):
        tag_comparators = "{'!=', '=', 'ILIKE', 'IS NOT NULL', 'IS NULL', 'LIKE', 'RLIKE'}"
        for filter_string in ("tags.env IN ('a', 'b')", "trace.name IN ('root', 'root2')"):
            with self.subTest(filter_string=filter_string):
                self.assertRejects(
                    filter_string, f"Invalid comparator 'IN' not one of '{tag_comparators}'"
                )
        self.assertRejects(
            "timestamp_ms IN ('1')",
            "Only attributes in {'client_request_id', 'name', 'request_id', 'run_id', "
            "'status'} support comparison with a list of quoted string values.",
        )

    def test_it_rejects_bad_lists(self):
        self.assertRejects(
            "status IN ()",
            "While parsing a list in the query, expected a non-empty list of string values, "
            "but got empty list",
        )
        self.assertRejects(
            "status IN ('a' 'b')",
            "While parsing a list in the query, expected a non-empty list of quoted string "
            "values separated by commas, but got ( 'a' 'b' )",
        )
        self.assertRejects(
            "status IN ('a', 1)",
            "While parsing a list in the query, expected a non-empty list of quoted string "
            "values separated by commas, but got ( 'a' , 1 )",
        )

    def test_it_checks_value_types(self):
        self.assertRejects(
            "status = 5",
            "Only the '{'end_time', 'end_time_ms', 'execution_time', 'execution_time_ms', "
            "'timestamp', 'timestamp_ms'}' attributes support comparison with numeric values.",
        )
        self.assertRejects(
            "timestamp_ms > '5'",
            "Expected numeric value type for numeric attribute: timestamp_ms. Found '5'",
        )
        self.assertRejects(
            "tags.a = 5", "Expected a quoted string value for tag (e.g. 'my-value'). Got value 5"
        )
        self.assertRejects(
            "span.name = 5",
            "Expected a quoted string value for span (e.g. 'my-value'). Got value 5",
        )

    def test_it_checks_attribute_comparators(self):
        self.assertRejects(
            "timestamp_ms LIKE 5",
            "Invalid comparator 'LIKE' not one of '{'!=', '<', '<=', '=', '>', '>='}'",
        )
        self.assertRejects(
            "status > 'OK'",
            "Invalid comparator '>' not one of "
            "'{'!=', '=', 'ILIKE', 'IN', 'LIKE', 'NOT IN', 'RLIKE'}'",
        )
        self.assertRejects(
            "status IS NULL",
            "Invalid comparator 'IS NULL' not one of "
            "'{'!=', '=', 'ILIKE', 'IN', 'LIKE', 'NOT IN', 'RLIKE'}'",
        )
        self.assertRejects(
            "metadata.k > 'a'",
            "Invalid comparator '>' not one of "
            "'{'!=', '=', 'ILIKE', 'IS NOT NULL', 'IS NULL', 'LIKE', 'RLIKE'}'",
        )

    def test_it_checks_assessment_values_and_comparators(self):
        self.assertRejects(
            "feedback.score >= '0.5'",
            "Expected a numeric value for feedback when using comparator '>='. Got value '0.5'",
        )
        self.assertRejects(
            "expectation.score = 0.5",
            "Expected a quoted string value for expectation (e.g. 'my-value'). Got value 0.5",
        )
        self.assertRejects(
            "feedback.score IN ('1')",
            "assessment.score comparator 'IN' not one of '{'!=', '<', '<=', '=', '>', '>=', "
            "'ILIKE', 'IS NOT NULL', 'IS NULL', 'LIKE', 'RLIKE'}'",
        )

    def test_it_checks_span_keys_and_comparators(self):
        self.assertRejects(
            "span.kind = 'x'",
            "Invalid span attribute 'kind'. "
            "Supported attributes: name, status, type, attributes.<attribute_name>.",
        )
        self.assertRejects(
            "span.content = 'x'", "span.content comparator '=' not one of '{'ILIKE', 'LIKE'}'"
        )
        self.assertRejects(
            "text RLIKE 'x'", "span.content comparator 'RLIKE' not one of '{'ILIKE', 'LIKE'}'"
        )
        self.assertRejects(
            "span.name IS NULL",
            "span.name comparator 'IS NULL' not one of "
            "'{'!=', '=', 'ILIKE', 'IN', 'LIKE', 'NOT IN', 'RLIKE'}'",
        )
        self.assertRejects(
            "span.`attributes.` = 'x'", "Span attribute name cannot be empty after 'attributes.'"
        )

    def test_it_checks_prompt_and_issue_filters(self):
        self.assertRejects(
            "prompt LIKE 'qa/1'",
            "Invalid comparator 'LIKE' for prompts filter. "
            "Only '=' is supported with format: prompt = \"name/version\"",
        )
        self.assertRejects(
            "prompt = 'qa'",
            "Invalid prompts filter value 'qa'. Expected format: prompt = \"name/version\"",
        )
        self.assertRejects(
            "issue.name = 'x'", "Invalid issue attribute 'name'. Supported attributes: id"
        )
        self.assertRejects("issue.id != 'x'", "issue.id comparator '!=' not one of '{'='}'")

    def test_it_rejects_empty_keys(self):
        self.assertRejects("tags.`` = 'x'", "Invalid identifier 'tags.``': the key is empty.")


class OrderByParsingTests(SimpleTestCase):
    def assertRejects(self, order_by, message):
        with self.assertRaises(SearchError) as caught:
            parse_order_by(order_by)
        self.assertEqual(str(caught.exception), message)

    def test_default_order_is_newest_first_then_request_id(self):
        self.assertEqual(parse_order_by(None), TIE_BREAKERS)

    def test_it_reads_keys_directions_and_aliases(self):
        self.assertEqual(
            parse_order_by(
                ["name ASC", "timestamp desc", "tags.env DESC", "metadata.`mlflow.trace.session`"]
            ),
            [
                OrderKey("tag", "mlflow.traceName", True),
                OrderKey("attribute", "timestamp_ms", False),
                OrderKey("tag", "env", False),
                OrderKey("metadata", "mlflow.trace.session", True),
                OrderKey("attribute", "request_id", True),
            ],
        )

    def test_it_maps_run_id_and_keeps_experiment_id(self):
        self.assertEqual(
            parse_order_by(["run_id DESC", "experiment_id", "end_time", "execution_time"]),
            [
                OrderKey("metadata", "mlflow.sourceRun", False),
                OrderKey("attribute", "experiment_id", True),
                OrderKey("attribute", "end_time_ms", True),
                OrderKey("attribute", "execution_time_ms", True),
                *TIE_BREAKERS,
            ],
        )

    def test_a_request_id_key_replaces_its_tie_breaker(self):
        self.assertEqual(
            parse_order_by(["request_id DESC"]),
            [OrderKey("attribute", "request_id", False), TIE_BREAKERS[0]],
        )

    def test_it_rejects_unknown_keys(self):
        self.assertRejects(
            ["foo DESC"],
            "Invalid attribute key 'foo' specified. Valid keys are '{'end_time', 'end_time_ms', "
            "'execution_time', 'execution_time_ms', 'experiment_id', 'name', 'request_id', "
            "'run_id', 'status', 'timestamp', 'timestamp_ms'}'",
        )

    def test_it_rejects_bad_directions_and_shapes(self):
        self.assertRejects(["status UP"], "Invalid ordering key in order_by clause 'status UP'.")
        self.assertRejects(
            ["status ASC DESC"], "Invalid order_by clause 'status ASC DESC'. Could not be parsed."
        )
        self.assertRejects([""], "Invalid order_by clause ''. Could not be parsed.")

    def test_it_rejects_duplicates(self):
        self.assertRejects(
            ["timestamp ASC", "timestamp_ms DESC"],
            "`order_by` contains duplicate fields: ['timestamp ASC', 'timestamp_ms DESC']",
        )

    def test_it_rejects_entities_that_cannot_be_ordered(self):
        self.assertRejects(
            ["feedback.score"],
            "Invalid order_by entity 'feedback' in 'feedback.score': only attributes, tags and "
            "metadata can be ordered by.",
        )


def trace_names(traces):
    return [t.tags.get("mlflow.traceName") for t in traces]


class SearchFilterTests(TestCase):
    """The reference server's traces A, B and C, searched with its test vectors."""

    @classmethod
    def setUpTestData(cls):
        cls.experiment = make_experiment()
        cls.a = make_trace(
            cls.experiment,
            request_time=1_000,
            execution_duration=33,
            client_request_id="cid-001",
            tags={"mlflow.traceName": "root", "custom_tag": "t1", "env": "probe"},
            trace_metadata={"k": "v", "mlflow.sourceRun": "run-1"},
            user="alice",
            session="sess-1",
        )
        cls.b = make_trace(
            cls.experiment,
            request_time=2_000,
            execution_duration=1,
            client_request_id="cid-002",
            tags={"mlflow.traceName": "root2", "env": "probe2"},
            user="bob",
            session="sess-2",
        )
        cls.c = make_trace(
            cls.experiment,
            request_time=3_000,
            execution_duration=2,
            state=Trace.State.ERROR,
            tags={"mlflow.traceName": "failing"},
        )
        other = make_experiment()
        make_trace(other, client_request_id="cid-001", tags={"mlflow.traceName": "elsewhere"})

        root = make_span(cls.a, name="root", span_type="CHAIN")
        middle = make_span(
            cls.a,
            parent=root,
            name="middle",
            span_type="LLM",
            attributes={"mid_attr": "v1", "mlflow.spanType": '"LLM"'},
        )
        make_span(cls.a, parent=middle, name="leaf", span_type="TOOL")
        make_span(cls.b, name="root2", attributes={"mlflow.spanType": '"CHAIN"'})
        make_span(cls.c, name="failing", status="ERROR", attributes={"mlflow.spanType": '"X"'})

    def search(self, filter_string, **kwargs):
        traces, _ = search_traces(
            Trace.objects.filter(experiment=self.experiment), filter_string=filter_string, **kwargs
        )
        return trace_names(traces)

    def assertMatches(self, expected_by_filter):
        for filter_string, expected in expected_by_filter.items():
            with self.subTest(filter_string=filter_string):
                self.assertEqual(self.search(filter_string), expected)

    def test_reference_vectors_for_attributes(self):
        self.assertMatches(
            {
                "attributes.client_request_id = 'cid-001'": ["root"],
                "trace.client_request_id = 'cid-002'": ["root2"],
                "trace.client_request_id IN ('cid-001','cid-002')": ["root2", "root"],
                "trace.status = 'OK'": ["root2", "root"],
                "attributes.status = 'OK'": ["root2", "root"],
                "trace.status = 'ERROR'": ["failing"],
                "trace.status != 'OK'": ["failing"],
                "trace.status = 'IN_PROGRESS'": [],
                "timestamp_ms > 1500": ["failing", "root2"],
                "timestamp > 0": ["failing", "root2", "root"],
                "end_time_ms > 0": ["failing", "root2", "root"],
                "execution_time_ms > 0": ["failing", "root2", "root"],
                "attributes.request_id = 'x'": [],
                "run_id = 'abc'": [],
                "trace.name = 'root'": ["root"],
                "name = 'root'": ["root"],
            }
        )

    def test_reference_vectors_for_tags_and_metadata(self):
        self.assertMatches(
            {
                "tags.`mlflow.trace.user` = 'alice'": [],
                "tags.`mlflow.trace.session` = 'sess-2'": [],
                "metadata.`mlflow.trace.user` = 'alice'": ["root"],
                "metadata.`mlflow.trace.session` = 'sess-1'": ["root"],
                "metadata.`mlflow.trace.user` IS NOT NULL": ["root2", "root"],
                "metadata.`k` = 'v'": ["root"],
                "metadata.k = 'v'": ["root"],
                "tags.custom_tag = 't1'": ["root"],
                'tags.custom_tag = "t1"': ["root"],
                "tags.custom_tag IS NULL": ["failing", "root2"],
                "tags.env LIKE 'probe%'": ["root2", "root"],
                "tags.env != 'probe'": ["root2"],
                "metadata.`mlflow.trace.user` = 'bob' AND trace.status = 'OK'": ["root2"],
            }
        )

    def test_it_compares_attributes_precisely(self):
        self.assertMatches(
            {
                f"request_id = '{self.b.trace_id}'": ["root2"],
                f"request_id IN ('{self.a.trace_id}', 'tr-x')": ["root"],
                "client_request_id != 'cid-001'": ["root2"],
                "client_request_id NOT IN ('cid-001')": ["root2"],
                "client_request_id LIKE 'cid-00_'": ["root2", "root"],
                "client_request_id RLIKE '1$'": ["root"],
                "status IN ('OK', 'IN_PROGRESS')": ["root2", "root"],
                "status NOT IN ('OK')": ["failing"],
                "timestamp_ms = 2000": ["root2"],
                "timestamp_ms >= 2000": ["failing", "root2"],
                "timestamp_ms < 2000": ["root"],
                "timestamp_ms <= 2000.5": ["root2", "root"],
                "timestamp_ms != 2000": ["failing", "root"],
                "execution_time_ms = 33": ["root"],
                "end_time_ms = 1033": ["root"],
                "end_time_ms >= 2001 AND end_time_ms < 3002": ["root2"],
                "timestamp_ms > 0 AND timestamp_ms < 2500 AND status = 'OK'": ["root2", "root"],
            }
        )

    def test_it_compares_tags_and_metadata(self):
        self.assertMatches(
            {
                "name != 'root'": ["failing", "root2"],
                "name LIKE 'root%'": ["root2", "root"],
                "name RLIKE '^r.*2$'": ["root2"],
                "name IS NOT NULL": ["failing", "root2", "root"],
                "tags.env IS NOT NULL": ["root2", "root"],
                "tags.env ILIKE 'PROBE'": ["root"],
                "metadata.k != 'w'": ["root"],
                "metadata.k IS NULL": ["failing", "root2"],
                "metadata.`mlflow.trace.user` != 'alice'": ["root2"],
                "metadata.`mlflow.trace.user` LIKE 'a%'": ["root"],
                "metadata.`mlflow.trace.session` IS NULL": ["failing"],
                "run_id = 'run-1'": ["root"],
                "run_id LIKE 'run-%'": ["root"],
            }
        )

    def test_tags_and_metadata_hold_strings(self):
        # Ingest writes strings only; a number or boolean put there otherwise never equals its
        # spelling, and counts as another value for "!=".
        make_trace(
            self.experiment,
            request_time=500,
            tags={"mlflow.traceName": "typed", "n": 5, "b": True},
            trace_metadata={"n": 5},
        )
        self.assertMatches(
            {
                "tags.n = '5'": [],
                "tags.b = 'true'": [],
                "metadata.n = '5'": [],
                "tags.n != '5'": ["typed"],
                "tags.b != 'true'": ["typed"],
                "tags.n IS NOT NULL": ["typed"],
            }
        )

    def test_reference_vectors_for_spans(self):
        self.assertMatches(
            {
                "span.name = 'middle'": ["root"],
                "span.type = 'LLM'": ["root"],
                "span.attributes.mid_attr LIKE '%v%'": ["root"],
                "span.name IN ('middle', 'leaf')": ["root"],
                "span.status = 'OK'": ["root2", "root"],
                "span.content ILIKE '%mlflow%'": ["failing", "root2", "root"],
                "trace.text ILIKE '%mlflow%'": ["failing", "root2", "root"],
            }
        )

    def test_span_clauses_must_hold_for_one_span(self):
        self.assertMatches(
            {
                "span.name = 'middle' AND span.type = 'LLM'": ["root"],
                "span.name = 'leaf' AND span.type = 'LLM'": [],
                "span.name = 'leaf' AND span.type = 'TOOL' AND span.status = 'OK'": ["root"],
            }
        )

    def test_it_compares_span_fields(self):
        self.assertMatches(
            {
                "span.name != 'root'": ["failing", "root2", "root"],
                "span.name NOT IN ('root', 'middle', 'leaf')": ["failing", "root2"],
                "span.type ILIKE 'llm'": ["root"],
                "span.status = 'ERROR'": ["failing"],
                "span.name RLIKE '^le'": ["root"],
            }
        )

    def test_it_compares_span_attribute_values(self):
        self.assertMatches(
            {
                "span.attributes.mid_attr = 'v1'": ["root"],
                "span.attributes.mid_attr = 'V1'": [],
                "span.attributes.mid_attr != 'v1'": [],
                "span.attributes.mid_attr != 'v2'": ["root"],
                "span.attributes.`mlflow.spanType` = 'LLM'": ["root"],
                "span.attributes.`mlflow.spanType` IN ('CHAIN', 'X')": ["failing", "root2"],
                "span.attributes.`mlflow.spanType` NOT IN ('CHAIN')": ["failing", "root"],
                "span.attributes.mid_attr LIKE '\"v%'": ["root"],
                "span.attributes.mid_attr RLIKE 'v[0-9]'": ["root"],
                "span.attributes.missing LIKE '%'": [],
            }
        )

    def test_span_content_covers_name_inputs_and_outputs(self):
        make_span(self.b, name="second", inputs={"question": "Où est café?"}, outputs="Réponse")
        self.assertMatches(
            {
                "text LIKE '%second%'": ["root2"],
                "text LIKE '%café%'": ["root2"],
                "text LIKE '%Réponse%'": ["root2"],
                "text LIKE '%\"question\"%'": ["root2"],
                "text LIKE '%QUESTION%'": [],
                "text ILIKE '%QUESTION%'": ["root2"],
                "span.content LIKE '%nowhere%'": [],
            }
        )

    def test_issue_filters_match_nothing(self):
        self.assertEqual(self.search("issue.id = 'iss-1'"), [])

    def test_prompt_filters_match_the_linked_prompts_tag(self):
        make_trace(
            self.experiment,
            request_time=500,
            tags={
                "mlflow.traceName": "prompted",
                "mlflow.linkedPrompts": '[{"name": "qa", "version": "2"}]',
            },
        )
        self.assertEqual(self.search("prompt = 'qa/2'"), ["prompted"])
        self.assertEqual(self.search("prompt = 'qa/1'"), [])


class AssessmentFilterTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.experiment = make_experiment()
        cls.a = make_trace(cls.experiment, request_time=1_000, tags={"mlflow.traceName": "a"})
        cls.b = make_trace(cls.experiment, request_time=2_000, tags={"mlflow.traceName": "b"})
        cls.c = make_trace(cls.experiment, request_time=3_000, tags={"mlflow.traceName": "c"})
        log_feedback(trace=cls.a, name="is_correct", value=True)
        log_feedback(trace=cls.b, name="is_correct", value=False)
        log_feedback(trace=cls.a, name="score", value=0.9)
        log_feedback(trace=cls.b, name="score", value=0.2)
        log_feedback(trace=cls.c, name="score", value="0.9")
        log_feedback(trace=cls.a, name="rating", value=5.0)
        log_feedback(trace=cls.b, name="rating", value=4)
        log_feedback(trace=cls.a, name="label", value="bad")
        log_feedback(trace=cls.b, name="label", value="Good")
        log_feedback(trace=cls.c, name="label", value=["bad", "worse"])
        log_feedback(trace=cls.c, name="mood", value="très bien")
        log_expectation(trace=cls.a, name="expected_answer", value="new expected")
        log_expectation(trace=cls.b, name="expected_answer", value={"answer": 42})
        judged = log_feedback(trace=cls.c, name="is_correct", value=True, source_type="LLM_JUDGE")
        override_feedback(assessment_id=judged.assessment_id, value=False)
        deleted = log_feedback(trace=cls.c, name="deleted_one", value="x")
        delete_assessment(assessment_id=deleted.assessment_id)

    def search(self, filter_string):
        traces, _ = search_traces(
            Trace.objects.filter(experiment=self.experiment), filter_string=filter_string
        )
        return trace_names(traces)

    def assertMatches(self, expected_by_filter):
        for filter_string, expected in expected_by_filter.items():
            with self.subTest(filter_string=filter_string):
                self.assertEqual(self.search(filter_string), expected)

    def test_reference_vectors(self):
        self.assertMatches(
            {
                "feedback.`is_correct` = 'true'": ["a"],
                "feedback.score > 0.5": ["a"],
                "feedback.is_correct IS NOT NULL": ["c", "b", "a"],
                "feedback.nonexistent IS NULL": ["c", "b", "a"],
                "feedback.rating = '5'": [],
                "feedback.label LIKE 'ba%'": [],
                "expectation.`expected_answer` = 'new expected'": ["a"],
            }
        )

    def test_equality_compares_json_text_raw_or_quoted(self):
        self.assertMatches(
            {
                "feedback.is_correct = 'false'": ["c", "b"],
                "feedback.rating = '5.0'": ["a"],
                "feedback.rating = '4'": ["b"],
                "feedback.score = '0.9'": ["c", "a"],
                "feedback.label = 'bad'": ["a"],
                "feedback.label = 'good'": [],
                "feedback.label = '\"bad\"'": ["a"],
                'feedback.label = \'["bad", "worse"]\'': ["c"],
                "feedback.mood = 'très bien'": ["c"],
                "expectation.expected_answer = '{\"answer\": 42}'": ["b"],
            }
        )

    def test_inequality_needs_an_assessment_with_another_value(self):
        self.assertMatches(
            {
                "feedback.label != 'bad'": ["c", "b"],
                "feedback.is_correct != 'true'": ["c", "b"],
                "feedback.mood != 'x'": ["c"],
            }
        )

    def test_numeric_comparisons_take_only_numbers(self):
        self.assertMatches(
            {
                "feedback.score >= 0.2": ["b", "a"],
                "feedback.score < 0.5": ["b"],
                "feedback.rating <= 4": ["b"],
                "feedback.rating > 4.5": ["a"],
                "feedback.is_correct > -1": [],
                "feedback.label > 0": [],
            }
        )

    def test_patterns_run_on_json_text(self):
        self.assertMatches(
            {
                "feedback.label LIKE '%bad%'": ["c", "a"],
                "feedback.label LIKE '\"ba%'": ["a"],
                "feedback.label LIKE '%good%'": [],
                "feedback.label ILIKE '%good%'": ["b"],
                "feedback.label RLIKE '^\"(bad|Good)\"$'": ["b", "a"],
                "feedback.mood LIKE '%très%'": ["c"],
                "feedback.rating LIKE '5%'": ["a"],
                "expectation.expected_answer LIKE '%42%'": ["b"],
            }
        )

    def test_overridden_and_deleted_assessments_do_not_count(self):
        self.assertMatches(
            {
                "feedback.is_correct = 'false' AND feedback.is_correct != 'true'": ["c", "b"],
                "feedback.deleted_one IS NOT NULL": [],
                "feedback.deleted_one IS NULL": ["c", "b", "a"],
            }
        )

    def test_feedback_and_expectation_are_kept_apart(self):
        self.assertMatches(
            {
                "expectation.is_correct IS NOT NULL": [],
                "feedback.expected_answer IS NULL": ["c", "b", "a"],
            }
        )


class CaseSensitivityTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.experiment = make_experiment()
        for i, name in enumerate(["Alpha", "alpha", "ALPHA*", "al_pha", "al%pha", "[alpha]"]):
            make_trace(cls.experiment, request_time=10_000 - i, tags={"mlflow.traceName": name})

    def search(self, filter_string):
        traces, _ = search_traces(
            Trace.objects.filter(experiment=self.experiment), filter_string=filter_string
        )
        return trace_names(traces)

    def test_equality_and_like_are_case_sensitive(self):
        self.assertEqual(self.search("name = 'alpha'"), ["alpha"])
        self.assertEqual(self.search("name LIKE 'alp%'"), ["alpha"])
        self.assertEqual(self.search("name LIKE 'A%'"), ["Alpha", "ALPHA*"])

    def test_ilike_ignores_case(self):
        self.assertEqual(self.search("name ILIKE 'alpha'"), ["Alpha", "alpha"])
        self.assertEqual(self.search("name ILIKE 'alpha%'"), ["Alpha", "alpha", "ALPHA*"])

    def test_like_wildcards_are_percent_and_underscore_only(self):
        self.assertEqual(self.search("name LIKE 'ALPHA*'"), ["ALPHA*"])
        self.assertEqual(self.search("name LIKE 'al_pha'"), ["al_pha", "al%pha"])
        self.assertEqual(self.search("name LIKE '[alpha]'"), ["[alpha]"])
        self.assertEqual(self.search("name LIKE '%?%'"), [])

    def test_rlike_is_a_case_sensitive_regular_expression(self):
        self.assertEqual(self.search("name RLIKE '^al.pha$'"), ["al_pha", "al%pha"])
        self.assertEqual(self.search("name RLIKE 'LPH'"), ["ALPHA*"])


class OrderingTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.experiment = make_experiment()
        make_trace(
            cls.experiment,
            request_time=1_000,
            execution_duration=300,
            tags={"mlflow.traceName": "root", "env": "probe"},
            session="sess-1",
        )
        make_trace(
            cls.experiment,
            request_time=2_000,
            execution_duration=None,
            state=Trace.State.IN_PROGRESS,
            tags={"mlflow.traceName": "root2", "env": "probe2"},
            session="sess-2",
        )
        make_trace(
            cls.experiment,
            request_time=3_000,
            execution_duration=2,
            state=Trace.State.ERROR,
            tags={"mlflow.traceName": "failing"},
        )

    def order(self, *order_by):
        traces, _ = search_traces(
            Trace.objects.filter(experiment=self.experiment), order_by=list(order_by)
        )
        return trace_names(traces)

    def test_default_order_is_newest_first(self):
        self.assertEqual(self.order(), ["failing", "root2", "root"])

    def test_it_orders_by_attributes(self):
        self.assertEqual(self.order("timestamp_ms ASC"), ["root", "root2", "failing"])
        self.assertEqual(self.order("status"), ["failing", "root2", "root"])
        self.assertEqual(self.order("end_time DESC"), ["failing", "root2", "root"])
        self.assertEqual(self.order("name ASC", "timestamp DESC"), ["failing", "root", "root2"])

    def test_nulls_sort_last_in_both_directions(self):
        self.assertEqual(self.order("execution_time DESC"), ["root", "failing", "root2"])
        self.assertEqual(self.order("execution_time ASC"), ["failing", "root", "root2"])
        self.assertEqual(self.order("tags.env DESC"), ["root2", "root", "failing"])
        self.assertEqual(self.order("tags.env ASC"), ["root", "root2", "failing"])

    def test_it_orders_by_metadata(self):
        self.assertEqual(
            self.order("metadata.`mlflow.trace.session` ASC"), ["root", "root2", "failing"]
        )
        self.assertEqual(
            self.order("metadata.`mlflow.trace.session` DESC"), ["root2", "root", "failing"]
        )


class PaginationTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.experiment = make_experiment()
        # Shared timestamps and missing tags exercise the tie-breakers and NULL handling.
        for i in range(12):
            make_trace(
                cls.experiment,
                request_time=1_000 + (i // 3),
                execution_duration=None if i % 4 == 0 else i,
                tags={"mlflow.traceName": f"t{i:02}", **({"env": f"e{i % 3}"} if i % 5 else {})},
            )

    def queryset(self):
        return Trace.objects.filter(experiment=self.experiment)

    def page_through(self, size, insert_between_pages=None, **kwargs):
        seen, token, pages = [], None, 0
        while True:
            traces, token = search_traces(
                self.queryset(), max_results=size, page_token=token, **kwargs
            )
            seen.extend(trace_names(traces))
            pages += 1
            if token is None:
                return seen, pages
            if insert_between_pages:
                insert_between_pages(pages)

    def test_pages_add_up_to_the_whole_ordered_result(self):
        for order_by in (
            None,
            ["timestamp_ms ASC"],
            ["execution_time DESC"],
            ["execution_time ASC"],
            ["tags.env DESC", "name ASC"],
            ["tags.env ASC"],
            ["end_time ASC", "request_id DESC"],
            ["status", "name DESC"],
        ):
            everything, _ = search_traces(self.queryset(), order_by=order_by)
            for size in (1, 2, 5):
                with self.subTest(order_by=order_by, size=size):
                    seen, pages = self.page_through(size, order_by=order_by)
                    self.assertEqual(seen, trace_names(everything))
                    self.assertEqual(pages, -(-12 // size))

    def test_a_full_last_page_has_no_token(self):
        traces, token = search_traces(self.queryset(), max_results=12)
        self.assertEqual(len(traces), 12)
        self.assertIsNone(token)

    def test_traces_inserted_while_paging_do_not_shift_pages(self):
        everything, _ = search_traces(self.queryset())
        counter = iter(range(100))

        def insert(_page):
            n = next(counter)
            make_trace(self.experiment, request_time=5_000 + n, tags={"mlflow.traceName": "new"})
            make_trace(self.experiment, request_time=1_002, tags={"mlflow.traceName": "mid"})

        seen, _ = self.page_through(4, insert_between_pages=insert)
        old = [name for name in seen if name not in ("new", "mid")]
        self.assertEqual(old, trace_names(everything))
        self.assertNotIn("new", seen)

    def test_traces_inserted_while_paging_by_tag_do_not_shift_pages(self):
        everything, _ = search_traces(self.queryset(), order_by=["tags.env DESC"])

        def insert(_page):
            make_trace(self.experiment, request_time=9_999, tags={"mlflow.traceName": "new"})

        seen, _ = self.page_through(3, insert_between_pages=insert, order_by=["tags.env DESC"])
        old = [name for name in seen if name != "new"]
        self.assertEqual(old, trace_names(everything))

    def test_the_filter_applies_on_every_page(self):
        seen, pages = self.page_through(2, filter_string="tags.env = 'e1'")
        self.assertEqual(seen, ["t07", "t04", "t01"])
        self.assertEqual(pages, 2)

    def test_it_rejects_bad_tokens(self):
        _, token = search_traces(self.queryset(), max_results=2)
        for bad in ("not base64!", "eyJvZmZzZXQiOiAxfQ==", token[:-8], "e30="):
            with self.subTest(token=bad), self.assertRaisesMessage(SearchError, "page token"):
                search_traces(self.queryset(), max_results=2, page_token=bad)

    def test_it_rejects_a_token_from_another_order(self):
        _, token = search_traces(self.queryset(), max_results=2)
        with self.assertRaisesMessage(
            SearchError, "Invalid page token: it was issued for a different order_by."
        ):
            search_traces(self.queryset(), order_by=["name"], page_token=token)

    def test_it_validates_max_results(self):
        self.assertEqual(len(search_traces(self.queryset(), max_results="3")[0]), 3)
        for bad, message in (
            (0, "Invalid value 0 for parameter 'max_results' supplied. It must be a positive "),
            (-5, "Invalid value -5 for parameter 'max_results' supplied. It must be a positive"),
            (50_001, "Invalid value 50001 for parameter 'max_results' supplied. It must be at "),
            ("ten", "Invalid value 'ten' for parameter 'max_results' supplied."),
            (None, "Invalid value None for parameter 'max_results' supplied."),
            (True, "Invalid value True for parameter 'max_results' supplied."),
        ):
            with self.subTest(max_results=bad), self.assertRaisesMessage(SearchError, message):
                search_traces(self.queryset(), max_results=bad)

    def test_a_page_is_one_query(self):
        _, token = search_traces(self.queryset(), max_results=2)
        with self.assertNumQueries(1):
            search_traces(
                self.queryset(),
                filter_string="feedback.x IS NULL AND span.name != 'x' AND tags.env LIKE 'e%'",
                order_by=["tags.env DESC"],
                max_results=2,
            )
        with self.assertNumQueries(1):
            search_traces(self.queryset(), max_results=2, page_token=token)


class QueryShapeTests(TestCase):
    def test_user_and_session_filters_use_their_indexed_columns(self):
        queryset = Trace.objects.all()
        for filter_string, column in (
            ("metadata.`mlflow.trace.user` = 'alice'", "user"),
            ("metadata.`mlflow.trace.session` = 's'", "session"),
        ):
            with self.subTest(filter_string=filter_string):
                sql = str(queryset.filter(*filter_conditions(parse_filter(filter_string))).query)
                self.assertIn(f'"traces_trace"."{column}" = ', sql)
                self.assertNotIn("trace_metadata", sql.split("WHERE")[1])


@skipUnless(connection.vendor == "postgresql", "PostgreSQL-only indexes")
class PostgresIndexUseTests(TestCase):
    """The query shapes match the indexes of migration 0003_search_indexes."""

    @classmethod
    def setUpTestData(cls):
        experiment = make_experiment()
        make_span(make_trace(experiment, tags={"mlflow.traceName": "x", "env": "prod"}))

    def plan(self, disable, **search):
        with CaptureQueriesContext(connection) as queries:
            search_traces(Trace.objects.all(), **search)
        with connection.cursor() as cursor:
            # On a tiny table scans and sorts are cheapest; forbid them to see what can be used.
            for method in disable:
                cursor.execute(f"SET LOCAL enable_{method} = off")
            cursor.execute("EXPLAIN " + queries[-1]["sql"])
            return "\n".join(row[0] for row in cursor.fetchall())

    def test_filters_can_use_their_indexes(self):
        for filter_string, index in (
            ("tags.env = 'prod'", "trace_tags_gin_idx"),
            ("name = 'x'", "trace_tags_gin_idx"),
            ("tags.env != 'dev'", "trace_tags_gin_idx"),
            ("tags.env IS NOT NULL", "trace_tags_gin_idx"),
            ("metadata.region = 'eu'", "trace_metadata_gin_idx"),
            ("text LIKE '%hello%'", "span_content_trgm_idx"),
            ("span.content ILIKE '%hello%'", "span_content_trgm_idx"),
        ):
            with self.subTest(filter_string=filter_string):
                plan = self.plan(["seqscan", "indexscan"], filter_string=filter_string)
                self.assertIn(index, plan)

    def test_a_runs_traces_come_newest_first_from_their_index(self):
        for filter_string in ("run_id = 'r1'", "metadata.`mlflow.sourceRun` = 'r1'"):
            with self.subTest(filter_string=filter_string):
                plan = self.plan(
                    ["seqscan", "sort", "incremental_sort"], filter_string=filter_string
                )
                self.assertIn("trace_source_run_idx", plan)

    def test_orders_can_use_their_indexes(self):
        for order_by, index in (
            ("execution_time DESC", "trace_duration_desc_idx"),
            ("end_time DESC", "trace_end_time_idx"),
            ("name ASC", "trace_name_idx"),
        ):
            with self.subTest(order_by=order_by):
                plan = self.plan(["seqscan", "sort", "incremental_sort"], order_by=[order_by])
                self.assertIn(index, plan)
