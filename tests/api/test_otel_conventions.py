"""Spans of OpenInference, OpenLLMetry and OTel GenAI apps, exported with the OpenTelemetry SDK,
come back with MLflow's span types, inputs, outputs and token usage, and render on the review
page as conversations and tool calls."""

import json

import pytest
from django.test import Client

from tests.api.conftest import server_db
from traces.models import Span

pytestmark = server_db

QUESTION = "What is the capital of France?"
ANSWER = "Paris."


def _export(tracemark_url, token, experiment_id, build, resource=None):
    """Run ``build(tracer)`` under a tracer provider exporting to Tracemark; the trace id."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    exporter = OTLPSpanExporter(
        endpoint=f"{tracemark_url}/v1/traces",
        headers={"Authorization": f"Bearer {token}", "x-mlflow-experiment-id": experiment_id},
    )
    provider = TracerProvider(resource=Resource.create(resource or {"service.name": "app"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    root = build(provider.get_tracer("tests"))
    provider.shutdown()
    return "tr-" + format(root.get_span_context().trace_id, "032x")


def _spans(tracer, root: tuple, *children: tuple):
    """A root span and its children, each (name, attributes); the root span."""
    name, attributes = root
    with tracer.start_as_current_span(name, attributes=attributes) as span:
        for child_name, child_attributes in children:
            with tracer.start_as_current_span(child_name, attributes=child_attributes):
                pass
    return span


def _openinference(tracer):
    llm = {
        "openinference.span.kind": "LLM",
        "input.value": json.dumps({"messages": [{"role": "user", "content": QUESTION}]}),
        "output.value": json.dumps(
            {"choices": [{"message": {"role": "assistant", "content": ANSWER}}]}
        ),
        "llm.model_name": "gpt-4o-mini",
        "llm.provider": "openai",
        "llm.token_count.prompt": 100,
        "llm.token_count.completion": 50,
        "llm.token_count.total": 150,
    }
    tool = {
        "openinference.span.kind": "TOOL",
        "input.value": json.dumps({"query": "capital France"}),
        "output.value": "Paris is the capital of France.",
    }
    root = {
        "openinference.span.kind": "AGENT",
        "input.value": json.dumps({"question": QUESTION}),
        "output.value": ANSWER,
    }
    return _spans(tracer, ("agent", root), ("ChatOpenAI", llm), ("search", tool))


def _genai(tracer):
    output = {
        "role": "assistant",
        "finish_reason": "tool_call",
        "parts": [
            {"type": "text", "content": ANSWER},
            {"type": "tool_call", "id": "c1", "name": "search", "arguments": {"q": "x"}},
        ],
    }
    llm = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.provider.name": "openai",
        "gen_ai.input.messages": json.dumps(
            [{"role": "user", "parts": [{"type": "text", "content": QUESTION}]}]
        ),
        "gen_ai.output.messages": json.dumps([output]),
        "gen_ai.usage.input_tokens": 100,
        "gen_ai.usage.output_tokens": 50,
    }
    tool = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.call.arguments": json.dumps({"q": "x"}),
        "gen_ai.tool.call.result": json.dumps({"hits": 3}),
    }
    root = {"gen_ai.operation.name": "invoke_agent"}
    return _spans(
        tracer, ("invoke_agent", root), ("chat gpt-4o", llm), ("execute_tool search", tool)
    )


def _traceloop(tracer):
    root = {
        "traceloop.span.kind": "workflow",
        "traceloop.entity.input": json.dumps({"question": QUESTION}),
        "traceloop.entity.output": json.dumps({"answer": ANSWER}),
    }
    llm = {
        "gen_ai.system": "OpenAI",
        "gen_ai.prompt.0.role": "user",
        "gen_ai.prompt.0.content": QUESTION,
        "gen_ai.completion.0.content": ANSWER,
        "gen_ai.usage.prompt_tokens": 100,
        "gen_ai.usage.completion_tokens": 50,
        "llm.usage.total_tokens": 150,
    }
    tool = {
        "traceloop.span.kind": "tool",
        "traceloop.entity.input": json.dumps({"q": "x"}),
        "traceloop.entity.output": json.dumps({"hits": 3}),
    }
    return _spans(tracer, ("qa.workflow", root), ("openai.chat", llm), ("search.tool", tool))


USAGE = {"input_tokens": 100, "output_tokens": 50, "total_tokens": 150}
CASES = {
    "openinference": (
        _openinference,
        {"agent": "AGENT", "ChatOpenAI": "LLM", "search": "TOOL"},
        ("ChatOpenAI", {"messages": [{"role": "user", "content": QUESTION}]}),
        ("search", "Paris is the capital of France."),
        "gpt-4o-mini",
    ),
    "genai": (
        _genai,
        {"invoke_agent": "AGENT", "chat gpt-4o": "CHAT_MODEL", "execute_tool search": "TOOL"},
        ("chat gpt-4o", [{"role": "user", "parts": [{"type": "text", "content": QUESTION}]}]),
        ("execute_tool search", {"hits": 3}),
        "gpt-4o",
    ),
    "traceloop": (
        _traceloop,
        {"qa.workflow": "WORKFLOW", "openai.chat": None, "search.tool": "TOOL"},
        ("openai.chat", QUESTION),
        ("search.tool", {"hits": 3}),
        None,
    ),
}


@pytest.mark.parametrize("convention", CASES)
def test_convention_spans_come_back_typed_with_inputs_outputs_and_tokens(
    tracemark_url, reviewer_token, reviewer, mlflow, convention
):
    build, types, (llm_name, llm_inputs), (tool_name, tool_outputs), model = CASES[convention]
    experiment_id = mlflow.set_experiment(convention).experiment_id

    trace_id = _export(tracemark_url, reviewer_token, experiment_id, build)

    trace = mlflow.get_trace(trace_id)
    spans = {span.name: span for span in trace.data.spans}
    assert {name: span.span_type for name, span in spans.items()} == types
    assert spans[llm_name].inputs == llm_inputs
    assert spans[llm_name].get_attribute("mlflow.chat.tokenUsage") == USAGE
    assert spans[llm_name].get_attribute("mlflow.llm.model") == model
    assert spans[tool_name].outputs == tool_outputs
    review = Client()
    review.force_login(reviewer)
    llm_span = Span.objects.get(trace__trace_id=trace_id, name=llm_name)
    page = review.get(f"/traces/{trace_id}/?span={llm_span.span_id}")
    assert "100 in · 50 out · 150 tokens" in page.text
    assert QUESTION in page.text


def test_gen_ai_messages_render_as_a_conversation_with_tool_calls(
    tracemark_url, reviewer_token, reviewer, mlflow
):
    experiment_id = mlflow.set_experiment("genai chat").experiment_id
    trace_id = _export(tracemark_url, reviewer_token, experiment_id, _genai)
    llm = Span.objects.get(trace__trace_id=trace_id, name="chat gpt-4o")
    review = Client()
    review.force_login(reviewer)

    page = review.get(f"/traces/{trace_id}/?span={llm.span_id}")

    assert page.status_code == 200
    assert page.text.count('class="message') >= 2, page.text
    assert ANSWER in page.text
    assert "&quot;search&quot;" in page.text


def test_an_explicit_span_type_is_kept(tracemark_url, reviewer_token, mlflow):
    def build(tracer):
        with tracer.start_as_current_span("retrieve") as span:
            span.set_attribute("mlflow.spanType", "RETRIEVER")
            span.set_attribute("openinference.span.kind", "TOOL")
            span.set_attribute("mlflow.spanInputs", json.dumps("own input"))
            span.set_attribute("input.value", "convention input")
        return span

    experiment_id = mlflow.set_experiment("explicit").experiment_id
    trace_id = _export(tracemark_url, reviewer_token, experiment_id, build)

    span = Span.objects.get(trace__trace_id=trace_id)
    assert span.span_type == "RETRIEVER"
    assert span.inputs == json.dumps("own input")
