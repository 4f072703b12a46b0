"""What OpenTelemetry GenAI instrumentations say about a span, in MLflow's span attributes.

Apps instrumented with OpenInference, OpenLLMetry (Traceloop) or the OpenTelemetry GenAI
semantic conventions describe an LLM call with their own attributes. The MLflow server reads
them when it stores a span, and so does Tracemark, with the same keys and precedence:

- the span type, when the span has none (or ``UNKNOWN``), from the convention's kind;
- inputs and outputs, when the span has none, from its first non-empty value attribute;
- token usage (``mlflow.chat.tokenUsage``), model, provider and tool definitions, when absent.

Conventions are tried in MLflow's order (OpenInference, GenAI, Traceloop); the first one
whose attributes are present wins. docs/otel-conventions.md has the table.
"""

import json
import re
from dataclasses import dataclass, field

SPAN_TYPE = "mlflow.spanType"
CHAT_USAGE = "mlflow.chat.tokenUsage"
MODEL = "mlflow.llm.model"
PROVIDER = "mlflow.llm.provider"
TOOLS = "mlflow.chat.tools"
UNKNOWN = "UNKNOWN"


@dataclass(frozen=True)
class Convention:
    name: str
    kind_key: str
    kinds: dict[str, str]
    input_tokens: str
    output_tokens: str
    total_tokens: str | None = None
    cache_read_tokens: str | None = None
    cache_write_tokens: tuple[str, ...] = ()
    inputs: tuple[str | re.Pattern, ...] = ()
    outputs: tuple[str | re.Pattern, ...] = ()
    model: tuple[str, ...] = ()
    provider: str | None = None
    tools: tuple[str, ...] = field(default=())


OPENINFERENCE = Convention(
    name="OpenInference",
    kind_key="openinference.span.kind",
    kinds={
        kind: kind
        for kind in (
            "TOOL",
            "CHAIN",
            "LLM",
            "RETRIEVER",
            "EMBEDDING",
            "AGENT",
            "RERANKER",
            "UNKNOWN",
            "GUARDRAIL",
            "EVALUATOR",
        )
    },  # fmt: skip
    input_tokens="llm.token_count.prompt",
    output_tokens="llm.token_count.completion",
    total_tokens="llm.token_count.total",
    cache_read_tokens="llm.token_count.prompt_details.cache_read",
    cache_write_tokens=("llm.token_count.prompt_details.cache_write",),
    inputs=("input.value",),
    outputs=("output.value",),
    model=(
        "llm.response.model_name",
        "llm.model_name",
        "llm.request.model_name",
        "embedding.model_name",
    ),
    provider="llm.provider",
)
GENAI = Convention(
    name="OpenTelemetry GenAI",
    kind_key="gen_ai.operation.name",
    kinds={
        "chat": "CHAT_MODEL",
        "create_agent": "AGENT",
        "embeddings": "EMBEDDING",
        "execute_tool": "TOOL",
        "generate_content": "LLM",
        "invoke_agent": "AGENT",
        "text_completion": "LLM",
        "response": "LLM",
    },
    input_tokens="gen_ai.usage.input_tokens",
    output_tokens="gen_ai.usage.output_tokens",
    cache_read_tokens="gen_ai.usage.cache_read.input_tokens",
    cache_write_tokens=(
        "gen_ai.usage.cache_write.input_tokens",
        "gen_ai.usage.cache_creation.input_tokens",
    ),
    inputs=("gen_ai.input.messages", "gen_ai.tool.call.arguments"),
    outputs=("gen_ai.output.messages", "gen_ai.tool.call.result"),
    model=("gen_ai.response.model", "gen_ai.request.model"),
    provider="gen_ai.provider.name",
    tools=("gen_ai.tool.definitions",),
)
TRACELOOP = Convention(
    name="OpenLLMetry (Traceloop)",
    kind_key="traceloop.span.kind",
    kinds={
        "workflow": "WORKFLOW",
        "task": "TASK",
        "agent": "AGENT",
        "tool": "TOOL",
        "unknown": "UNKNOWN",
    },
    input_tokens="gen_ai.usage.prompt_tokens",
    output_tokens="gen_ai.usage.completion_tokens",
    total_tokens="llm.usage.total_tokens",
    inputs=(
        "traceloop.entity.input",
        re.compile(r"gen_ai\.prompt\.\d+\.content"),
        re.compile(r"gen_ai\.completion\.\d+\.tool_calls\.\d+\.arguments"),
    ),
    outputs=("traceloop.entity.output", re.compile(r"gen_ai\.completion\.\d+\.content")),
    provider="gen_ai.system",
)
CONVENTIONS = (OPENINFERENCE, GENAI, TRACELOOP)


