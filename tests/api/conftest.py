"""A real Tracemark HTTP server (gunicorn, in a subprocess) on the test database, driven by the
real mlflow client.

Tests that use the server run in transactions the server can see
(``transaction=True``); the Default experiment and the role groups are recreated on demand
after each flush. The client keeps per-process state (the server version it probed, the tracer
provider and its exporter), which ``mlflow_env`` resets so every test starts clean. Retries are
off and timeouts short, so a wrong 5xx fails a test at once instead of hanging it.
"""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.db import connection

from accounts.tokens import create_token
from tests.factories import make_admin, make_reviewer, make_viewer

BASE_DIR = Path(__file__).resolve().parents[2]
MAX_REQUEST_BYTES = 1_000_000
MAX_SPAN_UPLOAD_BYTES = 8_000_000

server_db = pytest.mark.django_db(transaction=True)


def _database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = quote(db["USER"] or "")
    password = f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else ""
    host = db["HOST"] or "localhost"
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{user}{password}@{host}{port}/{db['NAME']}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def tracemark_url(django_db_setup, django_db_blocker, tmp_path_factory):
    """Start gunicorn against the test database once per session; yield its base URL."""
    port = _free_port()
    log = tmp_path_factory.mktemp("server") / "gunicorn.log"
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "DEBUG": "false",
        "SECRET_KEY": "insecure-test-only-key",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "false",
        "SECURE_COOKIES": "false",
        "STATIC_MANIFEST": "false",
        "MAX_REQUEST_BYTES": str(MAX_REQUEST_BYTES),
        "MAX_SPAN_UPLOAD_BYTES": str(MAX_SPAN_UPLOAD_BYTES),
        # Bad-credential tests must not lock the test client's address out.
        "AUTH_MAX_FAILURES": "100000",
        # Tests change label schemas from their own process: the server asks on every write.
        "SCHEMA_CACHE_SECONDS": "0",
    }
    yield from run_gunicorn(env, port, log, "--workers", "2", "--threads", "4")


def run_gunicorn(env: dict, port: int, log: Path, *options: str):
    """Run gunicorn with ``env`` on ``port``, logging to ``log``; yield its URL once it answers."""
    command = [
        sys.executable, "-m", "gunicorn", "config.wsgi:application",
        "--bind", f"127.0.0.1:{port}", "--log-level", "warning", *options,
    ]  # fmt: skip
    with open(log, "wb") as output:
        server = subprocess.Popen(
            command, cwd=BASE_DIR, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, server, log)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def _wait_until_up(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"Tracemark did not start:\n{log.read_text()}")
        try:
            if requests.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            time.sleep(0.1)
    pytest.fail(f"Tracemark did not answer within 30 s:\n{log.read_text()}")


class FewRoundsPBKDF2Hasher(PBKDF2PasswordHasher):
    """The production algorithm with few rounds: its hashes still verify on the server, which
    reads the round count from the hash, but creating test users takes no time."""

    iterations = 1000


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["tests.api.conftest.FewRoundsPBKDF2Hasher"]


@pytest.fixture
def reviewer(transactional_db):
    return make_reviewer(username="rita")


@pytest.fixture
def reviewer_token(reviewer):
    return create_token(user=reviewer, name="tests")[1]


@pytest.fixture
def admin_token(transactional_db):
    return create_token(user=make_admin(username="ada"), name="tests")[1]


@pytest.fixture
def viewer_token(transactional_db):
    return create_token(user=make_viewer(username="vic"), name="tests")[1]


@pytest.fixture
def mlflow_env(tracemark_url, monkeypatch):
    """Point the mlflow client at the server with no credentials yet; see ``use_token``."""
    import mlflow
    from mlflow.store.tracking.rest_store import RestStore

    for name in ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracemark_url)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
    monkeypatch.setenv("MLFLOW_ASYNC_TRACE_LOGGING_RETRY_TIMEOUT", "5")
    monkeypatch.setenv("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "false")
    mlflow.set_tracking_uri(tracemark_url)
    _reset_client()
    yield mlflow
    mlflow.flush_trace_async_logging()
    RestStore._get_server_version.cache_clear()
    mlflow.tracing.reset()


def _reset_client():
    import mlflow
    from mlflow.store.tracking.rest_store import RestStore

    RestStore._get_server_version.cache_clear()
    mlflow.tracing.reset()


@pytest.fixture
def use_token(mlflow_env, monkeypatch):
    """use_token(token) or use_token(username=..., password=...) sets the client's credentials."""

    def _use(token=None, *, username=None, password=None):
        for name in ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
        if token is not None:
            monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)
        if username is not None:
            monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", username)
            monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)
        _reset_client()
        return mlflow_env

    return _use


@pytest.fixture
def mlflow(use_token, reviewer_token):
    """The mlflow module, signed in with a Reviewer's token."""
    return use_token(reviewer_token)
