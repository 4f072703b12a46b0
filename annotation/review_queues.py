"""Queues made through MLflow's review-queue API, with MLflow's rules.

Invariants it owns, for queues with ``shared_status`` (every queue made through the API):
- An item has one status (PENDING, COMPLETE, DECLINED) shared by the queue's annotators;
  it is set here and by annotation.queues when someone answers or skips it in the browser.
  Setting the status it already has changes nothing, so the first completer keeps the
  attribution; reopening clears it. ``completed_by`` is always the caller.
- Users are Tracemark accounts that may label (Reviewers and Admins), matched by username
  as MLflow normalises it (stripped, lower-cased), at most ten per queue.
- A USER queue is one person's: its name is their username, it carries every schema of
  its experiment, and it cannot be changed. A CUSTOM queue's name is unique in its
  experiment whatever its case, and ``default`` is reserved.
- A queue's schemas are frozen while it has items. Adding items is all-or-nothing, keeps
  the request's order, drops repeats and keeps items already there as they are.
- Such a queue hands each item to one annotator at a time (overlap 1) and is not blind:
  MLflow has neither notion.

Errors are ApiError in MLflow's codes and words, since only the API makes these queues.
"""

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max, Q

from accounts.roles import can_write
from traces.models import Experiment, Trace, now_ms
from traces.rest import ApiError, not_found

from . import span_questions
from .models import LabelSchema, Queue, QueueAssignment, QueueItem
from .queues import record_status

MAX_USERS = 10
RESERVED_NAME = "default"
ALREADY_EXISTS = "RESOURCE_ALREADY_EXISTS"
ItemStatus = QueueItem.Status


def normalise_user(user: str) -> str:
    return user.strip().lower()


def experiment_schemas(experiment: Experiment):
    """The schemas an experiment's reviewers answer: its own and those made for all."""
    return LabelSchema.objects.for_experiment(experiment.pk)


def _accounts(users: list[str]) -> list:
    names = sorted({normalise_user(user) for user in users if normalise_user(user)})
    if len(names) > MAX_USERS:
        raise ApiError(
            f"A review queue can have at most {MAX_USERS} assigned users; got {len(names)}."
        )
    found = {
        user.username.lower(): user
        for user in get_user_model().objects.filter(is_active=True).filter(_iexact_any(names))
    }
    unknown = [name for name in names if name not in found]
    if unknown:
        raise ApiError(f"User(s) {unknown} have no active Tracemark account.")
    readers = [name for name in names if not can_write(found[name])]
    if readers:
        raise ApiError(f"User(s) {readers} have a read-only role and cannot label.")
    return [found[name] for name in names]


def _iexact_any(names: list[str]) -> Q:
    condition = Q(pk__in=[])
    for name in names:
        condition |= Q(username__iexact=name)
    return condition


def _schemas(experiment: Experiment, schema_ids: list[str]) -> list[LabelSchema]:
    wanted = list(dict.fromkeys(schema_ids))
    found = list(experiment_schemas(experiment).filter(schema_id__in=wanted))
    missing = sorted(set(wanted) - {schema.schema_id for schema in found})
    if missing:
        raise ApiError(
            f"Label schema id(s) {missing} not found for experiment '{experiment.experiment_id}'."
        )
    if any(schema.applies_to == LabelSchema.AppliesTo.SPAN for schema in found):
        raise ApiError("Queue items are whole traces; span-only schemas cannot be used.")
    return found


def _check_custom_name(name: str, experiment: Experiment, exclude: Queue | None = None) -> str:
    name = name.strip() if isinstance(name, str) else ""
    if not name:
        raise ApiError(f"`name` must be a non-empty string; got {name!r}.")
    if len(name) > 255:
        raise ApiError("`name` must be at most 255 characters.")
    if name.lower() == RESERVED_NAME:
        raise ApiError(
            f"`{name.upper()}` is a reserved queue name and cannot be used for a custom queue."
        )
    taken = Queue.objects.filter(
        experiment=experiment, queue_type=Queue.Type.CUSTOM, name__iexact=name
    )
    if exclude is not None:
        taken = taken.exclude(pk=exclude.pk)
    if taken.exists() or Queue.objects.filter(experiment__isnull=True, name=name).exists():
        raise _name_taken(name)
    return name


def _name_taken(name: str) -> ApiError:
    return ApiError(
        f"Review queue with name '{name}' already exists (names are case-insensitive).",
        code=ALREADY_EXISTS,
    )


@transaction.atomic
def create_custom(
    *, experiment: Experiment, name: str, users: list[str], schema_ids: list[str], owner
) -> Queue:
    name = _check_custom_name(name, experiment)
    accounts = _accounts(users)
    schemas = _schemas(experiment, schema_ids)
    try:
        with transaction.atomic():
            queue = _new_queue(experiment, name, Queue.Type.CUSTOM, owner)
    except IntegrityError:
        raise _name_taken(name) from None
    queue.annotators.set(accounts)
    queue.schemas.set(schemas)
    return queue


def _new_queue(experiment, name, queue_type, owner) -> Queue:
    return Queue.objects.create(
        experiment=experiment,
        name=name,
        queue_type=queue_type,
        shared_status=True,
        overlap=1,
        blind=False,
        created_by=owner,
    )


