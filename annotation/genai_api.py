"""MLflow's GenAI review API (``/api/3.0/mlflow/label-schemas/`` and ``review-queues/``),
served from Tracemark's own LabelSchema, Queue and QueueItem.

The wire shapes, messages and error codes are those of MLflow 3.17.2's server: enums as
names, times as epoch milliseconds, ``RESOURCE_ALREADY_EXISTS`` with status 400, lists paged
with base64 ``{"offset": N}`` tokens and ``""`` on the last page. Creating, changing and
deleting schemas and queues is for Admins (403 PERMISSION_DENIED otherwise); reads are for
every role. See label_schema_wire for the type mapping and queue_wire for queues.
"""

from django.db import IntegrityError, transaction
from django.db.models import Q

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

from . import label_schema_wire as wire
from .models import Assessment, LabelSchema

MAX_LIST_RESULTS = 50_000
ALREADY_EXISTS = "RESOURCE_ALREADY_EXISTS"


def _experiment(experiment_id) -> Experiment:
    if not isinstance(experiment_id, str) or not experiment_id.isascii():
        raise ApiError("Missing value for required parameter 'experiment_id'.")
    if not experiment_id.isdigit():
        raise ApiError(f"Invalid experiment id {experiment_id!r}: expected a decimal number.")
    try:
        return Experiment.objects.by_id(experiment_id)
    except Experiment.DoesNotExist:
        raise not_found(f"No Experiment with id={experiment_id} exists") from None


def _wire_errors(call, *args, **kwargs):
    try:
        return call(*args, **kwargs)
    except wire.WireError as exc:
        raise ApiError(str(exc)) from None


def page(queryset, params: Params, serialize) -> tuple[list, str]:
    """One page of an offset-paged list and the token of the next one ("" on the last)."""
    max_results = params.int("max_results", default=100)
    if not 1 <= max_results <= MAX_LIST_RESULTS:
        raise ApiError(f"max_results must be between 1 and {MAX_LIST_RESULTS}.")
    offset = decode_offset_token(params.str("page_token"))
    rows = list(queryset[offset : offset + max_results + 1])
    token = encode_offset_token(offset + max_results) if len(rows) > max_results else ""
    return [serialize(row) for row in rows[:max_results]], token


# -- label schemas -------------------------------------------------------------------------


def _schemas_of(experiment: Experiment):
    """The schemas an experiment's reviewers answer: its own and those made for all."""
    return LabelSchema.objects.filter(Q(experiment__isnull=True) | Q(experiment=experiment))


def _schema_by_id(schema_id) -> LabelSchema:
    schema = LabelSchema.objects.filter(schema_id=schema_id).first() if schema_id else None
    if schema is None:
        raise not_found(f"Label schema with id '{schema_id}' not found.")
    return schema


def _name_taken(name: str, experiment: Experiment | None) -> ApiError:
    where = f" for experiment '{experiment.experiment_id}'" if experiment else ""
    return ApiError(f"Label schema with name '{name}' already exists{where}.", code=ALREADY_EXISTS)


@api_view(admin=True)
def label_schema_create(request):
    params = Params.of(request)
    experiment = _experiment(params.str("experiment_id", required=True))
    name = _wire_errors(wire.check_name, params.str("name"))
    kind = wire.TYPES.get(params.str("type"))
    if kind is None:
        raise ApiError(
            f"Label schema `type` must be FEEDBACK or EXPECTATION; got {params.raw('type')!r}."
        )
    fields = _wire_errors(wire.input_fields, params.raw("input") or {})
    instruction = _wire_errors(wire.check_instruction, params.str("instruction", default=""))
    try:
        with transaction.atomic():
            schema = LabelSchema.objects.create(
                name=name,
                kind=kind,
                instructions=instruction,
                enable_comment=params.bool("enable_comment", default=True),
                experiment=experiment,
                applies_to=LabelSchema.AppliesTo.TRACE,
                **fields,
            )
    except IntegrityError:
        raise _name_taken(name, experiment) from None
    return json_response({"label_schema": wire.to_wire(schema)})


@api_view()
def label_schema_get(request):
    schema = _schema_by_id(Params.of(request).str("schema_id"))
    return json_response({"label_schema": wire.to_wire(schema)})


@api_view()
def label_schema_get_by_name(request):
    params = Params.of(request)
    experiment = _experiment(params.str("experiment_id", required=True))
    name = params.str("name", required=True)
    schema = _schemas_of(experiment).filter(name=name).first()
    if schema is None:
        raise not_found(
            f"Label schema with name '{name}' not found for experiment "
            f"'{experiment.experiment_id}'."
        )
    return json_response({"label_schema": wire.to_wire(schema, experiment.experiment_id)})


@api_view()
def label_schema_list(request):
    params = Params.of(request)
    experiment = _experiment(params.str("experiment_id", required=True))
    schemas, token = page(
        _schemas_of(experiment).order_by("-created_at", "-id"),
        params,
        lambda schema: wire.to_wire(schema, experiment.experiment_id),
    )
    payload = {"label_schemas": schemas} if schemas else {}
    return json_response({**payload, "next_page_token": token})


@api_view(admin=True)
def label_schema_update(request):
    params = Params.of(request)
    with transaction.atomic():
        schema = _schema_by_id(params.str("schema_id"))
        schema = LabelSchema.objects.select_for_update().get(pk=schema.pk)
        if params.has("name"):
            _rename(schema, _wire_errors(wire.check_name, params.str("name")))
        if params.has("instruction"):
            schema.instructions = _wire_errors(wire.check_instruction, params.str("instruction"))
        if params.has("enable_comment"):
            schema.enable_comment = params.bool("enable_comment")
        if params.has("input"):
            fields = _wire_errors(wire.input_fields, params.raw("input"))
            _wire_errors(wire.check_same_variant, schema, fields)
            if schema.value_type == LabelSchema.ValueType.NUMERIC:
                fields["step"] = schema.step
            for field, value in fields.items():
                setattr(schema, field, value)
        try:
            with transaction.atomic():
                schema.save()
        except IntegrityError:
            raise _name_taken(schema.name, schema.experiment) from None
    return json_response({"label_schema": wire.to_wire(schema)})


def _rename(schema: LabelSchema, name: str) -> None:
    """Stored answers are linked to their schema by name, so a schema with answers keeps it."""
    if name == schema.name:
        return
    if Assessment.objects.live().filter(name=schema.name).exists():
        raise ApiError(
            f"Label schema '{schema.name}' already has answers, which Tracemark links to it by "
            "name; it cannot be renamed."
        )
    schema.name = name


@api_view(admin=True)
def label_schema_delete(request):
    schema_id = Params.of(request).str("schema_id", required=True)
    # Answers stay on their traces, as in MLflow; an unknown id is not an error.
    LabelSchema.objects.filter(schema_id=schema_id).delete()
    return json_response({})
