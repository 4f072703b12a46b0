"""Labeling a queue in a browser of the person's own, as a reviewer would."""

import re

from playwright.sync_api import expect


def open_first_item(page, login, live_server, user):
    """Sign in and start labeling the only queue from the queue list, keys ready."""
    login(page, user)
    page.goto(f"{live_server.url}/queues/")
    page.get_by_role("button", name="Label").click()
    expect(page.get_by_role("heading", name=re.compile("^Item 1"))).to_be_visible()
    page.wait_for_load_state()  # the key handlers run at the end of the page
    return page


def label_every_item(browser, login, live_server, user, answers, *, blind=False, keys=True):
    """Answer each item the person is given with the named radio option; with ``keys``,
    every other item is submitted with Ctrl+Enter, the others with the button."""
    context = browser.new_context()
    page = context.new_page()
    login(page, user)
    page.goto(f"{live_server.url}/queues/")
    page.get_by_role("button", name="Label").click()
    for n, answer in enumerate(answers):
        expect(page.get_by_role("heading", name=re.compile(f"^Item {n + 1}"))).to_be_visible()
        if blind:
            expect(page.get_by_test_id("blind-note")).to_be_visible()
        page.get_by_role("radio", name=answer, exact=True).check()
        if keys and n % 2 == 0:
            page.keyboard.press("Control+Enter")
        else:
            page.get_by_role("button", name=re.compile("Submit and next")).click()
    expect(page.get_by_text("Nothing left for you in this queue")).to_be_visible()
    context.close()
