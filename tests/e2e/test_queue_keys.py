"""Keys on a queue item never save by accident: only Ctrl+Enter submits the answer, Enter
follows the focused link or presses the focused button, and Skip keeps its reason."""

import re

import pytest
from playwright.sync_api import expect

from annotation import queues
from annotation.models import Assessment, LabelSchema, QueueAssignment
from tests.e2e.labeling import open_first_item
from tests.factories import make_reviewer, make_trace

pytestmark = pytest.mark.django_db(transaction=True)
Status = QueueAssignment.Status


@pytest.fixture
def item_page(page, live_server, login):
    """Ann on item 1 of a queue asking a required 'Correct?' and an optional note."""
    ann = make_reviewer(username="ann")
    correct = LabelSchema.objects.create(
        name="correct", title="Correct?", value_type="boolean", applies_to="trace"
    )
    note = LabelSchema.objects.create(name="note", value_type="text", applies_to="trace")
    queues.create_queue(
        name="Keys",
        traces=[make_trace(), make_trace()],
        schemas=[correct, note],
        required_schemas=[correct],
        annotators=[ann],
    )
    return open_first_item(page, login, live_server, ann)


def turn_at(position):
    return QueueAssignment.objects.get(item__position=position)


def test_enter_on_a_link_follows_it_and_saves_nothing(item_page, live_server):
    item_page.get_by_role("radio", name="Yes").check()
    item_page.keyboard.press("Enter")  # on the checked radio: no implicit submission
    expect(item_page.get_by_role("heading", name=re.compile("^Item 1"))).to_be_visible()
    item_page.locator(".crumbs").get_by_role("link", name="Queues").focus()
    item_page.keyboard.press("Enter")
    expect(item_page).to_have_url(f"{live_server.url}/queues/")
    assert turn_at(1).status == Status.ASSIGNED
    assert not Assessment.objects.exists()


def test_enter_on_skip_skips_and_keeps_the_reason(item_page):
    item_page.get_by_role("radio", name="Yes").check()
    item_page.get_by_label("Why skip?").fill("Not in English")
    item_page.get_by_role("button", name="Skip", exact=True).focus()
    item_page.keyboard.press("Enter")
    expect(item_page.get_by_role("heading", name=re.compile("^Item 2"))).to_be_visible()
    skipped = turn_at(1)
    assert (skipped.status, skipped.skip_reason) == (Status.SKIPPED, "Not in English")
    assert not Assessment.objects.exists()


def test_ctrl_enter_in_the_skip_reason_skips(item_page):
    item_page.get_by_label("Why skip?").fill("Trace is broken")
    item_page.keyboard.press("Control+Enter")
    expect(item_page.get_by_role("heading", name=re.compile("^Item 2"))).to_be_visible()
    assert turn_at(1).skip_reason == "Trace is broken"


def test_ctrl_enter_on_an_empty_form_says_so_and_changes_nothing(item_page):
    item_page.keyboard.press("Control+Enter")
    expect(item_page.get_by_role("alert")).to_have_text(re.compile("Nothing was answered"))
    expect(item_page.get_by_role("heading", name=re.compile("^Item 1"))).to_be_visible()
    assert turn_at(1).status == Status.ASSIGNED
    assert not Assessment.objects.exists()
    # Answering the required question then submits from the keyboard.
    item_page.wait_for_load_state()
    item_page.get_by_role("radio", name="No").check()
    item_page.keyboard.press("Control+Enter")
    expect(item_page.get_by_role("heading", name=re.compile("^Item 2"))).to_be_visible()
    assert turn_at(1).status == Status.DONE
    assert Assessment.objects.get().value is False


def test_a_refused_submit_focuses_the_question_still_unanswered(page, live_server, login):
    ann = make_reviewer(username="ann")
    tone = LabelSchema.objects.create(name="tone", title="Tone ok?", value_type="boolean")
    correct = LabelSchema.objects.create(name="correct", title="Correct?", value_type="boolean")
    queues.create_queue(
        name="Missing",
        traces=[make_trace()],
        schemas=[tone, correct],
        required_schemas=[tone, correct],
        annotators=[ann],
    )
    open_first_item(page, login, live_server, ann)
    first, second = page.locator("fieldset[data-question]").all()
    expect(first).to_be_focused()
    page.keyboard.press("y")
    page.keyboard.press("Control+Enter")
    expect(page.get_by_role("alert")).to_contain_text("Nothing was saved: answer")
    page.wait_for_load_state()
    expect(second).to_be_focused()
    expect(first.get_by_role("radio", name="Yes")).to_be_checked()
    assert not Assessment.objects.exists()


def test_each_key_answers_and_moves_on_to_the_next_question_still_open(page, live_server, login):
    ann = make_reviewer(username="ann")
    schemas = [
        LabelSchema.objects.create(name="resolved", title="Resolved?", value_type="boolean"),
        LabelSchema.objects.create(name="helpful", title="Helpful?", value_type="boolean"),
        LabelSchema.objects.create(
            name="issue", title="Main issue", value_type="categorical", options=["none", "tone"]
        ),
        LabelSchema.objects.create(
            name="quality", value_type="numeric", min_value=1, max_value=5, step=1
        ),
    ]
    queues.create_queue(name="Four", traces=[make_trace()], schemas=schemas, annotators=[ann])
    open_first_item(page, login, live_server, ann)

    def question(title):
        return page.locator("#label-form [data-question]", has_text=title)

    # The questions come in name order: Helpful?, Main issue, quality, Resolved?.
    expect(question("Helpful?")).to_be_focused()
    for key, then_focused in (
        ("n", "Main issue"),
        ("y", "Main issue"),  # y answers the yes/no still open, Resolved?, and comes back
        ("b", "quality"),
        ("4", "quality"),  # nothing left open: it stays
    ):
        page.keyboard.press(key)
        expect(question(then_focused)).to_be_focused()
    page.keyboard.press("Control+Enter")
    expect(page.locator("#messages")).to_be_focused()
    expect(page.locator("#messages")).to_have_text("Nothing left for you in this queue. Thank you!")
    answers = {a.name: a.value for a in Assessment.objects.all()}
    assert answers == {"helpful": False, "resolved": True, "issue": "tone", "quality": 4}
    expect(page.get_by_test_id("nothing-left")).to_be_visible()
    expect(page.get_by_role("button", name="Label next item")).to_have_count(0)
