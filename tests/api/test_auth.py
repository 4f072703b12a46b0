"""Who may call the API: tokens, Basic credentials, revoked tokens and read-only roles."""

import time

import pytest
import requests
from mlflow.exceptions import MlflowException

from accounts.models import ApiToken
from accounts.tokens import revoke_token
from tests.api.conftest import server_db
from tests.factories import PASSWORD

pytestmark = server_db


def _search(mlflow):
    return mlflow.search_traces(locations=["0"], return_type="list")


def test_a_bearer_token_authenticates(use_token, reviewer_token):
    mlflow = use_token(reviewer_token)

    assert _search(mlflow) == []


def test_basic_with_the_account_password_authenticates(use_token, reviewer):
    mlflow = use_token(username="rita", password=PASSWORD)
    mlflow.set_experiment("basic")

    @mlflow.trace
    def traced():
        return 1

    traced()
    trace_id = mlflow.get_last_active_trace_id()
    mlflow.log_feedback(trace_id=trace_id, name="ok", value=True)

    assert mlflow.get_trace(trace_id).info.assessments[0].name == "ok"


def test_basic_with_a_token_as_password_authenticates(use_token, reviewer_token):
    mlflow = use_token(username="rita", password=reviewer_token)

    assert _search(mlflow) == []


def test_basic_wins_over_a_bearer_token(use_token, reviewer_token, monkeypatch):
    mlflow = use_token(reviewer_token, username="rita", password="wrong-password")

    with pytest.raises(MlflowException) as error:
        _search(mlflow)

    assert error.value.error_code == "UNAUTHENTICATED"


@pytest.mark.parametrize(
    "credentials",
    [{}, {"token": "tmk_not-a-token"}, {"username": "rita", "password": "nope"}],
    ids=["none", "unknown-token", "wrong-password"],
)
def test_missing_or_wrong_credentials_are_unauthenticated(use_token, reviewer, credentials):
    mlflow = use_token(**credentials)

    with pytest.raises(MlflowException) as error:
        _search(mlflow)

    assert error.value.error_code == "UNAUTHENTICATED"


def test_a_token_under_another_username_is_refused(use_token, reviewer_token, admin_token):
    mlflow = use_token(username="ada", password=reviewer_token)

    with pytest.raises(MlflowException) as error:
        _search(mlflow)

    assert error.value.error_code == "UNAUTHENTICATED"


def test_a_revoked_token_is_refused(use_token, reviewer_token):
    revoke_token(ApiToken.objects.get())
    mlflow = use_token(reviewer_token)

    with pytest.raises(MlflowException) as error:
        _search(mlflow)

    assert error.value.error_code == "UNAUTHENTICATED"


def test_a_viewer_reads_but_may_not_write(use_token, viewer_token, reviewer_token):
    mlflow = use_token(reviewer_token)
    mlflow.set_experiment("viewer")

    @mlflow.trace
    def traced():
        return 1

    traced()
    trace_id = mlflow.get_last_active_trace_id()
    mlflow = use_token(viewer_token)

    assert mlflow.get_trace(trace_id).info.trace_id == trace_id
    with pytest.raises(MlflowException) as error:
        mlflow.log_feedback(trace_id=trace_id, name="ok", value=True)
    assert error.value.error_code == "PERMISSION_DENIED"
    with pytest.raises(MlflowException) as error:
        mlflow.MlflowClient().create_experiment("not allowed")
    assert error.value.error_code == "PERMISSION_DENIED"


def test_only_admins_delete_traces(use_token, reviewer_token, admin_token):
    mlflow = use_token(reviewer_token)
    experiment_id = mlflow.set_experiment("deleting").experiment_id

    @mlflow.trace
    def traced():
        return 1

    traced()
    trace_id = mlflow.get_last_active_trace_id()
    with pytest.raises(MlflowException) as error:
        mlflow.MlflowClient().delete_traces(experiment_id, trace_ids=[trace_id])
    assert error.value.error_code == "PERMISSION_DENIED"

    mlflow = use_token(admin_token)
    deleted = mlflow.MlflowClient().delete_traces(experiment_id, trace_ids=[trace_id])

    assert deleted == 1
    assert _search(mlflow) == []
    assert mlflow.MlflowClient().search_traces(locations=[experiment_id]) == []


def test_version_and_health_need_no_credentials(tracemark_url):
    version = requests.get(f"{tracemark_url}/version", timeout=5)

    assert version.status_code == 200
    assert version.headers["Content-Type"].startswith("text/plain")
    assert tuple(int(p) for p in version.text.split(".")[:2]) >= (3, 4)
    assert requests.get(f"{tracemark_url}/health", timeout=5).status_code == 200


def _refused_within(url, token, seconds) -> float | None:
    """Seconds until every worker refuses ``token`` (requests spread over both workers)."""
    started = time.monotonic()
    headers = {"Authorization": f"Bearer {token}"}
    while time.monotonic() - started < seconds:
        answers = {
            requests.get(
                f"{url}/api/2.0/mlflow/experiments/search", headers=headers, timeout=5
            ).status_code
            for _ in range(6)
        }
        if answers == {401}:
            return time.monotonic() - started
        time.sleep(0.1)
    return None


@pytest.mark.parametrize("change", ["revoke", "deactivate"])
def test_a_token_stops_working_on_every_worker_within_two_seconds(
    tracemark_url, reviewer, reviewer_token, change
):
    headers = {"Authorization": f"Bearer {reviewer_token}"}
    for _ in range(6):  # every worker now remembers the token
        response = requests.get(
            f"{tracemark_url}/api/2.0/mlflow/experiments/search", headers=headers, timeout=5
        )
        assert response.status_code == 200
    if change == "revoke":
        revoke_token(ApiToken.objects.get())
    else:
        reviewer.is_active = False
        reviewer.save(update_fields=["is_active"])

    took = _refused_within(tracemark_url, reviewer_token, seconds=2.5)

    assert took is not None, "the token still worked 2.5 s after the change"
