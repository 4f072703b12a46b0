"""What traced apps send: experiments, traces and their spans, in MLflow's shapes."""

import time
import uuid

from django.db import models
from django.db.models import F
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Coalesce
from django.urls import reverse

USER_METADATA_KEY = "mlflow.trace.user"
SESSION_METADATA_KEY = "mlflow.trace.session"
TRACE_NAME_TAG = "mlflow.traceName"
# The run a trace was made in (or linked to), as the client writes it.
SOURCE_RUN_METADATA_KEY = "mlflow.sourceRun"


def now_ms() -> int:
    return int(time.time() * 1000)


class ExperimentManager(models.Manager):
    def default(self) -> "Experiment":
        """Experiment "0", which MLflow clients expect; recreated if it was removed."""
        experiment, _ = self.get_or_create(
            pk=Experiment.DEFAULT_ID, defaults={"name": Experiment.DEFAULT_NAME}
        )
        return experiment

    def by_id(self, experiment_id) -> "Experiment":
        """The experiment with that id; "0" is recreated if it was removed."""
        if int(experiment_id) == Experiment.DEFAULT_ID:
            return self.default()
        return self.get(pk=experiment_id)


class Experiment(models.Model):
    """An MLflow experiment; its primary key is the experiment_id clients see ("0" is Default)."""

    DEFAULT_ID = 0
    DEFAULT_NAME = "Default"

    id = models.BigAutoField(primary_key=True)
    name = models.CharField(max_length=500, unique=True)
    lifecycle_stage = models.CharField(max_length=32, default="active")
    tags = models.JSONField(default=dict, blank=True)
    # As the client gave it at creation; empty means Tracemark's own artifact store.
    artifact_root = models.CharField(max_length=1000, blank=True, default="")
    creation_time = models.BigIntegerField(default=now_ms, help_text="Milliseconds since epoch.")
    last_update_time = models.BigIntegerField(default=now_ms, help_text="Milliseconds since epoch.")

    objects = ExperimentManager()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["-creation_time", "id"], name="experiment_created_idx")]

    def __str__(self):
        return self.name

    @property
    def experiment_id(self) -> str:
        return str(self.id)

    @property
    def artifact_location(self) -> str:
        return self.artifact_root or f"mlflow-artifacts:/{self.id}"


class TraceQuerySet(models.QuerySet):
    def in_experiment(self, experiment_id):
        return self.filter(experiment_id=experiment_id)


class Trace(models.Model):
    class State(models.TextChoices):
        OK = "OK", "OK"
        ERROR = "ERROR", "Error"
        IN_PROGRESS = "IN_PROGRESS", "In progress"

    trace_id = models.CharField(max_length=64, unique=True)
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="traces")
    request_time = models.BigIntegerField(help_text="Milliseconds since epoch.")
    execution_duration = models.BigIntegerField(
        null=True, blank=True, help_text="Milliseconds; empty while the trace is in progress."
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.IN_PROGRESS)
    client_request_id = models.CharField(max_length=255, null=True, blank=True)
    request_preview = models.TextField(blank=True, default="")
    response_preview = models.TextField(blank=True, default="")
    trace_metadata = models.JSONField(default=dict, blank=True)
    tags = models.JSONField(default=dict, blank=True)
    # Copied from trace_metadata so the trace list can filter on an index.
    user = models.CharField(max_length=255, blank=True, default="")
    session = models.CharField(max_length=255, blank=True, default="")
    # Kept by traces.ingest, the only writer of spans, in the same transaction.
    span_count = models.PositiveIntegerField(default=0)
    span_bytes = models.PositiveBigIntegerField(
        default=0, help_text="The spans' size as JSON, about; bounded by MAX_TRACE_BYTES."
    )

    objects = TraceQuerySet.as_manager()

    class Meta:
        ordering = ["-request_time", "trace_id"]
        indexes = [
            models.Index(
                fields=["experiment", "-request_time", "trace_id"], name="trace_exp_time_idx"
            ),
            models.Index(fields=["-request_time", "trace_id"], name="trace_time_idx"),
            models.Index(fields=["client_request_id"], name="trace_client_req_idx"),
            models.Index(fields=["user", "-request_time"], name="trace_user_idx"),
            models.Index(fields=["session", "request_time"], name="trace_session_idx"),
            models.Index(fields=["state", "-request_time"], name="trace_state_idx"),
            models.Index(fields=["execution_duration"], name="trace_duration_idx"),
            # The search's end_time_ms and name orders, with its tie-breakers. Indexes only
            # PostgreSQL can build (GIN on tags and metadata, duration DESC NULLS LAST) are
            # created by migration 0003_search_indexes.
            models.Index(
                (F("request_time") + Coalesce("execution_duration", 0)).desc(),
                F("request_time").desc(),
                "trace_id",
                name="trace_end_time_idx",
            ),
            models.Index(
                KeyTextTransform(TRACE_NAME_TAG, "tags"),
                F("request_time").desc(),
                "trace_id",
                name="trace_name_idx",
            ),
            # A run's traces, newest first (traces.runs.made_in), with statistics of their
            # own: a containment test on the metadata's GIN index is estimated at 1% of
            # the rows whatever the run, and walked the whole list for a small one.
            models.Index(
                KeyTextTransform(SOURCE_RUN_METADATA_KEY, "trace_metadata"),
                F("request_time").desc(),
                "trace_id",
                name="trace_source_run_idx",
            ),
        ]

    def __str__(self):
        return self.trace_id

    def get_absolute_url(self):
        # The review page, named rather than imported: traces never imports annotation.
        return reverse("annotation:trace-review", args=[self.trace_id])

    @property
    def name(self) -> str:
        return self.tags.get(TRACE_NAME_TAG, "")

    def copy_indexed_metadata(self) -> None:
        """Refresh the indexed user/session columns from trace_metadata."""
        self.user = str(self.trace_metadata.get(USER_METADATA_KEY, ""))[:255]
        self.session = str(self.trace_metadata.get(SESSION_METADATA_KEY, ""))[:255]


