"""Span content shaped for reading: conversations, document lists, text and JSON.

``show_value`` describes one JSON value for the ``traces/_span_value.html`` partial (which
escapes it); ``describe_span`` is everything the span detail partial shows. Both run once on
the server, so templates only lay the result out.
"""

import json
from urllib.parse import parse_qs, urlsplit

from django.urls import reverse

from .models import Span
from .otel_conventions import CHAT_USAGE
from .tree import TYPE_LABELS, format_duration

TEXT_PREVIEW_CHARS = 600
ATTACHMENT_SCHEME = "mlflow-attachment://"
MAX_ATTACHMENT_DEPTH = 8
JSON_PREVIEW_LINES = 24
# MLflow copies inputs and outputs into these attributes; the detail shows them once.
HIDDEN_ATTRIBUTES = {"mlflow.spanInputs", "mlflow.spanOutputs"}


def show_value(value) -> dict:
    """Describe a JSON value for the ``traces/_span_value.html`` partial (which escapes it)."""
    if value is None or value == "" or value == {} or value == []:
        return {"kind": "empty"}
    if isinstance(value, str):
        return _text(value)
    messages = _chat_messages(value)
    if messages is not None:
        has_rest = isinstance(value, dict) and "messages" in value
        rest = {k: v for k, v in value.items() if k != "messages"} if has_rest else {}
        return {"kind": "chat", "messages": messages, "rest": _json(rest) if rest else None}
    documents = _documents(value)
    if documents is not None:
        return {"kind": "documents", "documents": documents}
    if isinstance(value, bool | int | float):
        return {"kind": "scalar", "text": json.dumps(value)}
    return _json(value)


def _text(text: str) -> dict:
    return {
        "kind": "text",
        "text": text,
        "preview": text[:TEXT_PREVIEW_CHARS],
        "long": len(text) > TEXT_PREVIEW_CHARS,
    }


def _json(value) -> dict:
    text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    lines = text.count("\n") + 1
    if isinstance(value, dict):
        summary = f"Object, {len(value)} key{'s' if len(value) != 1 else ''}"
    elif isinstance(value, list):
        summary = f"List, {len(value)} item{'s' if len(value) != 1 else ''}"
    else:
        summary = "Value"
    return {"kind": "json", "text": text, "summary": summary, "long": lines > JSON_PREVIEW_LINES}


def _content_text(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text", "") if isinstance(p, dict) else str(p) for p in content]
        return "\n".join(p for p in parts if p)
    return "" if content is None else json.dumps(content, ensure_ascii=False)


def _message_parts(message: dict) -> tuple[object, list]:
    """Content and tool calls of a message; GenAI-convention messages carry typed ``parts``."""
    parts = message.get("parts")
    if not isinstance(parts, list) or "content" in message:
        return message.get("content"), message.get("tool_calls") or []
    parts = [p for p in parts if isinstance(p, dict)]
    text = [{"text": p.get("content")} for p in parts if p.get("type") == "text"]
    calls = [p for p in parts if p.get("type") == "tool_call"]
    return text, calls


def _chat_messages(value) -> list[dict] | None:
    """Messages of an OpenAI/MLflow-style (or GenAI-convention) chat request or response."""
    if isinstance(value, dict):
        if isinstance(value.get("messages"), list):
            value = value["messages"]
        elif isinstance(value.get("choices"), list):
            value = [c.get("message") for c in value["choices"] if isinstance(c, dict)]
        else:
            return None
    if not value or not isinstance(value, list):
        return None
    if not all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in value):
        return None
    messages = []
    for message in value:
        content, tool_calls = _message_parts(message)
        messages.append(
            {
                "role": message["role"],
                "text": _text(_content_text(content)),
                "tool_calls": _json(tool_calls) if tool_calls else None,
            }
        )
    return messages


