"""What people (and judges, and code) say about traces. Written only by annotation.services."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Exists, F, OuterRef, Q, Value
from django.db.models.fields.json import KT
from django.db.models.functions import Coalesce, Lower
from django.urls import reverse

from traces.models import Experiment, Trace, now_ms

from .json_numbers import ExactNumberDecoder, ExactNumberEncoder


def new_assessment_id() -> str:
    return f"a-{uuid.uuid4().hex}"


def new_schema_id() -> str:
    return f"ls-{uuid.uuid4().hex}"


def new_queue_id() -> str:
    return f"rq-{uuid.uuid4().hex}"


class Kind(models.TextChoices):
    FEEDBACK = "feedback", "Feedback"
    EXPECTATION = "expectation", "Expectation"
    # MLflow 3's issue reference: the name is the issue's id, the value its name. Traced apps
    # and judges link traces to issues; people label with the other two kinds.
    ISSUE = "issue", "Issue"


# What people label, and what a LabelSchema governs.
LABEL_KINDS = [
    (Kind.FEEDBACK.value, Kind.FEEDBACK.label),
    (Kind.EXPECTATION.value, Kind.EXPECTATION.label),
]


# Names the session an answer is about, when it is about a whole session rather than the
# trace it is stored on (a session item's, see annotation.session_items): a separate target
# from the trace, for the one-answer-per-annotator rule too.
SESSION_KEY = "tracemark.session_id"


def session_of(metadata) -> str:
    """The session an entry's metadata says it is about; empty for an answer about its trace."""
    return (metadata or {}).get(SESSION_KEY) or ""


def about_session():
    """``session_of`` in SQL, on Assessment rows: the session named, else ""."""
    return Coalesce(KT(f"metadata__{SESSION_KEY}"), Value(""), output_field=models.TextField())


class SourceType(models.TextChoices):
    HUMAN = "HUMAN", "Human"
    LLM_JUDGE = "LLM_JUDGE", "LLM judge"
    CODE = "CODE", "Code"


def feedback_error(row) -> dict | None:
    """The error of a feedback, from an Assessment or a row holding its three error columns."""
    if not (row.error_code or row.error_message or row.stack_trace):
        return None
    return {
        "error_code": row.error_code,
        "error_message": row.error_message,
        "stack_trace": row.stack_trace,
    }


class AssessmentQuerySet(models.QuerySet):
    def live(self):
        """Assessments the API and UI show: not soft-deleted (overridden ones included)."""
        return self.filter(deleted_at__isnull=True)

    def about_session(self, session_id: str):
        """Answers about the session ``session_id`` (naming it under SESSION_KEY), or, for
        "", answers about their own trace (naming no session)."""
        if session_id:
            return self.filter(**{f"metadata__{SESSION_KEY}": session_id})
        return self.exclude(metadata__has_key=SESSION_KEY)

    def with_editors(self):
        """Annotate ``created_by`` and ``changed_by``: who made the first and the latest
        revision (their actor labels), read inside the same query."""
        revisions = AssessmentRevision.objects.filter(assessment=models.OuterRef("pk"))
        return self.annotate(
            created_by=models.Subquery(revisions.filter(version=1).values("actor_label")[:1]),
            changed_by=models.Subquery(
                revisions.filter(version=models.OuterRef("version")).values("actor_label")[:1]
            ),
        )


