"""Experiments, traces and spans in MLflow's wire shapes (protobuf JSON, snake_case names).

Spans go out as OTLP ``Span`` JSON with base64 ids and typed ``AnyValue`` attributes, the
shape the client rebuilds with ``Span.from_otel_proto``; the artifact form (``traces.json``)
carries JSON-encoded attribute strings instead.
"""

import base64
import json
import time

from django.db.models import BooleanField, ExpressionWrapper, Q

from .models import Span, Trace

SPANS_LOCATION_TAG = "mlflow.trace.spansLocation"
ARTIFACT_LOCATION_TAG = "mlflow.artifactLocation"
SPAN_INPUTS = "mlflow.spanInputs"
SPAN_OUTPUTS = "mlflow.spanOutputs"
REQUEST_ID = "mlflow.traceRequestId"
PROTOBUF_READ_MAX_SPANS = 100
# Span rows a single-trace read holds at once.
SPAN_READ_CHUNK = 100

_STATUS_CODES = {
    Span.Status.UNSET: "STATUS_CODE_UNSET",
    Span.Status.OK: "STATUS_CODE_OK",
    Span.Status.ERROR: "STATUS_CODE_ERROR",
}
SPAN_FIELDS = (
    "trace_id",
    "span_id",
    "parent_span_id",
    "name",
    "start_time_ns",
    "end_time_ns",
    "status",
    "status_message",
    "inputs",
    "outputs",
    "attributes",
    "events",
)

# The Trace columns trace_info and the span reads use, for reading traces as plain rows.
INFO_FIELDS = (
    "id",
    "trace_id",
    "experiment_id",
    "request_time",
    "execution_duration",
    "state",
    "trace_metadata",
    "tags",
    "client_request_id",
    "request_preview",
    "response_preview",
    "span_count",
    "span_bytes",
)


def info_rows(queryset):
    """``queryset``'s traces as named rows of INFO_FIELDS, which every function here takes in
    place of a Trace: API reads build no model instances."""
    return queryset.values_list(*INFO_FIELDS, named=True)


def ms_to_timestamp(ms: int) -> str:
    """google.protobuf.Timestamp JSON: RFC 3339 in UTC with milliseconds."""
    # time.strftime takes half the time of formatting a datetime: a page of search results
    # formats two hundred of these and more.
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(ms // 1000))}.{ms % 1000:03d}Z"


def ms_to_duration(ms: int | None) -> str:
    """google.protobuf.Duration JSON: seconds with 0 or 3 decimals, e.g. "0.033s"."""
    seconds, millis = divmod(max(ms or 0, 0), 1000)
    return f"{seconds}s" if not millis else f"{seconds}.{millis:03d}s"


def artifact_location(trace: Trace) -> str:
    return f"mlflow-artifacts:/{trace.experiment_id}/traces/{trace.trace_id}/artifacts"


def trace_info(trace: Trace, *, exported: bool = False) -> dict:
    """TraceInfoV3 without assessments (annotation.api adds those).

    Every trace's spans are in Tracemark's tables, and both read paths serve them. The
    ``spansLocation`` tag only picks the path the client takes: with it, traces/get and
    batchGet, whose protobuf JSON the client parses slowly (seconds for thousands of spans);
    without it, the ``traces.json`` artifact, plain JSON it parses several times faster. So
    large traces go without the tag, except in the answer to StartTraceV3 (``exported``),
    where the tag tells the client not to upload the spans a second time.
    """
    tags = {**trace.tags, ARTIFACT_LOCATION_TAG: artifact_location(trace)}
    if exported or trace.span_count <= PROTOBUF_READ_MAX_SPANS:
        tags[SPANS_LOCATION_TAG] = "TRACKING_STORE"
    else:
        tags.pop(SPANS_LOCATION_TAG, None)
    info = {
        "trace_id": trace.trace_id,
        "trace_location": {
            "type": "MLFLOW_EXPERIMENT",
            "mlflow_experiment": {"experiment_id": str(trace.experiment_id)},
        },
        "request_time": ms_to_timestamp(trace.request_time),
        "execution_duration": ms_to_duration(trace.execution_duration),
        "state": trace.state,
        "trace_metadata": trace.trace_metadata,
        "tags": tags,
    }
    if trace.client_request_id:
        info["client_request_id"] = trace.client_request_id
    if trace.request_preview:
        info["request_preview"] = trace.request_preview
    if trace.response_preview:
        info["response_preview"] = trace.response_preview
    return info


def experiment(exp) -> dict:
    return {
        "experiment_id": exp.experiment_id,
        "name": exp.name,
        "artifact_location": exp.artifact_location,
        "lifecycle_stage": exp.lifecycle_stage,
        "last_update_time": exp.last_update_time,
        "creation_time": exp.creation_time,
        "tags": [{"key": k, "value": v} for k, v in exp.tags.items()],
    }


def span_rows(traces) -> dict[int, list[tuple]]:
    """Span rows (named by SPAN_FIELDS) of the given traces in one query, keyed by trace pk,
    root first then by start."""
    rows: dict[int, list[tuple]] = {trace.id: [] for trace in traces}
    queryset = (
        Span.objects.filter(trace__in=list(rows)).order_by().values_list(*SPAN_FIELDS, named=True)
    )
    for row in queryset:
        rows[row.trace_id].append(row)
    for spans in rows.values():
        spans.sort(key=lambda row: (row.parent_span_id is not None, row.start_time_ns))
    return rows


def iter_span_rows(trace: Trace):
    """One trace's span rows in span_rows' order, read SPAN_READ_CHUNK at a time (PostgreSQL
    through a server-side cursor), so a read holds a chunk of the trace, not all of it."""
    is_child = ExpressionWrapper(Q(parent_span_id__isnull=False), output_field=BooleanField())
    return (
        Span.objects.filter(trace_id=trace.id)
        .order_by(is_child, "start_time_ns")
        .values_list(*SPAN_FIELDS, named=True)
        .iterator(chunk_size=SPAN_READ_CHUNK)
    )


def _b64_hex(hex_id: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_id)).decode("ascii")


