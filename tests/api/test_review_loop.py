"""docs/examples/review_loop.py against a live server: evaluate, schemas, a queue of the
evaluation's traces, labels (in the browser's queue pages, or through the API with the
reviewer's token), and a dataset of the completed items with their expectations."""

import importlib.util
import json
import os
import subprocess
import sys

from django.test import Client
from django.urls import reverse

from annotation.models import Assessment, EvaluationDataset, Queue
from tests.api.conftest import BASE_DIR, server_db
from traces.models import Run, Trace

pytestmark = server_db

SCRIPT = BASE_DIR / "docs" / "examples" / "review_loop.py"


def _script():
    spec = importlib.util.spec_from_file_location("review_loop", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _label_in_browser(queue: Queue, reviewer, questions: dict) -> None:
    correct, ideal = (queue.schemas.get(name=name) for name in ("correct", "ideal_answer"))
    browser = Client()
    browser.force_login(reviewer)
    for position in range(1, queue.items.count() + 1):
        response = browser.post(reverse("annotation:queue-next", args=[queue.pk]))
        assert response.url == reverse("annotation:queue-item", args=[queue.pk, position])
        item = queue.items.get(position=position)
        question = item.trace.spans.get(parent_span_id__isnull=True).inputs["question"]
        response = browser.post(
            response.url,
            {f"s{correct.pk}-value": "true", f"s{ideal.pk}-value": questions[question]},
        )
        assert response.status_code == 302


def test_the_loop_with_labels_from_the_browser(use_token, admin_token, reviewer):
    use_token(admin_token)
    loop = _script()
    started = loop.start("review-loop", "rita")
    run = Run.objects.get(run_id=started["run_id"])
    assert run.tags["mlflow.runType"] == "genai_evaluate"
    assert started["metrics"] == {"mentions_expected/mean": 1 / 3}
    assert len(started["traces"]) == started["items"] == 3
    queue = Queue.objects.get(queue_id=started["queue_id"])
    assert sorted(queue.schemas.values_list("name", flat=True)) == ["correct", "ideal_answer"]
    assert sorted(queue.items.values_list("trace__trace_id", flat=True)) == started["traces"]

    _label_in_browser(queue, reviewer, loop.QUESTIONS)
    answers = Assessment.objects.filter(trace__trace_id__in=started["traces"], source_id="rita")
    assert answers.filter(name="ideal_answer").count() == 3

    finished = loop.finish(started["queue_id"], "reviewed", started["experiment_id"])
    assert finished["completed"] == started["traces"]
    dataset = EvaluationDataset.objects.get(dataset_id=finished["dataset_id"])
    assert dataset.records.count() == 3
    by_question = {r["inputs"]["question"]: r for r in finished["records"]}
    assert set(by_question) == set(loop.QUESTIONS)
    for question, record in by_question.items():
        assert record["expectations"]["ideal_answer"] == loop.QUESTIONS[question]
        assert record["source"]["source_data"]["trace_id"] in started["traces"]
    assert "Jupiter" in finished["table"]


def test_the_script_runs_the_whole_loop_with_a_reviewer_token(
    tracemark_url, admin_token, reviewer_token
):
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": tracemark_url,
        "MLFLOW_TRACKING_TOKEN": admin_token,
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "MLFLOW_ENABLE_ASYNC_TRACE_LOGGING": "false",
    }
    command = [sys.executable, str(SCRIPT), "all", "--reviewer-token", reviewer_token, "--json"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    steps = {}
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            step = json.loads(line)
            steps[step.pop("step")] = step
    assert list(steps) == ["start", "label", "finish"]
    traces = steps["start"]["traces"]
    assert steps["label"]["labelled"] == steps["finish"]["completed"] == traces
    labels = Assessment.objects.filter(trace__trace_id__in=traces, source_id="rita")
    assert sorted(labels.filter(name="correct").values_list("value", flat=True)) == [
        False, False, True,
    ]  # fmt: skip
    records = steps["finish"]["records"]
    assert sorted(r["expectations"]["ideal_answer"] for r in records) == ["4", "Jupiter", "Paris"]
    assert Trace.objects.filter(trace_id__in=traces).count() == 3
