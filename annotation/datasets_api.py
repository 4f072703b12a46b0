"""MLflow's evaluation-dataset API (``/api/3.0/mlflow/datasets/``), served from
EvaluationDataset and DatasetRecord through annotation.datasets.

As in MLflow 3.17.2: ``tags``, ``schema``, ``profile`` and ``records`` travel as JSON inside
JSON strings; the dataset's experiment ids come only with create (and their own endpoint);
search omits ``next_page_token`` on its last page; record pages use a
``<created_time>:<record_id>`` token. Reads are for every role, writes for Reviewers and
Admins.
"""

import base64
import binascii
import json

from django.db.models import Count, Q

from traces.experiment_search import DATASETS, SearchError, search
from traces.models import Experiment
from traces.rest import (
    ApiError,
    Params,
    api_view,
    decode_offset_token,
    encode_offset_token,
    json_response,
    not_found,
)

from . import datasets
from .genai_api import experiment_by_id
from .models import DatasetRecord, EvaluationDataset

MAX_SEARCH_RESULTS = 1000
MAX_RECORD_PAGE = 1000


def _wire_errors(call, **kwargs):
    try:
        return call(**kwargs)
    except datasets.DatasetError as exc:
        raise ApiError(str(exc)) from None


def dataset_wire(dataset: EvaluationDataset, record_count: int, experiment_ids=None) -> dict:
    data = {
        "dataset_id": dataset.dataset_id,
        "name": dataset.name,
        "tags": json.dumps(dataset.tags),
        "digest": dataset.digest,
        "created_time": dataset.created_time,
        "last_update_time": dataset.last_update_time,
    }
    if dataset.schema is not None:
        data["schema"] = json.dumps(dataset.schema)
        data["profile"] = json.dumps({"num_records": record_count})
    for field in ("created_by", "last_updated_by"):
        if getattr(dataset, field):
            data[field] = getattr(dataset, field)
    if experiment_ids is not None:
        data["experiment_ids"] = experiment_ids
    return data


def record_wire(record: DatasetRecord, dataset_id: str) -> dict:
    data = {
        "dataset_record_id": record.dataset_record_id,
        "dataset_id": dataset_id,
        "inputs": record.inputs,
        "outputs": record.outputs,
        "expectations": record.expectations,
        "tags": record.tags,
        "created_time": record.created_time,
        "last_update_time": record.last_update_time,
        "created_by": record.created_by,
        "last_updated_by": record.last_updated_by,
    }
    if record.source is not None:
        data["source"] = record.source
        data["source_type"] = record.source_type
    if record.source_id:
        data["source_id"] = record.source_id
    return data


def _dataset(dataset_id: str, message: str | None = None) -> EvaluationDataset:
    dataset = EvaluationDataset.objects.filter(dataset_id=dataset_id).first()
    if dataset is None:
        raise not_found(message or f"Evaluation dataset with id '{dataset_id}' not found")
    return dataset


def _answer(dataset: EvaluationDataset, experiment_ids=None):
    return json_response(
        {"dataset": dataset_wire(dataset, dataset.records.count(), experiment_ids)}
    )


def _experiments(ids: list[str]) -> list[Experiment]:
    return [experiment_by_id(experiment_id) for experiment_id in ids]


def _json_field(params: Params, name: str, default):
    raw = params.str(name)
    if raw is None:
        return default
    try:
        return json.loads(raw)
    except ValueError:
        raise ApiError(f"`{name}` must be a string holding JSON.") from None


@api_view(write=True)
def dataset_create(request):
    params = Params.of(request)
    experiments = _experiments(params.str_list("experiment_ids"))
    dataset = _wire_errors(
        datasets.create_dataset,
        name=params.str("name", required=True),
        experiments=experiments,
        tags=_json_field(params, "tags", {}),
    )
    return _answer(dataset, [e.experiment_id for e in experiments])


@api_view()
def dataset_get(request, dataset_id):
    return _answer(_dataset(dataset_id))


@api_view(write=True)
def dataset_delete(request, dataset_id):
    EvaluationDataset.objects.filter(dataset_id=dataset_id).delete()
    return json_response({})