class Assessment(models.Model):
    assessment_id = models.CharField(max_length=64, unique=True, default=new_assessment_id)
    # Indexed by assessment_trace_name_idx, which leads with the trace (one index less to
    # keep on every write); likewise the annotator by assessment_annotator_idx.
    trace = models.ForeignKey(
        Trace, on_delete=models.CASCADE, related_name="assessments", db_index=False
    )
    # The trace's experiment, kept beside it so that the trace list can ask how much of a
    # feedback an experiment holds without visiting its traces (traces.feedback).
    experiment = models.ForeignKey(
        Experiment, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    span_id = models.CharField(max_length=16, null=True, blank=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    name = models.CharField(max_length=255)
    # Any JSON value; None means "no value" (an error-only feedback).
    value = models.JSONField(
        null=True, blank=True, encoder=ExactNumberEncoder, decoder=ExactNumberDecoder
    )
    rationale = models.TextField(blank=True, default="")
    source_type = models.CharField(max_length=16, choices=SourceType.choices)
    source_id = models.CharField(max_length=255, blank=True, default="")
    error_code = models.CharField(max_length=255, blank=True, default="")
    error_message = models.TextField(blank=True, default="")
    stack_trace = models.TextField(blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    valid = models.BooleanField(default=True)
    # Set by services on a person's answer under a schema that allows one per annotator: the
    # database then keeps one such live, valid answer per person, name and target.
    one_per_annotator = models.BooleanField(default=False)
    overrides = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="overridden_by"
    )
    # The signed-in user or API token owner who created it (None for seed/system data).
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assessments",
        db_index=False,
    )
    create_time = models.BigIntegerField(default=now_ms, help_text="Milliseconds since epoch.")
    last_update_time = models.BigIntegerField(default=now_ms, help_text="Milliseconds since epoch.")
    version = models.PositiveIntegerField(default=1)
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = AssessmentQuerySet.as_manager()

    class Meta:
        ordering = ["create_time", "id"]
        indexes = [
            models.Index(fields=["trace", "name"], name="assessment_trace_name_idx"),
            models.Index(fields=["name", "kind"], name="assessment_name_kind_idx"),
            models.Index(fields=["annotator", "trace"], name="assessment_annotator_idx"),
            models.Index(fields=["last_update_time"], name="assessment_updated_idx"),
            # People's live answers, a small part of the rows where judges score everything:
            # the judge report finds the questions people answered from it alone.
            models.Index(
                fields=["trace", "name"],
                condition=Q(source_type=SourceType.HUMAN, deleted_at__isnull=True),
                name="assessment_live_human_idx",
            ),
            models.Index(
                fields=["experiment", "name"],
                condition=Q(kind=Kind.FEEDBACK, valid=True, deleted_at__isnull=True),
                name="assessment_live_feedback_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=Kind.values), name="assessment_kind_valid"),
            models.CheckConstraint(
                condition=Q(source_type__in=SourceType.values), name="assessment_source_valid"
            ),
            # Coalesce: unique indexes treat NULLs as distinct, and a trace's own answers
            # have no span and name no session.
            models.UniqueConstraint(
                F("trace"),
                Coalesce("span_id", Value("")),
                F("name"),
                F("annotator"),
                about_session(),
                condition=Q(one_per_annotator=True, valid=True, deleted_at__isnull=True),
                name="assessment_one_live_answer",
            ),
            models.UniqueConstraint(
                fields=["overrides"],
                condition=Q(overrides__isnull=False, deleted_at__isnull=True),
                name="assessment_one_live_override",
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.assessment_id})"

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

    @property
    def error(self) -> dict | None:
        return feedback_error(self)

    def snapshot(self) -> dict:
        """Every user-visible field, as stored in an AssessmentRevision."""
        return {
            "assessment_id": self.assessment_id,
            "span_id": self.span_id,
            "kind": self.kind,
            "name": self.name,
            "value": self.value,
            "rationale": self.rationale,
            "source_type": self.source_type,
            "source_id": self.source_id,
            "error": self.error,
            "metadata": self.metadata,
            "valid": self.valid,
            "overrides": self.overrides.assessment_id if self.overrides_id else None,
            "annotator": self.annotator_id,
            "create_time": self.create_time,
            "last_update_time": self.last_update_time,
            "version": self.version,
            "deleted": self.is_deleted,
        }


class AssessmentRevision(models.Model):
    """Append-only history: one row per write, holding the state after that write."""

    class Action(models.TextChoices):
        CREATE = "create", "Created"
        UPDATE = "update", "Updated"
        OVERRIDE = "override", "Overrode another"
        INVALIDATE = "invalidate", "Overridden"
        REVALIDATE = "revalidate", "Valid again"
        DELETE = "delete", "Deleted"
        RESTORE = "restore", "Restored"

    # Indexed by revision_unique_version, which leads with it; the actor likewise by
    # revision_actor_idx.
    assessment = models.ForeignKey(
        Assessment, on_delete=models.CASCADE, related_name="revisions", db_index=False
    )
    version = models.PositiveIntegerField()
    action = models.CharField(max_length=16, choices=Action.choices)
    snapshot = models.JSONField(encoder=ExactNumberEncoder, decoder=ExactNumberDecoder)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assessment_revisions",
        db_index=False,
    )
    # How the write arrived and by whom, kept even if the user is later removed.
    actor_label = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["assessment", "version"]
        constraints = [
            models.UniqueConstraint(
                fields=["assessment", "version"], name="revision_unique_version"
            ),
        ]
        indexes = [models.Index(fields=["actor", "-created_at"], name="revision_actor_idx")]

    def __str__(self):
        return f"v{self.version} {self.action}"


class LabelSchemaQuerySet(models.QuerySet):
    def with_experiment_scope(self, experiment_id):
        """Each schema with ``in_experiment``: whether it applies to traces of this experiment,
        being scoped to it or to none (which means every experiment)."""
        scope = self.model.experiments.through.objects.filter(labelschema=OuterRef("pk"))
        applies = ~Exists(scope) | Exists(scope.filter(experiment_id=experiment_id))
        return self.annotate(
            in_experiment=models.ExpressionWrapper(applies, output_field=models.BooleanField())
        )

    def for_experiment(self, experiment_id):
        return self.with_experiment_scope(experiment_id).filter(in_experiment=True)


class LabelSchema(models.Model):
    """The allowed shape of an assessment with a given name, for the UI and the API alike."""

    class ValueType(models.TextChoices):
        BOOLEAN = "boolean", "Boolean (thumbs up / down)"
        NUMERIC = "numeric", "Numeric (rating or score)"
        CATEGORICAL = "categorical", "Categorical (one of a list)"
        TEXT = "text", "Free text"
        STRUCTURED = "structured", "Structured JSON"

    class AppliesTo(models.TextChoices):
        TRACE = "trace", "Traces"
        SPAN = "span", "Spans"
        BOTH = "both", "Traces and spans"

    # The id MLflow's label-schema API names it by.
    schema_id = models.CharField(max_length=64, unique=True, default=new_schema_id, editable=False)
    name = models.CharField(
        max_length=255, unique=True, help_text="The assessment name it governs."
    )
    title = models.CharField(max_length=255, blank=True, default="")
    instructions = models.TextField(blank=True, default="")
    kind = models.CharField(max_length=16, choices=LABEL_KINDS, default=Kind.FEEDBACK)
    value_type = models.CharField(max_length=16, choices=ValueType.choices)
    min_value = models.FloatField(null=True, blank=True)
    max_value = models.FloatField(null=True, blank=True)
    step = models.FloatField(null=True, blank=True)
    options = models.JSONField(default=list, blank=True, help_text="Allowed categories.")
    multi_select = models.BooleanField(
        default=False, help_text="Categorical: an answer may be a list of several options."
    )
    max_length = models.PositiveIntegerField(
        null=True, blank=True, help_text="Text: the longest answer allowed, in characters."
    )
    positive_label = models.CharField(
        max_length=255, blank=True, default="", help_text="Boolean: what true means."
    )
    negative_label = models.CharField(
        max_length=255, blank=True, default="", help_text="Boolean: what false means."
    )
    enable_comment = models.BooleanField(
        default=True, help_text="Reviewers may add a rationale to their answer."
    )
    applies_to = models.CharField(max_length=8, choices=AppliesTo.choices, default=AppliesTo.BOTH)
    span_types = models.JSONField(
        default=list, blank=True, help_text="Span types it applies to; empty means all."
    )
    experiments = models.ManyToManyField(
        Experiment,
        blank=True,
        related_name="label_schemas",
        help_text="Experiments whose traces it applies to; none means every experiment.",
    )
    one_per_annotator = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = LabelSchemaQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["-created_at", "id"], name="schema_created_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(min_value__isnull=True)
                | Q(max_value__isnull=True)
                | Q(min_value__lte=models.F("max_value")),
                name="schema_bounds_ordered",
            ),
        ]

    def __str__(self):
        return self.title or self.name

    @property
    def yes_label(self) -> str:
        """How true is shown: the schema's positive label, else Yes (the key stays y)."""
        return self.positive_label or "Yes"

    @property
    def no_label(self) -> str:
        return self.negative_label or "No"


