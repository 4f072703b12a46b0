"""The one place that turns what traced apps send into Trace and Span rows.

Three payloads arrive, in any order, possibly more than once, for traces still running:
- OTLP ``ExportTraceServiceRequest`` (protobuf or OTLP JSON) on ``/v1/traces``;
- the TraceInfoV3 of StartTraceV3, which the MLflow client sends when the root span ends;
- the ``traces.json`` artifact, the span upload of clients that do not use OTLP;
and, once the trace info is in, the trace's attachments (files its span values refer to).

Invariants:
- Every call runs in one transaction; bad input raises IngestError before anything is written.
- A span is keyed by (trace, span_id): a re-sent span replaces the stored one.
- Spans that arrive before their trace info create an IN_PROGRESS trace, as the MLflow
  server does. Until StartTraceV3 arrives (it marks the trace ``infoFinalized``), the root
  span decides the trace's state, times and previews, so a plain OpenTelemetry app that never
  sends trace info still gets a complete trace. Once finalized, spans no longer change them.
- ``Trace.span_count`` and ``span_bytes`` change in the same transaction as every span
  write, by what it inserted and replaced. A span batch is one INSERT … ON CONFLICT DO
  NOTHING; only re-sent spans take a second statement. The trace row is locked only when a
  root span may change it or spans replace others; an existing trace names its experiment,
  so the experiment is looked up only for a new trace.
- OTLP spans are read as the MLflow server reads them: filed under ``tr-`` + the OTLP trace
  id whatever ``mlflow.traceRequestId`` they carry, with OpenTelemetry GenAI conventions
  mapped by ``otel_conventions``.
- StartTraceV3 may come before the spans its assessments name (annotation keeps those).
"""

import base64
import functools
import json
import math
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, Count, F, Q, Sum, Value, When
from django.db.models.functions import Coalesce, Least
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from . import otel_conventions
from .models import (
    SESSION_METADATA_KEY,
    SOURCE_RUN_METADATA_KEY,
    TRACE_NAME_TAG,
    USER_METADATA_KEY,
    Experiment,
    Span,
    Trace,
    TraceAttachment,
)
from .serializers import REQUEST_ID, SPAN_INPUTS, SPAN_OUTPUTS
from .validation import (
    INT64_MAX,
    MAX_TIMESTAMP_MS,
    MAX_TRACE_NAME_LENGTH,
    InvalidInput,
    check_int,
    check_json,
    check_text,
    parse_id,
)

INFO_FINALIZED = "mlflow.trace.infoFinalized"
SPAN_TYPE = "mlflow.spanType"
TRACE_TAG_PREFIX = "mlflow.traceTag."
PREVIEW_LENGTH = 1000
SERVICE_NAME = "service.name"
# The OTLP clients whose resource service.name the MLflow server copies onto root spans; it
# keeps free-form names of other senders out of the span.
KNOWN_SERVICE_NAMES = frozenset(
    {"claude-code", "codex_cli_rs", "codex_vscode", "gemini-cli", "qwen-code"}
)
_STATUS_BY_CODE = {0: Span.Status.UNSET, 1: Span.Status.OK, 2: Span.Status.ERROR}
_STATUS_BY_NAME = {
    "STATUS_CODE_UNSET": Span.Status.UNSET,
    "STATUS_CODE_OK": Span.Status.OK,
    "STATUS_CODE_ERROR": Span.Status.ERROR,
    "UNSET": Span.Status.UNSET,
    "OK": Span.Status.OK,
    "ERROR": Span.Status.ERROR,
}
_JSON_ID_FIELDS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")
MAX_TRACE_ID_LENGTH = 64
_TRACE_ID = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._:-]{{0,{MAX_TRACE_ID_LENGTH - 1}}}")
_TRACE_STATES = {"OK", "ERROR", "IN_PROGRESS", "STATE_UNSPECIFIED"}
# OpenTelemetry semantic-convention attributes the MLflow server copies into trace metadata.
_SESSION_ATTRIBUTES = ("session.id", "gen_ai.conversation.id")
_USER_ATTRIBUTE = "user.id"
_SPAN_UPDATE_FIELDS = [
    "parent_span_id",
    "name",
    "span_type",
    "start_time_ns",
    "end_time_ns",
    "status",
    "status_message",
    "inputs",
    "outputs",
    "attributes",
    "events",
    "size_bytes",
]


class IngestError(ValueError):
    """The payload cannot be stored; the message says why (``status`` for the sender)."""

    status = 400


