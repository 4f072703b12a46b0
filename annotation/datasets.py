"""Evaluation datasets: the one writer of EvaluationDataset and DatasetRecord rows, and their
MLflow wire shapes.

Rules it owns, as MLflow 3.17.2's server keeps them:
- A record's key is its inputs as canonical JSON (sorted keys): merging a record whose
  inputs match one already in the dataset updates it. Expectations and tags merge key by
  key, outputs (any JSON value: a string when the app returns one) are replaced when given,
  and its id, source and creation time stay. Records
  made from traces and from dicts dedup against each other.
- Every change advances the dataset's ``last_update_time`` and gives it a new ``digest``;
  ``schema`` (the JSON type of each input, output and expectation key) and ``profile``
  (``num_records``) follow the records.
- Tags merge; a tag set to null is ignored (3.17.2 does not remove it).
- Records made from traces are those the MLflow client's ``merge_records(traces)`` builds:
  the root span's inputs and outputs as they are, and the trace's live expectations on the
  trace or its spans (reviewers' answers to expectation schemas included), never its
  feedback.
"""

import hashlib
import json

from django.db import transaction
from django.db.models import Count

from traces.models import SESSION_METADATA_KEY, Span, now_ms

from .models import Assessment, DatasetRecord, EvaluationDataset, Kind
from .serializers import expectation_as_read

USER_TAG = "mlflow.user"
SCHEMA_VERSION = "1.0"
SOURCE_TYPES = {"HUMAN", "CODE", "TRACE", "DOCUMENT", "SOURCE_TYPE_UNSPECIFIED"}
MAX_RECORDS_PER_MERGE = 10_000


class DatasetError(ValueError):
    """A request MLflow refuses with INVALID_PARAMETER_VALUE."""


def inputs_hash(inputs: dict) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def _touch(dataset: EvaluationDataset, user: str) -> None:
    dataset.last_update_time = now_ms()
    dataset.last_updated_by = user or dataset.last_updated_by
    seed = f"{dataset.dataset_id}:{dataset.last_update_time}:{dataset.records.count()}"
    dataset.digest = hashlib.sha256(seed.encode()).hexdigest()[:8]


@transaction.atomic
def create_dataset(*, name: str, experiments, tags: dict) -> EvaluationDataset:
    name = name.strip() if isinstance(name, str) else ""
    if not name or len(name) > 255:
        raise DatasetError("A dataset needs a name of 1 to 255 characters.")
    tags = _clean_tags(tags)
    user = tags.get(USER_TAG, "")
    dataset = EvaluationDataset.objects.create(
        name=name, tags=tags, created_by=user, last_updated_by=user
    )
    dataset.experiments.set(experiments)
    dataset.digest = hashlib.sha256(dataset.dataset_id.encode()).hexdigest()[:8]
    dataset.save(update_fields=["digest"])
    return dataset


def _clean_tags(tags) -> dict:
    if not isinstance(tags, dict):
        raise DatasetError("Dataset tags must be a JSON object.")
    return {str(key): str(value) for key, value in tags.items() if value is not None}


def _locked(dataset: EvaluationDataset) -> EvaluationDataset:
    return EvaluationDataset.objects.select_for_update().get(pk=dataset.pk)


@transaction.atomic
def set_tags(*, dataset: EvaluationDataset, tags: dict) -> EvaluationDataset:
    dataset = _locked(dataset)
    dataset.tags = {**dataset.tags, **_clean_tags(tags)}
    _touch(dataset, "")
    dataset.save()
    return dataset


@transaction.atomic
def delete_tag(*, dataset: EvaluationDataset, key: str) -> None:
    dataset = _locked(dataset)
    if key in dataset.tags:
        del dataset.tags[key]
        _touch(dataset, "")
        dataset.save()


def _check_record(record) -> dict:
    if not isinstance(record, dict):
        raise DatasetError("Each record must be a JSON object.")
    inputs = record.get("inputs")
    if not isinstance(inputs, dict) or not inputs:
        raise DatasetError("Each record needs non-empty `inputs` (a JSON object).")
    for field in ("expectations", "tags"):
        if record.get(field) is not None and not isinstance(record[field], dict):
            raise DatasetError(f"A record's `{field}` must be a JSON object.")
    source = record.get("source")
    if source is not None and (
        not isinstance(source, dict) or source.get("source_type", "HUMAN") not in SOURCE_TYPES
    ):
        raise DatasetError(f"Invalid record source {source!r}.")
    return record


@transaction.atomic
def merge_records(*, dataset: EvaluationDataset, records: list) -> tuple[int, int]:
    """Insert new records and merge into existing ones; returns (inserted, updated)."""
    if not isinstance(records, list):
        raise DatasetError("`records` must be a JSON list of records.")
    if len(records) > MAX_RECORDS_PER_MERGE:
        raise DatasetError(f"At most {MAX_RECORDS_PER_MERGE} records can be merged at once.")
    dataset = _locked(dataset)
    keyed = {}
    for record in map(_check_record, records):
        keyed.setdefault(inputs_hash(record["inputs"]), []).append(record)
    existing = {r.inputs_hash: r for r in dataset.records.filter(inputs_hash__in=list(keyed))}
    moment, inserted, updated, user = now_ms(), [], [], ""
    for key, group in keyed.items():
        row = existing.get(key)
        for record in group:
            user = (record.get("tags") or {}).get(USER_TAG, user)
            if row is None:
                row = _new_record(dataset, key, record, moment)
                inserted.append(row)
            else:
                _merge_into(row, record, moment)
                if row.pk is not None and row not in updated:
                    updated.append(row)
    DatasetRecord.objects.bulk_create(inserted)
    DatasetRecord.objects.bulk_update(
        updated,
        ["outputs", "expectations", "tags", "last_update_time", "last_updated_by"],
    )
    dataset.schema = _schema(dataset, [*inserted, *updated])
    _touch(dataset, user)
    dataset.save()
    return len(inserted), len(updated)


