"""The exact bytes of every trace read: GetTraceInfoV3, traces/get, batchGet, batchGetInfos
and search, for one trace carrying every kind of assessment and span detail.

The expected answers live in ``read_shapes/`` with the values a run cannot fix (the
experiment's key and the assessment ids) written as placeholders. JSON objects are
written in the key order PostgreSQL's jsonb keeps (shorter keys first), so both databases
answer with the same bytes.
"""

import json
from pathlib import Path

from django.test import Client, TestCase

from accounts.tokens import create_token
from annotation import services
from annotation.models import Assessment
from tests.factories import make_experiment, make_reviewer, make_span, make_trace
from traces.models import Span

SHAPES = Path(__file__).parent / "read_shapes"
TRACE_ID = "tr-0af7651916cd43dd8448eb211c80319c"
REQUEST_MS = 1_612_345_678_901
BIG = 2**62 + 7


def make_rich_trace(experiment):
    trace = make_trace(
        experiment,
        trace_id=TRACE_ID,
        client_request_id="req-ünï",
        request_time=REQUEST_MS,
        execution_duration=1_234,
        request_preview='{"q": "Grüße, 世界"}',
        response_preview='"naïve ☃"',
        tags={"env": "prød", "mlflow.traceName": "agent ✓"},
        trace_metadata={"mlflow.trace.user": "zoë", "mlflow.trace.session": "s-1"},
    )
    root = make_span(
        trace,
        span_id="b7ad6b7169203331",
        name="agent ☃",
        start_time_ns=REQUEST_MS * 1_000_000 + 1,
        end_time_ns=REQUEST_MS * 1_000_000 + 1_234_000_001,
        inputs={"n": BIG, "q": "Grüße"},
        outputs=["a", 1.5, None, True],
        attributes={"big": BIG, "nest": {"k": [1, "two"]}, "mlflow.spanType": "AGENT"},
    )
    make_span(
        trace,
        root,
        span_id="00f067aa0ba902b7",
        name="tool",
        start_time_ns=REQUEST_MS * 1_000_000 + 5,
        end_time_ns=None,
        status=Span.Status.ERROR,
        status_message="boom ✗",
        inputs=None,
        outputs=None,
        events=[
            {
                "name": "exception",
                "attributes": {"n": 3, "exception.type": "ValueError"},
                "time_unix_nano": REQUEST_MS * 1_000_000 + 9,
            },
            {"name": "bare"},
        ],
    )
    make_span(
        trace,
        root,
        span_id="53995c3f42cd8ad8",
        name="llm",
        start_time_ns=REQUEST_MS * 1_000_000 + 3,
        status=Span.Status.UNSET,
    )
    at = {"create_time": REQUEST_MS + 1_000}
    services.log_feedback(trace=trace, name="thumbs", value=True, source_type="HUMAN", **at)
    services.log_feedback(
        trace=trace,
        name="rating",
        value=4,
        rationale="Mostly right, ünïcode",
        metadata={"k": "v", "model": "m-1"},
        source_type="CODE",
        source_id="scorer",
        span_id="b7ad6b7169203331",
        **at,
    )
    services.log_feedback(
        trace=trace,
        name="judge_failed",
        error={"error_code": "TIMEOUT", "error_message": "took too long ⏱"},
        source_type="LLM_JUDGE",
        source_id="gpt",
        **at,
    )
    judged = services.log_feedback(
        trace=trace, name="correct", value=0.25, source_type="LLM_JUDGE", source_id="gpt", **at
    )
    services.override_feedback(assessment_id=judged.assessment_id, value=1, **at)
    services.log_expectation(trace=trace, name="answer", value="Paris", **at)
    services.log_expectation(
        trace=trace, name="facts", value={"n": BIG, "list": [1, 2.5, "ß"]}, **at
    )
    services.log_issue(trace=trace, issue_id="iss-1", issue_name="Hallucination ✗", **at)
    gone = services.log_feedback(trace=trace, name="gone", value=False, **at)
    services.delete_assessment(assessment_id=gone.assessment_id)
    return trace


class ReadShapeTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.token = create_token(user=make_reviewer())[1]
        cls.experiment = make_experiment("shapes")
        cls.trace = make_rich_trace(cls.experiment)

    def setUp(self):
        self.api = Client(headers={"Authorization": f"Bearer {self.token}"})

    def placeholders(self, content: bytes) -> str:
        """The answer with the run's own ids replaced by placeholders."""
        text = content.decode()
        pk = self.experiment.pk
        text = text.replace(f'"experiment_id":"{pk}"', '"experiment_id":"{experiment}"')
        text = text.replace(f"mlflow-artifacts:/{pk}/", "mlflow-artifacts:/{experiment}/")
        assessments = Assessment.objects.order_by("pk")
        for n, row in enumerate(assessments.values_list("assessment_id", flat=True), 1):
            text = text.replace(f'"{row}"', f'"{{assessment-{n}}}"')
        return text

    def assert_shape(self, response, name: str):
        self.assertEqual(response.status_code, 200)
        content = b"".join(response) if response.streaming else response.content
        expected = (SHAPES / f"{name}.json").read_text()
        self.assertEqual(self.placeholders(content), expected.rstrip("\n"))
        json.loads(content)

    def test_get_trace_info(self):
        self.assert_shape(self.api.get(f"/api/3.0/mlflow/traces/{TRACE_ID}"), "trace_info")

    def test_get_trace(self):
        response = self.api.get("/api/3.0/mlflow/traces/get", {"trace_id": TRACE_ID})
        self.assert_shape(response, "trace_get")

    def test_batch_get(self):
        response = self.api.get("/api/3.0/mlflow/traces/batchGet", {"trace_ids": [TRACE_ID]})
        self.assert_shape(response, "batch_get")

    def test_batch_get_infos(self):
        response = self.api.get(
            "/api/3.0/mlflow/traces/batchGetInfos", {"trace_ids": [TRACE_ID, "tr-missing"]}
        )
        self.assert_shape(response, "batch_get_infos")

    def test_search(self):
        location = {"mlflow_experiment": {"experiment_id": str(self.experiment.pk)}}
        response = self.api.post(
            "/api/3.0/mlflow/traces/search",
            {"locations": [location], "filter": "feedback.thumbs = 'true'"},
            content_type="application/json",
        )
        self.assert_shape(response, "search")
