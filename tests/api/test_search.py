"""search_traces through the real client: each kind of filter, order_by and paging."""

import time

import pytest
from mlflow.exceptions import MlflowException

from tests.api.conftest import server_db
from tests.factories import make_trace
from traces.models import Experiment

pytestmark = server_db


@pytest.fixture
def probe(mlflow):
    """Traces A (root), B (root2) and C (an error), as in the wire notes."""
    experiment_id = mlflow.set_experiment("search").experiment_id

    @mlflow.trace(name="root")
    def root(q):
        mlflow.update_current_trace(
            client_request_id="cid-001",
            user="alice",
            session_id="sess-1",
            tags={"custom_tag": "t1", "env": "probe"},
            metadata={"k": "v"},
        )
        with mlflow.start_span(name="middle", span_type="LLM") as span:
            span.set_attribute("mid_attr", "v")
        return "mlflow answer"

    @mlflow.trace(name="root2")
    def root2(q):
        mlflow.update_current_trace(
            client_request_id="cid-002", user="bob", session_id="sess-2", tags={"env": "probe2"}
        )
        return "done"

    @mlflow.trace(name="failing")
    def failing():
        raise ValueError("boom")

    root("what is mlflow?")
    a = mlflow.get_last_active_trace_id()
    time.sleep(0.01)
    root2("hi")
    b = mlflow.get_last_active_trace_id()
    time.sleep(0.01)
    with pytest.raises(ValueError):
        failing()
    c = mlflow.get_last_active_trace_id()
    mlflow.log_feedback(trace_id=a, name="is_correct", value=True)
    mlflow.log_feedback(trace_id=a, name="score", value=0.9)
    mlflow.log_feedback(trace_id=a, name="label", value="bad")
    mlflow.log_expectation(trace_id=a, name="expected_answer", value="new expected")
    return {"experiment_id": experiment_id, "A": a, "B": b, "C": c}


FILTERS = [
    ("attributes.client_request_id = 'cid-001'", "A"),
    ("trace.client_request_id IN ('cid-001','cid-002')", "AB"),
    ("tags.`mlflow.trace.user` = 'alice'", ""),
    ("metadata.`mlflow.trace.user` = 'alice'", "A"),
    ("metadata.`mlflow.trace.session` = 'sess-2'", "B"),
    ("metadata.`mlflow.trace.user` IS NOT NULL", "AB"),
    ("metadata.k = 'v'", "A"),
    ("trace.status = 'OK'", "AB"),
    ("trace.status != 'OK'", "C"),
    ("timestamp_ms > 0", "ABC"),
    ("execution_time_ms >= 0", "ABC"),
    ('tags.custom_tag = "t1"', "A"),
    ("tags.custom_tag IS NULL", "BC"),
    ("tags.env LIKE 'probe%'", "AB"),
    ("tags.env != 'probe'", "B"),
    ("name = 'root'", "A"),
    ("span.name = 'middle'", "A"),
    ("span.type = 'LLM'", "A"),
    ("span.attributes.mid_attr LIKE '%v%'", "A"),
    ("feedback.`is_correct` = 'true'", "A"),
    ("feedback.score > 0.5", "A"),
    ("feedback.label LIKE 'ba%'", ""),
    ("feedback.nonexistent IS NULL", "ABC"),
    ("expectation.`expected_answer` = 'new expected'", "A"),
    ("metadata.`mlflow.trace.user` = 'bob' AND trace.status = 'OK'", "B"),
]


def test_filters_select_the_reference_traces(mlflow, probe):
    wrong = {}
    for filter_string, expected in FILTERS:
        found = mlflow.search_traces(
            locations=[probe["experiment_id"]], filter_string=filter_string, return_type="list"
        )
        names = {trace_id: name for name, trace_id in probe.items() if name in "ABC"}
        got = "".join(sorted(names[t.info.trace_id] for t in found))
        if got != expected:
            wrong[filter_string] = got

    assert wrong == {}


def test_results_carry_spans_and_assessments(mlflow, probe):
    [found] = mlflow.search_traces(
        locations=[probe["experiment_id"]],
        filter_string="attributes.client_request_id = 'cid-001'",
        return_type="list",
    )

    assert {s.name for s in found.data.spans} == {"root", "middle"}
    assert {a.name for a in found.info.assessments} == {
        "is_correct",
        "score",
        "label",
        "expected_answer",
    }


def test_default_order_is_newest_first_and_order_by_is_honoured(mlflow, probe):
    client = mlflow.MlflowClient()
    newest_first = client.search_traces(locations=[probe["experiment_id"]])
    oldest_first = client.search_traces(
        locations=[probe["experiment_id"]], order_by=["timestamp_ms ASC"], include_spans=False
    )

    assert [t.info.trace_id for t in newest_first] == [probe["C"], probe["B"], probe["A"]]
    assert [t.info.trace_id for t in oldest_first] == [probe["A"], probe["B"], probe["C"]]


INVALID_FILTERS = [
    ("foo bar baz", "Invalid clause(s) in filter string"),
    ("trace.status = 'OK' OR trace.status = 'ERROR'", "'OR'"),
    ("assessment.`label` = 'bad'", "Invalid entity type 'assessment'"),
    ("attributes.state = 'OK'", "Invalid attribute key 'state'"),
    ("tags.custom_tag = t1", "not quoted"),
    ("feedback.score >= '0.5'", "Expected a numeric value"),
]


def test_invalid_filters_are_rejected(mlflow, probe):
    for filter_string, message in INVALID_FILTERS:
        with pytest.raises(MlflowException) as error:
            mlflow.search_traces(locations=[probe["experiment_id"]], filter_string=filter_string)

        assert error.value.error_code == "INVALID_PARAMETER_VALUE"
        assert message in error.value.message


def test_invalid_order_by_is_rejected(mlflow, probe):
    with pytest.raises(MlflowException) as error:
        mlflow.MlflowClient().search_traces(
            locations=[probe["experiment_id"]], order_by=["foo DESC"]
        )

    assert error.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "Invalid attribute key 'foo'" in error.value.message


def test_pages_over_more_than_a_hundred_traces(mlflow):
    experiment = Experiment.objects.create(name="many")
    ids = {make_trace(experiment, request_time=1_700_000_000_000 + i).trace_id for i in range(230)}
    client = mlflow.MlflowClient()

    seen, token, pages = [], None, 0
    while True:
        page = client.search_traces(
            locations=[str(experiment.pk)], max_results=100, page_token=token, include_spans=False
        )
        seen += [t.info.trace_id for t in page]
        pages += 1
        token = page.token
        if not token:
            break
    everything = mlflow.search_traces(
        locations=[str(experiment.pk)], max_results=1000, include_spans=False, return_type="list"
    )

    assert pages == 3
    assert len(seen) == 230 and set(seen) == ids
    assert [t.info.trace_id for t in everything] == seen
