"""The runs subset of MLflow's tracking API that ``mlflow.start_run()`` and
``mlflow.genai.evaluate()`` use: create, update, get, log-batch, log-metric,
log-parameter, log-inputs, set-tag, and linking traces to a run. Metric history, models and
artifacts are not served (ENDPOINT_NOT_FOUND)."""

from . import ingest, runs
from .api import get_experiment_or_404
from .models import Run
from .rest import ApiError, Params, api_view, json_response, not_found

STATUSES = set(Run.Status.values)
MAX_BATCH = 1000
MAX_LINKED_TRACES = 100


def _run(params: Params) -> Run:
    run_id = params.str("run_id") or params.str("run_uuid")
    if not run_id:
        raise ApiError("Missing value for required parameter 'run_id'.")
    run = Run.objects.select_related("experiment").filter(run_id=run_id).first()
    if run is None:
        raise not_found(f"Run with id={run_id} not found")
    return run


def _pairs(params: Params, name: str) -> dict[str, str]:
    pairs = {}
    for entry in params.list(name):
        if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
            raise ApiError(f"Each of '{name}' must be an object with a string 'key'.")
        value = entry.get("value", "")
        if not isinstance(value, str):
            raise ApiError(f"The value of '{entry['key']}' in '{name}' must be a string.")
        pairs[entry["key"]] = value
    return pairs


def _metric(entry) -> dict:
    if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
        raise ApiError("Each metric must be an object with a string 'key'.")
    value = entry.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ApiError(f"Metric '{entry['key']}' needs a numeric value.")
    metric = {"key": entry["key"], "value": value}
    for field in ("timestamp", "step"):
        raw = entry.get(field, 0)
        try:
            metric[field] = int(raw)
        except (TypeError, ValueError):
            raise ApiError(f"Metric '{entry['key']}' has an invalid {field}.") from None
    return metric


def _run_errors(call, **kwargs):
    try:
        return call(**kwargs)
    except runs.RunError as exc:
        raise ApiError(str(exc)) from None


@api_view(write=True)
def run_create(request):
    params = Params.of(request)
    experiment = get_experiment_or_404(params.str("experiment_id", default="0"))
    run = _run_errors(
        runs.create_run,
        experiment=experiment,
        name=params.str("run_name", default=""),
        user_id=params.str("user_id", default="") or request.user.get_username(),
        start_time=params.int("start_time"),
        tags=_pairs(params, "tags"),
    )
    return json_response({"run": runs.run_wire(run)})


@api_view(write=True)
def run_update(request):
    params = Params.of(request)
    run = _run(params)
    status = params.str("status")
    if status is not None and status not in STATUSES:
        raise ApiError(f"Invalid run status {status!r}: expected one of {sorted(STATUSES)}.")
    run = runs.update_run(
        run=run, status=status, end_time=params.int("end_time"), name=params.str("run_name")
    )
    return json_response({"run_info": runs.run_info(run)})


@api_view()
def run_get(request):
    return json_response({"run": runs.run_wire(_run(Params.of(request)))})


@api_view(write=True)
def run_log_batch(request):
    params = Params.of(request)
    run = _run(params)
    metrics = [_metric(entry) for entry in params.list("metrics")]
    if len(metrics) > MAX_BATCH:
        raise ApiError(f"A batch may hold at most {MAX_BATCH} metrics.")
    _run_errors(
        runs.log_batch,
        run=run,
        metrics=metrics,
        params=_pairs(params, "params"),
        tags=_pairs(params, "tags"),
    )
    return json_response({})


@api_view(write=True)
def run_log_metric(request):
    params = Params.of(request)
    run = _run(params)
    metric = _metric({k: params.raw(k) for k in ("key", "value", "timestamp", "step")})
    _run_errors(runs.log_batch, run=run, metrics=[metric], params={}, tags={})
    return json_response({})


@api_view(write=True)
def run_log_param(request):
    params = Params.of(request)
    run = _run(params)
    key = params.str("key", required=True)
    _run_errors(
        runs.log_batch, run=run, metrics=[], params={key: params.str("value", default="")}, tags={}
    )
    return json_response({})


@api_view(write=True)
def run_set_tag(request):
    params = Params.of(request)
    run = _run(params)
    key = params.str("key", required=True)
    tags = {key: params.str("value", default="")}
    _run_errors(runs.log_batch, run=run, metrics=[], params={}, tags=tags)
    return json_response({})


@api_view(write=True)
def run_log_inputs(request):
    params = Params.of(request)
    run = _run(params)
    datasets = []
    for entry in params.list("datasets"):
        dataset = entry.get("dataset") if isinstance(entry, dict) else None
        if not isinstance(dataset, dict) or not all(
            isinstance(dataset.get(k), str) for k in ("name", "digest")
        ):
            raise ApiError("Each dataset input needs a dataset with a name and a digest.")
        tags = entry.get("tags") or []
        if not isinstance(tags, list):
            raise ApiError("Dataset input tags must be a list.")
        datasets.append({"dataset": dataset, "tags": tags} if tags else {"dataset": dataset})
    runs.log_inputs(run=run, datasets=datasets)
    return json_response({})


@api_view(write=True)
def link_traces_to_run(request):
    params = Params.of(request)
    run = _run(params)
    trace_ids = params.str_list("trace_ids")
    if len(trace_ids) > MAX_LINKED_TRACES:
        raise ApiError(f"At most {MAX_LINKED_TRACES} traces can be linked at once.")
    ingest.link_to_run(trace_ids, run_id=run.run_id, experiment_id=run.experiment_id)
    return json_response({})
