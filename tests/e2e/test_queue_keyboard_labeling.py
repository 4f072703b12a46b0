"""Labeling a queue with the keyboard only: the review page's keys, the trace view beside."""

import re

import pytest
from playwright.sync_api import expect

from annotation import queues
from annotation.models import Assessment, LabelSchema
from tests.e2e.test_review_keys import Keys
from tests.factories import make_admin, make_reviewer, make_span, make_trace

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def queue(db):
    schemas = [
        LabelSchema.objects.create(name="correct", title="Correct", value_type="boolean"),
        LabelSchema.objects.create(
            name="rating", title="Rating", value_type="numeric", min_value=1, max_value=5, step=1
        ),
        LabelSchema.objects.create(
            name="issue",
            title="Main issue",
            value_type="categorical",
            options=["none", "tool error", "off topic"],
        ),
    ]
    traces = []
    for n in range(3):
        trace = make_trace(request_time=1_000 + n, state="ERROR" if n == 1 else "OK")
        root = make_span(trace, name="agent", span_type="AGENT")
        make_span(
            trace,
            parent=root,
            name=f"tool_{n}",
            span_type="TOOL",
            status="ERROR" if n == 1 else "OK",
            status_message="TimeoutError: no answer" if n == 1 else "",
        )
        traces.append(trace)
    return queues.create_queue(
        name="Keyboard",
        traces=traces,
        schemas=schemas,
        annotators=[make_reviewer(username="rita")],
        created_by=make_admin(),
    )


def test_a_queue_is_labeled_with_at_most_two_keys_per_label(page, live_server, login, queue):
    rita = queue.annotators.get()
    login(page, rita)
    page.goto(f"{live_server.url}/queues/")
    page.get_by_role("button", name="Label").click()
    per_label = {"correct": [], "rating": [], "issue": []}
    for n in range(3):
        expect(page.get_by_role("heading", name=re.compile(f"^Item {n + 1}"))).to_be_visible()
        page.wait_for_load_state()
        # The first question has focus on load; the trace's own span tree is on the page.
        expect(page.locator("fieldset[data-question]").first).to_be_focused()
        expect(page.get_by_role("tree")).to_contain_text(f"tool_{n}")
        if n == 1:
            # An Error trace opens at its first failing span, with the error on screen.
            expect(page.locator("#span-panel .error-box")).to_be_in_viewport()
        for name, key in (("correct", "n" if n == 1 else "y"), ("rating", "4"), ("issue", "b")):
            keys = Keys(page)
            keys.press(key)
            per_label[name].append(keys.count)
        expect(page.get_by_label("tool error")).to_be_checked()
        page.keyboard.press("Control+Enter")
    expect(page.get_by_text("Nothing left for you in this queue")).to_be_visible()
    values = sorted(
        (a.trace.request_time, a.name, a.value) for a in Assessment.objects.select_related("trace")
    )
    assert [v for v in values if v[1] == "correct"] == [
        (1_000, "correct", True),
        (1_001, "correct", False),
        (1_002, "correct", True),
    ]
    assert {v[2] for v in values if v[1] == "rating"} == {4}
    assert {v[2] for v in values if v[1] == "issue"} == {"tool error"}
    # One key per label, plus one Ctrl+Enter per item shared by its three labels.
    assert all(count + 1 / 3 <= 2 for counts in per_label.values() for count in counts)


def test_a_span_chosen_in_a_queue_item_shows_its_detail_on_screen(page, live_server, login, queue):
    rita = queue.annotators.get()
    queues.next_assignment(queue=queue, user=rita)
    login(page, rita)
    page.set_viewport_size({"width": 640, "height": 400})
    page.goto(f"{live_server.url}/queues/{queue.pk}/items/1/")
    item = page.get_by_role("treeitem", name=re.compile("tool_0"))
    item.locator(".node-link").click()
    expect(page.locator("#span-title")).to_contain_text("tool_0")
    expect(page.locator("#span-title")).to_be_focused()
    expect(page.locator("#span-title")).to_be_in_viewport()
    assert "/queues/" in page.url
