"""A review queue made with the mlflow client, labelled in a browser, read back by the
client."""

import pytest
from playwright.sync_api import expect

from accounts.tokens import create_token
from tests.e2e.labeling import label_every_item
from tests.factories import make_admin, make_reviewer, make_trace
from traces.models import Experiment

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def client_as_admin(live_server, monkeypatch):
    """The mlflow module pointed at the live server with an Admin's token."""
    import mlflow
    from mlflow.store.tracking.rest_store import RestStore

    token = create_token(user=make_admin(username="ada"), name="e2e")[1]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", live_server.url)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    mlflow.set_tracking_uri(live_server.url)
    RestStore._get_server_version.cache_clear()
    yield mlflow
    RestStore._get_server_version.cache_clear()


def test_a_queue_made_by_the_client_is_labelled_in_the_browser(
    client_as_admin, browser, live_server, login
):
    import mlflow.genai.review_queues as rq
    from mlflow.genai.label_schemas import InputPassFail, create_label_schema

    rita = make_reviewer(username="rita")
    experiment_id = client_as_admin.set_experiment("support").experiment_id
    experiment = Experiment.objects.get(pk=experiment_id)
    traces = [make_trace(experiment, request_time=1_700_000_000_000 + n).trace_id for n in (0, 1)]
    schema = create_label_schema(
        "helpful", type="feedback", experiment_id=experiment_id,
        input=InputPassFail(positive_label="Helpful", negative_label="Unhelpful"),
    )  # fmt: skip
    queue = rq.create_review_queue(
        "client made", queue_type="custom", users=["rita"],
        schema_ids=[schema.schema_id], experiment_id=experiment_id,
    )  # fmt: skip
    rq.add_items_to_review_queue(queue.queue_id, item_ids=traces)

    label_every_item(browser, login, live_server, rita, ["Helpful", "Unhelpful"], keys=False)

    items = rq.list_review_queue_items(queue.queue_id)
    assert sorted(item.item_id for item in items) == sorted(traces)
    assert {(item.status, item.completed_by) for item in items} == {("complete", "rita")}
    values = sorted(
        a.value
        for trace_id in traces
        for a in client_as_admin.get_trace(trace_id).search_assessments(name="helpful")
    )
    assert values == [False, True]
    page = browser.new_page()
    login(page, rita)
    page.goto(f"{live_server.url}/queues/")
    expect(page.get_by_text("client made")).to_be_visible()
