"""MLflow runs: the one writer of Run rows, and their wire shapes.

Rules it owns, as MLflow's tracking server keeps them:
- A param is set once: logging the same value again is allowed, another value is refused.
- A metric keeps its latest value, the one with the highest (step, timestamp); its
  history is not kept. Values are finite numbers or the protobuf names ``NaN``,
  ``Infinity`` and ``-Infinity``.
- Tags are set and replaced freely; ``mlflow.runName`` and the run's name follow each other.
- Dataset inputs are kept once per (name, digest), with their input tags.
- A run's traces are those whose ``mlflow.sourceRun`` metadata names it: the client writes
  it for traces made inside a run, and linking a trace to a run writes it
  (traces.ingest.link_to_run).
"""

import math

from django.db import transaction
from django.db.models import Q
from django.db.models.fields.json import KeyTextTransform
from django.db.models.lookups import In

from .models import SOURCE_RUN_METADATA_KEY, Run, Trace, now_ms

RUN_NAME_TAG = "mlflow.runName"
MAX_KEY_LENGTH = 250
MAX_PARAM_LENGTH = 6000
MAX_TAG_LENGTH = 8000
_SPECIAL_NUMBERS = {"NaN", "Infinity", "-Infinity"}


class RunError(ValueError):
    """A request MLflow refuses with INVALID_PARAMETER_VALUE."""


def _locked(run: Run) -> Run:
    return Run.objects.select_for_update().get(pk=run.pk)


@transaction.atomic
def create_run(*, experiment, name: str, user_id: str, start_time: int | None, tags: dict) -> Run:
    _check_tags(tags)
    run = Run(
        experiment=experiment,
        name=(name or tags.get(RUN_NAME_TAG, ""))[:250],
        user_id=user_id[:255],
        start_time=start_time or now_ms(),
        tags=tags,
    )
    # MLflow names every run; without a name given, one is made from its id.
    run.name = run.name or f"run-{run.run_id[:8]}"
    run.tags = {**tags, RUN_NAME_TAG: run.name}
    run.save()
    return run


@transaction.atomic
def update_run(*, run: Run, status: str | None, end_time: int | None, name: str | None) -> Run:
    run = _locked(run)
    if status is not None:
        run.status = status
    if end_time is not None:
        run.end_time = end_time
    if name:
        run.name = name[:250]
        run.tags[RUN_NAME_TAG] = run.name
    run.save()
    return run


@transaction.atomic
def log_batch(*, run: Run, metrics: list[dict], params: dict, tags: dict) -> Run:
    run = _locked(run)
    for key, value in params.items():
        _check_key(key)
        if len(value) > MAX_PARAM_LENGTH:
            raise RunError(f"Param value for '{key}' exceeds {MAX_PARAM_LENGTH} characters.")
        if key in run.params and run.params[key] != value:
            raise RunError(
                f"Changing param values is not allowed. Param with key='{key}' was already "
                f"logged with value='{run.params[key]}' for run ID='{run.run_id}'. Attempted "
                f"logging new value '{value}'."
            )
        run.params[key] = value
    for metric in metrics:
        _keep_latest(run, metric)
    _check_tags(tags)
    run.tags.update(tags)
    if RUN_NAME_TAG in tags:
        run.name = tags[RUN_NAME_TAG][:250]
    run.save()
    return run


def _keep_latest(run: Run, metric: dict) -> None:
    key = metric["key"]
    _check_key(key)
    value = metric["value"]
    if isinstance(value, str) and value not in _SPECIAL_NUMBERS:
        raise RunError(f"Metric '{key}' has a non-numeric value {value!r}.")
    if isinstance(value, float) and not math.isfinite(value):
        value = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    entry = {"value": value, "timestamp": metric["timestamp"], "step": metric["step"]}
    current = run.metrics.get(key)
    if current is None or (entry["step"], entry["timestamp"]) >= (
        current["step"],
        current["timestamp"],
    ):
        run.metrics[key] = entry


@transaction.atomic
def log_inputs(*, run: Run, datasets: list[dict]) -> Run:
    run = _locked(run)
    known = {(d["dataset"]["name"], d["dataset"]["digest"]) for d in run.inputs}
    for dataset_input in datasets:
        dataset = dataset_input["dataset"]
        if (dataset["name"], dataset["digest"]) not in known:
            run.inputs.append(dataset_input)
            known.add((dataset["name"], dataset["digest"]))
    run.save(update_fields=["inputs"])
    return run


def _check_key(key: str) -> None:
    if not key or len(key) > MAX_KEY_LENGTH:
        raise RunError(f"Keys must have 1 to {MAX_KEY_LENGTH} characters, got {key!r}.")


def _check_tags(tags: dict) -> None:
    for key, value in tags.items():
        _check_key(key)
        if len(value) > MAX_TAG_LENGTH:
            raise RunError(f"Tag value for '{key}' exceeds {MAX_TAG_LENGTH} characters.")


def run_of(trace: Trace) -> Run | None:
    """The run a trace was made in; no query for traces made outside any run."""
    run_id = trace.trace_metadata.get(SOURCE_RUN_METADATA_KEY)
    return Run.objects.filter(run_id=run_id).first() if run_id else None


def ids_named(value: str) -> list[str]:
    """``value`` as a run id, with the ids of the runs named ``value`` (at most 100)."""
    named = Run.objects.filter(name=value).values_list("run_id", flat=True)[:100]
    return list(dict.fromkeys([value, *named]))


def made_in(run_ids) -> Q:
    """A condition on Trace rows: made inside one of these runs (trace_source_run_idx)."""
    return Q(In(KeyTextTransform(SOURCE_RUN_METADATA_KEY, "trace_metadata"), list(run_ids)))


def traces_of(run: Run):
    return Trace.objects.filter(made_in([run.run_id]))


# -- wire shapes ---------------------------------------------------------------------------


def run_info(run: Run) -> dict:
    info = {
        "run_id": run.run_id,
        "run_uuid": run.run_id,
        "run_name": run.name,
        "experiment_id": str(run.experiment_id),
        "user_id": run.user_id,
        "status": run.status,
        "start_time": run.start_time,
        "artifact_uri": run.artifact_uri,
        "lifecycle_stage": run.lifecycle_stage,
    }
    if run.end_time is not None:
        info["end_time"] = run.end_time
    return info


def run_wire(run: Run) -> dict:
    data = {
        "metrics": [{"key": key, **entry} for key, entry in sorted(run.metrics.items())],
        "params": [{"key": k, "value": v} for k, v in sorted(run.params.items())],
        "tags": [{"key": k, "value": v} for k, v in sorted(run.tags.items())],
    }
    return {
        "info": run_info(run),
        "data": {key: value for key, value in data.items() if value},
        "inputs": {"dataset_inputs": run.inputs} if run.inputs else {},
    }