class SpanConversionError(IngestError):
    """An OTLP span that is no span: the MLflow server answers 422."""

    status = 422


@dataclass
class SpanRecord:
    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    start_time_ns: int
    end_time_ns: int | None
    status: str
    status_message: str = ""
    inputs: object = None
    outputs: object = None
    attributes: dict = field(default_factory=dict)
    events: list = field(default_factory=list)

    @property
    def span_type(self) -> str:
        return str(self.attributes.get(SPAN_TYPE) or "UNKNOWN")[:64]


# -- parsing -------------------------------------------------------------------------------


OTLP_MEDIA_TYPES = ("application/x-protobuf", "application/protobuf", "application/json")


def otlp_media_type(content_type: str) -> str:
    """The media type of an OTLP body; the MLflow server checks it before reading the body."""
    media_type = content_type.split(";")[0].strip().lower()
    if media_type not in OTLP_MEDIA_TYPES:
        raise IngestError(
            f"Invalid Content-Type: {content_type or '(none)'}. "
            "Expected application/x-protobuf or application/json."
        )
    return media_type


def parse_otlp(body: bytes, media_type: str) -> list[SpanRecord]:
    """Spans of an OTLP ExportTraceServiceRequest, protobuf or OTLP JSON (hex ids).

    A body without resource spans is a 400, one whose resource spans hold no spans is
    accepted with nothing to store, and a span without ids is a 422, as in MLflow.
    """
    message = ExportTraceServiceRequest()
    try:
        if media_type == "application/json":
            json_format.Parse(_hex_ids_to_base64(body), message, ignore_unknown_fields=True)
        else:
            message.ParseFromString(body)
    except (DecodeError, json_format.ParseError, RecursionError, ValueError) as exc:
        if isinstance(exc, IngestError):
            raise
        raise IngestError("Invalid OpenTelemetry format: the body does not parse.") from None
    if not message.resource_spans:
        raise IngestError("Invalid OpenTelemetry format: no spans found.")
    records = []
    for resource_spans in message.resource_spans:
        service_name = _service_name(resource_spans.resource)
        for scope_spans in resource_spans.scope_spans:
            records.extend(_record_from_proto(span, service_name) for span in scope_spans.spans)
    return records


def _hex_ids_to_base64(body: bytes) -> str:
    """OTLP JSON writes ids in hex; protobuf's JSON mapping wants base64 for bytes fields."""
    data = json.loads(body)
    if not isinstance(data, dict):
        raise IngestError("Invalid OpenTelemetry format: expected a JSON object.")
    for resource_spans in _list(data.get("resourceSpans") or data.get("resource_spans")):
        scopes = resource_spans.get("scopeSpans") or resource_spans.get("scope_spans")
        for scope_spans in _list(scopes):
            for span in _list(scope_spans.get("spans")):
                for key in _JSON_ID_FIELDS:
                    if isinstance(span.get(key), str) and span[key]:
                        span[key] = base64.b64encode(bytes.fromhex(span[key])).decode()
    return json.dumps(data)


def _list(value) -> list:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise IngestError("Invalid OpenTelemetry format: expected a list of objects.")
    return value


def _service_name(resource) -> str | None:
    """The resource's service.name when it is one MLflow copies to root spans."""
    for attribute in resource.attributes:
        if attribute.key == SERVICE_NAME:
            name = _decode(attribute.value)
            return str(name) if str(name) in KNOWN_SERVICE_NAMES else None
    return None


def _record_from_proto(span, service_name: str | None = None) -> SpanRecord:
    if len(span.trace_id) != 16 or len(span.span_id) != 8:
        raise SpanConversionError("Every span needs a 16-byte trace_id and an 8-byte span_id.")
    if span.parent_span_id and len(span.parent_span_id) != 8:
        raise SpanConversionError("A parent_span_id must have 8 bytes.")
    trace_id = "tr-" + span.trace_id.hex()
    attributes = {_clean(a.key): _decode(a.value) for a in span.attributes}
    inputs, outputs = attributes.pop(SPAN_INPUTS, None), attributes.pop(SPAN_OUTPUTS, None)
    attributes, inputs, outputs = otel_conventions.translate(attributes, inputs, outputs)
    # The trace is the OTLP trace id's, whatever request id the sender wrote, as in MLflow.
    attributes[REQUEST_ID] = trace_id
    if service_name and not span.parent_span_id:
        attributes[SERVICE_NAME] = service_name
    return SpanRecord(
        trace_id=trace_id,
        span_id=span.span_id.hex(),
        parent_span_id=span.parent_span_id.hex() if span.parent_span_id else None,
        name=_clean(span.name)[:500],
        start_time_ns=span.start_time_unix_nano,
        end_time_ns=span.end_time_unix_nano or None,
        status=_STATUS_BY_CODE.get(span.status.code, Span.Status.UNSET),
        status_message=_clean(span.status.message),
        inputs=inputs,
        outputs=outputs,
        attributes=attributes,
        events=[
            {
                "name": _clean(event.name),
                "time_unix_nano": event.time_unix_nano,
                "attributes": {_clean(a.key): _decode(a.value) for a in event.attributes},
            }
            for event in span.events
        ],
    )


