"""Evaluation datasets through the real mlflow client: create, search, merge with MLflow's
dedup, records from reviewed traces, to_df(), tags, experiments and delete."""

import pytest
from mlflow.exceptions import MlflowException, RestException

from annotation import services
from annotation.models import DatasetRecord, EvaluationDataset
from tests.api.conftest import server_db

pytestmark = server_db


@pytest.fixture
def datasets(mlflow):
    import mlflow.genai.datasets

    experiment_id = mlflow.set_experiment("datasets").experiment_id
    return mlflow, mlflow.genai.datasets, experiment_id


def test_merge_dedups_on_inputs_and_merges_expectations(datasets):
    _mlflow, ds, experiment_id = datasets
    dataset = ds.create_dataset(name="qa", experiment_id=experiment_id, tags={"team": "qa"})
    assert dataset.dataset_id.startswith("d-") and dataset.tags["team"] == "qa"

    dataset.merge_records(
        [
            {
                "inputs": {"question": "What is MLflow?", "lang": "en"},
                "expectations": {"score": 1, "expected_response": "A platform."},
            },
            {"inputs": {"question": "What is Tracemark?"}, "expectations": {"score": 2}},
        ]
    )
    first = DatasetRecord.objects.get(inputs__question="What is MLflow?")
    dataset = ds.get_dataset(dataset_id=dataset.dataset_id)
    dataset.merge_records(
        [
            {
                "inputs": {"lang": "en", "question": "What is MLflow?"},
                "expectations": {"score": 0.5, "rubric": "short"},
            },
            {"inputs": {"question": "What is MLflow?", "lang": "en", "v": 2}},
        ]
    )

    again = DatasetRecord.objects.get(dataset_record_id=first.dataset_record_id)
    assert again.expectations == {
        "score": 0.5,
        "expected_response": "A platform.",
        "rubric": "short",
    }
    assert again.created_time == first.created_time
    frame = ds.get_dataset(dataset_id=dataset.dataset_id).to_df()
    assert len(frame) == 3
    assert set(frame.columns) >= {"inputs", "expectations", "outputs"}
    stored = EvaluationDataset.objects.get(dataset_id=dataset.dataset_id)
    assert stored.schema["inputs"] == {"question": "string", "lang": "string", "v": "integer"}
    assert ds.get_dataset(dataset_id=dataset.dataset_id).profile == '{"num_records": 3}'


def test_records_from_reviewed_traces_carry_inputs_and_expectations(datasets, reviewer):
    mlflow, ds, experiment_id = datasets

    @mlflow.trace
    def answer(question):
        return {"answer": f"answer to {question}"}

    answer("q0")
    trace_id = mlflow.get_last_active_trace_id()
    from traces.models import Trace

    trace = Trace.objects.get(trace_id=trace_id)
    services.log_expectation(
        trace=trace, name="ideal", value="The ideal answer.", source_id="rita", actor=reviewer
    )
    services.log_feedback(trace=trace, name="correct", value=True, source_id="rita", actor=reviewer)

    dataset = ds.create_dataset(name="from traces", experiment_id=experiment_id)
    traces = mlflow.search_traces(locations=[experiment_id], return_type="list")
    dataset.merge_records(traces)
    dataset.merge_records([{"inputs": {"question": "q0"}, "expectations": {"note": "from a dict"}}])

    [record] = ds.get_dataset(dataset_id=dataset.dataset_id).to_df().to_dict("records")
    assert record["inputs"] == {"question": "q0"}
    assert record["outputs"] == {"answer": "answer to q0"}
    assert record["expectations"] == {"ideal": "The ideal answer.", "note": "from a dict"}
    assert (record["source_type"], record["source_id"]) == ("TRACE", trace_id)


def test_search_get_by_name_tags_experiments_and_delete(datasets):
    mlflow, ds, experiment_id = datasets
    made = [ds.create_dataset(name=f"set {n}", experiment_id=experiment_id) for n in range(3)]

    found = ds.search_datasets(experiment_ids=[experiment_id], filter_string="name LIKE 'set%'")
    assert [d.name for d in found] == ["set 2", "set 1", "set 0"]
    client = mlflow.MlflowClient()
    page = client.search_datasets(experiment_ids=[experiment_id], max_results=2)
    rest = client.search_datasets(
        experiment_ids=[experiment_id], max_results=2, page_token=page.token
    )
    assert len(page) == 2 and len(rest) == 1 and not rest.token
    assert ds.get_dataset(name="set 1").dataset_id == made[1].dataset_id
    with pytest.raises(MlflowException):
        ds.get_dataset(name="no such set")
    with pytest.raises(RestException) as caught:
        ds.search_datasets(filter_string="bogus = 'x'")
    assert "Invalid attribute key 'bogus'" in caught.value.message

    ds.set_dataset_tags(made[0].dataset_id, {"team": "qa", "n": 3})
    ds.set_dataset_tags(made[0].dataset_id, {"team": None})
    ds.delete_dataset_tag(made[0].dataset_id, "n")
    assert ds.get_dataset(dataset_id=made[0].dataset_id).tags["team"] == "qa"
    assert "n" not in ds.get_dataset(dataset_id=made[0].dataset_id).tags

    other = mlflow.create_experiment("other datasets")
    ds.add_dataset_to_experiments(made[0].dataset_id, [other])
    assert sorted(ds.get_dataset(dataset_id=made[0].dataset_id).experiment_ids) == sorted(
        [experiment_id, other]
    )
    ds.remove_dataset_from_experiments(made[0].dataset_id, [experiment_id])
    assert ds.get_dataset(dataset_id=made[0].dataset_id).experiment_ids == [other]

    ds.delete_dataset(dataset_id=made[0].dataset_id)
    with pytest.raises(RestException) as caught:
        ds.get_dataset(dataset_id=made[0].dataset_id)
    assert caught.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_records_page_and_delete(datasets):
    _mlflow, ds, experiment_id = datasets
    dataset = ds.create_dataset(name="paged", experiment_id=experiment_id)
    dataset.merge_records([{"inputs": {"n": n}} for n in range(5)])
    store = _mlflow.tracking.MlflowClient()._tracking_client.store
    records, token, pages = [], None, 0
    while True:
        page, token = store._load_dataset_records(
            dataset.dataset_id, max_results=2, page_token=token
        )
        records += page
        pages += 1
        if not token:
            break
    assert pages == 3 and sorted(r.inputs["n"] for r in records) == list(range(5))
    fresh = ds.get_dataset(dataset_id=dataset.dataset_id)
    ids = list(fresh.to_df()["dataset_record_id"][:2])
    assert fresh.delete_records([*ids, "dr-unknown"]) == 2
    assert len(ds.get_dataset(dataset_id=dataset.dataset_id).to_df()) == 3


def test_a_viewer_reads_datasets_but_does_not_write(use_token, viewer_token, reviewer_token):
    import mlflow.genai.datasets

    mlflow = use_token(reviewer_token)
    experiment_id = mlflow.set_experiment("datasets").experiment_id
    made = mlflow.genai.datasets.create_dataset(name="kept", experiment_id=experiment_id)
    use_token(viewer_token)
    assert mlflow.genai.datasets.get_dataset(dataset_id=made.dataset_id).name == "kept"
    with pytest.raises(RestException) as caught:
        mlflow.genai.datasets.create_dataset(name="mine", experiment_id=experiment_id)
    assert caught.value.error_code == "PERMISSION_DENIED"
