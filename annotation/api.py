"""MLflow REST endpoints for assessments, and every trace response that inlines them.

Writes go through annotation.services, so API and UI share validation, LabelSchema checks,
conflict detection and one revision history; the token's user is the actor and annotator,
and only an entry's author changes it (``services.permits``). Reads follow the token's user
too: what a blind queue hides from them (``queues.hidden_answers_condition``) is not there.
"""

import json
from collections.abc import Callable

from django.db import DataError, transaction

from traces import ingest, rest
from traces import serializers as trace_serializers
from traces.models import Experiment, Trace
from traces.rest import ApiError, Params, api_view, json_response, not_found
from traces.search import SearchError, search_traces
from traces.validation import check_text, parse_id

from . import serializers, services
from .models import Assessment, Kind, SourceType
from .queues import hidden_answers_condition, hides

_KINDS = ("feedback", "expectation", "issue")
MAX_SEARCH_RESULTS = 500
MAX_BATCH_TRACES = 100
# The lengths of the assessment columns these fill.
MAX_SOURCE_ID_LENGTH = Assessment._meta.get_field("source_id").max_length
SPAN_ID_LENGTH = Assessment._meta.get_field("span_id").max_length
# Protobuf enum names the client may send for the source, and what Tracemark stores.
_SOURCE_ALIASES = {"AI_JUDGE": SourceType.LLM_JUDGE}
_MASK_PATHS = {
    "assessmentName": "assessment_name",
    "assessment_name": "assessment_name",
    "feedback": "feedback",
    "expectation": "expectation",
    "rationale": "rationale",
    "metadata": "metadata",
}


def _trace_not_found(trace_id: str) -> ApiError:
    return not_found(f"Trace with ID '{trace_id}' not found.")


def _get_trace(user, trace_id: str) -> tuple:
    """The trace's info row and the assessments ``user`` sees on it, in wire shape."""
    trace = trace_serializers.info_rows(Trace.objects.filter(trace_id=trace_id)).first()
    if trace is None:
        raise _trace_not_found(trace_id)
    return trace, serializers.live_assessments([trace], user=user)[trace.id]


def _assessment_not_found(trace_id: str, assessment_id: str) -> ApiError:
    return not_found(f"Assessment with ID '{assessment_id}' not found for trace '{trace_id}'")


def _shown_assessment(user, trace_id: str, assessment_id: str) -> dict:
    """The live assessment in wire shape, unless it is not there for the caller (on another
    trace, or hidden by a blind queue: the writes' check). Read as one plain row, which
    takes half the Python of loading the entry, its trace and what it overrides."""
    found = (
        Assessment.objects.live()
        .filter(assessment_id=assessment_id, trace__trace_id=trace_id)
        .values_list(
            "pk",
            "annotator_id",
            *serializers.ASSESSMENT_FIELDS,
            "overrides__assessment_id",
            named=True,
        )[:1]
    )
    found = next(iter(found), None)
    if found is None or hides(found, user=user):
        raise _assessment_not_found(trace_id, assessment_id)
    return serializers.assessment(found, trace_id, overrides=found.overrides__assessment_id)


def _there_for(user, trace_id: str, kind: str | None = None) -> Callable[[Assessment], None]:
    """The services' check of the locked entry a write names: on the URL's trace, not
    hidden from ``user`` (as _shown_assessment reads it) and, when given, of ``kind``."""

    def check(assessment: Assessment) -> None:
        if assessment.trace.trace_id != trace_id or hides(assessment, user=user):
            raise _assessment_not_found(trace_id, assessment.assessment_id)
        if kind is not None and assessment.kind != kind:
            raise ApiError(f"Assessment '{assessment.assessment_id}' is not {_article(kind)}.")

    return check


# -- traces --------------------------------------------------------------------------------


@api_view(write=True)
def start_trace(request):
    """StartTraceV3: the trace info the client sends when the root span ends."""
    message = Params.of(request).dict("trace", required=True)
    info_data = message.get("trace_info")
    try:
        info = ingest.parse_trace_info(info_data)
    except ingest.IngestError as exc:
        raise ApiError(str(exc)) from None
    with transaction.atomic():
        try:
            trace, first = ingest.start_trace(info)
        except Experiment.DoesNotExist:
            raise not_found(f"Could not find experiment with ID '{info.experiment_id}'") from None
        if first:
            for data in info_data.get("assessments") or []:
                _create(request.user, trace, data, span_may_follow=True)
        # Answered inside the transaction: a write that cannot be answered is not kept.
        assessments = serializers.live_assessments([trace], user=request.user)[trace.id]
        info = serializers.trace_info(trace, assessments, exported=True)
        return json_response({"trace": {"trace_info": info}})


@api_view()
def trace_info(request, trace_id):
    """GetTraceInfoV3."""
    trace, assessments = _get_trace(request.user, trace_id)
    return json_response({"trace": {"trace_info": serializers.trace_info(trace, assessments)}})


