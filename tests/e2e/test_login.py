import re

import pytest
from playwright.sync_api import expect

from tests.factories import PASSWORD, make_reviewer

pytestmark = pytest.mark.django_db(transaction=True)


def test_reviewer_signs_in_and_sees_the_trace_list(page, live_server, login):
    user = make_reviewer(username="rita")
    login(page, user)
    expect(page.get_by_role("heading", name="Traces", exact=True)).to_be_visible()
    expect(page.get_by_text("rita", exact=True)).to_be_visible()


def test_repeated_wrong_passwords_lock_the_account_out_of_this_browser(page, live_server, settings):
    settings.TRACEMARK_AUTH_MAX_FAILURES = 3
    make_reviewer(username="rita")
    page.goto(f"{live_server.url}/accounts/login/")
    for password in ("guess-1", "guess-2", "guess-3", PASSWORD):
        page.get_by_label("Username").fill("rita")
        page.get_by_label("Password").fill(password)
        page.get_by_label("Password").press("Enter")
        page.wait_for_load_state()
    expect(page.get_by_role("alert")).to_contain_text(
        "Too many failed sign-in attempts for this account"
    )
    expect(page).to_have_url(re.compile(r"/accounts/login/$"))
