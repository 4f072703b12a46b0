"""The only code that writes assessments.

Invariants it owns:
- Every write runs in one transaction, bumps the assessment's ``version`` by one and appends
  exactly one AssessmentRevision holding the full snapshot after the write. An override
  writes two assessments (the new one and the one it invalidates), so two revisions.
- A caller that passes ``expected_version`` gets ConflictError when another write got there
  first, and nothing changes. Rows are locked with select_for_update while checked.
- Values keep their JSON type (True stays a boolean, 1 a number, "1" a string). A person's
  entry must pass the LabelSchema of the same name when one exists; judges' and code's are
  kept as sent (``_check_schema`` says why).
- Deletion is soft: the row and its history stay, ``deleted_at`` hides it; ``restore``
  brings it back. Deleting an overriding assessment makes the one it overrode valid again.
- A person has one live, valid answer per name and target when its schema says
  ``one_per_annotator`` (a target: the trace, one of its spans, or the session named under
  ``SESSION_KEY`` in the metadata, so a session answer stored on a turn is kept apart from
  an answer about that turn), and a feedback has at most one live override. Both are unique
  constraints too, so concurrent writers cannot both pass the check; the loser gets the
  same ValidationError (code ``duplicate``) as a sequential duplicate.
- Every entry stays its author's (``permits`` is the one rule, for the UI and the API alike):
  only the author changes an entry; a human entry is deleted or restored only by its author,
  a judge's or code's also by an Admin; a judge's or code's feedback is overridden by any
  Reviewer, a person's only by an Admin (a decision) or by its author. Others add their own
  answer. Without an actor (seeding, commands run on the server) the system may do anything.
- An assessment names a span of its trace. Only the trace info a traced app sends
  (``span_may_follow=True``) may name a span that has not arrived yet: the client's async
  queue can send it before the spans, and the assessment attaches when the span comes.
  Given a trace id instead of a Trace, the insert itself finds the trace (and the span), so
  a write costs its two inserts; only a failed one asks which was missing.
- Schemas are read from this process's copy (annotation.schema_cache), at most
  ``SCHEMA_CACHE_SECONDS`` behind a change made in another process.

Events: callers in the UI emit the ``assessment-saved`` htmx event after a successful write.
"""

from collections.abc import Callable

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.roles import can_write, is_admin
from traces.models import Span, Trace, now_ms

from .models import (
    Assessment,
    AssessmentRevision,
    Kind,
    LabelSchema,
    SourceType,
    session_of,
)
from .schema_cache import schema_named
from .validation import (
    check_against_schema,
    check_json_value,
    check_metadata,
    check_name,
    check_source_type,
    check_span_id,
)

Action = AssessmentRevision.Action
UPDATE, DELETE, RESTORE, OVERRIDE = "update", "delete", "restore", "override"
PERMISSION_DENIED = "permission_denied"


class ConflictError(ValidationError):
    """Someone else saved the assessment since the caller read it; ``current`` is their state."""

    def __init__(self, current: Assessment, expected_version: int):
        super().__init__(
            f"This entry was changed by someone else (now version {current.version}, "
            f"you started from version {expected_version}).",
            code="conflict",
        )
        self.current = current
        self.expected_version = expected_version


def permits(actor, action: str, assessment: Assessment) -> bool:
    """Whether ``actor`` may ``update``, ``delete``, ``restore`` or ``override`` the entry."""
    if actor is None:
        return True
    if not can_write(actor):
        return False
    own = assessment.annotator_id is not None and assessment.annotator_id == actor.pk
    human = assessment.source_type == SourceType.HUMAN
    if action == UPDATE:
        return own
    if action in (DELETE, RESTORE):
        return own or (not human and is_admin(actor))
    if action == OVERRIDE:
        return not human or own or is_admin(actor)
    raise ValueError(f"Unknown action {action!r}.")