def _otel_trace_id(trace: Trace) -> str:
    raw = trace.trace_id.removeprefix("tr-")
    try:
        return _b64_hex(raw)
    except ValueError:
        return base64.b64encode(raw.encode()[:16].ljust(16, b"\0")).decode("ascii")


def any_value(value) -> dict:
    """A JSON-compatible value as an OTLP AnyValue in protobuf JSON."""
    if isinstance(value, str):
        return {"string_value": value}
    if isinstance(value, bool):
        return {"bool_value": value}
    if isinstance(value, int):
        return {"int_value": value}
    if isinstance(value, float):
        return {"double_value": value}
    if isinstance(value, dict):
        return {
            "kvlist_value": {
                "values": [{"key": k, "value": any_value(v)} for k, v in value.items()]
            }
        }
    if isinstance(value, list):
        return {"array_value": {"values": [any_value(v) for v in value]}}
    return {}


def _span_attributes(row) -> dict:
    """A span row's attributes, with its inputs and outputs under MLflow's attribute keys."""
    merged = dict(row.attributes)
    if row.inputs is not None:
        merged[SPAN_INPUTS] = row.inputs
    if row.outputs is not None:
        merged[SPAN_OUTPUTS] = row.outputs
    return merged


def otlp_spans(trace: Trace, rows) -> list[dict]:
    """OTLP Span JSON for GetTrace and BatchGetTraces."""
    return list(iter_otlp_spans(trace, rows))


def iter_otlp_spans(trace: Trace, rows):
    trace_b64 = _otel_trace_id(trace)
    for row in rows:
        span = {
            "trace_id": trace_b64,
            "span_id": _b64_hex(row.span_id),
            "name": row.name,
            "start_time_unix_nano": row.start_time_ns,
            "end_time_unix_nano": row.end_time_ns or 0,
            "attributes": [
                {"key": key, "value": any_value(value)}
                for key, value in _span_attributes(row).items()
            ],
            "status": {"code": _STATUS_CODES[row.status]},
        }
        if row.parent_span_id:
            span["parent_span_id"] = _b64_hex(row.parent_span_id)
        if row.status_message:
            span["status"]["message"] = row.status_message
        if row.events:
            span["events"] = [
                {
                    "time_unix_nano": event.get("time_unix_nano", 0),
                    "name": event.get("name", ""),
                    "attributes": [
                        {"key": k, "value": any_value(v)}
                        for k, v in (event.get("attributes") or {}).items()
                    ],
                }
                for event in row.events
            ]
        yield span


def iter_artifact_spans(trace: Trace, rows):
    """The ``traces.json`` artifact form: attribute values JSON-encoded, as the client writes."""
    trace_b64 = _otel_trace_id(trace)
    # The client refuses artifact spans without the request id (plain OTel spans lack it).
    request_id = json.dumps(trace.trace_id)
    return (
        {
            "trace_id": trace_b64,
            "span_id": _b64_hex(row.span_id),
            "parent_span_id": _b64_hex(row.parent_span_id) if row.parent_span_id else None,
            "name": row.name,
            "start_time_unix_nano": row.start_time_ns,
            "end_time_unix_nano": row.end_time_ns,
            "events": row.events,
            "status": {"code": _STATUS_CODES[row.status], "message": row.status_message},
            "attributes": {
                REQUEST_ID: request_id,
                **{key: json.dumps(value) for key, value in _span_attributes(row).items()},
            },
            "links": [],
        }
        for row in rows
    )