def _clean(text: str) -> str:
    # PostgreSQL text and jsonb cannot hold NUL characters.
    return text.replace("\x00", "") if "\x00" in text else text


def _decode(value):
    """An OTLP AnyValue as a JSON-compatible Python value."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "string_value":
        return _clean(value.string_value)
    if kind == "kvlist_value":
        return {_clean(kv.key): _decode(kv.value) for kv in value.kvlist_value.values}
    if kind == "array_value":
        return [_decode(item) for item in value.array_value.values]
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    if kind == "double_value":
        number = value.double_value
        return number if math.isfinite(number) else str(number)
    return getattr(value, kind)


def parse_artifact_spans(trace_id: str, payload) -> list[SpanRecord]:
    """Spans of a ``traces.json`` artifact: ``{"spans": [...]}`` with JSON-encoded attributes."""
    if not isinstance(payload, dict) or not isinstance(payload.get("spans"), list):
        raise IngestError('traces.json must be an object with a "spans" list.')
    return [_record_from_artifact(trace_id, span) for span in payload["spans"]]


def _record_from_artifact(trace_id: str, span) -> SpanRecord:
    if not isinstance(span, dict):
        raise IngestError("Every span in traces.json must be an object.")
    try:
        attributes = {
            _json_clean(key): _json_clean(_loads_attribute(value))
            for key, value in (span.get("attributes") or {}).items()
        }
        status = span.get("status") or {}
        parent = span.get("parent_span_id")
        return SpanRecord(
            trace_id=trace_id,
            span_id=_artifact_id(span["span_id"], 8),
            parent_span_id=_artifact_id(parent, 8) if parent else None,
            name=_clean(str(span.get("name") or ""))[:500],
            start_time_ns=int(span["start_time_unix_nano"]),
            end_time_ns=int(span["end_time_unix_nano"]) if span.get("end_time_unix_nano") else None,
            status=_STATUS_BY_NAME.get(status.get("code"), Span.Status.UNSET),
            status_message=_clean(str(status.get("message") or "")),
            inputs=attributes.pop(SPAN_INPUTS, None),
            outputs=attributes.pop(SPAN_OUTPUTS, None),
            attributes=attributes,
            events=_json_clean(list(span.get("events") or [])),
        )
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError, RecursionError) as exc:
        if isinstance(exc, IngestError):
            raise
        raise IngestError(f"A span in traces.json is malformed: {exc!s}.") from None


def _loads_attribute(value):
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value
    except RecursionError:
        raise IngestError("A span attribute in traces.json is nested too deeply.") from None


def _artifact_id(value: str, size: int) -> str:
    """Span ids in traces.json are base64 bytes (older clients wrote hex)."""
    if len(value) == size * 2 and all(c in "0123456789abcdef" for c in value):
        return value
    raw = base64.b64decode(value, validate=True)
    if len(raw) != size:
        raise IngestError(f"Span id {value!r} does not have {size} bytes.")
    return raw.hex()


def _json_clean(value):
    if isinstance(value, str):
        return _clean(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {_clean(str(k)): _json_clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_clean(v) for v in value]
    return value


@dataclass
class TraceInfo:
    """The parts of a TraceInfoV3 that Tracemark stores."""

    trace_id: str
    experiment_id: int
    request_time: int
    execution_duration: int | None
    state: str
    client_request_id: str | None
    request_preview: str
    response_preview: str
    trace_metadata: dict
    tags: dict


def parse_trace_info(data) -> TraceInfo:
    if not isinstance(data, dict):
        raise IngestError("Missing value for required parameter 'trace.trace_info'.")
    trace_id = data.get("trace_id")
    if not isinstance(trace_id, str) or not is_trace_id(trace_id):
        raise IngestError(
            f"Invalid trace_id {trace_id!r}: expected up to {MAX_TRACE_ID_LENGTH} letters, "
            "digits and '-', '_', '.' or ':'."
        )
    location = data.get("trace_location")
    experiment = location.get("mlflow_experiment") if isinstance(location, dict) else None
    experiment_id = experiment.get("experiment_id") if isinstance(experiment, dict) else None
    try:
        experiment_id = parse_id(experiment_id, where="trace_location experiment_id")
    except InvalidInput as exc:
        raise IngestError(str(exc)) from None
    state = data.get("state") or "STATE_UNSPECIFIED"
    if not isinstance(state, str) or state not in _TRACE_STATES:
        raise IngestError(f"Invalid trace state {state!r}.")
    client_request_id = _optional_str(data, "client_request_id")
    if client_request_id is not None and len(client_request_id) > 255:
        raise IngestError("client_request_id is longer than 255 characters.")
    tags = _string_map(data, "tags")
    if len(tags.get(TRACE_NAME_TAG, "")) > MAX_TRACE_NAME_LENGTH:
        raise IngestError(f"The trace name is longer than {MAX_TRACE_NAME_LENGTH} characters.")
    return TraceInfo(
        trace_id=trace_id,
        experiment_id=experiment_id,
        request_time=parse_timestamp(data.get("request_time"), "request_time"),
        execution_duration=parse_duration(data.get("execution_duration")),
        state=Trace.State.IN_PROGRESS if state == "STATE_UNSPECIFIED" else state,
        client_request_id=client_request_id or None,
        request_preview=_optional_str(data, "request_preview") or "",
        response_preview=_optional_str(data, "response_preview") or "",
        trace_metadata=_string_map(data, "trace_metadata"),
        tags=tags,
    )


def is_trace_id(value: str) -> bool:
    """Trace ids as MLflow takes them: its own ``tr-<32 hex>``, and any other the client picks
    (``tr-1234`` in MLflow's tests). A slash would not fit the URLs trace ids appear in."""
    return _TRACE_ID.fullmatch(value) is not None


def _optional_str(data: dict, name: str) -> str | None:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise IngestError(f"{name} must be a string.")
    return _clean(value) if value else value


def _string_map(data: dict, name: str) -> dict:
    value = data.get(name) or {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise IngestError(f"{name} must map strings to strings.")
    return {_clean(k): _clean(v) for k, v in value.items()}


def parse_timestamp(value, name: str) -> int:
    """google.protobuf.Timestamp JSON (RFC 3339) as milliseconds since the epoch."""
    if not isinstance(value, str):
        raise IngestError(f"{name} must be an RFC 3339 timestamp string.")
    try:
        moment = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise IngestError(f"{name} is not an RFC 3339 timestamp: {value!r}.") from None
    if moment.tzinfo is None:
        raise IngestError(f"{name} needs a time zone: {value!r}.")
    ms = round(moment.timestamp() * 1000)
    if not 0 <= ms <= MAX_TIMESTAMP_MS:
        raise IngestError(f"{name} must lie between 1970 and 9999: {value!r}.")
    return ms


def parse_duration(value) -> int | None:
    """google.protobuf.Duration JSON ("0.033s") as milliseconds."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.endswith("s"):
        raise IngestError(f"execution_duration must be a duration such as '0.5s': {value!r}.")
    try:
        seconds = float(value[:-1])
    except ValueError:
        raise IngestError(f"execution_duration is not a duration: {value!r}.") from None
    if not math.isfinite(seconds) or not 0 <= seconds * 1000 <= MAX_TIMESTAMP_MS:
        raise IngestError(f"execution_duration is not a duration: {value!r}.")
    return round(seconds * 1000)


class TraceTooLarge(IngestError):
    """The spans would take a trace past MAX_TRACE_SPANS or MAX_TRACE_BYTES (a 413)."""


def check_records(records: list[SpanRecord]) -> dict[tuple[str, str], int]:
    """Refuse spans the readers cannot serve back: times outside int64 nanoseconds, values
    the client's protobuf parser refuses (integers beyond int64, deep nesting), and events
    that are not ``{"name": str, "time_unix_nano": int, "attributes": {...}}``.

    Returns each span's size as JSON, about, by (trace id, span id).
    """
    sizes = {}
    try:
        for record in records:
            where = f"Span {record.span_id}"
            check_text(record.name, where=f"{where} name")
            check_text(record.status_message, where=f"{where} status message")
            check_int(record.start_time_ns, where=f"{where} start time", low=0)
            if record.end_time_ns is not None:
                check_int(record.end_time_ns, where=f"{where} end time", low=0)
            sizes[record.trace_id, record.span_id] = span_size(record)
            _check_events(record.events, where)
    except InvalidInput as exc:
        raise IngestError(str(exc)) from None
    return sizes


def _check_trace_limits(trace: Trace, spans: list[SpanRecord], sizes: dict) -> None:
    """Refuse spans that would take the trace past its limits; the spans they replace count
    once. The exact count runs only when the stored totals come near a limit."""
    max_spans, max_bytes = settings.TRACEMARK_MAX_TRACE_SPANS, settings.TRACEMARK_MAX_TRACE_BYTES
    added = sum(sizes[trace.trace_id, r.span_id] for r in spans)
    count, size = trace.span_count + len(spans), trace.span_bytes + added
    if count > max_spans or size > max_bytes:
        kept = (
            Span.objects.filter(trace=trace)
            .exclude(span_id__in=[r.span_id for r in spans])
            .aggregate(n=Count("id"), size=Coalesce(Sum("size_bytes"), 0))
        )
        count, size = kept["n"] + len(spans), kept["size"] + added
    if count > max_spans:
        raise TraceTooLarge(f"A trace may hold at most {max_spans} spans (MAX_TRACE_SPANS).")
    if size > max_bytes:
        raise TraceTooLarge(
            f"A trace's spans may take at most {max_bytes} bytes as JSON (MAX_TRACE_BYTES)."
        )


def span_size(span) -> int:
    """A span's content size as JSON, about (a SpanRecord or a Span); raises InvalidInput for
    content the client's protobuf parser refuses (integers beyond int64, deep nesting)."""
    size = len(span.name) + len(span.status_message)
    for name in ("inputs", "outputs", "attributes", "events"):
        where = f"Span {span.span_id} {name}"
        size += check_json(getattr(span, name), where=where, max_int=INT64_MAX)
    return size


def _check_events(events, where: str) -> None:
    if not isinstance(events, list):
        raise InvalidInput(f"{where} events must be a list.")
    for event in events:
        if not isinstance(event, dict):
            raise InvalidInput(f"{where} events must be objects.")
        if not isinstance(event.get("name", ""), str):
            raise InvalidInput(f"{where} event names must be strings.")
        time_ns = event.get("time_unix_nano", 0)
        if isinstance(time_ns, bool) or not isinstance(time_ns, int):
            raise InvalidInput(f"{where} event times must be integers.")
        check_int(time_ns, where=f"{where} event time", low=0)
        if not isinstance(event.get("attributes") or {}, dict):
            raise InvalidInput(f"{where} event attributes must be an object.")


# -- writing ------------------------------------------------------------------------------


@transaction.atomic
def store_spans(experiment: Experiment | int, records: list[SpanRecord]) -> None:
    """Upsert spans, creating IN_PROGRESS traces for unknown trace ids.

    ``experiment`` (or its id) is looked up only for a new trace: Experiment.DoesNotExist.
    Raises TraceTooLarge beyond a trace's limits, and IngestError for what cannot be stored.
    """
    sizes = check_records(records)
    by_key = {(r.trace_id, r.span_id): r for r in records}  # a repeated span: the last wins
    by_trace: dict[str, list[SpanRecord]] = {}
    for record in by_key.values():
        by_trace.setdefault(record.trace_id, []).append(record)
    traces = _traces_for_spans(experiment, by_trace)
    for trace_id, trace in traces.items():
        _check_trace_limits(trace, by_trace[trace_id], sizes)
    rows = [
        Span(
            trace=traces[r.trace_id],
            span_id=r.span_id,
            parent_span_id=r.parent_span_id,
            name=r.name,
            span_type=r.span_type,
            start_time_ns=r.start_time_ns,
            end_time_ns=r.end_time_ns,
            status=r.status,
            status_message=r.status_message,
            inputs=r.inputs,
            outputs=r.outputs,
            attributes=r.attributes,
            events=r.events,
            size_bytes=sizes[r.trace_id, r.span_id],
        )
        for r in by_key.values()
    ]
    inserted = _insert_new(rows)
    replaced = [row for row in rows if (row.trace_id, row.span_id) not in inserted]
    replaced_bytes = _replace(replaced, traces) if replaced else {}
    for trace_id, trace in traces.items():
        spans = by_trace[trace_id]
        added = sum(1 for r in spans if (trace.pk, r.span_id) in inserted)
        grown = sum(sizes[trace_id, r.span_id] for r in spans) - replaced_bytes.get(trace.pk, 0)
        _count_spans(trace, spans, added, grown)


def _traces_for_spans(experiment, by_trace: dict[str, list[SpanRecord]]) -> dict[str, Trace]:
    """The traces of the spans, created when missing; locked only where a root span is among
    them, since only a root span changes more of the trace row than its span totals."""
    locked = [trace_id for trace_id, spans in by_trace.items() if _has_root(spans)]
    traces = _lock(locked) if locked else {}
    unlocked = [trace_id for trace_id in by_trace if trace_id not in locked]
    if unlocked:
        traces.update(_fetch(unlocked))
    missing = [trace_id for trace_id in by_trace if trace_id not in traces]
    if missing:
        if not isinstance(experiment, Experiment):
            experiment = Experiment.objects.by_id(experiment)
        Trace.objects.bulk_create(
            [
                Trace(
                    trace_id=trace_id,
                    experiment=experiment,
                    request_time=min(r.start_time_ns for r in by_trace[trace_id]) // 1_000_000,
                )
                for trace_id in missing
            ],
            ignore_conflicts=True,
        )
        traces.update(_lock(missing))
    return traces


def _has_root(spans: list[SpanRecord]) -> bool:
    return any(r.parent_span_id is None for r in spans)


# Without a root span, only the totals and the request time are read and changed. Every
# span an app sends is a request of its own, so the statements that most span requests run
# are written out once rather than built by the ORM each time (see _fetch, _count_spans).
# In the model's field order, which Model.from_db expects.
_FETCHED = tuple(
    field.attname
    for field in Trace._meta.concrete_fields
    if field.attname in {"id", "trace_id", "state", "request_time", "span_count", "span_bytes"}
)


def _fetch(trace_ids) -> dict[str, Trace]:
    """The traces of these ids, with only _FETCHED read (the rest deferred)."""
    trace_ids = list(trace_ids)
    with connection.cursor() as cursor:
        cursor.execute(_fetch_sql(len(trace_ids)), trace_ids)
        rows = cursor.fetchall()
    traces = (Trace.from_db(connection.alias, _FETCHED, row) for row in rows)
    return {trace.trace_id: trace for trace in traces}


@functools.cache
def _fetch_sql(count: int) -> str:
    quote = connection.ops.quote_name
    columns = ", ".join(quote(Trace._meta.get_field(name).column) for name in _FETCHED)
    ids = ", ".join(["%s"] * count)
    return f"SELECT {columns} FROM {quote(Trace._meta.db_table)} WHERE trace_id IN ({ids})"  # noqa: S608


@functools.cache
def _add_totals_sql() -> str:
    quote = connection.ops.quote_name
    return (
        f"UPDATE {quote(Trace._meta.db_table)} SET span_count = span_count + %s,"  # noqa: S608
        " span_bytes = span_bytes + %s WHERE id = %s"
    )


_SPAN_FIELDS = [f for f in Span._meta.concrete_fields if not f.primary_key]


def _insert_new(rows: list[Span]) -> set[tuple[int, str]]:
    """Insert the spans that are not stored yet in one statement (per batch); return the
    (trace pk, span id) of those it inserted. The ORM's bulk_create says nothing of which
    rows it inserted, so the statement is written here from the model's metadata."""
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in _SPAN_FIELDS)
    row_sql = "(" + ", ".join(["%s"] * len(_SPAN_FIELDS)) + ")"
    key = f"{quote(Span._meta.get_field('trace').column)}, {quote('span_id')}"
    batch = max(1, connection.ops.bulk_batch_size(_SPAN_FIELDS, rows))
    inserted = set()
    with connection.cursor() as cursor:
        for first in range(0, len(rows), batch):
            chunk = rows[first : first + batch]
            params = [
                f.get_db_prep_save(f.pre_save(row, True), connection)
                for row in chunk
                for f in _SPAN_FIELDS
            ]
            cursor.execute(
                f"INSERT INTO {quote(Span._meta.db_table)} ({columns}) "  # noqa: S608
                f"VALUES {', '.join([row_sql] * len(chunk))} "
                f"ON CONFLICT ({key}) DO NOTHING RETURNING {key}",
                params,
            )
            inserted.update((trace_pk, span_id) for trace_pk, span_id in cursor.fetchall())
    return inserted


def _replace(rows: list[Span], traces: dict[str, Trace]) -> dict[int, int]:
    """Overwrite re-sent spans under their traces' locks; return the bytes they replaced, by
    trace pk."""
    _lock(trace.trace_id for trace in traces.values() if trace.pk in {r.trace_id for r in rows})
    old = (
        Span.objects.filter(trace__in={row.trace_id for row in rows})
        .filter(span_id__in={row.span_id for row in rows})
        .values_list("trace_id", "span_id", "size_bytes")
    )
    wanted = {(row.trace_id, row.span_id) for row in rows}
    replaced: dict[int, int] = {}
    for trace_pk, span_id, size in old:
        if (trace_pk, span_id) in wanted:
            replaced[trace_pk] = replaced.get(trace_pk, 0) + size
    Span.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["trace", "span_id"],
        update_fields=_SPAN_UPDATE_FIELDS,
        batch_size=500,
    )
    return replaced


