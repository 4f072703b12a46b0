"""What other clients send: a plain OpenTelemetry app, raw HTTP mistakes, tags and big traces."""

import gzip
import json
import time

import pytest
import requests
from mlflow.exceptions import MlflowException

from tests.api.conftest import MAX_REQUEST_BYTES, MAX_SPAN_UPLOAD_BYTES, server_db
from traces.models import Span, Trace

pytestmark = server_db


@pytest.fixture
def http(tracemark_url, reviewer_token):
    """requests with the reviewer's token; call http(method, path, **kwargs)."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {reviewer_token}"

    def _call(method, path, **kwargs):
        return session.request(method, f"{tracemark_url}{path}", timeout=30, **kwargs)

    return _call


def test_a_plain_opentelemetry_app_makes_a_complete_trace(tracemark_url, reviewer_token, mlflow):
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.trace import Status, StatusCode

    experiment_id = mlflow.set_experiment("otel").experiment_id
    exporter = OTLPSpanExporter(
        endpoint=f"{tracemark_url}/v1/traces",
        headers={
            "Authorization": f"Bearer {reviewer_token}",
            "x-mlflow-experiment-id": experiment_id,
        },
    )
    provider = TracerProvider(resource=Resource.create({"service.name": "plain-otel"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tests")
    with tracer.start_as_current_span("agent") as root:
        root.set_attribute("mlflow.spanInputs", '{"question": "hi"}')
        root.set_attribute("session.id", "s-42")
        with tracer.start_as_current_span("tool") as child:
            child.set_attribute("tool.name", "search")
            child.set_status(Status(StatusCode.ERROR, "tool failed"))
    provider.shutdown()
    trace_id = "tr-" + format(root.get_span_context().trace_id, "032x")

    stored = Trace.objects.get(trace_id=trace_id)
    assert stored.state == Trace.State.OK
    assert stored.span_count == 2
    assert stored.execution_duration is not None
    assert stored.session == "s-42"
    trace = mlflow.get_trace(trace_id)
    assert trace.info.state.value == "OK"
    assert trace.info.tags["mlflow.traceName"] == "agent"
    spans = {s.name: s for s in trace.data.spans}
    assert spans["tool"].parent_id == spans["agent"].span_id
    assert spans["tool"].status.status_code.value == "ERROR"
    assert spans["tool"].attributes["tool.name"] == "search"


def test_a_five_thousand_span_trace_round_trips(mlflow, monkeypatch):
    monkeypatch.setenv("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "true")
    # The client's span batch queue holds 2,048 spans by default and drops any more.
    monkeypatch.setenv("MLFLOW_ASYNC_TRACE_LOGGING_MAX_SPAN_BATCH_SIZE", "6000")
    mlflow.set_experiment("big")

    @mlflow.trace(name="root")
    def root():
        for i in range(4999):
            with mlflow.start_span(name=f"step-{i}") as span:
                span.set_inputs({"i": i})
                span.set_outputs({"double": i * 2})

    root()
    mlflow.flush_trace_async_logging()
    trace_id = mlflow.get_last_active_trace_id()
    started = time.perf_counter()
    trace = mlflow.get_trace(trace_id)
    elapsed = time.perf_counter() - started

    assert len(trace.data.spans) == 5000
    assert Trace.objects.get(trace_id=trace_id).span_count == 5000
    assert trace.data.spans[0].name == "root"
    print(f"get_trace of 5,000 spans: {elapsed * 1000:.0f} ms")


def test_tags_are_set_and_deleted(mlflow):
    mlflow.set_experiment("tags")

    @mlflow.trace
    def traced():
        return 1

    traced()
    trace_id = mlflow.get_last_active_trace_id()
    client = mlflow.MlflowClient()

    client.set_trace_tag(trace_id, "added_tag", "vv")
    assert mlflow.get_trace(trace_id).info.tags["added_tag"] == "vv"
    client.delete_trace_tag(trace_id, "added_tag")
    assert "added_tag" not in mlflow.get_trace(trace_id).info.tags
    with pytest.raises(MlflowException) as error:
        client.delete_trace_tag(trace_id, "added_tag")
    assert error.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_unknown_traces_are_not_found(mlflow):
    with pytest.raises(MlflowException) as error:
        mlflow.MlflowClient().get_trace("tr-00000000000000000000000000000000")

    assert error.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert "Trace with ID 'tr-00000000000000000000000000000000' not found." in error.value.message


def test_unknown_endpoints_answer_endpoint_not_found(http):
    response = http("GET", "/api/2.0/mlflow/metrics/get-history?run_id=x&metric_key=m")

    assert response.status_code == 404
    assert response.json()["error_code"] == "ENDPOINT_NOT_FOUND"
    assert http("POST", "/api/9.9/whatever", json={}).json()["error_code"] == "ENDPOINT_NOT_FOUND"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/3.0/mlflow/traces", b"{not json"),
        ("/api/3.0/mlflow/traces", b"[1, 2]"),
        ("/api/3.0/mlflow/traces", b'{"trace": {"trace_info": {"trace_id": 5}}}'),
        ("/api/3.0/mlflow/traces/search", b'{"locations": "0"}'),
        ("/api/2.0/mlflow/experiments/create", b'{"name": 12}'),
    ],
)
def test_malformed_json_is_a_client_error(http, path, body):
    response = http("POST", path, data=body, headers={"Content-Type": "application/json"})

    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_malformed_protobuf_is_a_client_error_and_stores_nothing(http):
    response = http(
        "POST",
        "/v1/traces",
        data=b"\xff\xff\xff garbage",
        headers={"Content-Type": "application/x-protobuf", "x-mlflow-experiment-id": "0"},
    )

    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert not Span.objects.exists()


def test_oversized_bodies_are_refused_with_413(http):
    spans = http(
        "POST",
        "/v1/traces",
        data=gzip.compress(b"\0" * (MAX_SPAN_UPLOAD_BYTES + 1)),
        headers={
            "Content-Type": "application/x-protobuf",
            "Content-Encoding": "gzip",
            "x-mlflow-experiment-id": "0",
        },
    )
    feedback = http(
        "POST",
        "/api/3.0/mlflow/traces/tr-x/assessments",
        data=json.dumps({"assessment": {"rationale": "x" * MAX_REQUEST_BYTES}}),
        headers={"Content-Type": "application/json"},
    )

    assert spans.status_code == 413
    assert feedback.status_code == 413
    assert feedback.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
