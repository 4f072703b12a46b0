"""A blind queue follows its members onto the API: the real mlflow client, with a member's own
token, gets none of the answers the queue hides from them; an app's token gets them all."""

import pytest
from mlflow.entities import Feedback
from mlflow.exceptions import MlflowException

from accounts.tokens import create_token
from annotation import queues
from annotation.models import Assessment, LabelSchema
from annotation.schema_cache import schemas_changed
from tests.api.conftest import server_db
from tests.factories import make_reviewer
from traces.models import Trace

pytestmark = server_db


@pytest.fixture
def blind_queue(mlflow, reviewer):
    """Two traces in an open blind queue of rita and ravi; rita has answered both."""
    experiment_id = mlflow.set_experiment("blind").experiment_id

    @mlflow.trace(name="root")
    def root(x):
        return x

    trace_ids = []
    for n in range(2):
        root(n)
        trace_ids.append(mlflow.get_last_active_trace_id())
    mlflow.flush_trace_async_logging()
    helpful = LabelSchema.objects.create(name="helpful", value_type=LabelSchema.ValueType.BOOLEAN)
    schemas_changed()
    ravi = make_reviewer(username="ravi")
    queue = queues.create_queue(
        name="Helpfulness",
        traces=[Trace.objects.get(trace_id=trace_id) for trace_id in trace_ids],
        schemas=[helpful],
        annotators=[reviewer, ravi],
        overlap=2,
    )
    for n in range(2):
        queues.submit(
            assignment=queues.next_assignment(queue=queue, user=reviewer),
            values={"helpful": False},
            rationales={"helpful": f"RITA-{n}"},
            actor=reviewer,
        )
    return {
        "experiment_id": experiment_id,
        "trace_ids": trace_ids,
        "ravi_token": create_token(user=ravi, name="tests")[1],
        "app_token": create_token(user=make_reviewer(username="app"), name="tests")[1],
        "answer_id": Assessment.objects.get(rationale="RITA-1").assessment_id,
    }


def rationales(traces) -> set[str]:
    return {a.rationale for trace in traces for a in trace.info.assessments}


def test_a_members_token_gets_no_hidden_answer_anywhere(use_token, blind_queue):
    mlflow = use_token(blind_queue["ravi_token"])
    first, second = blind_queue["trace_ids"]
    experiment = [blind_queue["experiment_id"]]

    assert rationales([mlflow.get_trace(second)]) == set()
    assert rationales(mlflow.search_traces(locations=experiment, return_type="list")) == set()
    found = mlflow.search_traces(
        locations=experiment, filter_string="feedback.helpful = 'false'", return_type="list"
    )
    assert found == []
    answer_id = blind_queue["answer_id"]
    for touch in (
        lambda: mlflow.get_assessment(second, answer_id),
        lambda: mlflow.update_assessment(second, answer_id, Feedback(name="helpful", value=True)),
        lambda: mlflow.override_feedback(trace_id=second, assessment_id=answer_id, value=True),
        lambda: mlflow.delete_assessment(second, answer_id),
    ):
        with pytest.raises(MlflowException) as missing:
            touch()
        assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert Assessment.objects.get(assessment_id=answer_id).value is False


def test_an_apps_token_gets_every_answer(use_token, blind_queue):
    mlflow = use_token(blind_queue["app_token"])
    first, second = blind_queue["trace_ids"]
    experiment = [blind_queue["experiment_id"]]

    assert rationales([mlflow.get_trace(second)]) == {"RITA-1"}
    found = mlflow.search_traces(
        locations=experiment, filter_string="feedback.helpful = 'false'", return_type="list"
    )
    assert {trace.info.trace_id for trace in found} == {first, second}
    assert mlflow.get_assessment(second, blind_queue["answer_id"]).rationale == "RITA-1"
