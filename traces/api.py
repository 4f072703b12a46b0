"""MLflow REST endpoints that touch only traces: server probes, experiments, span uploads,
trace tags and trace deletion. Responses that inline assessments live in annotation.api."""

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpResponse
from django.views.decorators.http import require_GET

from . import experiment_search as experiment_search_rules
from . import ingest, serializers
from .models import TRACE_NAME_TAG, Experiment, Trace
from .rest import (
    STREAMED,
    ApiError,
    Params,
    api_view,
    check_span_reads,
    decode_offset_token,
    encode_offset_token,
    json_response,
    not_found,
    parse_json,
    read_body,
    streamed_json_response,
    trace_too_large,
)
from .validation import MAX_TRACE_NAME_LENGTH, check_text, parse_id

# The client sends spans over OTLP only to servers that report 3.4 or later.
MLFLOW_COMPATIBLE_VERSION = "3.17.2"
EXPERIMENT_ID_HEADER = "x-mlflow-experiment-id"
MAX_EXPERIMENT_RESULTS = 1000


@require_GET
def version(request):
    return HttpResponse(MLFLOW_COMPATIBLE_VERSION, content_type="text/plain")


@require_GET
def health(request):
    return HttpResponse("OK", content_type="text/plain")


@api_view()
def server_info(request):
    return json_response(
        {
            "store_type": "SqlStore",
            "workspaces_enabled": False,
            "trace_archival_enabled": False,
            "features_enabled": {},
        }
    )


# -- experiments ---------------------------------------------------------------------------


def get_experiment_or_404(experiment_id: str) -> Experiment:
    try:
        return Experiment.objects.by_id(parse_id(experiment_id, where="experiment id"))
    except Experiment.DoesNotExist:
        raise not_found(f"Could not find experiment with ID '{experiment_id}'") from None


@api_view()
def experiment_get(request):
    experiment_id = Params.of(request).str("experiment_id", required=True)
    exp = get_experiment_or_404(experiment_id)
    return json_response({"experiment": serializers.experiment(exp)})


@api_view()
def experiment_get_by_name(request):
    name = Params.of(request).str("experiment_name", required=True)
    exp = Experiment.objects.filter(name=name).first()
    if exp is None:
        raise not_found(f"Could not find experiment with name '{name}'")
    return json_response({"experiment": serializers.experiment(exp)})


@api_view(write=True)
def experiment_create(request):
    params = Params.of(request)
    name = params.str("name", required=True).strip()
    if not name or len(name) > 500:
        raise ApiError("An experiment name must have 1 to 500 characters.")
    tags = {}
    for tag in params.list("tags"):
        if not isinstance(tag, dict) or not isinstance(tag.get("key"), str):
            raise ApiError("Experiment tags must be objects with a string 'key'.")
        tags[tag["key"]] = str(tag.get("value") or "")
    artifact_root = params.str("artifact_location", default="")
    if len(artifact_root) > 1000:
        raise ApiError("An artifact location must have at most 1000 characters.")
    try:
        with transaction.atomic():
            exp = Experiment.objects.create(name=name, tags=tags, artifact_root=artifact_root)
    except IntegrityError:
        raise ApiError(
            f"Experiment(name={name}) already exists.", code="RESOURCE_ALREADY_EXISTS"
        ) from None
    return json_response({"experiment_id": exp.experiment_id})


@api_view()
def experiment_search(request):
    """SearchExperiments as MLflow answers it: active experiments, newest first unless
    ``order_by`` says otherwise, filtered by MLflow's grammar (see traces.experiment_search)."""
    params = Params.of(request)
    max_results = params.int("max_results", default=MAX_EXPERIMENT_RESULTS)
    if not 1 <= max_results <= MAX_EXPERIMENT_RESULTS:
        raise ApiError(f"max_results must be between 1 and {MAX_EXPERIMENT_RESULTS}.")
    view_type = params.str("view_type") or "ACTIVE_ONLY"
    if view_type not in experiment_search_rules.VIEW_TYPES:
        raise ApiError(f"Invalid view_type {view_type!r}.")
    try:
        experiments = experiment_search_rules.search(
            Experiment.objects.filter(
                lifecycle_stage__in=experiment_search_rules.VIEW_TYPES[view_type]
            ),
            filter_string=params.str("filter") or "",
            order_by=params.str_list("order_by"),
        )
    except experiment_search_rules.SearchError as exc:
        raise ApiError(str(exc)) from None
    offset = decode_offset_token(params.str("page_token"))
    page = list(experiments[offset : offset + max_results + 1])
    payload = {"experiments": [serializers.experiment(exp) for exp in page[:max_results]]}
    if len(page) > max_results:
        payload["next_page_token"] = encode_offset_token(offset + max_results)
    return json_response(payload)


# -- spans ---------------------------------------------------------------------------------


@api_view(write=True)
def otlp_traces(request):
    """OTLP/HTTP span export (``/v1/traces``), protobuf or OTLP JSON, gzip or deflate.

    Checks run in the MLflow server's order: the experiment header (422), the content type,
    the body, its spans (422 for a span without ids), then the experiment (404).
    """
    experiment_id = request.headers.get(EXPERIMENT_ID_HEADER)
    if not experiment_id:
        raise ApiError(f"The {EXPERIMENT_ID_HEADER} header is required.", status=422)
    try:
        media_type = ingest.otlp_media_type(request.headers.get("Content-Type", ""))
        body = read_body(request, settings.TRACEMARK_MAX_SPAN_UPLOAD_BYTES)
        records = ingest.parse_otlp(body, media_type)
        if records:
            # A new trace's experiment is looked up inside; an existing trace names its own.
            ingest.store_spans(parse_id(experiment_id, where="experiment id"), records)
    except Experiment.DoesNotExist:
        raise not_found(f"Could not find experiment with ID '{experiment_id}'") from None
    except ingest.TraceTooLarge as exc:
        raise trace_too_large(str(exc)) from None
    except ingest.IngestError as exc:
        raise ApiError(str(exc), status=exc.status) from None
    if media_type == "application/json":
        return HttpResponse(b"{}", content_type="application/json")
    # An empty ExportTraceServiceResponse serializes to zero bytes.
    return HttpResponse(b"", content_type="application/x-protobuf")


