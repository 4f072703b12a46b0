"""A queue of whole sessions end to end: an Admin builds it from the trace list's sessions,
two reviewers read each conversation and answer with the keyboard, the Admin sees agreement,
decides the disagreement, and the export names each answer's session."""

import json
import re

import pytest
from playwright.sync_api import expect

from annotation.models import Assessment, LabelSchema
from tests.factories import make_admin, make_reviewer, make_trace

pytestmark = pytest.mark.django_db(transaction=True)


def label_by_keys(browser, login, live_server, user, keys):
    """Answer each conversation the person is given with one key, then Ctrl+Enter."""
    context = browser.new_context()
    page = context.new_page()
    login(page, user)
    page.goto(f"{live_server.url}/queues/")
    page.get_by_role("button", name="Label").click()
    for n, key in enumerate(keys):
        expect(page.get_by_role("heading", name=re.compile(f"^Item {n + 1}"))).to_be_visible()
        conversation = page.get_by_test_id("conversation")
        expect(conversation.get_by_test_id("turn")).to_have_count(2)
        expect(conversation.get_by_role("link", name="Turn 2")).to_be_visible()
        expect(conversation).to_contain_text("<b>second</b> question")
        page.wait_for_load_state()  # the key handlers run at the end of the page
        page.keyboard.press(key)
        expect(page.get_by_role("radio", name="Yes" if key == "y" else "No")).to_be_checked()
        page.keyboard.press("Control+Enter")
    expect(page.get_by_text("Nothing left for you in this queue")).to_be_visible()
    context.close()


def test_a_session_queue_from_the_trace_list_to_the_export(page, browser, live_server, login):
    admin = make_admin(username="ada")
    ann, bob = make_reviewer(username="ann"), make_reviewer(username="bob")
    LabelSchema.objects.create(
        name="resolved", title="Resolved?", value_type="boolean", applies_to="trace"
    )
    last_turns = {}
    for n in range(3):
        session = f"chat-{n}"
        make_trace(user="alice", session=session, request_time=1000 * n + 1)
        last_turns[session] = make_trace(
            user="alice",
            session=session,
            request_time=1000 * n + 2,
            request_preview=json.dumps({"question": "My <b>second</b> question"}),
        )
    make_trace(user="bob", session="chat-bob")

    login(page, admin)
    page.goto(f"{live_server.url}/?user=alice")
    page.get_by_role("link", name="Queue these traces' sessions").click()
    expect(page.get_by_label("One item per session")).to_be_checked()
    page.get_by_label("Name", exact=True).fill("Conversations")
    page.locator("#id_schemas").get_by_label("resolved").check()
    page.get_by_label("ann", exact=True).check()
    page.get_by_label("bob", exact=True).check()
    page.get_by_label("Overlap", exact=True).fill("2")
    page.get_by_role("button", name="Create queue").click()
    expect(page.get_by_text("Queue 'Conversations' created with 3 items.")).to_be_visible()
    expect(page.get_by_test_id("labels-done")).to_have_text("0 / 6")
    queue_url = page.url

    page.get_by_label(re.compile("Add sessions")).fill("chat-0")
    page.get_by_role("button", name="Add sessions").click()
    expect(page.get_by_text("Added 0 session item(s) (1 already in the queue).")).to_be_visible()

    label_by_keys(browser, login, live_server, ann, ["y", "y", "n"])
    label_by_keys(browser, login, live_server, bob, ["y", "n", "n"])
    page.goto(queue_url)
    expect(page.get_by_test_id("labels-done")).to_have_text("6 / 6")
    # Units (yes, yes), (yes, no), (no, no): nominal alpha 4/9.
    expect(page.get_by_test_id("alpha")).to_have_text("0.444")

    page.get_by_role("link", name=re.compile("Disagreements: 1")).click()
    page.get_by_role("link", name="Decide").click()
    page.get_by_role("radio", name="Yes", exact=True).check()
    page.get_by_role("button", name="Record decision").click()
    expect(page.get_by_text("Decision recorded for item 2.")).to_be_visible()

    # Items follow the trace list's order, newest first: item 2 is chat-1.
    page.goto(f"{live_server.url}/sessions/chat-1/")
    about = page.get_by_test_id("about-session")
    expect(about.get_by_role("row")).to_have_count(4)  # header, two answers, the decision
    expect(about.get_by_text("overridden")).to_be_visible()

    queue_id = re.search(r"/queues/(\d+)/", queue_url)[1]
    export = page.request.get(f"{live_server.url}/export/download/?queue={queue_id}&format=jsonl")
    rows = [json.loads(line) for line in export.text().splitlines()]
    assert len(rows) == 6  # the answer the decision overrode is left out by default
    assert {(row["trace_id"], row["session_id"]) for row in rows} == {
        (trace.trace_id, session) for session, trace in last_turns.items()
    }
    assert Assessment.objects.filter(trace__in=last_turns.values()).count() == 7
