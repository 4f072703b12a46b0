"""A queue asking a question of every RETRIEVER span, end to end: an Admin sets it up on the
new-queue page, two reviewers answer each span from the keyboard, the Admin sees agreement,
decides the span they disagree on, and exports rows that name the spans."""

import csv
import io
import re

import pytest
from playwright.sync_api import expect

from annotation.models import LabelSchema
from tests.factories import make_admin, make_reviewer, make_span, make_trace

pytestmark = pytest.mark.django_db(transaction=True)


def label_spans_with_keys(browser, login, live_server, user, keys):
    """Answer the item's span questions in order, a key each: each answer moves on."""
    context = browser.new_context()
    page = context.new_page()
    login(page, user)
    page.goto(f"{live_server.url}/queues/")
    page.get_by_role("button", name="Label").click()
    expect(page.get_by_role("heading", name=re.compile("^Item 1"))).to_be_visible()
    expect(page.get_by_test_id("span-question")).to_have_count(len(keys))
    page.wait_for_load_state()  # the key handlers run at the end of the page
    for n, key in enumerate(keys):
        page.keyboard.press(key)
        question = page.get_by_test_id("span-question").nth(n)
        expect(
            question.get_by_role("radio", name=re.compile("Yes" if key == "y" else "No"))
        ).to_be_checked()
    page.keyboard.press("Control+Enter")
    expect(page.get_by_text("Nothing left for you in this queue")).to_be_visible()
    context.close()


def test_a_span_question_queue_is_labeled_by_keys_decided_and_exported(
    page, browser, live_server, login
):
    admin = make_admin(username="ada")
    ann, bob = make_reviewer(username="ann"), make_reviewer(username="bob")
    LabelSchema.objects.create(
        name="relevant", title="Relevant?", value_type="boolean", applies_to="span"
    )
    trace = make_trace()
    root = make_span(trace, name="agent", span_type="AGENT")
    retrievers = [
        make_span(
            trace,
            parent=root,
            name=name,
            span_type="RETRIEVER",
            outputs=[{"page_content": text}],
        )
        for name, text in [("find_policy", "Returns within 30 days"), ("find_faq", "Opening hours")]
    ]

    login(page, admin)
    page.goto(f"{live_server.url}/queues/new/")
    page.get_by_label("Name", exact=True).fill("Retrieval relevance")
    page.get_by_label("These trace ids").check()
    page.get_by_label("Trace ids", exact=True).fill(trace.trace_id)
    page.locator("#id_spanq-0-schema").select_option(label="Relevant?")
    page.locator("#id_spanq-0-span_type").fill("RETRIEVER")
    page.get_by_label("ann", exact=True).check()
    page.get_by_label("bob", exact=True).check()
    page.get_by_label("Overlap", exact=True).fill("2")
    page.get_by_role("button", name="Create queue").click()
    expect(page.get_by_role("heading", name="Retrieval relevance")).to_be_visible()
    queue_url = page.url

    label_spans_with_keys(browser, login, live_server, ann, ["y", "y"])
    label_spans_with_keys(browser, login, live_server, bob, ["y", "n"])
    page.goto(queue_url)
    expect(page.get_by_test_id("labels-done")).to_have_text("2 / 2")
    # Units (yes, yes) on find_policy, (yes, no) on find_faq: nominal alpha 0.
    expect(page.get_by_test_id("alpha")).to_have_text("0.000")

    page.get_by_role("link", name=re.compile("Disagreements: 1")).click()
    expect(page.get_by_role("cell", name=re.compile("on span find_faq RETRIEVER"))).to_be_visible()
    page.get_by_role("link", name="Decide").click()
    expect(page.get_by_role("heading", name=re.compile("span find_faq"))).to_be_visible()
    expect(page.get_by_text("Opening hours")).to_be_visible()
    expect(page.locator("#decision-form [data-question]")).to_be_focused()
    page.keyboard.press("n")
    expect(page.get_by_role("radio", name="No", exact=True)).to_be_checked()
    page.get_by_role("button", name="Record decision").click()
    expect(page.get_by_text("Decision recorded for item 1.")).to_be_visible()

    queue_id = queue_url.rstrip("/").rsplit("/", 1)[-1]
    response = page.request.get(
        f"{live_server.url}/export/download/?queue={queue_id}&format=csv&shape=long"
    )
    rows = list(csv.DictReader(io.StringIO(response.text())))
    exported = sorted((r["span_id"], r["annotator"], r["value"], r["is_gold"]) for r in rows)
    first, second = (span.span_id for span in retrievers)
    assert exported == sorted(
        [
            (first, "ann", "true", "true"),
            (first, "bob", "true", "true"),
            # The decision overrides ann's answer, which leaves the export.
            (second, "bob", "false", "false"),
            (second, "ada", "false", "true"),
        ]
    )
