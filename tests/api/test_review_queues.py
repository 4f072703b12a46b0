"""MLflow's review-queue API through the real mlflow client, served from Queue and QueueItem,
and a queue made by the client labelled in the browser."""

import pytest
from django.test import Client
from django.urls import reverse
from mlflow.exceptions import RestException

from annotation.models import Assessment, Queue
from tests.api.conftest import server_db
from tests.factories import make_experiment, make_reviewer, make_trace, make_viewer
from traces.models import Experiment

pytestmark = server_db


@pytest.fixture
def setup(use_token, admin_token, reviewer):
    """mlflow signed in as the Admin "ada", an experiment with three traces and two schemas,
    and the Reviewers rita (the fixture's) and bob."""
    import mlflow.genai.review_queues
    from mlflow.genai.label_schemas import InputPassFail, InputText

    mlflow = use_token(admin_token)
    experiment_id = mlflow.set_experiment("queues").experiment_id
    experiment = Experiment.objects.get(pk=experiment_id)
    traces = [make_trace(experiment, request_time=1_700_000_000_000 + n) for n in range(3)]
    ls = mlflow.genai.label_schemas
    correct = ls.create_label_schema(
        "correct", type="feedback", experiment_id=experiment_id, enable_comment=True,
        input=InputPassFail(positive_label="Correct", negative_label="Incorrect"),
    )  # fmt: skip
    ideal = ls.create_label_schema(
        "ideal", type="expectation", input=InputText(), experiment_id=experiment_id
    )
    make_reviewer(username="bob")
    return {
        "mlflow": mlflow,
        "rq": mlflow.genai.review_queues,
        "experiment_id": experiment_id,
        "traces": [trace.trace_id for trace in traces],
        "schema_ids": sorted([correct.schema_id, ideal.schema_id]),
    }


def _error(call, *args, **kwargs) -> RestException:
    with pytest.raises(RestException) as caught:
        call(*args, **kwargs)
    return caught.value


def test_a_custom_queue_normalises_and_reads_back(setup):
    rq, experiment_id = setup["rq"], setup["experiment_id"]
    correct = setup["schema_ids"][0]
    queue = rq.create_review_queue(
        "  Triage  ",
        queue_type="custom",
        users=[" Rita ", "bob", "RITA"],
        schema_ids=[correct, correct],
        experiment_id=experiment_id,
    )

    assert queue.queue_id.startswith("rq-") and len(queue.queue_id) == 35
    assert (queue.name, queue.queue_type) == ("Triage", "custom")
    assert (queue.users, queue.schema_ids) == (["bob", "rita"], [correct])
    assert queue.created_by == "ada"
    assert rq.get_review_queue(queue.queue_id) == queue
    assert rq.get_review_queue(name="triage", experiment_id=experiment_id) == queue

    stored = Queue.objects.get(queue_id=queue.queue_id)
    assert (stored.shared_status, stored.overlap, stored.blind) == (True, 1, False)
    assert sorted(stored.annotators.values_list("username", flat=True)) == ["bob", "rita"]

    taken = _error(
        rq.create_review_queue, "triage", queue_type="custom", experiment_id=experiment_id
    )
    assert (taken.error_code, taken.get_http_status_code()) == ("RESOURCE_ALREADY_EXISTS", 400)
    reserved = _error(
        rq.create_review_queue, "Default", queue_type="custom", experiment_id=experiment_id
    )
    assert "reserved" in reserved.message
    too_many = _error(
        rq.create_review_queue, "crowd", queue_type="custom", experiment_id=experiment_id,
        users=[f"u{n}" for n in range(11)],
    )  # fmt: skip
    assert "at most 10" in too_many.message
    strangers = _error(
        rq.create_review_queue, "strangers", queue_type="custom", experiment_id=experiment_id,
        users=["nobody"],
    )  # fmt: skip
    assert strangers.error_code == "INVALID_PARAMETER_VALUE"
    bad_schema = _error(
        rq.create_review_queue, "bad", queue_type="custom", experiment_id=experiment_id,
        schema_ids=["ls-" + "0" * 32],
    )  # fmt: skip
    assert "not found for experiment" in bad_schema.message
    unknown = _error(rq.get_review_queue, "rq-" + "0" * 32)
    assert unknown.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_a_user_queue_is_one_persons_and_carries_every_schema(setup):
    rq, experiment_id = setup["rq"], setup["experiment_id"]
    mine = rq.get_or_create_user_queue("  Rita ", experiment_id=experiment_id)
    assert (mine.name, mine.users, mine.queue_type, mine.created_by) == (
        "rita",
        ["rita"],
        "user",
        "rita",
    )
    assert mine.schema_ids == []
    assert rq.get_or_create_user_queue("RITA", experiment_id=experiment_id) == mine
    stored = Queue.objects.get(queue_id=mine.queue_id)
    assert sorted(stored.schemas.values_list("schema_id", flat=True)) == setup["schema_ids"]

    fixed = _error(rq.update_review_queue, mine.queue_id, name="other")
    assert "fixed and cannot be updated" in fixed.message
    wrong_users = _error(
        rq.create_review_queue, "bob", queue_type="user", users=["rita"],
        experiment_id=experiment_id,
    )  # fmt: skip
    assert "exactly one assigned user" in wrong_users.message
    made = rq.create_review_queue("bob", queue_type="user", experiment_id=experiment_id)
    assert rq.get_or_create_user_queue("bob", experiment_id=experiment_id) == made

    listed = rq.list_review_queues(user="BOB", experiment_id=experiment_id)
    assert [queue.queue_id for queue in listed] == [made.queue_id]


