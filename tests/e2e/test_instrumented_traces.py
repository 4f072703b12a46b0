"""A trace from an OpenTelemetry GenAI-instrumented app, read in a real browser: span types,
the conversation, token counts and an issue reference, reached with the keyboard."""

import json
import re

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from playwright.sync_api import expect

from annotation import services
from tests.factories import make_experiment, make_reviewer
from traces import ingest
from traces.models import Trace

pytestmark = pytest.mark.django_db(transaction=True)

ROOT, CHAT = "1111111111111111", "2222222222222222"


def _span(scope, span_id, parent, name, attributes):
    span = scope.spans.add()
    span.trace_id = bytes.fromhex("ab" * 16)
    span.span_id = bytes.fromhex(span_id)
    if parent:
        span.parent_span_id = bytes.fromhex(parent)
    span.name = name
    span.start_time_unix_nano, span.end_time_unix_nano = 1_000_000_000, 1_900_000_000
    for key, value in attributes.items():
        attribute = span.attributes.add()
        attribute.key = key
        if isinstance(value, int):
            attribute.value.int_value = value
        else:
            attribute.value.string_value = value


@pytest.fixture
def genai_trace(db):
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    _span(scope, ROOT, None, "invoke_agent", {"gen_ai.operation.name": "invoke_agent"})
    messages = [{"role": "user", "parts": [{"type": "text", "content": "Where is my order?"}]}]
    answer = [{"role": "assistant", "parts": [{"type": "text", "content": "It ships today."}]}]
    _span(scope, CHAT, ROOT, "chat gpt-4o", {
        "gen_ai.operation.name": "chat",
        "gen_ai.input.messages": json.dumps(messages),
        "gen_ai.output.messages": json.dumps(answer),
        "gen_ai.usage.input_tokens": 1200,
        "gen_ai.usage.output_tokens": 34,
    })  # fmt: skip
    ingest.store_spans(
        make_experiment("genai app"),
        ingest.parse_otlp(request.SerializeToString(), "application/x-protobuf"),
    )
    trace = Trace.objects.get()
    services.log_issue(
        trace=trace,
        issue_id="iss-late-orders",
        issue_name="Late order answers",
        source_type="LLM_JUDGE",
        source_id="issue-scan",
    )
    return trace


def test_a_genai_trace_reads_as_a_conversation_with_token_counts(
    page, live_server, login, genai_trace
):
    login(page, make_reviewer())
    page.goto(live_server.url + genai_trace.get_absolute_url())

    expect(page.locator("#assessments-trace")).to_contain_text("Late order answers")
    expect(page.locator("#assessments-trace .issue-badge")).to_have_text("issue")
    page.get_by_role("treeitem", name=re.compile("invoke_agent")).focus()
    page.keyboard.press("ArrowDown")
    expect(page.locator('[role="treeitem"]:focus')).to_contain_text("chat gpt-4o")
    page.keyboard.press("Enter")

    panel = page.locator("#span-panel")
    expect(panel.locator("h2")).to_contain_text("Chat")
    expect(panel).to_contain_text("1,200 in · 34 out · 1,234 tokens")
    expect(panel.locator(".chat .message.role-user")).to_contain_text("Where is my order?")
    expect(panel.locator(".chat .message.role-assistant")).to_contain_text("It ships today.")
