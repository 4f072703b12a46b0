"""The selected span's detail shows beside the tree (wide) or scrolled to (narrow, 200%)."""

import re
import time

import pytest
from playwright.sync_api import expect

from annotation.models import LabelSchema
from tests.factories import make_reviewer, make_span, make_trace

pytestmark = pytest.mark.django_db(transaction=True)

WIDE = {"width": 1280, "height": 800}
ZOOMED = {"width": 640, "height": 400}


@pytest.fixture
def long_trace(db):
    """A trace whose request, response and trace questions fill more than a screen."""
    for n in range(6):
        LabelSchema.objects.create(name=f"check_{n}", title=f"Check {n}", value_type="boolean")
    long_text = "\n".join(f"line {n} of a long answer" for n in range(60))
    trace = make_trace(request_preview=long_text, response_preview=long_text)
    root = make_span(trace, name="agent", span_type="AGENT")
    for n in range(30):
        make_span(trace, parent=root, name=f"step_{n}", span_type="TOOL", inputs={"n": n})
    make_span(trace, parent=root, name="final_tool", span_type="TOOL", inputs={"query": "late"})
    return trace


def in_viewport(page, locator):
    box = locator.bounding_box()
    height = page.viewport_size["height"]
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= height


@pytest.mark.parametrize("size", [WIDE, ZOOMED], ids=["1280x800", "640x400"])
def test_the_selected_span_detail_is_on_screen(page, live_server, login, long_trace, size):
    page.set_viewport_size(size)
    login(page, make_reviewer())
    page.goto(live_server.url + long_trace.get_absolute_url())
    item = page.get_by_role("treeitem", name=re.compile("final_tool"))
    item.scroll_into_view_if_needed()
    item.locator(".node-link").click()
    title = page.locator("#span-title")
    expect(title).to_contain_text("final_tool")
    inputs = page.locator(".span-detail h3", has_text="Inputs")
    expect(inputs).to_be_in_viewport()
    page.wait_for_function("() => !document.querySelector('.htmx-settling, .htmx-swapping')")
    assert in_viewport(page, title)
    assert in_viewport(page, inputs)
    if size is WIDE:
        # Beside the tree: the clicked row stays visible and keeps focus for the arrows.
        assert in_viewport(page, item)
        expect(item).to_be_focused()
    else:
        expect(title).to_be_focused()
        page.get_by_role("link", name="Back to the span tree").click()
        expect(item).to_be_focused()
        expect(item).to_be_in_viewport()


def test_the_trace_request_and_the_span_feedback_are_one_link_away(
    page, live_server, login, long_trace
):
    page.set_viewport_size(ZOOMED)
    login(page, make_reviewer())
    span = long_trace.spans.get(name="final_tool")
    page.goto(f"{live_server.url}{long_trace.get_absolute_url()}?span={span.span_id}")
    page.get_by_role("link", name="Feedback on this span").click()
    expect(page.locator(f"#assessments-span-{span.span_id} h3").first).to_be_in_viewport()
    page.get_by_role("link", name="Trace request and response").click()
    expect(page.locator("#trace-io h3", has_text="Request")).to_be_in_viewport()


def test_a_span_with_children_is_scrolled_to_whichever_reply_lands_first(
    page, live_server, login, long_trace
):
    """Selecting a collapsed span asks for its children and its detail at once; the detail
    is held back here so the children land first, and it must still be scrolled to."""
    root = long_trace.spans.get(name="agent")
    planner = make_span(long_trace, parent=root, name="planner", span_type="CHAIN")
    make_span(long_trace, parent=planner, name="plan_step", span_type="TOOL")

    def slow_detail(route):
        response = route.fetch()
        time.sleep(0.5)
        route.fulfill(response=response)

    page.set_viewport_size(WIDE)
    login(page, make_reviewer())
    page.goto(live_server.url + long_trace.get_absolute_url())
    page.wait_for_load_state()
    page.route(re.compile(r"\?span="), slow_detail)
    page.locator('#span-tree [role="treeitem"][tabindex="0"]').focus()
    page.keyboard.press("End")
    item = page.get_by_role("treeitem", name=re.compile("planner"))
    expect(item).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("treeitem", name=re.compile("plan_step"))).to_be_visible()
    title = page.locator("#span-title")
    expect(title).to_contain_text("planner")
    page.wait_for_function("() => !document.querySelector('.htmx-settling, .htmx-swapping')")
    expect(title).to_be_in_viewport()
    assert in_viewport(page, title)
