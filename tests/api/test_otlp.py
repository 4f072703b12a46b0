"""OTLP answers as the MLflow server gives them: its statuses, its order of checks, the
resource's service name on the root span and the trace id taken from the OTLP trace id."""

import json

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.api.test_endpoints import CHILD, ROOT, TRACE_HEX, TRACE_ID, ApiTestCase
from traces.models import Span, Trace


def _request(span_ids=(ROOT,), service_name=None, trace_hex=TRACE_HEX, request_id=None):
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    if service_name:
        attribute = resource_spans.resource.attributes.add()
        attribute.key, attribute.value.string_value = "service.name", service_name
    scope = resource_spans.scope_spans.add()
    for index, span_id in enumerate(span_ids):
        span = scope.spans.add()
        span.trace_id = bytes.fromhex(trace_hex) if trace_hex else b""
        span.span_id = bytes.fromhex(span_id) if span_id else b""
        if index:
            span.parent_span_id = bytes.fromhex(ROOT)
        span.name = f"span-{index}"
        span.start_time_unix_nano, span.end_time_unix_nano = 1_000_000_000, 2_000_000_000
        if request_id:
            attribute = span.attributes.add()
            attribute.key, attribute.value.string_value = "mlflow.traceRequestId", request_id
    return request.SerializeToString()


class OtlpStatusTests(ApiTestCase):
    def assertError(self, response, status):
        self.assertEqual(response.status_code, status, response.content)
        self.assertEqual(response.json()["error_code"], "INVALID_PARAMETER_VALUE")

    def test_a_missing_experiment_header_is_422_before_anything_else(self):
        response = self.api.post(
            "/v1/traces", b"not otlp", content_type="text/plain", headers={"Content-Encoding": "br"}
        )

        self.assertError(response, 422)
        self.assertIn("x-mlflow-experiment-id", response.json()["message"])

    def test_the_content_type_is_checked_before_the_body(self):
        response = self.api.post(
            "/v1/traces",
            b"\x00garbage",
            content_type="text/plain",
            headers={"Content-Encoding": "gzip", "x-mlflow-experiment-id": "999"},
        )

        self.assertError(response, 400)
        self.assertIn("Content-Type", response.json()["message"])

    def test_spans_without_ids_are_422(self):
        for body in (_request(span_ids=(None,)), _request(trace_hex=None)):
            self.assertError(self.post_spans(body), 422)
        self.assertFalse(Trace.objects.exists())

    def test_the_body_is_checked_before_the_experiment(self):
        self.assertError(self.post_spans(b"\xff\xff", **{"x-mlflow-experiment-id": "999"}), 400)
        unknown = self.post_spans(_request(), **{"x-mlflow-experiment-id": "999"})
        self.assertEqual(unknown.status_code, 404)
        self.assertEqual(unknown.json()["error_code"], "RESOURCE_DOES_NOT_EXIST")

    def test_no_resource_spans_is_400_but_resource_spans_without_spans_are_accepted(self):
        self.assertError(self.post_spans(b""), 400)
        empty = ExportTraceServiceRequest()
        empty.resource_spans.add().scope_spans.add()

        response = self.post_spans(empty.SerializeToString())

        self.assertEqual(response.status_code, 200)
        self.assertFalse(Trace.objects.exists())


class OtlpTraceShapeTests(ApiTestCase):
    def test_a_known_service_name_is_copied_to_the_root_span_only(self):
        self.post_spans(_request(span_ids=(ROOT, CHILD), service_name="claude-code"))

        root, child = Span.objects.get(span_id=ROOT), Span.objects.get(span_id=CHILD)
        self.assertEqual(root.attributes["service.name"], "claude-code")
        self.assertNotIn("service.name", child.attributes)

    def test_other_service_names_stay_on_the_resource_as_in_mlflow(self):
        self.post_spans(_request(service_name="my-private-app"))

        self.assertNotIn("service.name", Span.objects.get().attributes)

    def test_spans_are_filed_under_the_otlp_trace_id_whatever_request_id_they_carry(self):
        other = "tr-" + "f" * 32
        self.post_spans(_request(span_ids=(ROOT, CHILD), request_id=other))

        trace = Trace.objects.get()
        self.assertEqual((trace.trace_id, trace.span_count), (TRACE_ID, 2))
        self.assertFalse(Trace.objects.filter(trace_id=other).exists())
        response = self.api.get(
            f"/api/2.0/mlflow-artifacts/artifacts/{self.experiment.pk}"
            f"/traces/{TRACE_ID}/artifacts/traces.json"
        )
        got = json.loads(b"".join(response.streaming_content))
        request_ids = {span["attributes"]["mlflow.traceRequestId"] for span in got["spans"]}
        self.assertEqual(request_ids, {json.dumps(TRACE_ID)})

    def test_json_bodies_answer_json(self):
        body = {"resourceSpans": [{"scopeSpans": [{"spans": []}]}]}
        response = self.api.post(
            "/v1/traces",
            json.dumps(body),
            content_type="application/json",
            headers={"x-mlflow-experiment-id": str(self.experiment.pk)},
        )

        self.assertEqual((response.status_code, response.content), (200, b"{}"))