@api_view()
def trace_get(request):
    """GetTrace: trace info and spans; without allow_partial, only once every span is in."""
    params = Params.of(request)
    trace_id = params.str("trace_id", required=True)
    trace, assessments = _get_trace(request.user, trace_id)
    rest.check_span_reads([trace])
    if not params.bool("allow_partial") and trace.span_count < _expected_span_count(trace):
        raise not_found(
            f"Trace with ID {trace_id} is not fully exported yet, please try again later."
        )
    rows = trace_serializers.iter_span_rows(trace)
    spans = trace_serializers.iter_otlp_spans(trace, rows)
    info = serializers.trace_info(trace, assessments)
    payload = {"trace": {"trace_info": info, "spans": rest.STREAMED}}
    return rest.streamed_json_response(payload, spans)


def _expected_span_count(trace) -> int:
    """The span count the client reported in StartTraceV3's size stats, if any."""
    try:
        return int(json.loads(trace.trace_metadata["mlflow.trace.sizeStats"])["num_spans"])
    except (KeyError, TypeError, ValueError):
        return 0


def _trace_with_spans(trace, assessments: list[dict], rows: list[tuple]) -> dict:
    return {
        "trace_info": serializers.trace_info(trace, assessments),
        "spans": trace_serializers.otlp_spans(trace, rows),
    }


def _batch(user, trace_ids: list[str]) -> tuple[list, dict[int, list[dict]]]:
    """The info rows of the traces found, in the order asked, and their assessments."""
    if not trace_ids:
        raise ApiError("Missing value for required parameter 'trace_ids'.")
    if len(trace_ids) > MAX_BATCH_TRACES:
        raise ApiError(f"At most {MAX_BATCH_TRACES} trace_ids per request.")
    rows = trace_serializers.info_rows(Trace.objects.filter(trace_id__in=trace_ids))
    found = {trace.trace_id: trace for trace in rows}
    traces = [found[trace_id] for trace_id in dict.fromkeys(trace_ids) if trace_id in found]
    return traces, serializers.live_assessments(traces, user=user)


@api_view()
def trace_batch_get(request):
    """BatchGetTraces: full traces for up to MAX_BATCH_TRACES ids; unknown ids are skipped."""
    traces, assessments = _batch(request.user, Params.of(request).str_list("trace_ids"))
    rest.check_span_reads(traces)
    rows = trace_serializers.span_rows(traces)
    payload = {}
    if traces:
        payload["traces"] = [_trace_with_spans(t, assessments[t.id], rows[t.id]) for t in traces]
    return json_response(payload)


@api_view()
def trace_batch_get_infos(request):
    traces, assessments = _batch(request.user, Params.of(request).str_list("trace_ids"))
    payload = {}
    if traces:
        payload["trace_infos"] = [serializers.trace_info(t, assessments[t.id]) for t in traces]
    return json_response(payload)


@api_view()
def trace_search(request):
    """SearchTracesV3 over the experiments in ``locations``; the grammar is traces.search's."""
    params = Params.of(request)
    experiment_ids = params.str_list("experiment_ids")
    for location in params.list("locations"):
        experiment = location.get("mlflow_experiment") if isinstance(location, dict) else None
        if not isinstance(experiment, dict):
            raise ApiError("Every entry of 'locations' must name an 'mlflow_experiment'.")
        experiment_ids.append(experiment.get("experiment_id"))
    if not experiment_ids:
        raise ApiError("'locations' must name at least one MLflow experiment by its id.")
    experiment_pks = [parse_id(i, where="experiment id") for i in experiment_ids]
    max_results = params.int("max_results", default=100)
    if max_results < 1:
        raise ApiError("max_results must be positive.")
    try:
        traces, token = search_traces(
            Trace.objects.filter(experiment_id__in=experiment_pks),
            filter_string=params.str("filter"),
            order_by=params.str_list("order_by") or None,
            # Larger requests get a page and a token; the client keeps paging.
            max_results=min(max_results, MAX_SEARCH_RESULTS),
            page_token=params.str("page_token") or None,
            hidden=hidden_answers_condition(user=request.user),
            fields=trace_serializers.INFO_FIELDS,
        )
    except SearchError as exc:
        raise ApiError(str(exc)) from None
    except DataError:
        # Python and PostgreSQL disagree on a few regular expressions (named groups, a++).
        # Requests run in autocommit, so the failed query leaves the connection usable.
        raise ApiError("The filter's regular expression is not valid for the database.") from None
    assessments = serializers.live_assessments(traces, user=request.user)
    payload = {}
    if traces:
        payload["traces"] = [serializers.trace_info(t, assessments[t.id]) for t in traces]
    if token:
        payload["next_page_token"] = token
    return json_response(payload)


# -- assessments ---------------------------------------------------------------------------


@api_view(write=True)
def assessment_create(request, trace_id):
    """CreateAssessment; with ``overrides`` it replaces that feedback, which turns invalid."""
    data = Params.of(request).dict("assessment", required=True)
    # The service's insert finds the trace; its one transaction is the request's.
    try:
        created = _create(request.user, trace_id, data)
    except Trace.DoesNotExist:
        raise _trace_not_found(trace_id) from None
    return json_response({"assessment": serializers.saved_assessment(created, trace_id)})