def _count_spans(trace: Trace, spans: list[SpanRecord], added: int, grown: int) -> None:
    """Add the batch to the trace's totals; before StartTraceV3, a root span also fills in
    what the trace info would say (the trace is locked then)."""
    if _has_root(spans) and INFO_FINALIZED not in trace.trace_metadata:
        _complete_from_spans(trace, spans)
        trace.span_count = F("span_count") + added
        trace.span_bytes = F("span_bytes") + grown
        trace.save()
        return
    earliest = min(r.start_time_ns for r in spans) // 1_000_000
    if trace.state == Trace.State.IN_PROGRESS and earliest < trace.request_time:
        # Unlocked: a StartTraceV3 committed since the read keeps its request time.
        still_open = Q(state=Trace.State.IN_PROGRESS) & ~Q(trace_metadata__has_key=INFO_FINALIZED)
        Trace.objects.filter(pk=trace.pk).update(
            span_count=F("span_count") + added,
            span_bytes=F("span_bytes") + grown,
            request_time=Case(
                When(still_open, then=Least(F("request_time"), Value(earliest))),
                default=F("request_time"),
            ),
        )
        return
    with connection.cursor() as cursor:
        cursor.execute(_add_totals_sql(), [added, grown, trace.pk])


def _lock(trace_ids) -> dict[str, Trace]:
    return {
        trace.trace_id: trace
        for trace in Trace.objects.select_for_update()
        .filter(trace_id__in=list(trace_ids))
        .order_by("trace_id")
    }


