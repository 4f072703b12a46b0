"""A server whose database cannot be reached answers 503 with Retry-After, in MLflow's shape."""

import os
import socket

import pytest
import requests

from tests.api.conftest import _free_port, run_gunicorn


@pytest.fixture(scope="module")
def server_without_database(tmp_path_factory):
    closed_port = _free_port()  # nothing listens there: connections are refused at once
    port = _free_port()
    log = tmp_path_factory.mktemp("outage") / "gunicorn.log"
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{closed_port}/tracemark",
        "DEBUG": "false",
        "SECRET_KEY": "insecure-test-only-key",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "STATIC_MANIFEST": "false",
    }
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", closed_port)) != 0
    yield from run_gunicorn(env, port, log, "--workers", "1")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/3.0/mlflow/server-info"),
        ("POST", "/api/3.0/mlflow/traces/search"),
        ("POST", "/v1/traces"),
    ],
)
def test_api_calls_get_503_with_retry_after_while_the_database_is_down(
    server_without_database, method, path
):
    response = requests.request(
        method,
        server_without_database + path,
        json={"experiment_ids": ["1"]},
        headers={"Authorization": "Bearer tmk_whatever"},
        timeout=10,
    )

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
