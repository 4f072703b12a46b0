"""The Runs pages in a browser: one run, two side by side, and a run's traces on the trace
list leading to the review page that names the run."""

import re

import pytest
from playwright.sync_api import expect

from tests.factories import make_experiment, make_span, make_trace, make_viewer
from traces import runs

pytestmark = pytest.mark.django_db(transaction=True)


def _run(experiment, name, metrics, params, start_time):
    run = runs.create_run(
        experiment=experiment, name=name, user_id="ci", start_time=start_time, tags={}
    )
    entries = [{"key": k, "value": v, "timestamp": 1, "step": 0} for k, v in metrics.items()]
    return runs.log_batch(run=run, metrics=entries, params=params, tags={})


def test_runs_side_by_side_and_a_runs_traces_lead_to_its_review_page(page, live_server, login):
    experiment = make_experiment(name="evals")
    old = _run(experiment, "baseline", {"exact/mean": 0.5}, {"model": "small"}, 1_700_000_000_000)
    new = _run(experiment, "candidate", {"exact/mean": 0.75}, {"model": "large"}, 1_700_000_100_000)
    judged = make_trace(experiment, trace_metadata={"mlflow.sourceRun": new.run_id})
    make_span(judged, inputs={"question": "from the run"})
    make_trace(experiment)

    login(page, make_viewer())
    page.goto(f"{live_server.url}/experiments/{experiment.pk}/runs/")
    expect(page.get_by_role("cell", name="0.75")).to_be_visible()
    page.get_by_role("link", name="candidate").click()
    expect(page.get_by_role("heading", name=re.compile("Run candidate"))).to_be_visible()
    expect(page.get_by_text("large")).to_be_visible()

    page.go_back()
    page.get_by_label("Compare baseline").check()
    page.get_by_label("Compare candidate").check()
    page.get_by_role("button", name="Compare the two ticked runs").click()
    compare = page.locator("table.run-compare")
    model_row = compare.get_by_role("row", name=re.compile("model"))
    expect(model_row).to_contain_text("small")
    expect(model_row).to_contain_text("large")
    assert old.run_id in page.url and new.run_id in page.url

    listed = page.locator("table.runs").get_by_role("row", name=re.compile("candidate"))
    listed.get_by_role("link", name="Traces").click()
    rows = page.locator(f'a[href^="{judged.get_absolute_url()}"]')
    expect(rows.first).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("1 trace.")
    rows.first.click()
    expect(page.get_by_role("link", name="candidate")).to_be_visible()