def _complete_from_spans(trace: Trace, spans: list[SpanRecord]) -> None:
    """Derive what StartTraceV3 would have said from the spans, as the MLflow server does."""
    earliest = min(r.start_time_ns for r in spans) // 1_000_000
    if trace.state == Trace.State.IN_PROGRESS:
        trace.request_time = min(trace.request_time, earliest)
    root = next((r for r in spans if r.parent_span_id is None), None)
    if root is None:
        return
    trace.state = Trace.State.ERROR if root.status == Span.Status.ERROR else Trace.State.OK
    trace.request_time = root.start_time_ns // 1_000_000
    if root.end_time_ns:
        trace.execution_duration = root.end_time_ns // 1_000_000 - trace.request_time
    if not trace.request_preview and root.inputs is not None:
        trace.request_preview = _preview(root.inputs)
    if not trace.response_preview and root.outputs is not None:
        trace.response_preview = _preview(root.outputs)
    tags = {
        key.removeprefix(TRACE_TAG_PREFIX): str(value)
        for key, value in root.attributes.items()
        if key.startswith(TRACE_TAG_PREFIX)
    }
    trace.tags = {TRACE_NAME_TAG: root.name, **tags, **trace.tags}
    metadata = dict(trace.trace_metadata)
    for span in spans:
        attributes = span.attributes
        session = next((attributes[k] for k in _SESSION_ATTRIBUTES if attributes.get(k)), None)
        if session and SESSION_METADATA_KEY not in metadata:
            metadata[SESSION_METADATA_KEY] = str(session)
        if attributes.get(_USER_ATTRIBUTE) and USER_METADATA_KEY not in metadata:
            metadata[USER_METADATA_KEY] = str(attributes[_USER_ATTRIBUTE])
    trace.trace_metadata = metadata
    trace.copy_indexed_metadata()


