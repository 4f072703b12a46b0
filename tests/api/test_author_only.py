"""Every entry stays its author's on the API too, through the real mlflow client: another
token's user gets 403 PERMISSION_DENIED in MLflow's error shape, and nothing changes."""

import pytest
from mlflow.entities import AssessmentSource, Feedback
from mlflow.exceptions import MlflowException

from accounts.tokens import create_token
from annotation.models import Assessment
from tests.api.conftest import server_db
from tests.factories import make_reviewer

pytestmark = server_db

HUMAN = AssessmentSource(source_type="HUMAN", source_id="rita")
JUDGE = AssessmentSource(source_type="LLM_JUDGE", source_id="judge-app")


@pytest.fixture
def other_token(transactional_db):
    return create_token(user=make_reviewer(username="ravi"), name="tests")[1]


@pytest.fixture
def trace_id(mlflow):
    mlflow.set_experiment("authorship")

    @mlflow.trace(name="root")
    def root(x):
        return x

    root(1)
    return mlflow.get_last_active_trace_id()


def refused(call) -> MlflowException:
    with pytest.raises(MlflowException) as error:
        call()
    assert error.value.error_code == "PERMISSION_DENIED"
    assert error.value.get_http_status_code() == 403
    return error.value


def test_another_users_token_cannot_update_or_delete_a_human_entry(
    mlflow, use_token, trace_id, other_token, admin_token
):
    mine = mlflow.log_feedback(trace_id=trace_id, name="helpful", value=False, source=HUMAN)

    for token in (other_token, admin_token):
        client = use_token(token)
        error = refused(
            lambda c=client: c.update_assessment(
                trace_id=trace_id,
                assessment_id=mine.assessment_id,
                assessment=Feedback(name="helpful", value=True),
            )
        )
        assert "Only its author" in error.message
        refused(lambda c=client: c.delete_assessment(trace_id, mine.assessment_id))

    # Another Reviewer adds their own answer rather than overriding rita's.
    refused(
        lambda: use_token(other_token).override_feedback(
            trace_id=trace_id, assessment_id=mine.assessment_id, value=True
        )
    )

    stored = Assessment.objects.get(assessment_id=mine.assessment_id)
    assert (stored.value, stored.version, stored.deleted_at, stored.valid) == (False, 1, None, True)
    assert stored.annotator.username == "rita"


def test_a_reviewer_overrides_but_cannot_delete_an_apps_judge_entry(
    mlflow, use_token, trace_id, other_token, admin_token, reviewer_token
):
    judged = mlflow.log_feedback(trace_id=trace_id, name="grounded", value=False, source=JUDGE)

    client = use_token(other_token)
    refused(lambda: client.delete_assessment(trace_id, judged.assessment_id))
    override = client.override_feedback(
        trace_id=trace_id, assessment_id=judged.assessment_id, value=True, rationale="cited"
    )
    assert Assessment.objects.get(assessment_id=override.assessment_id).annotator.username == (
        "ravi"
    )

    # The app's own entry stays editable by the app's token, and an Admin may delete it.
    client = use_token(reviewer_token)
    client.update_assessment(
        trace_id=trace_id,
        assessment_id=judged.assessment_id,
        assessment=Feedback(name="grounded", value=False, rationale="rerun"),
    )
    use_token(admin_token).delete_assessment(trace_id, judged.assessment_id)
    stored = Assessment.objects.get(assessment_id=judged.assessment_id)
    assert stored.rationale == "rerun"
    assert stored.deleted_at is not None
