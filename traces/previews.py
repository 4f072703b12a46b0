"""A trace's request or response preview as a person reads it (pure).

Previews are JSON text as the traced app or ingest wrote them, often cut at a fixed length
with "...". ``readable_preview`` takes out what a reader wants: the last user message of a
chat request, the answer of a chat response (OpenAI chat, Anthropic messages and MLflow's
``{"messages": [...]}`` shapes), the string of a one-field object such as
``{"question": ...}``, a JSON string's text; other JSON comes back re-encoded with its unicode
unescaped. Text that is not JSON comes back as it is. The result is plain text for templates
to escape.
"""

import json
from typing import NamedTuple

TRUNCATION_MARK = "..."
# A cut inside a string may leave half an escape (\, \u, \u2, \u20, \u201) before the cut.
_LONGEST_CUT_ESCAPE = 5
# Single-field wrappers followed to the value inside, e.g. {"inputs": {"messages": [...]}}.
_MAX_DEPTH = 4

REQUEST, RESPONSE = "request", "response"
_ROLE = {REQUEST: "user", RESPONSE: "assistant"}
_UNPARSED = object()


class Readable(NamedTuple):
    text: str
    # The preview itself when the text leaves out structure (an object or a list), else None.
    raw_json: str | None


def readable_preview(preview: str, side: str = REQUEST) -> Readable:
    """The preview's readable text; ``side`` is ``"request"`` or ``"response"``."""
    value, truncated = _parse(preview)
    if value is _UNPARSED:
        return Readable(preview, None)
    text = _extract(value, _ROLE.get(side, "user"), _MAX_DEPTH)
    if text is None:
        text = json.dumps(value, ensure_ascii=False)
    structured = isinstance(value, dict | list)
    return Readable(text + "…" if truncated else text, preview if structured else None)


def _parse(preview: str):
    """The JSON value of the preview and whether it was cut short (then completed)."""
    try:
        return json.loads(preview), False
    except ValueError:
        pass
    if not preview.endswith(TRUNCATION_MARK):
        return _UNPARSED, False
    for candidate in _completions(preview.removesuffix(TRUNCATION_MARK)):
        try:
            return json.loads(candidate), True
        except ValueError:
            continue
    return _UNPARSED, False


def _completions(text: str):
    """Ways to close what a cut left open: the string, then the arrays and objects."""
    closers, in_string, escaped = [], False, False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            closers.append("]" if char == "[" else "}")
        elif char in "]}" and closers:
            closers.pop()
    tail = "".join(reversed(closers))
    if in_string:
        for cut in range(_LONGEST_CUT_ESCAPE + 1):
            yield text[: len(text) - cut] + '"' + tail
        yield text + '": null' + tail
    else:
        stripped = text.rstrip()
        yield stripped + tail
        yield stripped.removesuffix(",").removesuffix(":") + tail
        yield stripped + " null" + tail


def _extract(value, role: str, depth: int) -> str | None:
    """The text a reader wants from a JSON value, or None when no known shape fits."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return _from_messages(value, role)
    if not isinstance(value, dict) or depth == 0:
        return None
    if isinstance(value.get("messages"), list):
        return _from_messages(value["messages"], role)
    if isinstance(value.get("choices"), list):
        return _from_choices(value["choices"])
    if isinstance(value.get("role"), str) and "content" in value:
        return _content_text(value["content"])
    if len(value) == 1:
        return _extract(next(iter(value.values())), role, depth - 1)
    return None


def _from_messages(messages: list, role: str) -> str | None:
    """The last message of ``role`` (else the last message) of a chat."""
    if not messages or not all(isinstance(m, dict) and "role" in m for m in messages):
        return None
    chosen = next((m for m in reversed(messages) if m["role"] == role), messages[-1])
    return _content_text(chosen.get("content"))


def _from_choices(choices: list) -> str | None:
    """The first choice's message (chat completions) or text (completions)."""
    first = choices[0] if choices else None
    if not isinstance(first, dict):
        return None
    if isinstance(first.get("message"), dict):
        return _content_text(first["message"].get("content"))
    if isinstance(first.get("text"), str):
        return first["text"]
    return None


def _content_text(content) -> str | None:
    """A message's content: a string, or the text of its parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p.get("text") for p in content if isinstance(p, dict)]
        texts = [t for t in texts if isinstance(t, str)]
        return "\n".join(texts) if texts else None
    return None
