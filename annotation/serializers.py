"""Assessments in MLflow's wire shape, and traces with their assessments inlined.

Values travel as ``google.protobuf.Value``, which has only doubles: integers go out as floats
(``4`` → ``4.0``), as the MLflow server returns them. Expectations holding a list or an object
travel as a JSON string in ``serialized_value``.
"""

import json

from traces import serializers as trace_serializers
from traces.ingest import IngestError, parse_timestamp
from traces.rest import ApiError

from .models import Assessment, Kind, feedback_error
from .queues import hidden_answers_condition

JSON_FORMAT = "JSON_FORMAT"
MAX_ERROR_CODE_LENGTH = Assessment._meta.get_field("error_code").max_length


# The Assessment columns ``assessment`` reads; ``trace_id`` is the trace's key.
ASSESSMENT_FIELDS = (
    "trace_id",
    "assessment_id",
    "name",
    "kind",
    "value",
    "valid",
    "span_id",
    "source_type",
    "source_id",
    "create_time",
    "last_update_time",
    "error_code",
    "error_message",
    "stack_trace",
    "rationale",
    "metadata",
    "overrides_id",
)


def live_assessments(traces, *, user) -> dict[int, list[dict]]:
    """Per trace key, the assessments the API shows ``user`` in wire shape: overridden ones
    included, what a blind queue hides from them left out inside the same query. ``traces``
    are Traces or ``traces.serializers.info_rows``.

    The ids of overridden assessments come in a second query, run only when there are any:
    joining them made PostgreSQL hash the whole assessment table for every page of traces.
    """
    if not traces:
        return {}
    trace_ids = {trace.id: trace.trace_id for trace in traces}
    rows = list(
        Assessment.objects.live()
        .exclude(hidden_answers_condition(user=user))
        .filter(trace__in=list(trace_ids))
        .values_list(*ASSESSMENT_FIELDS, named=True)
    )
    overridden_pks = {row.overrides_id for row in rows if row.overrides_id}
    overridden = {}
    if overridden_pks:
        overridden = dict(
            Assessment.objects.filter(pk__in=overridden_pks).values_list("pk", "assessment_id")
        )
    shown: dict[int, list[dict]] = {pk: [] for pk in trace_ids}
    for row in rows:
        trace_id = trace_ids[row.trace_id]
        shown[row.trace_id].append(
            assessment(row, trace_id, overrides=overridden.get(row.overrides_id))
        )
    return shown


def trace_info(trace, assessments: list[dict], *, exported: bool = False) -> dict:
    """TraceInfoV3 of a Trace or an info row, with ``assessments`` (from live_assessments)."""
    info = trace_serializers.trace_info(trace, exported=exported)
    if assessments:
        info["assessments"] = assessments
    return info


def _as_double(value):
    if isinstance(value, bool) or value is None or isinstance(value, str | float):
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, list):
        return [_as_double(item) for item in value]
    if isinstance(value, dict):
        return {key: _as_double(item) for key, item in value.items()}
    return value


def expectation_as_read(value):
    """An expectation's value as the MLflow client reads it back: objects and lists as
    stored (they travel as serialized JSON), numbers as doubles."""
    return value if isinstance(value, dict | list) else _as_double(value)


def saved_assessment(a: Assessment, trace_id: str) -> dict:
    """An Assessment a write returned, in wire shape."""
    return assessment(a, trace_id, overrides=a.overrides.assessment_id if a.overrides_id else None)


def assessment(a, trace_id: str, *, overrides: str | None) -> dict:
    """An Assessment or an ASSESSMENT_FIELDS row in wire shape; ``overrides`` is the id of
    the assessment it overrides."""
    data = {
        "assessment_id": a.assessment_id,
        "assessment_name": a.name,
        "trace_id": trace_id,
        "source": {"source_type": a.source_type, "source_id": a.source_id},
        "create_time": trace_serializers.ms_to_timestamp(a.create_time),
        "last_update_time": trace_serializers.ms_to_timestamp(a.last_update_time),
    }
    if a.span_id:
        data["span_id"] = a.span_id
    if a.kind == Kind.FEEDBACK:
        data["feedback"] = {"value": _as_double(a.value)}
        error = feedback_error(a)
        if error:
            data["feedback"]["error"] = error
    elif a.kind == Kind.ISSUE:
        data["issue"] = {"issue_name": a.value}
    elif isinstance(a.value, dict | list):
        data["expectation"] = {
            "serialized_value": {
                "serialization_format": JSON_FORMAT,
                "value": json.dumps(a.value),
            }
        }
    else:
        data["expectation"] = {"value": expectation_as_read(a.value)}
    if a.rationale:
        data["rationale"] = a.rationale
    if a.metadata:
        data["metadata"] = a.metadata
    if overrides:
        data["overrides"] = overrides
    data["valid"] = a.valid
    return data


def feedback_fields(feedback) -> tuple[object, dict | None]:
    """(value, error) of a Feedback message."""
    if not isinstance(feedback, dict):
        raise ApiError("feedback must be an object.")
    error = feedback.get("error")
    if error is not None and not isinstance(error, dict):
        raise ApiError("feedback.error must be an object.")
    if error and len(str(error.get("error_code") or "")) > MAX_ERROR_CODE_LENGTH:
        raise ApiError(f"feedback.error.error_code is longer than {MAX_ERROR_CODE_LENGTH}.")
    return feedback.get("value"), error


def issue_name(issue):
    """The issue name of an IssueReference message."""
    if not isinstance(issue, dict) or not isinstance(issue.get("issue_name"), str):
        raise ApiError("issue must be an object with a string 'issue_name'.")
    return issue["issue_name"]


def expectation_value(expectation):
    """The value of an Expectation message, decoding ``serialized_value``."""
    if not isinstance(expectation, dict):
        raise ApiError("expectation must be an object.")
    serialized = expectation.get("serialized_value")
    if serialized is None:
        return expectation.get("value")
    if not isinstance(serialized, dict) or not isinstance(serialized.get("value"), str):
        raise ApiError("expectation.serialized_value must hold a string 'value'.")
    fmt = serialized.get("serialization_format", JSON_FORMAT)
    if fmt != JSON_FORMAT:
        raise ApiError(f"Unsupported serialization_format {fmt!r}; only JSON_FORMAT is.")
    try:
        return json.loads(serialized["value"])
    except (ValueError, RecursionError):
        raise ApiError("expectation.serialized_value.value is not valid JSON.") from None


def optional_timestamp(data: dict, name: str) -> int | None:
    if data.get(name) is None:
        return None
    try:
        return parse_timestamp(data[name], name)
    except IngestError as exc:
        raise ApiError(str(exc)) from None