_REFUSALS = {
    UPDATE: "Only its author can change this entry; add your own answer instead.",
    DELETE: "Only its author (or an Admin, for a judge's or code's entry) can delete it.",
    RESTORE: "Only its author (or an Admin, for a judge's or code's entry) can restore it.",
    OVERRIDE: "Only an Admin can override another person's answer; add your own instead.",
}


def _check_permitted(actor, action: str, assessment: Assessment) -> None:
    if not permits(actor, action, assessment):
        raise ValidationError(_REFUSALS[action], code=PERMISSION_DENIED)


class _Unset:
    def __repr__(self):
        return "UNSET"


UNSET = _Unset()

# A test of the locked assessment that raises to refuse it (see _lock).
Check = Callable[[Assessment], None]


def log_feedback(
    *, trace: Trace | str, name: str, value=None, error: dict | None = None, **fields
) -> Assessment:
    """Record a judgement of a trace or one of its spans; ``fields`` as in ``_create``."""
    return _create(trace=trace, kind=Kind.FEEDBACK, name=name, value=value, error=error, **fields)


def log_expectation(*, trace: Trace | str, name: str, value, **fields) -> Assessment:
    """Record the ground truth for a trace or span; ``fields`` as in ``_create``."""
    return _create(trace=trace, kind=Kind.EXPECTATION, name=name, value=value, **fields)


def log_issue(*, trace: Trace | str, issue_id: str, issue_name: str, **fields) -> Assessment:
    """Link a trace or span to an issue (MLflow 3's issue reference); ``fields`` as in ``_create``.

    The assessment's name is the issue's id and its value the issue's name, as in MLflow.
    """
    if not isinstance(issue_name, str) or not issue_name.strip():
        raise ValidationError("An issue reference needs an issue name.", code="invalid_value")
    return _create(trace=trace, kind=Kind.ISSUE, name=issue_id, value=issue_name, **fields)


@transaction.atomic
def override_feedback(
    *,
    assessment_id: str,
    value,
    name: str | None = None,
    expected_version: int | None = None,
    check: Check | None = None,
    **fields,
) -> Assessment:
    """Replace a feedback (typically an LLM judge's) with a new one; the old one turns invalid.

    The new feedback keeps the old one's target; ``fields`` as in ``_create``, ``check`` as
    in ``_lock``.
    """
    actor = fields.get("actor")
    old = _lock(assessment_id, expected_version, actor=actor, action=OVERRIDE, check=check)
    if old.kind != Kind.FEEDBACK:
        raise ValidationError("Only feedback can be overridden.", code="wrong_kind")
    # A second live override is refused by the unique index the insert meets (_store).
    actor, actor_label = fields.get("actor"), fields.get("actor_label", "")
    # Invalid first: overriding one's own answer must not hold two valid answers at once.
    if old.valid:
        old.valid = False
        _save(old, Action.INVALIDATE, actor, actor_label)
    return _insert(
        trace=old.trace,
        kind=Kind.FEEDBACK,
        name=name or old.name,
        value=value,
        span_id=old.span_id,
        overrides=old,
        **fields,
    )


@transaction.atomic
def update_assessment(
    *,
    assessment_id: str,
    actor=None,
    actor_label: str = "",
    expected_version: int | None = None,
    name=UNSET,
    value=UNSET,
    rationale=UNSET,
    metadata=UNSET,
    error=UNSET,
    check: Check | None = None,
) -> Assessment:
    """Change the given fields of a live assessment; unspecified fields stay as they are.
    ``check`` as in ``_lock``."""
    assessment = _lock(assessment_id, expected_version, actor=actor, action=UPDATE, check=check)
    if name is not UNSET:
        assessment.name = check_name(name)
    if value is not UNSET:
        check_json_value(value)
        assessment.value = value
    if rationale is not UNSET:
        assessment.rationale = rationale or ""
    if metadata is not UNSET:
        assessment.metadata = {**assessment.metadata, **check_metadata(metadata)}
    if error is not UNSET:
        _set_error(assessment, error)
    _check_schema(assessment, assessment.trace)
    assessment.last_update_time = now_ms()
    return _save(assessment, Action.UPDATE, actor, actor_label)