@transaction.atomic
def user_queue(*, experiment: Experiment, user: str) -> Queue:
    """The person's own queue in the experiment, made on first use."""
    (account,) = _accounts([user]) if normalise_user(user) else (None,)
    if account is None:
        raise ApiError("Missing value for required parameter 'user'.")
    name = account.username.lower()
    existing = Queue.objects.filter(
        experiment=experiment, queue_type=Queue.Type.USER, name=name
    ).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            queue = _new_queue(experiment, name, Queue.Type.USER, account)
    except IntegrityError:
        return Queue.objects.get(experiment=experiment, queue_type=Queue.Type.USER, name=name)
    queue.annotators.set([account])
    queue.schemas.set(experiment_schemas(experiment))
    return queue


def create_user_typed(*, experiment: Experiment, name: str, users: list[str], schema_ids):
    """``create(queue_type=USER)``: the users follow from the name, and no schemas."""
    user = normalise_user(name or "")
    if users and {normalise_user(u) for u in users} != {user}:
        raise ApiError(
            "A user queue must have exactly one assigned user equal to its name; "
            f"got name={user!r}, users={sorted({normalise_user(u) for u in users})}."
        )
    if schema_ids:
        raise ApiError(
            "A user queue cannot have explicitly-attached schemas; "
            "it covers every schema of its experiment."
        )
    return user_queue(experiment=experiment, user=user)


def _lock(queue: Queue) -> Queue:
    return Queue.objects.select_for_update().get(pk=queue.pk)


@transaction.atomic
def update(*, queue: Queue, name=None, new_owner=None, users=None, schema_ids=None) -> Queue:
    """Set what is given (``None`` leaves it); ``users`` and ``schema_ids`` replace lists."""
    queue = _lock(queue)
    if all(value is None for value in (name, new_owner, users, schema_ids)):
        return queue
    if queue.queue_type == Queue.Type.USER:
        raise ApiError(
            "A user queue's name, assigned user, schemas, and owner are fixed and cannot be "
            "updated."
        )
    if name is not None and name.strip() != queue.name:
        queue.name = _check_custom_name(name, queue.experiment, exclude=queue)
    if new_owner is not None:
        (queue.created_by,) = _accounts([new_owner])
    if users is not None:
        queue.annotators.set(_accounts(users))
    if schema_ids is not None:
        schemas = _schemas(queue.experiment, schema_ids)
        if {s.pk for s in schemas} != set(queue.schemas.values_list("pk", flat=True)):
            if queue.items.exists():
                raise ApiError(
                    "A review queue's questions are locked once items are assigned to it. "
                    "Remove the items before changing its questions."
                )
            queue.schemas.set(schemas)
    queue.last_update_time = now_ms()
    try:
        with transaction.atomic():
            queue.save()
    except IntegrityError:
        raise _name_taken(queue.name) from None
    return queue


def _clean_ids(item_ids: list[str]) -> list[str]:
    ids = list(dict.fromkeys(item_id.strip() for item_id in item_ids if item_id.strip()))
    if not ids:
        raise ApiError(f"`item_ids` must be a non-empty list; got {item_ids!r}.")
    return ids


@transaction.atomic
def add_items(*, queue: Queue, item_ids: list[str]) -> list[QueueItem]:
    """Attach traces of the queue's experiment; the answer lists every requested item."""
    queue = _lock(queue)
    ids = _clean_ids(item_ids)
    traces = {
        trace.trace_id: trace
        for trace in Trace.objects.filter(trace_id__in=ids, experiment=queue.experiment)
    }
    missing = [trace_id for trace_id in ids if trace_id not in traces]
    if missing:
        raise not_found(
            f"Cannot attach trace(s) {missing} to review queue '{queue.queue_id}': they do not "
            f"exist in experiment '{queue.experiment.experiment_id}'."
        )
    existing = {item.trace.trace_id: item for item in queue.items.select_related("trace")}
    position = queue.items.aggregate(last=Max("position"))["last"] or 0
    moment = now_ms()
    new = []
    for trace_id in ids:
        if trace_id not in existing:
            position += 1
            new.append(
                QueueItem(
                    queue=queue,
                    trace=traces[trace_id],
                    position=position,
                    creation_time=moment,
                    last_update_time=moment,
                )
            )
    try:
        span_questions.check_traces_match(
            span_questions.questions_of(queue), [item.trace for item in new]
        )
    except ValidationError as exc:
        raise ApiError(exc.message) from exc
    QueueItem.objects.bulk_create(new)
    if new and queue.queue_type == Queue.Type.USER:
        queue.schemas.set(experiment_schemas(queue.experiment))
    made = {item.trace.trace_id: item for item in queue.items.select_related("trace")}
    return [made[trace_id] for trace_id in ids]


@transaction.atomic
def remove_items(*, queue: Queue, item_ids: list[str]) -> None:
    queue = _lock(queue)
    queue.items.filter(trace__trace_id__in=_clean_ids(item_ids)).delete()


@transaction.atomic
def set_item_status(*, queue: Queue, item_id: str, status: str, user) -> QueueItem:
    """Set the item's one status as ``user``; the same status again changes nothing."""
    item = (
        QueueItem.objects.select_for_update(of=("self",))
        .select_related("trace")
        .filter(queue=queue, trace__trace_id=item_id)
        .first()
    )
    if item is None:
        raise not_found(f"Item '{item_id}' is not attached to review queue '{queue.queue_id}'.")
    if status == item.status:
        return item
    record_status(item, status, user.get_username().lower())
    if status == ItemStatus.PENDING:
        # Back to the people who answered it, as a reopened item in the browser.
        item.assignments.filter(status=QueueAssignment.Status.DONE).update(
            status=QueueAssignment.Status.ASSIGNED, completed_at=None
        )
    return item