class LabelSchemaVersion(models.Model):
    """One row whose token every write of label schemas renews, so each worker process knows
    when its copy of them (annotation.schema_cache) is stale."""

    token = models.CharField(max_length=32)

    def __str__(self):
        return self.token


class Queue(models.Model):
    """A labeling project: traces to label with chosen schemas by chosen annotators."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"

    class Type(models.TextChoices):
        CUSTOM = "CUSTOM", "Custom"
        USER = "USER", "One person's queue"

    # The id MLflow's review-queue API names it by.
    queue_id = models.CharField(max_length=64, unique=True, default=new_queue_id, editable=False)
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True, default="")
    filter_query = models.TextField(
        blank=True, default="", help_text="Trace-list query string the items came from."
    )
    schemas = models.ManyToManyField(LabelSchema, related_name="queues")
    required_schemas = models.ManyToManyField(
        LabelSchema,
        blank=True,
        related_name="required_in_queues",
        help_text="The schemas every annotator must answer before an item is done for them.",
    )
    annotators = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="queues")
    overlap = models.PositiveSmallIntegerField(
        default=1, help_text="How many annotators label each item."
    )
    blind = models.BooleanField(
        default=True, help_text="Hide others' answers from an annotator until they submit."
    )
    control_rate = models.PositiveSmallIntegerField(
        default=10,
        help_text="Percent of each annotator's items that are control items, while any are left.",
    )
    accuracy_threshold = models.FloatField(
        default=0.7,
        help_text="Warn when an annotator's accuracy on control items falls below this share.",
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Queues made through MLflow's API belong to an experiment and follow MLflow's rules: one
    # status per item shared by its annotators (see annotation.review_queues).
    experiment = models.ForeignKey(
        Experiment, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    queue_type = models.CharField(max_length=8, choices=Type.choices, default=Type.CUSTOM)
    shared_status = models.BooleanField(
        default=False, help_text="One status per item: done once anyone has answered it."
    )
    last_update_time = models.BigIntegerField(default=now_ms, help_text="Milliseconds since epoch.")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(overlap__gte=1), name="queue_overlap_positive"),
            models.CheckConstraint(
                condition=Q(control_rate__lte=100), name="queue_control_rate_percent"
            ),
            models.CheckConstraint(
                condition=Q(accuracy_threshold__gte=0) & Q(accuracy_threshold__lte=1),
                name="queue_accuracy_threshold_share",
            ),
            # Names made in Tracemark are unique; in an experiment, MLflow's names are unique
            # per type whatever their case.
            models.UniqueConstraint(
                fields=["name"], condition=Q(experiment__isnull=True), name="queue_unique_name"
            ),
            models.UniqueConstraint(
                Lower("name"),
                "experiment",
                "queue_type",
                name="queue_unique_name_in_experiment",
            ),
        ]
        indexes = [models.Index(fields=["experiment", "-created_at"], name="queue_exp_idx")]

    def __str__(self):
        return self.name


class QueueSpanQuestion(models.Model):
    """A queue schema asked of spans rather than of the whole trace: of every span of an
    item with this type and/or a name matching this glob (see annotation.span_questions)."""

    queue = models.ForeignKey(Queue, on_delete=models.CASCADE, related_name="span_questions")
    schema = models.ForeignKey(LabelSchema, on_delete=models.CASCADE, related_name="+")
    span_type = models.CharField(max_length=64, blank=True, default="")
    name_pattern = models.CharField(
        max_length=500, blank=True, default="", help_text="Glob: * any text, ? one character."
    )

    class Meta:
        ordering = ["queue", "schema__name"]
        constraints = [
            models.UniqueConstraint(fields=["queue", "schema"], name="span_question_unique"),
            models.CheckConstraint(
                condition=~Q(span_type="") | ~Q(name_pattern=""), name="span_question_targets"
            ),
        ]

    def __str__(self):
        return f"{self.queue_id}:{self.schema_id} {self.span_type} {self.name_pattern}".strip()


class QueueItem(models.Model):
    queue = models.ForeignKey(Queue, on_delete=models.CASCADE, related_name="items")
    trace = models.ForeignKey(Trace, on_delete=models.CASCADE, related_name="queue_items")
    # A session item is a whole multi-turn session, answered on the trace that was its last
    # turn when it was added (annotation.session_items); empty for a single trace.
    session_id = models.CharField(max_length=255, blank=True, default="")

    class Status(models.TextChoices):
        PENDING = "PENDING", "Pending"
        COMPLETE = "COMPLETE", "Complete"
        DECLINED = "DECLINED", "Declined"

    position = models.PositiveIntegerField()
    reopened = models.BooleanField(default=False)
    # A control item has known answers (ControlAnswer): it measures the annotators and
    # never counts towards the queue's results. Annotators are never told which it is.
    is_control = models.BooleanField(default=False)
    # The item's one status as MLflow's API reports it, kept by annotation.queues and
    # annotation.review_queues; completed_by is a username as MLflow normalises it.
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    completed_by = models.CharField(max_length=255, blank=True, default="")
    completed_time = models.BigIntegerField(null=True, blank=True)
    creation_time = models.BigIntegerField(default=now_ms, help_text="Milliseconds since epoch.")
    last_update_time = models.BigIntegerField(default=now_ms, help_text="Milliseconds since epoch.")

    class Meta:
        ordering = ["queue", "position"]
        constraints = [
            models.UniqueConstraint(fields=["queue", "trace"], name="queue_item_unique_trace"),
            models.UniqueConstraint(
                fields=["queue", "session_id"],
                condition=~Q(session_id=""),
                name="queue_item_unique_session",
            ),
        ]
        indexes = [
            models.Index(
                fields=["queue", "-creation_time", "position"], name="queue_item_created_idx"
            )
        ]

    def __str__(self):
        return f"{self.queue_id}#{self.position}"


class QueueAssignment(models.Model):
    """One annotator's turn at one item; unique so nobody gets an item twice."""

    class Status(models.TextChoices):
        ASSIGNED = "assigned", "Assigned"
        DONE = "done", "Done"
        SKIPPED = "skipped", "Skipped"

    item = models.ForeignKey(QueueItem, on_delete=models.CASCADE, related_name="assignments")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="queue_assignments"
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ASSIGNED)
    skip_reason = models.TextField(blank=True, default="")
    assigned_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # Pace: when the item was first shown, the last time the page was seen active, and the
    # active time so far (see annotation.pace).
    shown_at = models.DateTimeField(null=True, blank=True)
    seen_at = models.DateTimeField(null=True, blank=True)
    active_ms = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["assigned_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["item", "annotator"], name="assignment_unique_annotator"
            ),
        ]
        indexes = [
            models.Index(fields=["annotator", "status"], name="assignment_annotator_idx"),
        ]

    def __str__(self):
        return f"{self.item_id}:{self.annotator_id} {self.status}"