def _documents(value) -> list[dict] | None:
    """Retrieved documents (MLflow's page_content / metadata / id shape), or None."""
    if not value or not isinstance(value, list):
        return None
    if not all(isinstance(d, dict) and "page_content" in d for d in value):
        return None
    return [
        {
            "text": _text(_content_text(d.get("page_content"))),
            "id": str(d.get("id") or (d.get("metadata") or {}).get("doc_uri") or ""),
            "metadata": _json(d["metadata"]) if d.get("metadata") else None,
        }
        for d in value
    ]


def describe_span(span: Span) -> dict:
    """Everything the span detail partial shows, computed once on the server."""
    attributes = span.attributes if isinstance(span.attributes, dict) else {}
    events = span.events if isinstance(span.events, list) else []
    shown_events = [_event(span, e) for e in events if isinstance(e, dict)]
    return {
        "span": span,
        "type_label": TYPE_LABELS.get(span.span_type, span.span_type),
        "duration": format_duration(span.duration_ms),
        "tokens": _token_counts(attributes.get(CHAT_USAGE)),
        "inputs": show_value(span.inputs),
        "outputs": show_value(span.outputs),
        "attachments": _attachments(span.trace.trace_id, [span.inputs, span.outputs]),
        "attributes": [
            (key, show_value(value))
            for key, value in sorted(attributes.items())
            if key not in HIDDEN_ATTRIBUTES
        ],
        "events": shown_events,
        "exceptions": [e for e in shown_events if e["exception"]],
        "failed": span.status == Span.Status.ERROR,
    }


def _attachments(trace_id: str, values: list) -> list[dict]:
    """Files the span's inputs and outputs refer to (``mlflow-attachment://<uuid>?...``)."""
    found = []

    def walk(value, depth):
        if isinstance(value, str) and value.startswith(ATTACHMENT_SCHEME):
            found.append(_attachment(trace_id, value))
        elif isinstance(value, dict) and depth < MAX_ATTACHMENT_DEPTH:
            for item in value.values():
                walk(item, depth + 1)
        elif isinstance(value, list) and depth < MAX_ATTACHMENT_DEPTH:
            for item in value:
                walk(item, depth + 1)

    for value in values:
        walk(value, 0)
    return [a for a in found if a is not None]


def _attachment(trace_id: str, ref: str) -> dict | None:
    parsed = urlsplit(ref)
    query = parse_qs(parsed.query)
    attachment_id = parsed.netloc
    if not attachment_id:
        return None
    return {
        "url": reverse("traces:attachment", args=[trace_id, attachment_id]),
        "content_type": (query.get("content_type") or ["file"])[0],
        "size": (query.get("size") or [""])[0],
    }


def _token_counts(usage) -> str:
    """``120 in · 30 out · 150 tokens`` from MLflow's token usage attribute."""
    if not isinstance(usage, dict):
        return ""
    labels = (("input_tokens", "in"), ("output_tokens", "out"), ("total_tokens", "tokens"))
    return " · ".join(
        f"{usage[key]:,} {label}" for key, label in labels if isinstance(usage.get(key), int)
    )


def _attributes_of(event: dict) -> dict:
    return event.get("attributes") if isinstance(event.get("attributes"), dict) else {}


def first_exception(events) -> str:
    """ "type: message" of the first exception among a span's events, "" without one."""
    for event in events if isinstance(events, list) else []:
        if isinstance(event, dict) and event.get("name") == "exception":
            attributes = _attributes_of(event)
            parts = (attributes.get("exception.type"), attributes.get("exception.message"))
            return ": ".join(str(part) for part in parts if part)
    return ""


def _event(span: Span, event: dict) -> dict:
    attributes = _attributes_of(event)
    timestamp = event.get("timestamp_ns", event.get("time_unix_nano", event.get("timestamp")))
    offset = None
    if isinstance(timestamp, int):
        offset = format_duration((timestamp - span.start_time_ns) / 1_000_000)
    name = str(event.get("name", "event"))
    return {
        "name": name,
        "offset": offset,
        "exception": name == "exception",
        "type": str(attributes.get("exception.type", "")),
        "message": str(attributes.get("exception.message", "")),
        "stacktrace": str(attributes.get("exception.stacktrace", "")),
        "attributes": show_value(attributes),
    }
