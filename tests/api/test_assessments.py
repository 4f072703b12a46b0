"""Feedback and expectations through the real mlflow client: every variant the client sends."""

import time

import pytest
from mlflow.entities import AssessmentError, AssessmentSource, Expectation, Feedback
from mlflow.exceptions import MlflowException

from annotation.models import Assessment, AssessmentRevision
from tests.api.conftest import server_db

pytestmark = server_db

HUMAN = AssessmentSource(source_type="HUMAN", source_id="alice@example.com")
JUDGE = AssessmentSource(source_type="LLM_JUDGE", source_id="gpt-4o")


@pytest.fixture
def trace_id(mlflow):
    mlflow.set_experiment("assessments")

    @mlflow.trace(name="root")
    def root(x):
        with mlflow.start_span(name="child"):
            return x

    root(1)
    return mlflow.get_last_active_trace_id()


@pytest.fixture
def child_span_id(mlflow, trace_id):
    return next(s.span_id for s in mlflow.get_trace(trace_id).data.spans if s.name == "child")


@pytest.mark.parametrize(
    ("value", "returned"),
    [
        (True, True),
        (4, 4.0),
        (0.87, 0.87),
        ("good", "good"),
        (["a", "b", 3], ["a", "b", 3.0]),
        ({"relevance": 0.9, "ok": True}, {"relevance": 0.9, "ok": True}),
    ],
    ids=["bool", "int", "float", "str", "list", "dict"],
)
def test_log_feedback_keeps_each_value_type(mlflow, trace_id, value, returned):
    logged = mlflow.log_feedback(
        trace_id=trace_id,
        name="quality",
        value=value,
        source=HUMAN,
        rationale="looks right",
        metadata={"team": "qa", "version": 2},
    )

    assert logged.assessment_id.startswith("a-")
    fetched = mlflow.get_assessment(trace_id, logged.assessment_id)
    assert fetched.value == returned
    assert type(fetched.value) is type(returned)
    assert fetched.rationale == "looks right"
    assert fetched.metadata == {"team": "qa", "version": "2"}
    assert fetched.source.source_type == "HUMAN"
    assert fetched.source.source_id == "alice@example.com"
    inline = mlflow.get_trace(trace_id).info.assessments
    assert [a.assessment_id for a in inline] == [logged.assessment_id]
    assert inline[0].value == returned


def test_the_token_owner_is_annotator_and_revision_actor(mlflow, trace_id, reviewer):
    logged = mlflow.log_feedback(trace_id=trace_id, name="ok", value=True)

    stored = Assessment.objects.get(assessment_id=logged.assessment_id)
    assert stored.annotator == reviewer
    assert stored.value is True
    assert stored.source_type == "CODE" and stored.source_id == "default"
    assert AssessmentRevision.objects.get(assessment=stored).actor == reviewer


def test_feedback_on_a_span_and_with_errors(mlflow, trace_id, child_span_id):
    on_span = mlflow.log_feedback(
        trace_id=trace_id, name="span_quality", value=False, span_id=child_span_id, source=HUMAN
    )
    error_only = mlflow.log_feedback(
        trace_id=trace_id,
        name="judge_fail",
        source=JUDGE,
        error=AssessmentError(error_code="RATE_LIMIT", error_message="429 from judge"),
    )
    try:
        raise RuntimeError("judge crashed")
    except RuntimeError as exc:
        from_exception = mlflow.log_feedback(
            trace_id=trace_id, name="judge_exc", source=JUDGE, error=exc
        )

    assert mlflow.get_assessment(trace_id, on_span.assessment_id).span_id == child_span_id
    failed = mlflow.get_assessment(trace_id, error_only.assessment_id)
    assert failed.value is None
    assert failed.error.error_code == "RATE_LIMIT"
    assert failed.error.error_message == "429 from judge"
    crashed = mlflow.get_assessment(trace_id, from_exception.assessment_id)
    assert crashed.error.error_code == "RuntimeError"
    assert "judge crashed" in crashed.error.stack_trace


@pytest.mark.parametrize(
    "value",
    ["MLflow is a platform", 42, {"facts": ["a", "b"]}, ["x"]],
    ids=["str", "number", "dict", "list"],
)
def test_log_expectation(mlflow, trace_id, value):
    logged = mlflow.log_expectation(
        trace_id=trace_id, name="expected", value=value, metadata={"m": "1"}
    )

    fetched = mlflow.get_assessment(trace_id, logged.assessment_id)
    assert fetched.value == value
    assert fetched.source.source_type == "HUMAN"
    assert fetched.metadata == {"m": "1"}
    assert Assessment.objects.get(assessment_id=logged.assessment_id).value == value


def test_log_expectation_on_a_span(mlflow, trace_id, child_span_id):
    logged = mlflow.log_expectation(
        trace_id=trace_id, name="span_exp", value=42, span_id=child_span_id
    )

    assert mlflow.get_assessment(trace_id, logged.assessment_id).span_id == child_span_id


