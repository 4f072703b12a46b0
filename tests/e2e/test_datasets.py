"""Evaluation datasets in a browser: traces added from the trace list's filter, from a
queue and from a judge's disagreements, the dataset page's source links and its exports."""

import json
import re

import pytest
from playwright.sync_api import expect

from annotation import queues, services
from annotation.models import EvaluationDataset, LabelSchema, SourceType
from tests.factories import make_admin, make_experiment, make_reviewer, make_span, make_trace

pytestmark = pytest.mark.django_db(transaction=True)


def _traces(experiment, count):
    traces = [make_trace(experiment, user=f"u{n}") for n in range(count)]
    for n, trace in enumerate(traces):
        make_span(trace, inputs={"question": f"q{n}"}, outputs={"answer": f"a{n}"})
    return traces


def test_a_filtered_trace_list_becomes_a_dataset_that_links_its_traces_and_downloads(
    page, live_server, login
):
    rita = make_reviewer(username="rita")
    first, _second = _traces(make_experiment(name="support"), 2)
    services.log_expectation(trace=first, name="ideal", value="A0", actor=rita)

    login(page, rita)
    page.goto(f"{live_server.url}/?user=u0")
    page.get_by_role("link", name="Add these traces to a dataset").click()
    expect(page.get_by_text("user=u0")).to_be_visible()
    page.get_by_label("New dataset's name").fill("gold answers")
    page.get_by_role("button", name="Add to dataset").click()

    expect(page.get_by_text("1 records added, 0 merged.")).to_be_visible()
    expect(page.get_by_text('{"ideal": "A0"}')).to_be_visible()
    page.locator(f'a[href^="{first.get_absolute_url()}"]').first.click()
    expect(page).to_have_url(re.compile(re.escape(first.get_absolute_url())))

    page.go_back()
    with page.expect_download() as caught:
        page.get_by_role("link", name=re.compile("JSON Lines")).click()
    [row] = [json.loads(line) for line in caught.value.path().read_text().splitlines()]
    assert (row["inputs"], row["expectations"]) == ({"question": "q0"}, {"ideal": "A0"})
    assert row["source_id"] == first.trace_id
    with page.expect_download() as caught:
        page.get_by_role("link", name=re.compile("CSV")).click()
    assert caught.value.suggested_filename.endswith(".csv")
    assert "q0" in caught.value.path().read_text()


def test_a_queues_traces_merge_into_a_chosen_dataset(page, live_server, login):
    admin = make_admin(username="ada")
    traces = _traces(make_experiment(name="support"), 3)
    schema = LabelSchema.objects.create(name="ok", value_type="boolean", applies_to="trace")
    queue = queues.create_queue(name="triage", traces=traces, schemas=[schema], annotators=[admin])
    chosen = EvaluationDataset.objects.create(name="regressions")

    login(page, admin)
    page.goto(f"{live_server.url}/queues/{queue.pk}/")
    page.get_by_role("link", name="Add this queue's traces to a dataset").click()
    page.get_by_role("combobox", name="Dataset").select_option(label="regressions")
    page.get_by_label("Every item").check()
    page.get_by_role("button", name="Add to dataset").click()
    expect(page.get_by_text("3 records added, 0 merged.")).to_be_visible()

    page.goto(f"{live_server.url}/queues/{queue.pk}/")
    page.get_by_role("link", name="Add this queue's traces to a dataset").click()
    page.get_by_role("combobox", name="Dataset").select_option(label="regressions")
    page.get_by_label("Every item").check()
    page.get_by_role("button", name="Add to dataset").click()
    expect(page.get_by_text("0 records added, 3 merged.")).to_be_visible()
    assert chosen.records.count() == 3


def test_a_judges_disagreements_become_records_with_the_gold_value(page, live_server, login):
    admin = make_admin(username="ada")
    people = [make_reviewer(username="ann"), make_reviewer(username="bob")]
    experiment = make_experiment(name="support")
    traces = _traces(experiment, 2)
    for trace, gold in zip(traces, (False, True), strict=True):
        services.log_feedback(
            trace=trace, name="correct", value=True,
            source_type=SourceType.LLM_JUDGE, source_id="judge-a",
        )  # fmt: skip
        for person in people:
            services.log_feedback(trace=trace, name="correct", value=gold, actor=person)

    login(page, admin)
    page.goto(f"{live_server.url}/experiments/{experiment.pk}/judges/")
    page.get_by_role("link", name="correct").click()
    expect(page.get_by_role("heading", name="Disagreeing items (1)")).to_be_visible()
    page.get_by_label("New dataset's name").fill("judge misses")
    page.get_by_role("button", name="Add to dataset").click()

    expect(page.get_by_role("heading", name=re.compile("judge misses"))).to_be_visible()
    expect(page.get_by_text("1 records added, 0 merged.")).to_be_visible()
    expect(page.get_by_text('{"correct": false}')).to_be_visible()
    expect(page.get_by_text('{"question": "q0"}')).to_be_visible()
    expect(page.locator(f'a[href^="{traces[0].get_absolute_url()}"]').first).to_be_visible()