class ControlAnswer(models.Model):
    """The known answer to one of the queue's schemas on a control item."""

    item = models.ForeignKey(QueueItem, on_delete=models.CASCADE, related_name="control_answers")
    schema = models.ForeignKey(LabelSchema, on_delete=models.CASCADE, related_name="+")
    value = models.JSONField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "schema"], name="control_answer_unique"),
        ]

    def __str__(self):
        return f"{self.item_id}:{self.schema_id}"


def new_dataset_id() -> str:
    return f"d-{uuid.uuid4().hex}"


def new_record_id() -> str:
    return f"dr-{uuid.uuid4().hex}"


class EvaluationDataset(models.Model):
    """An MLflow evaluation dataset: records of inputs with their expected results, made from
    dicts or from reviewed traces, for ``mlflow.genai.evaluate()``. Written only by
    annotation.datasets."""

    dataset_id = models.CharField(
        max_length=64, unique=True, default=new_dataset_id, editable=False
    )
    # Names need not be unique, as in MLflow.
    name = models.CharField(max_length=255)
    tags = models.JSONField(default=dict, blank=True)
    digest = models.CharField(max_length=8, blank=True, default="")
    # The JSON type of each input, output and expectation key; empty until records arrive.
    schema = models.JSONField(null=True, blank=True)
    experiments = models.ManyToManyField(Experiment, related_name="+", blank=True)
    created_by = models.CharField(max_length=255, blank=True, default="")
    last_updated_by = models.CharField(max_length=255, blank=True, default="")
    created_time = models.BigIntegerField(default=now_ms, help_text="Milliseconds since epoch.")
    last_update_time = models.BigIntegerField(default=now_ms, help_text="Milliseconds since epoch.")

    class Meta:
        ordering = ["-created_time", "id"]
        indexes = [models.Index(fields=["-created_time", "id"], name="dataset_created_idx")]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("annotation:dataset-detail", args=[self.dataset_id])


