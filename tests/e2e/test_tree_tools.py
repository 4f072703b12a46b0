"""Big traces in the browser: find a span, next error, collapse all."""

import re

import pytest
from playwright.sync_api import expect

from tests.factories import make_reviewer, make_span, make_trace

pytestmark = pytest.mark.django_db(transaction=True)


def test_find_a_span_jump_between_errors_and_collapse_all(page, live_server, login):
    trace = make_trace(state="ERROR")
    root = make_span(trace, name="agent", start_time_ns=0)
    for n in range(40):
        make_span(trace, parent=root, name=f"step_{n}", start_time_ns=10 + n)
    first = make_span(trace, parent=root, name="fetch_refunds", status="ERROR", start_time_ns=100)
    make_span(trace, parent=first, name="parse", status="ERROR", start_time_ns=200)
    login(page, make_reviewer())
    page.goto(live_server.url + trace.get_absolute_url())
    # An Error trace opens at its first failing span.
    expect(page.locator("#span-title")).to_contain_text("fetch_refunds")

    page.keyboard.press("/")
    expect(page.get_by_label("Find a span")).to_be_focused()
    page.keyboard.type("step_3")
    page.keyboard.press("Enter")
    found = page.get_by_role("region", name=re.compile("match"))
    expect(found.get_by_role("listitem")).to_have_count(11)
    found.get_by_role("link", name="step_37").click()
    expect(page.locator("#span-title")).to_contain_text("step_37")

    page.locator("body").press("Shift+E")
    expect(page.locator("#span-title")).to_contain_text("fetch_refunds")
    page.locator("body").press("Shift+E")
    expect(page.locator("#span-title")).to_contain_text("parse")

    page.get_by_role("button", name="Collapse all").click()
    expect(page.get_by_role("treeitem", name=re.compile("step_0"))).to_be_hidden()
    expect(page.get_by_role("treeitem", name=re.compile("agent"))).to_be_focused()
