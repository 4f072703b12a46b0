"""The span tree's keys on a queue item keep the answer being given: Next error and Find
open the item again with its answers in place, a key for a question already answered says
how to change it, and the help lists only keys that do something here."""

import re

import pytest
from playwright.sync_api import expect

from annotation import queues
from annotation.models import Assessment, LabelSchema
from tests.e2e.labeling import open_first_item
from tests.factories import make_reviewer, make_span, make_trace

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def item_page(page, live_server, login):
    """Ann on item 1 of a queue asking 'Correct?' and a 1-5 'Rating'; the trace's tool failed."""
    ann = make_reviewer(username="ann")
    correct = LabelSchema.objects.create(
        name="correct", title="Correct?", value_type="boolean", applies_to="trace"
    )
    rating = LabelSchema.objects.create(
        name="rating", title="Rating", value_type="numeric", min_value=1, max_value=5, step=1
    )
    trace = make_trace()
    root = make_span(trace, name="agent", span_type="AGENT")
    make_span(trace, parent=root, name="lookup", span_type="TOOL", status="ERROR")
    queues.create_queue(
        name="Tree keys",
        traces=[trace, make_trace()],
        schemas=[correct, rating],
        annotators=[ann],
    )
    return open_first_item(page, login, live_server, ann)


def test_next_error_and_find_keep_the_answers_not_yet_submitted(item_page):
    page = item_page
    page.keyboard.press("n")
    page.keyboard.press("4")
    page.keyboard.press("Shift+E")
    expect(page).to_have_url(re.compile(r"next_error=1"))
    expect(page.locator("#span-title")).to_contain_text("lookup")
    page.wait_for_load_state()
    expect(page.get_by_role("radio", name="No")).to_be_checked()
    expect(page.get_by_role("radio", name="4")).to_be_checked()
    page.keyboard.press("/")
    page.keyboard.type("agent")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"find=agent"))
    page.wait_for_load_state()
    expect(page.get_by_role("radio", name="No")).to_be_checked()
    expect(page.get_by_role("radio", name="4")).to_be_checked()
    page.keyboard.press("Control+Enter")
    expect(page.get_by_role("heading", name=re.compile("^Item 2"))).to_be_visible()
    assert {a.name: a.value for a in Assessment.objects.all()} == {"correct": False, "rating": 4}
    page.wait_for_load_state()
    expect(page.get_by_role("radio", name="No")).not_to_be_checked()


def test_a_key_for_a_question_already_answered_says_how_to_change_it(item_page):
    page = item_page
    status = page.get_by_role("status")
    page.keyboard.press("y")
    page.keyboard.press("Shift+T")
    page.keyboard.press("n")
    expect(status).to_have_text(re.compile("Already answered: press q"))
    expect(status).to_be_visible()
    expect(page.get_by_role("radio", name="Yes")).to_be_checked()
    page.keyboard.press("q")
    page.keyboard.press("n")
    expect(page.get_by_role("radio", name="No")).to_be_checked()
    expect(status).to_have_text("")


def test_the_help_lists_no_trace_or_edit_keys_on_a_queue_item(item_page):
    page = item_page
    page.keyboard.press("?")
    dialog = page.locator("#shortcut-help[open]")
    dialog.wait_for()
    keys = set(dialog.locator("kbd").all_inner_texts())
    page.keyboard.press("Escape")
    assert {"y", "q", "Shift+t", "Shift+e", "/", "Ctrl+Enter"} <= keys, keys
    assert not {"j", "k", "e"} & keys, keys