def test_items_attach_in_order_all_or_nothing_and_list_newest_first(setup):
    rq, experiment_id, (t0, t1, t2) = setup["rq"], setup["experiment_id"], setup["traces"]
    queue = rq.create_review_queue(
        "items", queue_type="custom", users=["rita"], experiment_id=experiment_id,
        schema_ids=setup["schema_ids"],
    )  # fmt: skip

    added = rq.add_items_to_review_queue(queue.queue_id, item_ids=[t1, t0, t0, f" {t2} "])
    assert [item.item_id for item in added] == [t1, t0, t2]
    assert {item.status for item in added} == {"pending"}
    assert len({item.creation_time_ms for item in added}) == 1

    foreign = make_trace(make_experiment("elsewhere")).trace_id
    refused = _error(rq.add_items_to_review_queue, queue.queue_id, item_ids=[t0, foreign])
    assert (refused.error_code, refused.get_http_status_code()) == ("RESOURCE_DOES_NOT_EXIST", 404)

    frozen = _error(rq.update_review_queue, queue.queue_id, schema_ids=[setup["schema_ids"][0]])
    assert "locked once items are assigned" in frozen.message
    renamed = rq.update_review_queue(queue.queue_id, name="renamed", users=["rita", "bob"])
    assert (renamed.name, renamed.users) == ("renamed", ["bob", "rita"])
    assert renamed.last_update_time_ms >= queue.last_update_time_ms

    rq.set_review_queue_item_status(queue.queue_id, item_id=t0, status="complete")
    pages, token = [], None
    while True:
        page = rq.list_review_queue_items(queue.queue_id, max_results=1, page_token=token)
        pages += [item.item_id for item in page]
        token = page.token
        if not token:
            break
    assert pages == sorted([t0, t1, t2])  # one call, one creation time: then by id
    pending = rq.list_review_queue_items(queue.queue_id, status="pending")
    assert sorted(item.item_id for item in pending) == sorted([t1, t2])

    rq.remove_items_from_review_queue(queue.queue_id, item_ids=[t1, "tr-unknown"])
    assert len(rq.list_review_queue_items(queue.queue_id)) == 2
    by_item = (
        setup["mlflow"]
        .tracking.MlflowClient()
        ._tracking_client.store.list_review_queues(experiment_id=experiment_id, item_id=t0)
    )
    assert [q.queue_id for q in by_item] == [queue.queue_id]

    rq.delete_review_queue(queue.queue_id)
    rq.delete_review_queue(queue.queue_id)
    assert _error(rq.get_review_queue, queue.queue_id).error_code == "RESOURCE_DOES_NOT_EXIST"