def _preview(value) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= PREVIEW_LENGTH else text[: PREVIEW_LENGTH - 3] + "..."


# StartTraceV3 wraps this with the inline assessments in its own transaction and abandons
# it on any error, so a savepoint would only add two round trips.
@transaction.atomic(savepoint=False)
def start_trace(info: TraceInfo) -> tuple[Trace, bool]:
    """Store StartTraceV3's trace info; returns the trace and whether this finalized it.

    Raises Experiment.DoesNotExist for an unknown experiment; the experiment is looked up
    only when the trace is new or moves to another one.
    """
    trace = _lock([info.trace_id]).get(info.trace_id)
    if trace is None or trace.experiment_id != info.experiment_id:
        experiment = Experiment.objects.by_id(info.experiment_id)
        if trace is None:
            new = Trace(trace_id=info.trace_id, experiment=experiment, request_time=0)
            Trace.objects.bulk_create([new], ignore_conflicts=True)
            trace = _lock([info.trace_id])[info.trace_id]
        else:
            # Assessments keep their trace's experiment beside it (see traces.feedback).
            trace.assessments.update(experiment=experiment)
        trace.experiment = experiment
    first = INFO_FINALIZED not in trace.trace_metadata
    trace.request_time = info.request_time
    trace.execution_duration = info.execution_duration
    trace.state = info.state
    trace.client_request_id = info.client_request_id
    trace.request_preview = info.request_preview or trace.request_preview
    trace.response_preview = info.response_preview or trace.response_preview
    trace.trace_metadata = {**trace.trace_metadata, **info.trace_metadata, INFO_FINALIZED: "true"}
    trace.tags = {**trace.tags, **info.tags}
    trace.copy_indexed_metadata()
    trace.save()
    return trace, first


