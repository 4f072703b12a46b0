"""Test data built from code. Assessments are always made through annotation.services."""

import itertools
import uuid

from django.contrib.auth import get_user_model

from accounts.roles import Role, set_role
from annotation import services
from annotation.models import SourceType
from traces.models import Experiment, Span, Trace, now_ms

_counter = itertools.count(1)
PASSWORD = "correct-horse-battery"


def make_user(role: Role = Role.REVIEWER, username: str | None = None, **kwargs):
    username = username or f"user{next(_counter)}"
    user = get_user_model().objects.create_user(username=username, password=PASSWORD, **kwargs)
    set_role(user, role)
    return user


def make_admin(**kwargs):
    return make_user(Role.ADMIN, **kwargs)


def make_reviewer(**kwargs):
    return make_user(Role.REVIEWER, **kwargs)


def make_viewer(**kwargs):
    return make_user(Role.VIEWER, **kwargs)


def make_experiment(name: str | None = None, **kwargs) -> Experiment:
    return Experiment.objects.create(name=name or f"experiment-{next(_counter)}", **kwargs)


def make_trace(experiment: Experiment | None = None, **kwargs) -> Trace:
    metadata = kwargs.pop("trace_metadata", {})
    if "user" in kwargs:
        metadata.setdefault("mlflow.trace.user", kwargs.pop("user"))
    if "session" in kwargs:
        metadata.setdefault("mlflow.trace.session", kwargs.pop("session"))
    defaults = {
        "trace_id": f"tr-{uuid.uuid4().hex}",
        "experiment": experiment or Experiment.objects.default(),
        "request_time": now_ms(),
        "execution_duration": 120,
        "state": Trace.State.OK,
        "request_preview": '{"question": "What is Tracemark?"}',
        "response_preview": '"A review tool."',
        "trace_metadata": metadata,
    }
    defaults.update(kwargs)
    trace = Trace(**defaults)
    trace.copy_indexed_metadata()
    trace.save()
    return trace


def make_span(trace: Trace, parent: Span | None = None, **kwargs) -> Span:
    start = kwargs.pop("start_time_ns", trace.request_time * 1_000_000 + next(_counter) * 1000)
    defaults = {
        "span_id": uuid.uuid4().hex[:16],
        "parent_span_id": parent.span_id if parent else None,
        "name": "step",
        "span_type": "CHAIN",
        "start_time_ns": start,
        "end_time_ns": start + 5_000_000,
        "status": Span.Status.OK,
        "inputs": {"x": 1},
        "outputs": {"y": 2},
    }
    defaults.update(kwargs)
    span = Span.objects.create(trace=trace, **defaults)
    Trace.objects.filter(pk=trace.pk).update(span_count=trace.spans.count())
    return span


def make_judge_entry(trace: Trace, value, *, name="correct", source_id="judge-a", **fields):
    """An LLM judge's feedback, through the service like every assessment."""
    return services.log_feedback(
        trace=trace,
        name=name,
        value=value,
        source_type=SourceType.LLM_JUDGE,
        source_id=source_id,
        **fields,
    )