def _create(user, trace: Trace | str, data, *, span_may_follow: bool = False) -> Assessment:
    """``trace``: a Trace, or a trace id the service's insert looks up itself.
    ``span_may_follow``: StartTraceV3 may come before the spans its assessments name."""
    if not isinstance(data, dict):
        raise ApiError("An assessment must be an object.")
    if sum(kind in data for kind in _KINDS) != 1:
        raise ApiError("An assessment needs exactly one of 'feedback', 'expectation' and 'issue'.")
    source = data.get("source") or {}
    if not isinstance(source, dict):
        raise ApiError("source must be an object.")
    source_type = source.get("source_type")
    if source_type is not None and not isinstance(source_type, str):
        raise ApiError("source.source_type must be a string.")
    common = {
        "name": data.get("assessment_name"),
        "rationale": _optional_text(data, "rationale"),
        "source_type": _SOURCE_ALIASES.get(source_type, source_type),
        "source_id": _optional_text(source, "source_id", max_length=MAX_SOURCE_ID_LENGTH),
        "metadata": data.get("metadata"),
        "actor": user,
        "create_time": serializers.optional_timestamp(data, "create_time"),
    }
    overrides = data.get("overrides")
    if overrides:
        if "feedback" not in data:
            raise ApiError("Only feedback can override another assessment.")
        trace_id = trace.trace_id if isinstance(trace, Trace) else trace
        value, _ = serializers.feedback_fields(data["feedback"])
        check = _there_for(user, trace_id)
        try:
            return services.override_feedback(
                assessment_id=overrides, value=value, check=check, **common
            )
        except Assessment.DoesNotExist:
            raise _assessment_not_found(trace_id, overrides) from None
    common["span_id"] = _optional_text(data, "span_id", max_length=SPAN_ID_LENGTH) or None
    common["span_may_follow"] = span_may_follow
    if "feedback" in data:
        value, error = serializers.feedback_fields(data["feedback"])
        return services.log_feedback(trace=trace, value=value, error=error, **common)
    if "issue" in data:
        issue_id = common.pop("name")
        issue_name = serializers.issue_name(data["issue"])
        return services.log_issue(trace=trace, issue_id=issue_id, issue_name=issue_name, **common)
    value = serializers.expectation_value(data["expectation"])
    return services.log_expectation(trace=trace, value=value, **common)


def _optional_text(data: dict, name: str, *, max_length: int | None = None) -> str:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise ApiError(f"{name} must be a string.")
    return check_text(value or "", where=name, max_length=max_length)


@api_view()
def assessment_get(request, trace_id, assessment_id):
    return json_response({"assessment": _shown_assessment(request.user, trace_id, assessment_id)})


@api_view(write=True)
def assessment_update(request, trace_id, assessment_id):
    """UpdateAssessment: ``update_mask`` names the fields to take from ``assessment``."""
    params = Params.of(request)
    data = params.dict("assessment", required=True)
    paths = _mask_paths(params)
    changes = {}
    kind = None
    for path in paths:
        field = _MASK_PATHS.get(path)
        if field is None:
            raise ApiError(f"Invalid update_mask path {path!r}.")
        if field == "assessment_name":
            changes["name"] = data.get("assessment_name")
        elif field in ("feedback", "expectation"):
            if kind not in (None, field):
                raise ApiError("An assessment is either a feedback or an expectation.")
            kind = field
            message = data.get(field) or {}
            if field == Kind.FEEDBACK:
                changes["value"], changes["error"] = serializers.feedback_fields(message)
            else:
                changes["value"] = serializers.expectation_value(message)
        elif field == "rationale":
            changes["rationale"] = _optional_text(data, "rationale")
        else:
            changes["metadata"] = data.get("metadata") or {}
    check = _there_for(request.user, trace_id, kind)
    try:
        updated = services.update_assessment(
            assessment_id=assessment_id, actor=request.user, check=check, **changes
        )
    except Assessment.DoesNotExist:
        raise _assessment_not_found(trace_id, assessment_id) from None
    return json_response({"assessment": serializers.saved_assessment(updated, trace_id)})


def _article(kind: str) -> str:
    return "an expectation" if kind == Kind.EXPECTATION else "a feedback"


def _mask_paths(params: Params) -> list[str]:
    """FieldMask in JSON form is a comma-separated string; a list or {"paths": [...]} also do."""
    mask = params.raw("update_mask")
    if isinstance(mask, dict):
        mask = mask.get("paths")
    if isinstance(mask, str):
        mask = [path.strip() for path in mask.split(",") if path.strip()]
    if not mask or not isinstance(mask, list) or not all(isinstance(p, str) for p in mask):
        raise ApiError("Missing value for required parameter 'update_mask'.")
    return mask


@api_view(write=True)
def assessment_delete(request, trace_id, assessment_id):
    check = _there_for(request.user, trace_id)
    try:
        services.delete_assessment(assessment_id=assessment_id, actor=request.user, check=check)
    except Assessment.DoesNotExist:
        raise _assessment_not_found(trace_id, assessment_id) from None
    return json_response({})