def test_set_status_is_shared_idempotent_and_attributed_to_the_caller(
    setup, use_token, reviewer_token
):
    rq, experiment_id, (t0, *_rest) = setup["rq"], setup["experiment_id"], setup["traces"]
    queue = rq.create_review_queue(
        "status", queue_type="custom", users=["rita", "bob"], experiment_id=experiment_id
    )
    rq.add_items_to_review_queue(queue.queue_id, item_ids=[t0])

    use_token(reviewer_token)
    done = rq.set_review_queue_item_status(
        queue.queue_id, item_id=t0, status="complete", completed_by="bob"
    )
    assert (done.status, done.completed_by) == ("complete", "rita")
    again = rq.set_review_queue_item_status(
        queue.queue_id, item_id=t0, status="complete", completed_by="bob"
    )
    assert (again.completed_time_ms, again.last_update_time_ms) == (
        done.completed_time_ms,
        done.last_update_time_ms,
    )
    reopened = rq.set_review_queue_item_status(queue.queue_id, item_id=t0, status="pending")
    assert (reopened.status, reopened.completed_by, reopened.completed_time_ms) == (
        "pending",
        None,
        None,
    )
    missing = _error(
        rq.set_review_queue_item_status, queue.queue_id, item_id="tr-none", status="declined",
        completed_by="rita",
    )  # fmt: skip
    assert missing.error_code == "RESOURCE_DOES_NOT_EXIST"
    denied = _error(
        rq.create_review_queue, "mine", queue_type="custom", experiment_id=experiment_id
    )
    assert (denied.error_code, denied.get_http_status_code()) == ("PERMISSION_DENIED", 403)


def test_outsiders_and_viewers_may_not_set_status(setup, use_token):
    from accounts.tokens import create_token

    rq, experiment_id, (t0, *_rest) = setup["rq"], setup["experiment_id"], setup["traces"]
    queue = rq.create_review_queue(
        "members", queue_type="custom", users=["rita"], experiment_id=experiment_id
    )
    rq.add_items_to_review_queue(queue.queue_id, item_ids=[t0])
    for user in (make_reviewer(username="olga"), make_viewer(username="vic")):
        use_token(create_token(user=user, name="t")[1])
        refused = _error(
            rq.set_review_queue_item_status, queue.queue_id, item_id=t0, status="complete",
            completed_by=user.username,
        )  # fmt: skip
        assert refused.error_code == "PERMISSION_DENIED"
        assert [q.name for q in rq.list_review_queues(experiment_id=experiment_id)] == ["members"]


def test_a_queue_made_by_the_client_is_labelled_in_the_browser_and_read_back(setup, reviewer):
    mlflow, rq, experiment_id = setup["mlflow"], setup["rq"], setup["experiment_id"]
    t0, t1, _t2 = setup["traces"]
    queue = rq.create_review_queue(
        "labelled", queue_type="custom", users=["rita", "bob"], experiment_id=experiment_id,
        schema_ids=setup["schema_ids"],
    )  # fmt: skip
    rq.add_items_to_review_queue(queue.queue_id, item_ids=[t0, t1])
    stored = Queue.objects.get(queue_id=queue.queue_id)
    correct, ideal = (stored.schemas.get(name=name) for name in ("correct", "ideal"))

    browser = Client()
    browser.force_login(reviewer)
    response = browser.post(reverse("annotation:queue-next", args=[stored.pk]))
    item_url = reverse("annotation:queue-item", args=[stored.pk, 1])
    assert response.url == item_url
    response = browser.post(
        item_url,
        {
            f"s{correct.pk}-value": "true",
            f"s{correct.pk}-rationale": "matches the source",
            f"s{ideal.pk}-value": "The ideal answer.",
        },
    )
    assert response.status_code == 302
    skip_url = reverse("annotation:queue-skip", args=[stored.pk, 2])
    browser.post(reverse("annotation:queue-next", args=[stored.pk]))
    assert browser.post(skip_url, {"reason": "Broken trace"}).status_code == 302

    items = {item.item_id: item for item in rq.list_review_queue_items(queue.queue_id)}
    assert (items[t0].status, items[t0].completed_by) == ("complete", "rita")
    assert (items[t1].status, items[t1].completed_by) == ("declined", "rita")
    assert [i.item_id for i in rq.list_review_queue_items(queue.queue_id, status="pending")] == []

    answers = {a.name: a for a in mlflow.get_trace(t0).info.assessments}
    assert answers["correct"].value is True
    assert answers["correct"].rationale == "matches the source"
    assert (answers["correct"].source.source_type, answers["correct"].source.source_id) == (
        "HUMAN",
        "rita",
    )
    assert answers["ideal"].value == "The ideal answer."
    assert Assessment.objects.filter(trace__trace_id=t0, annotator=reviewer).count() == 2

    # Completed through the API, an item is no longer handed out in the browser.
    rq.set_review_queue_item_status(queue.queue_id, item_id=t1, status="pending")
    rq.set_review_queue_item_status(queue.queue_id, item_id=t1, status="complete")
    bob = Client()
    bob.force_login(stored.annotators.get(username="bob"))
    response = bob.post(reverse("annotation:queue-next", args=[stored.pk]))
    assert response.url != reverse("annotation:queue-item", args=[stored.pk, 2])
