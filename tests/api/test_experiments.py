"""Experiments as MLflow's tracking server answers them, and endpoints Tracemark lacks, through
the real mlflow client."""

import pytest
import requests
from mlflow.exceptions import RestException

from tests.api.conftest import server_db
from traces.models import Experiment

pytestmark = server_db


def test_the_artifact_location_is_kept_as_given(mlflow):
    client = mlflow.MlflowClient()
    given = client.create_experiment("artifacts elsewhere", artifact_location="s3://bucket/x")
    default = client.create_experiment("artifacts here")

    assert client.get_experiment(given).artifact_location == "s3://bucket/x"
    assert client.get_experiment(default).artifact_location == f"mlflow-artifacts:/{default}"


def _made(names):
    """Experiments with creation times one second apart, in the order given."""
    ids = []
    for offset, name in enumerate(names):
        exp = Experiment.objects.create(name=name, creation_time=1_700_000_000_000 + offset * 1000)
        ids.append(exp.experiment_id)
    return ids


def test_search_lists_the_newest_first_and_pages_through_all(mlflow):
    ids = _made(["first", "second", "third"])

    found = mlflow.search_experiments()
    assert [e.experiment_id for e in found if e.experiment_id in ids] == ids[::-1]

    client = mlflow.MlflowClient()
    ours = "creation_time >= 1700000000000 AND creation_time < 1700000003000"
    page = client.search_experiments(max_results=2, filter_string=ours)
    assert [e.name for e in page] == ["third", "second"]
    rest = client.search_experiments(max_results=2, filter_string=ours, page_token=page.token)
    assert [e.name for e in rest] == ["first"] and rest.token is None


def test_search_filters_by_name_pattern_and_tag(mlflow):
    _made(["support bot", "support agent", "billing"])
    client = mlflow.MlflowClient()
    tagged = client.create_experiment("tagged", tags={"team": "qa", "mlflow.note": "a b"})

    def names(filter_string, **kwargs):
        return [e.name for e in mlflow.search_experiments(filter_string=filter_string, **kwargs)]

    assert names("name LIKE 'support%'") == ["support agent", "support bot"]
    assert names("name ILIKE 'SUPPORT b%'") == ["support bot"]
    assert names("name = 'billing'") == ["billing"]
    assert names("tags.team = 'qa'") == ["tagged"]
    assert names("tags.`mlflow.note` LIKE 'a%' AND name != 'x'") == ["tagged"]
    assert names("tags.team = 'ops'") == []
    assert mlflow.get_experiment(tagged).tags["team"] == "qa"


def test_search_orders_as_asked(mlflow):
    _made(["b", "c", "a"])

    def names(order_by):
        found = mlflow.search_experiments(filter_string="name LIKE '_'", order_by=order_by)
        return [e.name for e in found]

    assert names(["name"]) == ["a", "b", "c"]
    assert names(["name DESC"]) == ["c", "b", "a"]
    assert names(["creation_time ASC"]) == ["b", "c", "a"]
    assert names(["experiment_id DESC"]) == ["a", "c", "b"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"filter_string": "bogus = 'x'"},
        {"filter_string": "name ~ 'x'"},
        {"filter_string": "name = 'x' OR name = 'y'"},
        {"order_by": ["tags.team"]},
    ],
)
def test_bad_searches_are_invalid_parameter_values(mlflow, kwargs):
    with pytest.raises(RestException) as caught:
        mlflow.search_experiments(**kwargs)
    assert caught.value.error_code == "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/3.0/mlflow/traces/metrics"),
        ("POST", "/api/3.0/mlflow/traces/calculate-filter-correlation"),
        ("DELETE", "/api/3.0/mlflow/traces/search"),
        ("GET", "/api/2.0/mlflow/metrics/get-history"),
        ("POST", "/api/2.0/mlflow/registered-models/create"),
    ],
)
def test_endpoints_tracemark_lacks_are_not_found(tracemark_url, reviewer_token, method, path):
    response = requests.request(
        method,
        tracemark_url + path,
        json={},
        headers={"Authorization": f"Bearer {reviewer_token}"},
        timeout=10,
    )
    assert response.status_code == 404
    assert response.json()["error_code"] == "ENDPOINT_NOT_FOUND"