@api_view()
def dataset_search(request):
    params = Params.of(request)
    max_results = params.int("max_results", default=MAX_SEARCH_RESULTS)
    if not 1 <= max_results <= MAX_SEARCH_RESULTS:
        raise ApiError(f"max_results must be between 1 and {MAX_SEARCH_RESULTS}.")
    found = EvaluationDataset.objects.annotate(record_count=Count("records"))
    experiment_ids = params.str_list("experiment_ids")
    if experiment_ids:
        found = found.filter(experiments__in=_experiments(experiment_ids)).distinct()
    try:
        found = search(
            found,
            filter_string=params.str("filter_string") or "",
            order_by=params.str_list("order_by"),
            grammar=DATASETS,
        )
    except SearchError as exc:
        raise ApiError(str(exc)) from None
    offset = decode_offset_token(params.str("page_token"))
    rows = list(found[offset : offset + max_results + 1])
    payload = {"datasets": [dataset_wire(d, d.record_count) for d in rows[:max_results]]}
    if len(rows) > max_results:
        payload["next_page_token"] = encode_offset_token(offset + max_results)
    return json_response(payload)


@api_view(write=True)
def dataset_set_tags(request, dataset_id):
    dataset = _dataset(dataset_id, f"Could not find evaluation dataset with ID {dataset_id}")
    tags = _json_field(Params.of(request), "tags", {})
    _wire_errors(datasets.set_tags, dataset=dataset, tags=tags)
    return json_response({})


@api_view(write=True)
def dataset_delete_tag(request, dataset_id, key):
    dataset = EvaluationDataset.objects.filter(dataset_id=dataset_id).first()
    if dataset is not None:
        datasets.delete_tag(dataset=dataset, key=key)
    return json_response({})


@api_view()
def records_list(request, dataset_id):
    params = Params.of(request)
    max_results = params.int("max_results", default=MAX_RECORD_PAGE)
    if not 1 <= max_results <= MAX_RECORD_PAGE:
        raise ApiError(f"max_results must be between 1 and {MAX_RECORD_PAGE}.")
    records = DatasetRecord.objects.filter(dataset__dataset_id=dataset_id).order_by(
        "created_time", "dataset_record_id"
    )
    after = _decode_record_token(params.str("page_token"))
    if after is not None:
        moment, record_id = after
        records = records.filter(
            Q(created_time__gt=moment) | Q(created_time=moment, dataset_record_id__gt=record_id)
        )
    rows = list(records[: max_results + 1])
    payload = {"records": json.dumps([record_wire(r, dataset_id) for r in rows[:max_results]])}
    if len(rows) > max_results:
        last = rows[max_results - 1]
        token = f"{last.created_time}:{last.dataset_record_id}".encode()
        payload["next_page_token"] = base64.b64encode(token).decode()
    return json_response(payload)


def _decode_record_token(token: str | None):
    if not token:
        return None
    try:
        moment, record_id = base64.b64decode(token, validate=True).decode().split(":", 1)
        return int(moment), record_id
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ApiError("Invalid page token: it was not made by this server.") from None


@api_view(write=True)
def records_merge(request, dataset_id):
    dataset = _dataset(dataset_id)
    records = _json_field(Params.of(request), "records", None)
    inserted, updated = _wire_errors(datasets.merge_records, dataset=dataset, records=records)
    return json_response({"inserted_count": inserted, "updated_count": updated})


@api_view(write=True)
def records_delete(request, dataset_id):
    record_ids = Params.of(request).str_list("dataset_record_ids")
    dataset = EvaluationDataset.objects.filter(dataset_id=dataset_id).first()
    deleted = datasets.delete_records(dataset=dataset, record_ids=record_ids) if dataset else 0
    return json_response({"deleted_count": deleted})


@api_view()
def dataset_experiment_ids(request, dataset_id):
    ids = list(
        Experiment.objects.filter(
            pk__in=EvaluationDataset.experiments.through.objects.filter(
                evaluationdataset__dataset_id=dataset_id
            ).values("experiment_id")
        ).values_list("pk", flat=True)
    )
    return json_response({"experiment_ids": [str(i) for i in ids]} if ids else {})


@api_view(write=True)
def dataset_add_experiments(request, dataset_id):
    dataset = _dataset(dataset_id)
    experiments = _experiments(Params.of(request).str_list("experiment_ids"))
    return _answer(datasets.set_experiments(dataset=dataset, add=experiments))


@api_view(write=True)
def dataset_remove_experiments(request, dataset_id):
    dataset = _dataset(dataset_id)
    experiments = _experiments(Params.of(request).str_list("experiment_ids"))
    return _answer(datasets.set_experiments(dataset=dataset, remove=experiments))