@transaction.atomic
def delete_assessment(
    *,
    assessment_id: str,
    actor=None,
    actor_label: str = "",
    expected_version: int | None = None,
    check: Check | None = None,
) -> Assessment:
    """Hide an assessment (soft delete); its history stays and ``restore`` undoes it.
    ``check`` as in ``_lock``."""
    assessment = _lock(assessment_id, expected_version, actor=actor, action=DELETE, check=check)
    assessment.deleted_at = timezone.now()
    _save(assessment, Action.DELETE, actor, actor_label)
    if assessment.overrides_id:
        _revalidate_if_unoverridden(assessment.overrides_id, actor, actor_label)
    return assessment


@transaction.atomic
def restore(
    *,
    assessment_id: str,
    actor=None,
    actor_label: str = "",
    expected_version: int | None = None,
) -> Assessment:
    """Bring back a soft-deleted assessment; one it overrode turns invalid again."""
    assessment = _lock(assessment_id, expected_version, actor=actor, action=RESTORE, deleted=True)
    if assessment.overrides_id:
        overridden = _lock_pk(assessment.overrides_id)
        if overridden.valid:
            overridden.valid = False
            _save(overridden, Action.INVALIDATE, actor, actor_label)
    assessment.deleted_at = None
    return _save(assessment, Action.RESTORE, actor, actor_label)


def _create(*, trace: Trace | str, **fields) -> Assessment:
    """Insert a new assessment and its revision in one transaction; ``fields`` as in
    ``_insert``. A trace given by id that is not there raises Trace.DoesNotExist."""
    try:
        with transaction.atomic():
            return _insert(trace=trace, **fields)
    except _NoTarget:
        if not Trace.objects.filter(trace_id=trace).exists():
            raise Trace.DoesNotExist(f"Trace with ID '{trace}' not found.") from None
        raise _unknown_span(fields.get("span_id"), trace) from None


class _NoTarget(Exception):
    """The insert found no trace (or no span) of the id it was given."""


def _unknown_span(span_id: str, trace_id: str) -> ValidationError:
    return ValidationError(
        f"Span '{span_id}' is not part of trace '{trace_id}'.", code="unknown_span"
    )


def _insert(
    *,
    trace: Trace | str,
    kind: str,
    name: str,
    value,
    span_id: str | None = None,
    rationale: str = "",
    source_type: str = SourceType.HUMAN,
    source_id: str = "",
    error: dict | None = None,
    metadata: dict | None = None,
    actor=None,
    actor_label: str = "",
    create_time: int | None = None,
    overrides: Assessment | None = None,
    span_may_follow: bool = False,
) -> Assessment:
    check_json_value(value)
    timestamp = create_time if create_time is not None else now_ms()
    assessment = Assessment(
        kind=kind,
        name=check_name(name),
        value=value,
        span_id=span_id or None,
        rationale=rationale or "",
        source_type=check_source_type(source_type),
        source_id=source_id or "",
        metadata=check_metadata(metadata),
        overrides=overrides,
        annotator=actor,
        create_time=timestamp,
        last_update_time=timestamp,
        version=1,
    )
    _set_error(assessment, error)
    if span_id and span_may_follow:
        check_span_id(span_id)
    must_have_span = bool(span_id) and not span_may_follow
    on_trace = None
    if isinstance(trace, Trace):
        if must_have_span and not trace.spans.filter(span_id=span_id).exists():
            raise _unknown_span(span_id, trace.trace_id)
        assessment.trace = trace
        assessment.experiment_id = trace.experiment_id
    else:
        on_trace = (trace, span_id if must_have_span else None)
    _check_one_per_annotator(assessment, _check_schema(assessment, trace), trace)
    _store(assessment, on_trace=on_trace)
    _record(assessment, Action.OVERRIDE if overrides else Action.CREATE, actor, actor_label)
    return assessment