def test_log_assessment_with_feedback_and_expectation_objects(mlflow, trace_id):
    feedback = mlflow.log_assessment(
        trace_id=trace_id,
        assessment=Feedback(name="la_fb", value=0.5, rationale="r", metadata={"a": "b"}),
    )
    expectation = mlflow.log_assessment(
        trace_id=trace_id, assessment=Expectation(name="la_exp", value=["x"], source=HUMAN)
    )

    assert mlflow.get_assessment(trace_id, feedback.assessment_id).value == 0.5
    assert mlflow.get_assessment(trace_id, expectation.assessment_id).value == ["x"]


def test_update_assessment_changes_masked_fields_only(mlflow, trace_id):
    feedback = mlflow.log_feedback(
        trace_id=trace_id, name="label", value="good", source=HUMAN, metadata={"m": "1"}
    )
    expectation = mlflow.log_expectation(trace_id=trace_id, name="answer", value="old")

    mlflow.update_assessment(
        trace_id=trace_id,
        assessment_id=feedback.assessment_id,
        assessment=Feedback(name="label", value="bad", rationale="changed mind"),
    )
    mlflow.update_assessment(
        trace_id=trace_id,
        assessment_id=expectation.assessment_id,
        assessment=Expectation(name="answer", value="new expected"),
    )

    updated = mlflow.get_assessment(trace_id, feedback.assessment_id)
    assert (updated.value, updated.rationale) == ("bad", "changed mind")
    assert updated.source.source_id == "alice@example.com"
    assert updated.metadata == {"m": "1"}
    assert updated.create_time_ms == feedback.create_time_ms
    assert updated.last_update_time_ms >= feedback.create_time_ms
    assert mlflow.get_assessment(trace_id, expectation.assessment_id).value == "new expected"
    assert Assessment.objects.get(assessment_id=feedback.assessment_id).version == 2


def test_override_feedback_invalidates_the_old_one(mlflow, trace_id):
    judged = mlflow.log_feedback(trace_id=trace_id, name="rating", value=4, source=JUDGE)

    new = mlflow.override_feedback(
        trace_id=trace_id,
        assessment_id=judged.assessment_id,
        value=5,
        rationale="human override",
        source=HUMAN,
        metadata={"why": "x"},
    )

    assert new.overrides == judged.assessment_id
    old = mlflow.get_assessment(trace_id, judged.assessment_id)
    assert old.valid is False
    assert old.value == 4.0
    inline = {a.assessment_id: a for a in mlflow.get_trace(trace_id).info.assessments}
    assert inline[judged.assessment_id].valid is False
    assert inline[new.assessment_id].valid is True
    assert inline[new.assessment_id].value == 5.0


def test_a_second_override_of_one_feedback_is_refused_with_409(mlflow, trace_id):
    judged = mlflow.log_feedback(trace_id=trace_id, name="rating", value=4, source=JUDGE)
    first = mlflow.override_feedback(trace_id=trace_id, assessment_id=judged.assessment_id, value=5)

    with pytest.raises(MlflowException) as refused:
        mlflow.override_feedback(trace_id=trace_id, assessment_id=judged.assessment_id, value=3)

    assert refused.value.get_http_status_code() == 409
    assert "overridden already" in refused.value.message
    live = Assessment.objects.filter(overrides__assessment_id=judged.assessment_id)
    assert [a.assessment_id for a in live] == [first.assessment_id]


def test_delete_assessment_hides_it_and_revalidates_what_it_overrode(mlflow, trace_id):
    judged = mlflow.log_feedback(trace_id=trace_id, name="rating", value=4, source=JUDGE)
    new = mlflow.override_feedback(trace_id=trace_id, assessment_id=judged.assessment_id, value=5)

    mlflow.delete_assessment(trace_id=trace_id, assessment_id=new.assessment_id)

    with pytest.raises(MlflowException) as missing:
        mlflow.get_assessment(trace_id, new.assessment_id)
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert f"Assessment with ID '{new.assessment_id}' not found" in missing.value.message
    assert mlflow.get_assessment(trace_id, judged.assessment_id).valid is True
    inline = mlflow.get_trace(trace_id).info.assessments
    assert [a.assessment_id for a in inline] == [judged.assessment_id]
    assert Assessment.objects.get(assessment_id=new.assessment_id).deleted_at is not None


def test_an_entry_named_through_another_traces_url_is_not_found(mlflow, trace_id):
    judged = mlflow.log_feedback(trace_id=trace_id, name="rating", value=4, source=JUDGE)

    @mlflow.trace(name="other")
    def other():
        return 2

    other()
    elsewhere = mlflow.get_last_active_trace_id()
    for touch in (
        lambda: mlflow.get_assessment(elsewhere, judged.assessment_id),
        lambda: mlflow.update_assessment(
            elsewhere, judged.assessment_id, Feedback(name="r", value=1)
        ),
        lambda: mlflow.override_feedback(
            trace_id=elsewhere, assessment_id=judged.assessment_id, value=1
        ),
        lambda: mlflow.delete_assessment(elsewhere, judged.assessment_id),
    ):
        with pytest.raises(MlflowException) as missing:
            touch()
        assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"
        assert f"not found for trace '{elsewhere}'" in missing.value.message
    kept = Assessment.objects.get(assessment_id=judged.assessment_id)
    assert (kept.value, kept.valid, kept.deleted_at, kept.version) == (4, True, None, 1)


