"""Trace attachments: files the mlflow client logs in span inputs and outputs, uploaded next to
the trace and read back by reference."""

import uuid

import pytest
import requests

from tests.api.conftest import server_db
from traces.models import Span, TraceAttachment

pytestmark = server_db

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


@pytest.mark.parametrize("async_logging", [False, True], ids=["sync", "async"])
def test_an_attachment_logged_in_a_span_is_stored_and_served(mlflow, monkeypatch, async_logging):
    from mlflow.tracing.attachments import Attachment
    from mlflow.tracing.client import TracingClient

    monkeypatch.setenv("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", str(async_logging).lower())
    mlflow.set_experiment("attachments")
    with mlflow.start_span(name="describe_image") as span:
        span.set_inputs({"image": Attachment(content_type="image/png", content_bytes=PNG)})
        span.set_outputs("a test pattern")
    mlflow.flush_trace_async_logging()
    trace_id = mlflow.get_last_active_trace_id()

    ref = Span.objects.get(trace__trace_id=trace_id).inputs["image"]
    parsed = Attachment.parse_ref(ref)
    stored = TraceAttachment.objects.get(trace__trace_id=trace_id)
    assert (stored.attachment_id, bytes(stored.content), stored.size) == (
        parsed["attachment_id"], PNG, len(PNG)
    )  # fmt: skip
    trace = mlflow.get_trace(trace_id)
    repo = TracingClient()._get_artifact_repo_for_trace(trace.info)
    assert repo.download_trace_attachment(parsed["attachment_id"]) == PNG


def test_attachment_uploads_are_checked(mlflow, tracemark_url, reviewer_token, viewer_token):
    mlflow.set_experiment("attachment checks")
    with mlflow.start_span(name="root"):
        pass
    trace_id = mlflow.get_last_active_trace_id()
    experiment_id = mlflow.get_trace(trace_id).info.experiment_id
    base = f"{tracemark_url}/api/2.0/mlflow-artifacts/artifacts/{experiment_id}/traces"
    good = str(uuid.uuid4())

    def put(path, token=reviewer_token, body=b"data"):
        headers = {"Authorization": f"Bearer {token}"}
        return requests.put(f"{base}/{path}", data=body, headers=headers, timeout=10)

    cases = [
        (put(f"{trace_id}/artifacts/attachments/not-a-uuid"), 400),
        (put(f"{trace_id}/artifacts/attachments/{good.upper()}"), 400),
        (put(f"tr-{'0' * 32}/artifacts/attachments/{good}"), 404),
        (put(f"{trace_id}/artifacts/attachments/{good}", token=viewer_token), 403),
    ]
    for response, status in cases:
        assert response.status_code == status, response.text
        assert "error_code" in response.json()
    assert not TraceAttachment.objects.exists()
    assert put(f"{trace_id}/artifacts/attachments/{good}").status_code == 200
    got = requests.get(
        f"{base}/{trace_id}/artifacts/attachments/{good}",
        headers={"Authorization": f"Bearer {viewer_token}"},
        timeout=10,
    )
    assert (got.status_code, got.content) == (200, b"data")
    assert got.headers["Content-Disposition"].startswith("attachment")
    missing = requests.get(
        f"{base}/{trace_id}/artifacts/attachments/{uuid.uuid4()}",
        headers={"Authorization": f"Bearer {viewer_token}"},
        timeout=10,
    )
    assert missing.status_code == 404


def test_the_review_page_links_the_span_attachments_for_download(mlflow, reviewer, client):
    from mlflow.tracing.attachments import Attachment

    mlflow.set_experiment("attachment page")
    with mlflow.start_span(name="describe_image") as span:
        span.set_inputs({"images": [Attachment(content_type="image/png", content_bytes=PNG)]})
    trace_id = mlflow.get_last_active_trace_id()
    stored = TraceAttachment.objects.get(trace__trace_id=trace_id)
    span_id = Span.objects.get(trace__trace_id=trace_id).span_id
    url = f"/traces/{trace_id}/attachments/{stored.attachment_id}/"

    assert client.get(url).status_code == 302
    client.force_login(reviewer)
    page = client.get(f"/traces/{trace_id}/?span={span_id}").content.decode()
    download = client.get(url)

    assert f'<a href="{url}" download>image/png, 1.0\xa0KB</a>' in page
    assert (download.status_code, download.content) == (200, PNG)
    assert download["Content-Disposition"] == f'attachment; filename="{stored.attachment_id}"'
    assert client.get(f"/traces/{trace_id}/attachments/{uuid.uuid4()}/").status_code == 404