def _new_record(dataset, key, record, moment) -> DatasetRecord:
    source = record.get("source") or None
    source_type = (source or {}).get("source_type", "")
    source_data = (source or {}).get("source_data") or {}
    user = (record.get("tags") or {}).get(USER_TAG, "")
    return DatasetRecord(
        dataset=dataset,
        inputs_hash=key,
        inputs=record["inputs"],
        outputs=record.get("outputs") if record.get("outputs") is not None else {},
        expectations=record.get("expectations") or {},
        tags=record.get("tags") or {},
        source=source,
        source_type=source_type,
        source_id=str(source_data.get("trace_id", "")) if source_type == "TRACE" else "",
        created_by=user,
        last_updated_by=user,
        created_time=moment,
        last_update_time=moment,
    )


def _merge_into(row: DatasetRecord, record: dict, moment: int) -> None:
    row.expectations = {**row.expectations, **(record.get("expectations") or {})}
    row.tags = {**row.tags, **(record.get("tags") or {})}
    if record.get("outputs") is not None:
        row.outputs = record["outputs"]
    row.last_update_time = moment
    row.last_updated_by = row.tags.get(USER_TAG, row.last_updated_by)


def _json_type(value) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else "null"


def _schema(dataset: EvaluationDataset, changed: list[DatasetRecord]) -> dict:
    schema = {"inputs": {}, "outputs": {}, "expectations": {}, **(dataset.schema or {})}
    schema["version"] = SCHEMA_VERSION
    for record in changed:
        for field in ("inputs", "outputs", "expectations"):
            types = schema.setdefault(field, {})
            values = getattr(record, field)
            for key, value in values.items() if isinstance(values, dict) else ():
                types.setdefault(key, _json_type(value))
    return schema


@transaction.atomic
def delete_records(*, dataset: EvaluationDataset, record_ids: list[str]) -> int:
    dataset = _locked(dataset)
    deleted, _ = dataset.records.filter(dataset_record_id__in=record_ids).delete()
    if deleted:
        _touch(dataset, "")
        dataset.save()
    return deleted


@transaction.atomic
def set_experiments(*, dataset: EvaluationDataset, add=(), remove=()) -> EvaluationDataset:
    dataset = _locked(dataset)
    dataset.experiments.add(*add)
    dataset.experiments.remove(*remove)
    _touch(dataset, "")
    dataset.save()
    return dataset


def records_from_traces(traces, *, expectations=None) -> list[dict]:
    """Records as the MLflow client's ``merge_records(traces)`` builds them, for the browser's
    "Add to dataset" actions: the root span's inputs and outputs as they are, the trace's
    valid live expectations by name (on the trace or any of its spans, such as those
    ``mlflow.genai.evaluate()`` logs on the root span; the latest wins) with values as the
    client reads them, and the trace as the source. ``expectations`` ({trace pk: {name:
    value}}) adds to or overrides the live ones, e.g. with gold values. A trace whose root
    span has no object for inputs (the client would send ``{}``, which no dataset takes)
    keeps its request under ``request``."""
    traces = list(traces)
    given = expectations or {}
    roots = {
        span.trace_id: span
        for span in Span.objects.filter(trace__in=traces, parent_span_id__isnull=True)
        .only("trace_id", "inputs", "outputs", "start_time_ns")
        .order_by("trace_id", "start_time_ns")
    }
    live: dict[int, dict] = {}
    rows = (
        Assessment.objects.live()
        .filter(trace__in=traces, kind=Kind.EXPECTATION, valid=True)
        .order_by("create_time", "id")
        .values_list("trace_id", "name", "value")
    )
    for trace_pk, name, value in rows:
        live.setdefault(trace_pk, {})[name] = expectation_as_read(value)
    records = []
    for trace in traces:
        root = roots.get(trace.pk)
        inputs = root.inputs if root is not None else None
        if not isinstance(inputs, dict) or not inputs:
            inputs = {"request": inputs if inputs is not None else trace.request_preview}
        source_data = {"trace_id": trace.trace_id}
        if trace.trace_metadata.get(SESSION_METADATA_KEY):
            source_data["session_id"] = trace.trace_metadata[SESSION_METADATA_KEY]
        records.append(
            {
                "inputs": inputs,
                "outputs": root.outputs if root is not None else None,
                "expectations": {**live.get(trace.pk, {}), **given.get(trace.pk, {})},
                "source": {"source_type": "TRACE", "source_data": source_data},
            }
        )
    return records


def add_traces(
    *, dataset, name: str = "", traces, user: str, experiments=(), expectations=None
) -> tuple[EvaluationDataset, int, int]:
    """Add traces as records to ``dataset``, or to a new dataset called ``name`` linked to
    ``experiments``: what the browser's "Add to dataset" actions do. The dataset is linked to
    the traces' experiments too, so ``search_datasets(experiment_ids=...)`` finds it. Returns
    the dataset and the (inserted, updated) counts."""
    traces = list(traces)
    with transaction.atomic():
        dataset = dataset or create_dataset(
            name=name, experiments=experiments, tags={USER_TAG: user}
        )
        dataset.experiments.add(*{trace.experiment_id for trace in traces})
        records = records_from_traces(traces, expectations=expectations)
        inserted, updated = merge_records(dataset=dataset, records=records)
    return dataset, inserted, updated


def with_counts(datasets):
    return datasets.annotate(record_count=Count("records"))
