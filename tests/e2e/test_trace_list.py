import re

import pytest
from playwright.sync_api import expect

from tests.factories import make_reviewer, make_trace

pytestmark = pytest.mark.django_db(transaction=True)
T0 = 1_700_000_000_000


@pytest.fixture
def traces():
    return [
        make_trace(user="ada", request_time=T0 + 3000, request_preview="Ada asks about refunds"),
        make_trace(user="bob", request_time=T0 + 2000, request_preview="Bob asks about hours"),
        make_trace(user="ada", request_time=T0 + 1000, request_preview="Ada asks a follow-up"),
    ]


def rows(page):
    return page.locator("#trace-rows tr")


def test_filtering_by_user_updates_the_table_in_place_and_back_restores_it(
    page, live_server, login, traces
):
    violations = []
    page.on(
        "console",
        lambda msg: violations.append(msg.text) if "Content Security" in msg.text else None,
    )
    login(page, make_reviewer())
    expect(rows(page)).to_have_count(3)
    page.evaluate("window.notReloaded = true")

    page.get_by_label("User", exact=True).fill("ada")

    expect(page).to_have_url(re.compile(r"[?&]user=ada\b"))
    expect(rows(page)).to_have_count(2)
    expect(page.get_by_text("Bob asks about hours")).to_have_count(0)
    assert page.evaluate("window.notReloaded") is True

    page.go_back()
    expect(page).to_have_url(f"{live_server.url}/")
    expect(rows(page)).to_have_count(3)
    expect(page.get_by_label("User", exact=True)).to_have_value("")

    page.go_forward()
    expect(rows(page)).to_have_count(2)
    expect(page.get_by_label("User", exact=True)).to_have_value("ada")
    assert violations == []


def test_j_and_k_move_between_rows_and_enter_opens_the_trace(page, live_server, login, traces):
    login(page, make_reviewer())
    expect(rows(page)).to_have_count(3)

    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("k")
    expect(rows(page).nth(1).locator("a[data-trace-link]")).to_be_focused()

    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{live_server.url}/traces/{traces[1].trace_id}/?from=sort%3D-time")


def test_j_on_the_review_page_follows_the_filtered_list(page, live_server, login, traces):
    login(page, make_reviewer())
    page.get_by_label("User", exact=True).fill("ada")
    expect(rows(page)).to_have_count(2)
    rows(page).first.locator("a[data-trace-link]").click()
    expect(page.locator("h1")).to_contain_text(traces[0].trace_id)
    page.wait_for_load_state()  # the page's key handlers run at the end of the page
    page.keyboard.press("j")
    expect(page.locator("h1")).to_contain_text(traces[2].trace_id)
    expect(page).to_have_url(re.compile(r"\?from=user%3Dada"))
    page.get_by_role("link", name="All traces").click()
    expect(rows(page)).to_have_count(2)
    expect(page.get_by_label("User", exact=True)).to_have_value("ada")


def test_question_mark_lists_the_shortcuts(page, live_server, login, traces):
    login(page, make_reviewer())
    page.keyboard.press("?")
    help_dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(help_dialog).to_be_visible()
    expect(help_dialog.get_by_text("Next trace")).to_be_visible()
    page.keyboard.press("Escape")
    expect(help_dialog).to_be_hidden()


def test_a_previews_raw_json_opens_from_the_keyboard_and_stays_on_the_list(
    page, live_server, login
):
    chat = '{"messages": [{"role": "user", "content": "Où est ma commande \\u2192 IW-7?"}]}'
    make_trace(request_preview=chat, response_preview='"On its way."')
    login(page, make_reviewer())
    row = rows(page).first
    expect(row.locator(".clamp").first).to_have_text("Où est ma commande → IW-7?")
    raw = row.locator("details.raw-json pre")
    expect(raw).to_be_hidden()
    row.get_by_role("link").first.focus()
    page.keyboard.press("Tab")
    expect(row.locator("summary")).to_be_focused()
    page.keyboard.press("Enter")
    expect(raw).to_be_visible()
    expect(raw).to_have_text(chat)
    assert page.url == f"{live_server.url}/"
