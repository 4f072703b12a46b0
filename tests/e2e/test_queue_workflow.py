"""A labeling project end to end: an Admin defines a schema and a queue for two reviewers,
each labels in their own browser, and the Admin watches progress and agreement move."""

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.labeling import label_every_item
from tests.factories import make_admin, make_reviewer, make_trace

pytestmark = pytest.mark.django_db(transaction=True)


def test_admin_sets_up_a_queue_two_reviewers_label_and_agreement_appears(
    page, browser, live_server, login
):
    admin = make_admin(username="ada")
    ann, bob = make_reviewer(username="ann"), make_reviewer(username="bob")
    traces = [make_trace() for _ in range(3)]

    login(page, admin)
    page.get_by_role("link", name="Schemas").click()
    page.get_by_role("link", name="New schema").click()
    page.get_by_label("Name").fill("correct")
    page.get_by_label("Title").fill("Correct?")
    page.get_by_label("Instructions").fill("Is the answer factually right?")
    page.get_by_label("Value type").select_option("boolean")
    page.get_by_label("Applies to").select_option("trace")
    page.get_by_role("button", name="Create schema").click()
    expect(page.get_by_text("Schema 'correct' created.")).to_be_visible()

    page.get_by_role("link", name="Queues").click()
    page.get_by_role("link", name="New queue").click()
    page.get_by_label("Name", exact=True).fill("Factuality, first pass")
    page.get_by_label("These trace ids").check()
    page.get_by_label("Trace ids", exact=True).fill("\n".join(t.trace_id for t in traces))
    page.locator("#id_schemas").get_by_label("Correct?").check()
    page.get_by_label("ann", exact=True).check()
    page.get_by_label("bob", exact=True).check()
    page.get_by_label("Overlap", exact=True).fill("2")
    page.get_by_role("button", name="Create queue").click()
    expect(page.get_by_role("heading", name="Factuality, first pass")).to_be_visible()
    expect(page.get_by_test_id("labels-done")).to_have_text("0 / 6")
    queue_url = page.url

    label_every_item(browser, login, live_server, ann, ["Yes", "Yes", "No"], blind=True)
    page.goto(queue_url)
    expect(page.get_by_test_id("labels-done")).to_have_text("3 / 6")
    expect(page.get_by_test_id("alpha")).to_have_text("n/a")

    label_every_item(browser, login, live_server, bob, ["Yes", "No", "No"], blind=True)
    page.goto(queue_url)
    expect(page.get_by_test_id("labels-done")).to_have_text("6 / 6")
    # Units (yes, yes), (yes, no), (no, no): nominal alpha 4/9, Cohen's kappa 0.4.
    expect(page.get_by_test_id("alpha")).to_have_text("0.444")
    expect(page.get_by_role("cell", name="0.400")).to_be_visible()

    page.get_by_role("link", name=re.compile("Disagreements: 1")).click()
    page.get_by_role("link", name="Decide").click()
    expect(page.locator("#decision-form [data-question]")).to_be_focused()
    page.keyboard.press("y")
    expect(page.get_by_role("radio", name="Yes", exact=True)).to_be_checked()
    page.get_by_label("Rationale:", exact=True).fill("The source supports it")
    page.get_by_role("button", name="Record decision").click()
    expect(page.get_by_text("Decision recorded for item 2.")).to_be_visible()
    expect(page.get_by_role("link", name="Change")).to_be_visible()
