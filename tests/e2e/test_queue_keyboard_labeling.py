"""Labeling a queue with the keyboard only: the review page's keys, the trace view beside."""

import re

import pytest
from playwright.sync_api import expect

from annotation import queues
from annotation.models import Assessment, LabelSchema
from tests.e2e.test_review_keys import Keys
from tests.factories import make_admin, make_reviewer, make_span, make_trace

pytestmark = pytest.mark.django_db(transaction=True)

ITEMS = 10
# From the first question: back into the span tree, to its root, down to the tool, select.
SELECT_TOOL_SPAN = ("Shift+Tab", "Home", "ArrowDown", "Enter")


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
    for n in range(ITEMS):
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


def test_ten_items_are_labeled_from_the_keyboard_with_a_span_looked_at_on_each(
    page, live_server, login, queue
):
    rita = queue.annotators.get()
    login(page, rita)
    page.goto(f"{live_server.url}/queues/")
    page.get_by_role("button", name="Label").click()
    per_label = {"correct": [], "rating": [], "issue": []}
    for n in range(ITEMS):
        expect(page.get_by_role("heading", name=re.compile(f"^Item {n + 1}"))).to_be_visible()
        page.wait_for_load_state()
        # The first question has focus on load; the trace's own span tree is on the page.
        expect(page.locator("fieldset[data-question]").first).to_be_focused()
        expect(page.get_by_role("tree")).to_contain_text(f"tool_{n}")
        if n == 1:
            # An Error trace opens at its first failing span, with the error on screen.
            expect(page.locator("#span-panel .error-box")).to_be_in_viewport()
        for key in SELECT_TOOL_SPAN:
            page.keyboard.press(key)
        expect(page.locator("#span-title")).to_contain_text(f"tool_{n}")
        expect(page.locator("#span-title")).to_be_in_viewport()
        expect(page.get_by_role("treeitem", name=re.compile(f"tool_{n}"))).to_be_focused()
        # Back to the questions, and the answers.
        page.keyboard.press("q")
        expect(page.locator("fieldset[data-question]").first).to_be_focused()
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
        (1_000 + n, "correct", n != 1) for n in range(ITEMS)
    ]
    assert [v[2] for v in values if v[1] == "rating"] == [4] * ITEMS
    assert [v[2] for v in values if v[1] == "issue"] == ["tool error"] * ITEMS
    # One key per label, plus one Ctrl+Enter per item shared by its three labels.
    assert per_label == {name: [1] * ITEMS for name in per_label}


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


def focused_question(page):
    return page.locator("fieldset[data-question]:focus-within, fieldset[data-question]:focus")


def test_on_a_short_screen_the_focused_question_is_scrolled_into_view(
    page, live_server, login, queue
):
    rita = queue.annotators.get()
    login(page, rita)
    page.set_viewport_size({"width": 640, "height": 400})
    page.goto(f"{live_server.url}/queues/")
    page.get_by_role("button", name="Label").click()
    page.wait_for_load_state()
    # The top bar packs into two short rows, leaving most of the screen to the item.
    assert page.locator("header.topbar").bounding_box()["height"] <= 80
    questions = page.locator("fieldset[data-question]")
    expect(questions.first).to_be_focused()
    expect(questions.first).to_be_in_viewport(ratio=1)
    page.keyboard.press("q")
    expect(questions.nth(1)).to_be_focused()
    expect(questions.nth(1)).to_be_in_viewport(ratio=1)
    page.keyboard.press("Shift+Q")
    expect(questions.first).to_be_focused()
    page.evaluate("window.scrollTo(0, 0)")  # scrolled away, the next key brings its question back
    page.keyboard.press("n")
    expect(page.get_by_role("radio", name="No", exact=True)).to_be_checked()
    expect(focused_question(page)).to_be_in_viewport(ratio=1)