def test_feedback_on_an_unknown_trace_is_not_found(mlflow):
    with pytest.raises(MlflowException) as error:
        mlflow.log_feedback(trace_id="tr-deadbeef", name="x", value=1)

    assert error.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert "Trace with ID 'tr-deadbeef' not found." in error.value.message


def test_a_persons_value_breaking_the_label_schema_is_invalid(mlflow, trace_id):
    from annotation.models import LabelSchema
    from annotation.schema_cache import schemas_changed

    LabelSchema.objects.create(
        name="stars", value_type=LabelSchema.ValueType.NUMERIC, min_value=1, max_value=5
    )
    schemas_changed()

    with pytest.raises(MlflowException) as error:
        mlflow.log_feedback(trace_id=trace_id, name="stars", value=9, source=HUMAN)
    judged = mlflow.log_feedback(trace_id=trace_id, name="stars", value=0.87, source=JUDGE)

    assert error.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "at most 5" in error.value.message
    # A judge's verdict is kept as sent: its program does not know Tracemark's schemas.
    stored = Assessment.objects.get(name="stars")
    assert (stored.assessment_id, stored.value) == (judged.assessment_id, 0.87)


def test_an_unknown_span_is_invalid(mlflow, trace_id):
    with pytest.raises(MlflowException) as error:
        mlflow.log_feedback(trace_id=trace_id, name="x", value=1, span_id="0123456789abcdef")

    assert error.value.error_code == "INVALID_PARAMETER_VALUE"


def test_issue_references_are_stored_returned_and_shown(
    mlflow, trace_id, child_span_id, reviewer, client
):
    from mlflow.entities import IssueReference

    logged = mlflow.log_assessment(
        trace_id=trace_id,
        assessment=IssueReference(
            issue_id="iss-42",
            issue_name="Slow answers",
            rationale="took 9 s",
            span_id=child_span_id,
        ),
    )

    stored = Assessment.objects.get(assessment_id=logged.assessment_id)
    assert (stored.kind, stored.name, stored.value, stored.span_id) == (
        "issue", "iss-42", "Slow answers", child_span_id
    )  # fmt: skip
    got = mlflow.get_assessment(trace_id, logged.assessment_id)
    assert isinstance(got, IssueReference)
    assert (got.issue_id, got.issue_name, got.source.source_type) == (
        "iss-42", "Slow answers", "LLM_JUDGE"
    )  # fmt: skip
    inline = mlflow.get_trace(trace_id).info.assessments
    assert [(type(a).__name__, a.name) for a in inline] == [("IssueReference", "iss-42")]
    client.force_login(reviewer)
    page = client.get(f"/traces/{trace_id}/?span={child_span_id}").content.decode()
    assert "Slow answers" in page
    assert 'class="badge issue-badge" title="Issue iss-42"' in page


def test_an_assessment_needs_exactly_one_kind(mlflow, trace_id, tracemark_url, reviewer_token):
    import requests

    url = f"{tracemark_url}/api/3.0/mlflow/traces/{trace_id}/assessments"
    headers = {"Authorization": f"Bearer {reviewer_token}"}
    base = {"assessment_name": "x", "source": {"source_type": "CODE"}}
    for body in (
        {**base, "issue": {"issue_name": "a"}, "feedback": {"value": 1}},
        {**base, "issue": {}},
        {**base, "issue": {"issue_name": "  "}},
        base,
    ):
        response = requests.post(url, json={"assessment": body}, headers=headers, timeout=10)
        assert response.status_code == 400, body
        assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert not Assessment.objects.exists()


def test_api_and_review_page_share_one_history(mlflow, trace_id, reviewer, client):
    from django.urls import reverse

    from annotation import services
    from traces.models import Trace

    logged = mlflow.log_feedback(trace_id=trace_id, name="from_api", value="good", source=HUMAN)
    services.log_feedback(
        trace=Trace.objects.get(trace_id=trace_id), name="from_ui", value=3, actor=reviewer
    )
    client.force_login(reviewer)

    page = client.get(reverse("annotation:trace-review", args=[trace_id]))
    inline = {a.name: a for a in mlflow.get_trace(trace_id).info.assessments}

    assert page.status_code == 200
    assert "from_api" in page.content.decode()
    assert inline["from_ui"].value == 3.0
    assert inline["from_api"].assessment_id == logged.assessment_id


def test_a_number_beyond_doubles_is_refused_at_once_and_the_trace_stays_readable(
    mlflow, trace_id, monkeypatch
):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "5")  # what a 5xx would set off
    started = time.monotonic()

    with pytest.raises(MlflowException, match="range of doubles") as raised:
        mlflow.log_expectation(trace_id=trace_id, name="answer", value={"n": 10**400})

    assert time.monotonic() - started < 5
    assert raised.value.error_code == "INVALID_PARAMETER_VALUE"
    assert not Assessment.objects.exists()
    assert mlflow.get_trace(trace_id).info.trace_id == trace_id
    assert [t.info.trace_id for t in mlflow.search_traces(return_type="list")] == [trace_id]