def _lock(
    assessment_id: str,
    expected_version: int | None,
    *,
    actor,
    action: str,
    deleted=False,
    check: Check | None = None,
) -> Assessment:
    """Fetch and row-lock an assessment the actor may ``action``; raise
    Assessment.DoesNotExist, a ``permission_denied`` ValidationError, or ConflictError.

    ``check`` sees the locked row (its trace loaded) before anything else is decided and
    may raise to refuse it: the API's test that the entry is on the trace the URL names
    and not hidden from the caller, made without a read of its own.
    """
    assessment = (
        Assessment.objects.select_for_update(of=("self",))
        .select_related("trace", "overrides")
        .get(assessment_id=assessment_id, deleted_at__isnull=not deleted)
    )
    if check is not None:
        check(assessment)
    _check_permitted(actor, action, assessment)
    if expected_version is not None and assessment.version != expected_version:
        raise ConflictError(assessment, expected_version)
    return assessment


def _lock_pk(pk: int) -> Assessment:
    return Assessment.objects.select_for_update(of=("self",)).select_related("overrides").get(pk=pk)


def _revalidate_if_unoverridden(pk: int, actor, actor_label: str) -> None:
    overridden = _lock_pk(pk)
    still_overridden = overridden.overridden_by.filter(deleted_at__isnull=True).exists()
    if not overridden.valid and not still_overridden:
        overridden.valid = True
        _save(overridden, Action.REVALIDATE, actor, actor_label)


def _set_error(assessment: Assessment, error: dict | None) -> None:
    error = error or {}
    if not isinstance(error, dict):
        raise ValidationError("An error must be an object.", code="invalid_error")
    assessment.error_code = str(error.get("error_code") or "")
    assessment.error_message = str(error.get("error_message") or "")
    assessment.stack_trace = str(error.get("stack_trace") or "")


def _check_schema(assessment: Assessment, trace: Trace | str | None = None) -> LabelSchema | None:
    """Check a person's entry against the LabelSchema of its name, if there is one; return
    the schema.

    A schema is a question for people, so it binds their entries (source HUMAN). Judges'
    and code's verdicts are kept as their programs send them, as MLflow's server keeps
    them: those programs (mlflow.genai.evaluate's scorers among them) do not know
    Tracemark's schemas, and a refusal would lose their results. A trace-level question
    also takes an entry on the trace's root span, where evaluate() logs a dataset's
    expectations (``trace``: the Trace or trace id, when known)."""
    schema = schema_named(assessment.name)
    if schema is None or assessment.source_type != SourceType.HUMAN:
        return schema
    span_id = assessment.span_id
    if span_id and schema.applies_to == LabelSchema.AppliesTo.TRACE and trace is not None:
        span_id = None if _is_root_span(trace, span_id) else span_id
    check_against_schema(schema, kind=assessment.kind, value=assessment.value, span_id=span_id)
    return schema


def _is_root_span(trace: Trace | str, span_id: str) -> bool:
    spans = Span.objects.filter(span_id=span_id, parent_span_id__isnull=True)
    if isinstance(trace, Trace):
        return spans.filter(trace=trace).exists()
    return spans.filter(trace__trace_id=trace).exists()


def _check_one_per_annotator(
    assessment: Assessment, schema: LabelSchema | None, trace: Trace | str
) -> None:
    """A person gives one answer per schema and target when the schema says so; they edit it."""
    if assessment.annotator_id is None or assessment.source_type != SourceType.HUMAN:
        return
    if schema is None or not schema.one_per_annotator:
        return
    same_target = (
        Assessment.objects.live()
        .filter(
            **({"trace": trace} if isinstance(trace, Trace) else {"trace__trace_id": trace}),
            span_id=assessment.span_id,
            name=assessment.name,
            annotator_id=assessment.annotator_id,
            valid=True,
        )
        .exclude(pk=assessment.overrides_id)
        .about_session(session_of(assessment.metadata))
    )
    if same_target.exists():
        raise ValidationError(
            f"You already gave '{schema.title or schema.name}' here; edit that entry instead.",
            code="duplicate",
        )
    assessment.one_per_annotator = True