class Span(models.Model):
    class Status(models.TextChoices):
        UNSET = "UNSET", "Unset"
        OK = "OK", "OK"
        ERROR = "ERROR", "Error"

    trace = models.ForeignKey(Trace, on_delete=models.CASCADE, related_name="spans")
    span_id = models.CharField(max_length=16, help_text="16 lowercase hex characters.")
    parent_span_id = models.CharField(max_length=16, null=True, blank=True)
    name = models.CharField(max_length=500)
    span_type = models.CharField(max_length=64, default="UNKNOWN")
    start_time_ns = models.BigIntegerField()
    end_time_ns = models.BigIntegerField(null=True, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.UNSET)
    status_message = models.TextField(blank=True, default="")
    inputs = models.JSONField(null=True, blank=True)
    outputs = models.JSONField(null=True, blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    events = models.JSONField(default=list, blank=True)
    size_bytes = models.PositiveIntegerField(default=0, help_text="Its content's size as JSON.")

    class Meta:
        ordering = ["start_time_ns", "span_id"]
        constraints = [
            models.UniqueConstraint(fields=["trace", "span_id"], name="span_unique_in_trace"),
        ]
        indexes = [
            models.Index(
                fields=["trace", "parent_span_id", "start_time_ns"], name="span_children_idx"
            ),
            models.Index(fields=["name"], name="span_name_idx"),
            models.Index(fields=["span_type"], name="span_type_idx"),
        ]

    def __str__(self):
        return f"{self.name} ({self.span_id})"

    @property
    def duration_ms(self) -> float | None:
        if self.end_time_ns is None:
            return None
        return (self.end_time_ns - self.start_time_ns) / 1_000_000


def new_run_id() -> str:
    return uuid.uuid4().hex


class Run(models.Model):
    """An MLflow run, as ``mlflow.start_run()`` and ``mlflow.genai.evaluate()`` make them:
    its params, latest metrics, tags and dataset inputs. Its traces are those whose
    ``mlflow.sourceRun`` metadata names it."""

    class Status(models.TextChoices):
        RUNNING = "RUNNING", "Running"
        SCHEDULED = "SCHEDULED", "Scheduled"
        FINISHED = "FINISHED", "Finished"
        FAILED = "FAILED", "Failed"
        KILLED = "KILLED", "Killed"

    run_id = models.CharField(max_length=32, unique=True, default=new_run_id)
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="runs")
    name = models.CharField(max_length=250, blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    user_id = models.CharField(max_length=255, blank=True, default="")
    start_time = models.BigIntegerField(default=now_ms, help_text="Milliseconds since epoch.")
    end_time = models.BigIntegerField(null=True, blank=True, help_text="Milliseconds since epoch.")
    lifecycle_stage = models.CharField(max_length=32, default="active")
    params = models.JSONField(default=dict, blank=True)
    # The latest value of each metric: {key: {"value", "timestamp", "step"}}.
    metrics = models.JSONField(default=dict, blank=True)
    tags = models.JSONField(default=dict, blank=True)
    # Dataset inputs as the client logs them: [{"dataset": {...}, "tags": [...]}].
    inputs = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-start_time", "run_id"]
        indexes = [
            models.Index(fields=["experiment", "-start_time", "run_id"], name="run_exp_time_idx"),
            models.Index(fields=["name"], name="run_name_idx"),
        ]

    def __str__(self):
        return self.name or self.run_id

    def get_absolute_url(self):
        return reverse("traces:run-detail", args=[self.run_id])

    @property
    def artifact_uri(self) -> str:
        return f"{self.experiment.artifact_location}/{self.run_id}/artifacts"


class TraceAttachment(models.Model):
    """A file the client logged with a trace (an image, audio, a PDF), as the MLflow client
    uploads it next to the spans; span inputs and outputs name it by ``mlflow-attachment://``
    reference. Kept in the database, like the spans, so a trace leaves with its files."""

    trace = models.ForeignKey(Trace, on_delete=models.CASCADE, related_name="attachments")
    attachment_id = models.CharField(max_length=36, help_text="A canonical UUID.")
    content_type = models.CharField(max_length=255, default="application/octet-stream")
    content = models.BinaryField()
    size = models.PositiveBigIntegerField()
    uploaded_at = models.BigIntegerField(default=now_ms, help_text="Milliseconds since epoch.")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["trace", "attachment_id"], name="attachment_unique_in_trace"
            ),
        ]

    def __str__(self):
        return self.attachment_id
