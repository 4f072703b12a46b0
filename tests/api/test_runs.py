"""mlflow.start_run() and mlflow.genai.evaluate() with code scorers, unchanged, against
Tracemark through the real mlflow client."""

import pytest
from mlflow.exceptions import MlflowException, RestException

from tests.api.conftest import server_db
from traces.models import Run, Trace
from traces.runs import traces_of

pytestmark = server_db


def test_a_run_keeps_its_name_params_metrics_and_tags(mlflow):
    mlflow.set_experiment("runs")
    with mlflow.start_run(run_name="baseline") as run:
        mlflow.log_param("model", "small")
        mlflow.log_params({"temperature": 0.2, "top_k": 5})
        mlflow.log_metric("accuracy", 0.5, step=0)
        mlflow.log_metric("accuracy", 0.75, step=1)
        mlflow.log_metric("accuracy", 0.1, step=0)
        mlflow.set_tag("team", "qa")

    fetched = mlflow.get_run(run.info.run_id)
    assert fetched.info.run_name == "baseline"
    assert fetched.info.status == "FINISHED" and fetched.info.end_time is not None
    assert fetched.data.params == {"model": "small", "temperature": "0.2", "top_k": "5"}
    assert fetched.data.metrics == {"accuracy": 0.75}
    assert fetched.data.tags["team"] == "qa"

    stored = Run.objects.get(run_id=run.info.run_id)
    assert (stored.name, stored.status, stored.experiment.name) == ("baseline", "FINISHED", "runs")
    assert stored.params["model"] == "small"


def test_a_param_cannot_change_and_unknown_runs_are_not_found(mlflow):
    mlflow.set_experiment("runs")
    client = mlflow.MlflowClient()
    with mlflow.start_run() as run:
        mlflow.log_param("model", "small")
        mlflow.log_param("model", "small")
        with pytest.raises(MlflowException) as caught:
            mlflow.log_param("model", "large")
        assert "Changing param values is not allowed" in str(caught.value)
    assert run.info.run_name.startswith("run-")

    with pytest.raises(RestException) as caught:
        client.get_run("0" * 32)
    assert caught.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_a_viewer_may_not_start_a_run(use_token, viewer_token):
    mlflow = use_token(viewer_token)
    with pytest.raises(RestException) as caught:
        mlflow.MlflowClient().create_run("0")
    assert caught.value.error_code == "PERMISSION_DENIED"


def test_evaluate_with_code_scorers_runs_unchanged(mlflow):
    from mlflow.genai.scorers import scorer

    experiment_id = mlflow.set_experiment("evaluation").experiment_id

    @scorer
    def exact(outputs, expectations):
        return outputs == expectations["expected"]

    @scorer
    def length(outputs):
        return len(outputs)

    data = [
        {"inputs": {"question": "a"}, "expectations": {"expected": "A"}},
        {"inputs": {"question": "bb"}, "expectations": {"expected": "nope"}},
    ]
    result = mlflow.genai.evaluate(
        data=data, scorers=[exact, length], predict_fn=lambda question: question.upper()
    )

    assert result.metrics == {"exact/mean": 0.5, "length/mean": 1.5}
    run = Run.objects.get(run_id=result.run_id)
    assert run.status == "FINISHED" and str(run.experiment_id) == experiment_id
    assert run.metrics["exact/mean"]["value"] == 0.5
    assert run.tags["mlflow.runType"] == "genai_evaluate"
    assert [entry["dataset"]["name"] for entry in run.inputs] == ["dataset"]

    traces = traces_of(run)
    assert traces.count() == 2
    verdicts = {(a.name, a.source_type) for trace in traces for a in trace.assessments.all()}
    assert {("exact", "CODE"), ("length", "CODE"), ("expected", "HUMAN")} <= verdicts
    found = mlflow.search_traces(
        locations=[experiment_id], filter_string=f"attributes.run_id = '{run.run_id}'",
        return_type="list",
    )  # fmt: skip
    assert len(found) == 2


def test_linking_a_trace_names_the_run_in_its_metadata(mlflow):
    mlflow.set_experiment("links")

    @mlflow.trace
    def answer(question):
        return question

    answer("outside any run")
    trace_id = mlflow.get_last_active_trace_id()
    client = mlflow.MlflowClient()
    with mlflow.start_run() as run:
        client.link_traces_to_run([trace_id], run_id=run.info.run_id)

    stored = Trace.objects.get(trace_id=trace_id)
    assert stored.trace_metadata["mlflow.sourceRun"] == run.info.run_id
