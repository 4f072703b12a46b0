"""MLflow's GenAI review API (``/api/3.0/mlflow/label-schemas/`` and ``review-queues/``),
served from Tracemark's own LabelSchema, Queue and QueueItem.

The wire shapes, messages and error codes are those of MLflow 3.17.2's server: enums as
names, times as epoch milliseconds, ``RESOURCE_ALREADY_EXISTS`` with status 400, lists paged
with base64 ``{"offset": N}`` tokens and ``""`` on the last page. Creating, changing and
deleting schemas and queues is for Admins (403 PERMISSION_DENIED otherwise); reads are for
every role. See label_schema_wire for the type mapping and review_queues for the rules
of queues made here.
"""

from django.db import IntegrityError, transaction
from django.db.models import Prefetch

from accounts.roles import is_admin
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
from . import review_queues
from .models import Assessment, LabelSchema, Queue, QueueItem
from .schema_cache import schemas_changed

MAX_LIST_RESULTS = 50_000
ALREADY_EXISTS = "RESOURCE_ALREADY_EXISTS"


def experiment_by_id(experiment_id) -> Experiment:
    """The experiment, with MLflow's errors for a bad or unknown id."""
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


_schemas_of = review_queues.experiment_schemas


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
    experiment = experiment_by_id(params.str("experiment_id", required=True))
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
                applies_to=LabelSchema.AppliesTo.TRACE,
                **fields,
            )
            schema.experiments.set([experiment])
            schemas_changed()
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
    experiment = experiment_by_id(params.str("experiment_id", required=True))
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
    experiment = experiment_by_id(params.str("experiment_id", required=True))
    schemas, token = page(
        _schemas_of(experiment).prefetch_related("experiments").order_by("-created_at", "-id"),
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
            raise _name_taken(schema.name, None) from None
        schemas_changed()
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
    with transaction.atomic():
        LabelSchema.objects.filter(schema_id=schema_id).delete()
        schemas_changed()
    return json_response({})


# -- review queues -------------------------------------------------------------------------

QUEUE_TYPES = {"CUSTOM": Queue.Type.CUSTOM, "USER": Queue.Type.USER}
ITEM_STATUSES = set(QueueItem.Status.values)


def _queues():
    return (
        Queue.objects.filter(experiment__isnull=False)
        .select_related("created_by")
        .prefetch_related(
            Prefetch("annotators", to_attr="wire_users"),
            Prefetch(
                "schemas", queryset=LabelSchema.objects.only("schema_id"), to_attr="wire_schemas"
            ),
        )
    )


def _queue_wire(queue: Queue) -> dict:
    data = {
        "queue_id": queue.queue_id,
        "experiment_id": str(queue.experiment_id),
        "name": queue.name,
        "queue_type": queue.queue_type,
        "creation_time_ms": int(queue.created_at.timestamp() * 1000),
        "last_update_time_ms": queue.last_update_time,
    }
    users = sorted(user.get_username().lower() for user in queue.wire_users)
    if users:
        data["users"] = users
    schema_ids = sorted(schema.schema_id for schema in queue.wire_schemas)
    if schema_ids and queue.queue_type == Queue.Type.CUSTOM:
        data["schema_ids"] = schema_ids
    if queue.created_by is not None:
        data["created_by"] = queue.created_by.get_username().lower()
    return data


def _item_wire(item: QueueItem) -> dict:
    data = {
        "queue_id": item.queue.queue_id,
        "item_type": "TRACE",
        "item_id": item.trace.trace_id,
        "status": item.status,
        "creation_time_ms": item.creation_time,
        "last_update_time_ms": item.last_update_time,
    }
    if item.completed_by:
        data["completed_by"] = item.completed_by
    if item.completed_time is not None:
        data["completed_time_ms"] = item.completed_time
    return data


def _queue_by_id(queue_id) -> Queue:
    queue = _queues().filter(queue_id=queue_id).first() if queue_id else None
    if queue is None:
        raise not_found(f"Review queue with id '{queue_id}' not found.")
    return queue


def _reread(queue: Queue) -> dict:
    return {"review_queue": _queue_wire(_queue_by_id(queue.queue_id))}


@api_view(admin=True)
def review_queue_create(request):
    params = Params.of(request)
    experiment = experiment_by_id(params.str("experiment_id", required=True))
    queue_type = QUEUE_TYPES.get(params.str("queue_type"))
    if queue_type is None:
        raise ApiError(
            f"`queue_type` must be one of USER or CUSTOM; got {params.raw('queue_type')!r}."
        )
    arguments = {
        "experiment": experiment,
        "name": params.str("name", default=""),
        "users": params.str_list("users"),
        "schema_ids": params.str_list("schema_ids"),
    }
    if queue_type == Queue.Type.USER:
        queue = review_queues.create_user_typed(**arguments)
    else:
        queue = review_queues.create_custom(**arguments, owner=request.user)
    return json_response(_reread(queue))


@api_view(write=True)
def review_queue_get_or_create_user(request):
    params = Params.of(request)
    experiment = experiment_by_id(params.str("experiment_id", required=True))
    user = params.str("user", default="")
    if not user.strip():
        raise ApiError("Missing value for required parameter 'user'.")
    if not is_admin(request.user) and review_queues.normalise_user(user) != (
        request.user.get_username().lower()
    ):
        raise ApiError(
            "Only Admins may make another person's queue.", code="PERMISSION_DENIED", status=403
        )
    return json_response(_reread(review_queues.user_queue(experiment=experiment, user=user)))


@api_view()
def review_queue_get(request):
    return json_response(
        {"review_queue": _queue_wire(_queue_by_id(Params.of(request).str("queue_id")))}
    )


@api_view()
def review_queue_get_by_name(request):
    params = Params.of(request)
    experiment = experiment_by_id(params.str("experiment_id", required=True))
    name = params.str("name", required=True).strip()
    queue = (
        _queues().filter(experiment=experiment, name__iexact=name).order_by("queue_type").first()
    )
    if queue is None:
        raise not_found(
            f"Review queue with name '{name}' not found for experiment "
            f"'{experiment.experiment_id}'."
        )
    return json_response({"review_queue": _queue_wire(queue)})


@api_view()
def review_queue_list(request):
    params = Params.of(request)
    experiment = experiment_by_id(params.str("experiment_id", required=True))
    queues = _queues().filter(experiment=experiment)
    if params.str("user"):
        queues = queues.filter(annotators__username__iexact=params.str("user").strip())
    if params.str("item_id"):
        queues = queues.filter(items__trace__trace_id=params.str("item_id"))
    found, token = page(queues.order_by("-created_at", "-pk").distinct(), params, _queue_wire)
    payload = {"review_queues": found} if found else {}
    return json_response({**payload, "next_page_token": token})


@api_view(admin=True)
def review_queue_update(request):
    params = Params.of(request)
    queue = _queue_by_id(params.str("queue_id"))
    changes = {"name": params.str("name"), "new_owner": params.str("new_owner")}
    if params.bool("update_users"):
        changes["users"] = params.str_list("users")
    if params.bool("update_schema_ids"):
        changes["schema_ids"] = params.str_list("schema_ids")
    return json_response(_reread(review_queues.update(queue=queue, **changes)))


@api_view(admin=True)
def review_queue_delete(request):
    queue_id = Params.of(request).str("queue_id", required=True)
    # Answers stay on their traces; an unknown id is not an error.
    Queue.objects.filter(queue_id=queue_id, experiment__isnull=False).delete()
    return json_response({})


@api_view(admin=True)
def review_queue_items_add(request):
    params = Params.of(request)
    queue = _queue_by_id(params.str("queue_id"))
    if params.str("item_type", default="TRACE") != "TRACE":
        raise ApiError("Tracemark queues hold traces: `item_type` must be TRACE.")
    items = review_queues.add_items(queue=queue, item_ids=params.str_list("item_ids"))
    for item in items:
        item.queue = queue
    return json_response({"items": [_item_wire(item) for item in items]})


@api_view(admin=True)
def review_queue_items_remove(request):
    params = Params.of(request)
    queue = _queue_by_id(params.str("queue_id"))
    review_queues.remove_items(queue=queue, item_ids=params.str_list("item_ids"))
    return json_response({})


@api_view()
def review_queue_items_list(request):
    params = Params.of(request)
    queue = _queue_by_id(params.str("queue_id"))
    items = queue.items.select_related("trace", "queue").order_by(
        "-creation_time", "trace__trace_id"
    )
    status = params.str("status")
    if status:
        if status not in ITEM_STATUSES:
            raise ApiError(f"`status` must be one of {sorted(ITEM_STATUSES)}; got {status!r}.")
        items = items.filter(status=status)
    found, token = page(items, params, _item_wire)
    payload = {"items": found} if found else {}
    return json_response({**payload, "next_page_token": token})


@api_view(write=True)
def review_queue_items_set_status(request):
    params = Params.of(request)
    queue = _queue_by_id(params.str("queue_id"))
    status = params.str("status")
    if status not in ITEM_STATUSES:
        raise ApiError(f"`status` must be one of {sorted(ITEM_STATUSES)}; got {status!r}.")
    members = {user.pk for user in queue.wire_users}
    if request.user.pk not in members and not is_admin(request.user):
        raise ApiError(
            "Only the queue's users and Admins may set its items' status.",
            code="PERMISSION_DENIED",
            status=403,
        )
    item = review_queues.set_item_status(
        queue=queue, item_id=params.str("item_id", default=""), status=status, user=request.user
    )
    item.queue = queue
    return json_response({"item": _item_wire(item)})