def translate(attributes: dict, inputs, outputs) -> tuple[dict, object, object]:
    """The span's attributes, inputs and outputs with what its conventions say filled in."""
    attributes = dict(attributes)
    if attributes.get(SPAN_TYPE) in (None, "", UNKNOWN) and (kind := span_type(attributes)):
        attributes[SPAN_TYPE] = kind
    if inputs is None:
        inputs = _first(attributes, "inputs")
    if outputs is None:
        outputs = _first(attributes, "outputs")
    filled = {
        CHAT_USAGE: token_usage,
        MODEL: lambda a: _first(a, "model") or _model_of(inputs) or _model_of(outputs),
        PROVIDER: _provider,
        TOOLS: lambda a: _first(a, "tools"),
    }
    for key, read in filled.items():
        if key not in attributes and (value := read(attributes)) is not None:
            attributes[key] = value
    return attributes, inputs, outputs


def span_type(attributes: dict) -> str | None:
    for convention in CONVENTIONS:
        kind = attributes.get(convention.kind_key)
        if kind and (mapped := convention.kinds.get(_loads(kind))):
            return mapped
    return None


def token_usage(attributes: dict) -> dict | None:
    """``{input_tokens, output_tokens, total_tokens}`` from the first convention that has any."""
    for convention in CONVENTIONS:
        counts = {
            "input_tokens": _int(attributes.get(convention.input_tokens)),
            "output_tokens": _int(attributes.get(convention.output_tokens)),
            "total_tokens": _int(attributes.get(convention.total_tokens)),
        }
        if all(count is None for count in counts.values()):
            continue
        if counts["total_tokens"] is None and None not in (
            counts["input_tokens"],
            counts["output_tokens"],
        ):
            counts["total_tokens"] = counts["input_tokens"] + counts["output_tokens"]
        counts["cache_read_input_tokens"] = _int(attributes.get(convention.cache_read_tokens))
        counts["cache_creation_input_tokens"] = next(
            (
                n
                for k in convention.cache_write_tokens
                if (n := _int(attributes.get(k))) is not None
            ),
            None,
        )
        return {key: count for key, count in counts.items() if count is not None}
    return None


def _model_of(value) -> str | None:
    model = value.get("model") if isinstance(value, dict) else None
    return model if isinstance(model, str) and model else None


def _provider(attributes: dict):
    for convention in CONVENTIONS:
        if convention.provider and (value := _present(attributes.get(convention.provider))):
            return value
    return None


def _first(attributes: dict, part: str):
    """The first non-empty attribute named by a convention's ``part`` keys, as MLflow reads it."""
    for convention in CONVENTIONS:
        for key in getattr(convention, part):
            keys = [k for k in attributes if key.match(k)] if isinstance(key, re.Pattern) else [key]
            for name in keys:
                if (value := _present(attributes.get(name))) is not None:
                    return value
    return None


def _present(value):
    """The value as MLflow stores it, or None when it is empty (``""``, ``{}``, ``null``...)."""
    decoded = _loads(value)
    if not decoded:
        return None
    # MLflow keeps JSON text of an object, list or string as that JSON; other text stays text.
    return decoded if isinstance(decoded, dict | list | str) else value


def _loads(value):
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _int(value) -> int | None:
    value = _loads(value)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None
