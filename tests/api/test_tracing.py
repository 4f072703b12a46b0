"""Traces logged and read back with the real mlflow client over HTTP."""

import pytest

from tests.api.conftest import server_db
from traces.models import Span, Trace

pytestmark = server_db


def _log_tree(mlflow):
    @mlflow.trace(span_type="LLM")
    def leaf(x):
        return {"leaf": x * 2}

    @mlflow.trace(attributes={"mid_attr": "v"})
    def middle(x):
        return leaf(x + 1)

    @mlflow.trace(name="root")
    def root(question):
        mlflow.update_current_trace(
            client_request_id="cid-001",
            user="alice",
            session_id="sess-1",
            tags={"env": "probe"},
            metadata={"k": "v"},
        )
        with mlflow.start_span(name="manual", span_type="TOOL") as span:
            span.set_inputs({"q": question})
            span.set_outputs({"a": 1})
            span.set_attribute("foo", "bar")
        return middle(15)

    root("what is tracemark?")
    mlflow.flush_trace_async_logging()
    return mlflow.get_last_active_trace_id()


@pytest.mark.parametrize("async_logging", [False, True], ids=["sync", "async"])
def test_a_traced_call_is_stored_and_read_back(mlflow, monkeypatch, async_logging):
    monkeypatch.setenv("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", str(async_logging).lower())
    mlflow.set_experiment("tracing")

    trace_id = _log_tree(mlflow)

    stored = Trace.objects.get(trace_id=trace_id)
    assert stored.state == Trace.State.OK
    assert stored.span_count == 4
    assert (stored.user, stored.session, stored.client_request_id) == ("alice", "sess-1", "cid-001")
    assert Span.objects.filter(trace=stored).count() == 4

    trace = mlflow.get_trace(trace_id)
    assert trace.info.state.value == "OK"
    assert trace.info.client_request_id == "cid-001"
    assert trace.info.trace_metadata["mlflow.trace.user"] == "alice"
    assert trace.info.trace_metadata["k"] == "v"
    assert trace.info.tags["env"] == "probe"
    spans = {span.name: span for span in trace.data.spans}
    assert set(spans) == {"root", "manual", "middle", "leaf"}
    assert spans["leaf"].span_type == "LLM"
    assert spans["leaf"].inputs == {"x": 16}
    assert spans["leaf"].outputs == {"leaf": 32}
    assert spans["leaf"].parent_id == spans["middle"].span_id
    assert spans["root"].parent_id is None
    assert spans["manual"].attributes["foo"] == "bar"
    assert spans["middle"].attributes["mid_attr"] == "v"
    assert spans["root"].inputs == {"question": "what is tracemark?"}


def test_feedback_inside_open_traces_survives_async_logging_in_any_order(mlflow, monkeypatch):
    """The async queue may send StartTraceV3, with the assessments, before or after the spans."""
    monkeypatch.setenv("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "true")
    mlflow.set_experiment("async feedback")

    @mlflow.trace(name="lookup", span_type="TOOL")
    def lookup(n):
        return mlflow.get_current_active_span().span_id

    @mlflow.trace(name="agent")
    def agent(n):
        mlflow.update_current_trace(client_request_id=f"cid-{n}", user="alice", tags={"run": "a"})
        child_span_id = lookup(n)
        trace_id = mlflow.get_active_trace_id()
        mlflow.log_feedback(trace_id=trace_id, name="tool_ok", value=True, span_id=child_span_id)
        mlflow.log_feedback(trace_id=trace_id, name="helpful", value=n)
        return n

    for n in range(12):
        agent(n)
    mlflow.flush_trace_async_logging()

    traces = Trace.objects.filter(experiment__name="async feedback").prefetch_related("assessments")
    assert len(traces) == 12
    for trace in traces:
        n = int(trace.client_request_id.removeprefix("cid-"))
        assert trace.tags["run"] == "a"
        assert (trace.user, trace.span_count, trace.state) == ("alice", 2, Trace.State.OK)
        child = Span.objects.get(trace=trace, name="lookup")
        feedback = {(a.name, a.span_id, a.value) for a in trace.assessments.all()}
        assert feedback == {("tool_ok", child.span_id, True), ("helpful", None, n)}