@api_view(write=True)
def trace_artifact_upload(request, experiment_id, trace_id):
    experiment = get_experiment_or_404(experiment_id)
    if not ingest.is_trace_id(trace_id):
        raise ApiError(f"Invalid trace id {trace_id!r}.")
    # The client sends traces.json as text/plain, so its Content-Type is not checked.
    payload = parse_json(read_body(request, settings.TRACEMARK_MAX_SPAN_UPLOAD_BYTES))
    try:
        records = ingest.parse_artifact_spans(trace_id, payload)
        if records:
            ingest.store_spans(experiment, records)
    except ingest.TraceTooLarge as exc:
        raise trace_too_large(str(exc)) from None
    except ingest.IngestError as exc:
        raise ApiError(str(exc)) from None
    return HttpResponse(b"")


@api_view()
def trace_artifact_download(request, experiment_id, trace_id):
    experiment_pk = parse_id(experiment_id, where="experiment id")
    trace = Trace.objects.filter(experiment_id=experiment_pk, trace_id=trace_id).first()
    if trace is None:
        raise not_found(f"Trace with ID '{trace_id}' not found.")
    check_span_reads([trace])
    spans = serializers.iter_artifact_spans(trace, serializers.iter_span_rows(trace))
    return streamed_json_response({"spans": STREAMED}, spans)


@api_view(write=True)
def attachment_upload(request, experiment_id, trace_id, attachment_id):
    """A file the client logged with a trace; span values refer to it by its UUID."""
    trace = _trace_in_experiment(experiment_id, trace_id)
    if not ingest.is_attachment_id(attachment_id):
        raise ApiError(
            f"Invalid attachment path: '{attachment_id}'. Attachment path must be a valid UUID."
        )
    body = read_body(request, settings.TRACEMARK_MAX_SPAN_UPLOAD_BYTES)
    ingest.store_attachment(trace, attachment_id, body, request.headers.get("Content-Type", ""))
    return HttpResponse(b"")


@api_view()
def attachment_download(request, experiment_id, trace_id, attachment_id):
    trace = _trace_in_experiment(experiment_id, trace_id)
    attachment = trace.attachments.filter(attachment_id=attachment_id).first()
    if attachment is None:
        raise not_found(f"Attachment '{attachment_id}' of trace '{trace_id}' not found.")
    response = HttpResponse(bytes(attachment.content), content_type=attachment.content_type)
    # As the MLflow server sends artifacts: a download, never a page of the site.
    response["Content-Disposition"] = f'attachment; filename="{attachment.attachment_id}"'
    return response


def _trace_in_experiment(experiment_id: str, trace_id: str) -> Trace:
    experiment = get_experiment_or_404(experiment_id)
    trace = Trace.objects.only("id").filter(experiment=experiment, trace_id=trace_id).first()
    if trace is None:
        raise not_found(f"Trace with ID '{trace_id}' not found.")
    return trace


# -- trace tags and deletion ---------------------------------------------------------------


@api_view(write=True)
def trace_tag_set(request, trace_id):
    params = Params.of(request)
    key = params.str("key", required=True)
    value = params.str("value", default="")
    if not key:
        raise ApiError("A tag needs a non-empty key.")
    if key == TRACE_NAME_TAG:
        check_text(value, where="The trace name", max_length=MAX_TRACE_NAME_LENGTH)
    try:
        ingest.set_tag(trace_id, key, value)
    except Trace.DoesNotExist:
        raise not_found(f"Trace with ID '{trace_id}' not found.") from None
    return json_response({})


@api_view(write=True)
def trace_tag_delete(request, trace_id):
    key = Params.of(request).str("key", required=True)
    try:
        ingest.delete_tag(trace_id, key)
    except Trace.DoesNotExist:
        raise not_found(f"Trace with ID '{trace_id}' not found.") from None
    except KeyError:
        raise not_found(f"No trace tag with key '{key}' for trace with ID '{trace_id}'") from None
    return json_response({})


@api_view(admin=True)
def delete_traces(request):
    params = Params.of(request)
    experiment = get_experiment_or_404(params.str("experiment_id", required=True))
    trace_ids = params.str_list("request_ids")
    max_timestamp = params.int("max_timestamp_millis")
    max_traces = params.int("max_traces")
    if bool(trace_ids) == (max_timestamp is not None):
        raise ApiError("Exactly one of 'max_timestamp_millis' and 'request_ids' must be given.")
    if trace_ids and max_traces is not None:
        raise ApiError("'max_traces' can't be given with 'request_ids'.")
    if max_traces is not None and max_traces < 1:
        raise ApiError("'max_traces' must be a positive integer.")
    deleted = ingest.delete_traces(
        experiment.pk,
        trace_ids=trace_ids,
        max_timestamp_millis=max_timestamp,
        max_traces=max_traces,
    )
    return json_response({"traces_deleted": deleted})