class DatasetRecord(models.Model):
    """One record; its inputs are unique in the dataset (compared as canonical JSON)."""

    dataset_record_id = models.CharField(
        max_length=64, unique=True, default=new_record_id, editable=False
    )
    dataset = models.ForeignKey(EvaluationDataset, on_delete=models.CASCADE, related_name="records")
    inputs_hash = models.CharField(max_length=64)
    inputs = models.JSONField(default=dict)
    outputs = models.JSONField(default=dict, blank=True)
    expectations = models.JSONField(default=dict, blank=True)
    tags = models.JSONField(default=dict, blank=True)
    source = models.JSONField(null=True, blank=True)
    source_type = models.CharField(max_length=16, blank=True, default="")
    # The trace a TRACE record was made from.
    source_id = models.CharField(max_length=255, blank=True, default="")
    created_by = models.CharField(max_length=255, blank=True, default="")
    last_updated_by = models.CharField(max_length=255, blank=True, default="")
    created_time = models.BigIntegerField(default=now_ms, help_text="Milliseconds since epoch.")
    last_update_time = models.BigIntegerField(default=now_ms, help_text="Milliseconds since epoch.")

    class Meta:
        ordering = ["created_time", "dataset_record_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["dataset", "inputs_hash"], name="dataset_record_unique_inputs"
            ),
        ]
        indexes = [
            models.Index(
                fields=["dataset", "created_time", "dataset_record_id"],
                name="dataset_record_order_idx",
            )
        ]

    def __str__(self):
        return self.dataset_record_id