def is_attachment_id(value: str) -> bool:
    """Attachment ids are canonical UUIDs, as the MLflow client makes and checks them."""
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


def store_attachment(
    trace: Trace, attachment_id: str, content: bytes, content_type: str
) -> TraceAttachment:
    """Store (or replace) a file uploaded for the trace; the id must pass is_attachment_id."""
    attachment = TraceAttachment(
        trace=trace,
        attachment_id=attachment_id,
        content=content,
        size=len(content),
        content_type=_clean(content_type.strip())[:255] or "application/octet-stream",
    )
    TraceAttachment.objects.bulk_create(
        [attachment],
        update_conflicts=True,
        unique_fields=["trace", "attachment_id"],
        update_fields=["content", "size", "content_type", "uploaded_at"],
    )
    return attachment


@transaction.atomic
def set_tag(trace_id: str, key: str, value: str) -> None:
    """Raises Trace.DoesNotExist."""
    trace = Trace.objects.select_for_update().get(trace_id=trace_id)
    trace.tags = {**trace.tags, _clean(key): _clean(value)}
    trace.save(update_fields=["tags"])


@transaction.atomic
def delete_tag(trace_id: str, key: str) -> None:
    """Raises Trace.DoesNotExist, and KeyError for a tag the trace does not have."""
    trace = Trace.objects.select_for_update().get(trace_id=trace_id)
    tags = dict(trace.tags)
    del tags[key]
    trace.tags = tags
    trace.save(update_fields=["tags"])