# What each unique constraint on Assessment means to the writer who lost a race for it, by
# the constraint's name (PostgreSQL's message) or its column (SQLite's, for a plain index).
_DUPLICATES = {
    "assessment_one_live_answer": "You already gave '{name}' here; edit that entry instead.",
    "assessment_one_live_override": (
        "This feedback was overridden already; edit or delete that override instead."
    ),
}
_SQLITE_COLUMNS = {"assessment_one_live_override": "annotation_assessment.overrides_id"}


def _store(assessment: Assessment, *, on_trace: tuple[str, str | None] | None = None) -> None:
    """Save, turning a lost race for one of the unique constraints into a ValidationError;
    a new assessment ``on_trace`` (trace id, span id or None) is inserted by _insert_on.

    The enclosing atomic block (each service has one) rolls the whole write back.
    """
    try:
        if on_trace is None:
            assessment.save()
        else:
            _insert_on(assessment, *on_trace)
    except IntegrityError as exc:
        text = str(exc)
        for constraint, message in _DUPLICATES.items():
            if constraint in text or _SQLITE_COLUMNS.get(constraint, constraint) in text:
                raise ValidationError(
                    message.format(name=assessment.name), code="duplicate"
                ) from None
        raise


_INSERTED_FIELDS = [f for f in Assessment._meta.concrete_fields if not f.primary_key]
_FROM_TRACE = {"trace_id": "t.id", "experiment_id": "t.experiment_id"}


def _insert_on(assessment: Assessment, trace_id: str, span_id: str | None) -> None:
    """Insert a new assessment on the trace of ``trace_id`` (and, given ``span_id``, only if
    the trace has that span) with one INSERT … SELECT: the trace's key and experiment come
    from the statement itself, so a write by trace id costs no lookup. Raises _NoTarget
    when nothing was inserted."""
    quote = connection.ops.quote_name
    columns, values, params = [], [], []
    for f in _INSERTED_FIELDS:
        columns.append(quote(f.column))
        if f.attname in _FROM_TRACE:
            values.append(_FROM_TRACE[f.attname])
        else:
            values.append("%s")
            params.append(f.get_db_prep_save(f.pre_save(assessment, True), connection))
    where = "t.trace_id = %s"
    params.append(trace_id)
    if span_id:
        spans = quote(Span._meta.db_table)
        where += f" AND EXISTS (SELECT 1 FROM {spans} s WHERE s.trace_id = t.id AND s.span_id = %s)"  # noqa: S608, E501
        params.append(span_id)
    sql = (
        f"INSERT INTO {quote(Assessment._meta.db_table)} ({', '.join(columns)}) "  # noqa: S608
        f"SELECT {', '.join(values)} FROM {quote(Trace._meta.db_table)} t WHERE {where} "
        "RETURNING id, trace_id, experiment_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        raise _NoTarget
    assessment.pk, assessment.trace_id, assessment.experiment_id = row
    assessment._state.adding = False
    assessment._state.db = connection.alias


def _save(assessment: Assessment, action: str, actor, actor_label: str) -> Assessment:
    assessment.version += 1
    _store(assessment)
    _record(assessment, action, actor, actor_label)
    return assessment


def _record(assessment: Assessment, action: str, actor, actor_label: str) -> None:
    AssessmentRevision.objects.create(
        assessment=assessment,
        version=assessment.version,
        action=action,
        snapshot=assessment.snapshot(),
        actor=actor,
        actor_label=actor_label or (actor.get_username() if actor else "system"),
    )
