"""MLflow tracking-protocol routes (see annotation.api and traces.api).

``traces/search``, ``get``, ``batchGet`` and ``batchGetInfos`` come before
``traces/<trace_id>``, which would otherwise swallow them; anything else under ``/api/`` (or
``/ajax-api/``, where MLflow repeats its endpoints for its UI)
answers 404 ENDPOINT_NOT_FOUND in MLflow's error shape.
"""

from django.urls import path, re_path

from traces import api as traces_api
from traces import runs_api
from traces.rest import dispatch, endpoint_not_found

from . import api, datasets_api, genai_api

V2 = "api/2.0/mlflow/"
V3 = "api/3.0/mlflow/"
ARTIFACTS = "api/2.0/mlflow-artifacts/artifacts/"


urlpatterns = [
    # /version, /health, /v1/traces
    path("version", traces_api.version, name="mlflow-version"),
    path("health", traces_api.health, name="health"),
    path("v1/traces", dispatch(POST=traces_api.otlp_traces), name="otlp-traces"),
    # /api/2.0/mlflow/experiments/...
    path(f"{V2}experiments/get", dispatch(GET=traces_api.experiment_get)),
    path(f"{V2}experiments/get-by-name", dispatch(GET=traces_api.experiment_get_by_name)),
    path(f"{V2}experiments/create", dispatch(POST=traces_api.experiment_create)),
    path(
        f"{V2}experiments/search",
        dispatch(GET=traces_api.experiment_search, POST=traces_api.experiment_search),
    ),
    # /api/2.0/mlflow/runs/...
    path(f"{V2}runs/create", dispatch(POST=runs_api.run_create)),
    path(f"{V2}runs/update", dispatch(POST=runs_api.run_update)),
    path(f"{V2}runs/get", dispatch(GET=runs_api.run_get)),
    path(f"{V2}runs/log-batch", dispatch(POST=runs_api.run_log_batch)),
    path(f"{V2}runs/log-metric", dispatch(POST=runs_api.run_log_metric)),
    path(f"{V2}runs/log-parameter", dispatch(POST=runs_api.run_log_param)),
    path(f"{V2}runs/log-inputs", dispatch(POST=runs_api.run_log_inputs)),
    path(f"{V2}runs/set-tag", dispatch(POST=runs_api.run_set_tag)),
    # /api/2.0/mlflow/traces/...
    path(f"{V2}traces/delete-traces", dispatch(POST=traces_api.delete_traces)),
    path(f"{V2}traces/link-to-run", dispatch(POST=runs_api.link_traces_to_run)),
    path(
        f"{V2}traces/<str:trace_id>/tags",
        dispatch(PATCH=traces_api.trace_tag_set, DELETE=traces_api.trace_tag_delete),
    ),
    # /api/2.0/mlflow-artifacts/artifacts/<experiment_id>/traces/<trace_id>/artifacts/traces.json
    path(
        f"{ARTIFACTS}<str:experiment_id>/traces/<str:trace_id>/artifacts/traces.json",
        dispatch(PUT=traces_api.trace_artifact_upload, GET=traces_api.trace_artifact_download),
    ),
    # /api/2.0/mlflow-artifacts/artifacts/<experiment_id>/traces/<trace_id>/artifacts/attachments/…
    path(
        f"{ARTIFACTS}<str:experiment_id>/traces/<str:trace_id>/artifacts/attachments/"
        "<str:attachment_id>",
        dispatch(PUT=traces_api.attachment_upload, GET=traces_api.attachment_download),
    ),
    # /api/3.0/mlflow/server-info, /api/3.0/mlflow/traces/...
    path(f"{V3}server-info", dispatch(GET=traces_api.server_info)),
    path(f"{V3}traces", dispatch(POST=api.start_trace)),
    path(f"{V3}traces/search", dispatch(POST=api.trace_search)),
    path(f"{V3}traces/get", dispatch(GET=api.trace_get)),
    path(f"{V3}traces/batchGet", dispatch(GET=api.trace_batch_get)),
    path(
        f"{V3}traces/batchGetInfos",
        dispatch(GET=api.trace_batch_get_infos, POST=api.trace_batch_get_infos),
    ),
    path(f"{V3}traces/<str:trace_id>", dispatch(GET=api.trace_info)),
    path(
        f"{V3}traces/<str:trace_id>/tags",
        dispatch(PATCH=traces_api.trace_tag_set, DELETE=traces_api.trace_tag_delete),
    ),
    path(f"{V3}traces/<str:trace_id>/assessments", dispatch(POST=api.assessment_create)),
    path(
        f"{V3}traces/<str:trace_id>/assessments/<str:assessment_id>",
        dispatch(
            GET=api.assessment_get,
            PATCH=api.assessment_update,
            DELETE=api.assessment_delete,
        ),
    ),
    # /api/3.0/mlflow/label-schemas/...
    path(f"{V3}label-schemas/create", dispatch(POST=genai_api.label_schema_create)),
    path(f"{V3}label-schemas/get", dispatch(GET=genai_api.label_schema_get)),
    path(f"{V3}label-schemas/get-by-name", dispatch(GET=genai_api.label_schema_get_by_name)),
    path(f"{V3}label-schemas/list", dispatch(GET=genai_api.label_schema_list)),
    path(f"{V3}label-schemas/update", dispatch(PATCH=genai_api.label_schema_update)),
    path(f"{V3}label-schemas/delete", dispatch(DELETE=genai_api.label_schema_delete)),
    # /api/3.0/mlflow/review-queues/...
    path(f"{V3}review-queues/create", dispatch(POST=genai_api.review_queue_create)),
    path(
        f"{V3}review-queues/get-or-create-user",
        dispatch(POST=genai_api.review_queue_get_or_create_user),
    ),
    path(f"{V3}review-queues/get", dispatch(GET=genai_api.review_queue_get)),
    path(f"{V3}review-queues/get-by-name", dispatch(GET=genai_api.review_queue_get_by_name)),
    path(f"{V3}review-queues/list", dispatch(GET=genai_api.review_queue_list)),
    path(f"{V3}review-queues/update", dispatch(POST=genai_api.review_queue_update)),
    path(f"{V3}review-queues/delete", dispatch(POST=genai_api.review_queue_delete)),
    path(f"{V3}review-queues/items/add", dispatch(POST=genai_api.review_queue_items_add)),
    path(f"{V3}review-queues/items/remove", dispatch(POST=genai_api.review_queue_items_remove)),
    path(f"{V3}review-queues/items/list", dispatch(GET=genai_api.review_queue_items_list)),
    path(
        f"{V3}review-queues/items/set-status",
        dispatch(POST=genai_api.review_queue_items_set_status),
    ),
    # /api/3.0/mlflow/datasets/... (create and search before the dataset id)
    path(f"{V3}datasets/create", dispatch(POST=datasets_api.dataset_create)),
    path(
        f"{V3}datasets/search",
        dispatch(GET=datasets_api.dataset_search, POST=datasets_api.dataset_search),
    ),
    path(
        f"{V3}datasets/<str:dataset_id>",
        dispatch(GET=datasets_api.dataset_get, DELETE=datasets_api.dataset_delete),
    ),
    path(f"{V3}datasets/<str:dataset_id>/tags", dispatch(PATCH=datasets_api.dataset_set_tags)),
    path(
        f"{V3}datasets/<str:dataset_id>/tags/<path:key>",
        dispatch(DELETE=datasets_api.dataset_delete_tag),
    ),
    path(
        f"{V3}datasets/<str:dataset_id>/records",
        dispatch(
            GET=datasets_api.records_list,
            POST=datasets_api.records_merge,
            DELETE=datasets_api.records_delete,
        ),
    ),
    path(
        f"{V3}datasets/<str:dataset_id>/experiment-ids",
        dispatch(GET=datasets_api.dataset_experiment_ids),
    ),
    path(
        f"{V3}datasets/<str:dataset_id>/add-experiments",
        dispatch(POST=datasets_api.dataset_add_experiments),
    ),
    path(
        f"{V3}datasets/<str:dataset_id>/remove-experiments",
        dispatch(POST=datasets_api.dataset_remove_experiments),
    ),
    # MLflow registers every endpoint under /ajax-api/ too, for its UI; Tracemark serves none.
    re_path(r"^(ajax-)?api/", endpoint_not_found),
]