@transaction.atomic
def delete_traces(
    experiment_id: int,
    *,
    trace_ids: list[str] | None = None,
    max_timestamp_millis: int | None = None,
    max_traces: int | None = None,
) -> int:
    """Delete traces by id, or the oldest ones up to a time; returns how many went."""
    traces = Trace.objects.filter(experiment_id=experiment_id)
    if trace_ids:
        traces = traces.filter(trace_id__in=trace_ids)
    else:
        traces = traces.filter(request_time__lte=max_timestamp_millis).order_by("request_time")
        if max_traces:
            traces = traces[:max_traces]
    pks = list(traces.values_list("pk", flat=True))
    Trace.objects.filter(pk__in=pks).delete()
    return len(pks)


@transaction.atomic
def link_to_run(trace_ids: list[str], *, run_id: str, experiment_id: int) -> int:
    """Name the run in each trace's ``mlflow.sourceRun`` metadata, as the client does for
    traces made inside a run; traces of other experiments, and unknown ids, are left alone.
    Returns how many traces were linked."""
    traces = Trace.objects.select_for_update().filter(
        trace_id__in=trace_ids, experiment_id=experiment_id
    )
    linked = []
    for trace in traces:
        trace.trace_metadata = {**trace.trace_metadata, SOURCE_RUN_METADATA_KEY: run_id}
        linked.append(trace)
    Trace.objects.bulk_update(linked, ["trace_metadata"])
    return len(linked)
