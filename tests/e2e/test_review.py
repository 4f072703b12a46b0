"""The review page in a real browser: tree, widgets, history, override, keys, conflicts, XSS."""

import re

import pytest
from playwright.sync_api import expect

from annotation import services
from annotation.models import Assessment, LabelSchema, SourceType
from tests.factories import make_reviewer, make_span, make_trace

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def schemas(db):
    LabelSchema.objects.create(name="helpful", title="Helpful", value_type="boolean")
    LabelSchema.objects.create(
        name="rating",
        title="Overall rating",
        value_type="numeric",
        min_value=1,
        max_value=5,
        step=1,
        applies_to="trace",
    )


@pytest.fixture
def trace(db):
    trace = make_trace(tags={"mlflow.traceName": "support_answer"})
    root = make_span(trace, name="agent", span_type="AGENT")
    retriever = make_span(trace, parent=root, name="retrieve_docs", span_type="RETRIEVER")
    make_span(trace, parent=retriever, name="embed_query", span_type="EMBEDDING")
    make_span(
        trace,
        parent=root,
        name="chat",
        span_type="CHAT_MODEL",
        inputs={"messages": [{"role": "user", "content": "How do I reset my password?"}]},
    )
    return trace


def region(page, name):
    return page.locator("#assessments-trace" if name == "trace" else f"#assessments-span-{name}")


def test_review_a_trace_and_its_spans(page, live_server, login, schemas, trace):
    login(page, make_reviewer(username="rita"))
    page.goto(live_server.url + trace.get_absolute_url())
    expect(page.get_by_role("heading", name=re.compile("support_answer"))).to_be_visible()

    # Expand the retriever: its child loads on demand.
    retriever = page.get_by_role("treeitem", name=re.compile("retrieve_docs"))
    expect(retriever).to_have_attribute("aria-expanded", "false")
    retriever.locator(".twisty").first.click()
    expect(page.get_by_role("treeitem", name=re.compile("embed_query"))).to_be_visible()

    # Select it; the URL follows, and thumbs-down with a rationale lands without a reload.
    retriever.locator(".node-link").first.click()
    span_id = retriever.get_attribute("data-span-id")
    expect(page).to_have_url(re.compile(rf"\?span={span_id}"))
    span_region = region(page, span_id)
    span_region.get_by_label("Rationale").first.fill("Fetched the billing FAQ instead")
    span_region.get_by_role("button", name="No").click()
    expect(span_region.locator(".assessment")).to_contain_text("Fetched the billing FAQ instead")
    expect(page.locator("#span-summary")).to_contain_text("helpful")

    # Rate the trace 4, then change it to 5, and read both in the history.
    trace_region = region(page, "trace")
    trace_region.get_by_role("button", name="4 of 5").click()
    expect(trace_region.get_by_role("button", name="4 of 5")).to_have_attribute(
        "aria-pressed", "true"
    )
    trace_region.get_by_role("button", name="5 of 5").click()
    expect(trace_region.get_by_role("button", name="5 of 5")).to_have_attribute(
        "aria-pressed", "true"
    )
    entry = trace_region.locator(".assessment", has_text="v2")
    entry.locator("details.history > summary").click()
    history = entry.locator(".history table")
    expect(history).to_contain_text("Updated")
    expect(history.locator(".old")).to_have_text("4")
    expect(history.locator("tr", has_text="Updated").locator(".new")).to_have_text("5")
    assert Assessment.objects.get(name="rating").value == 5


def test_override_an_llm_judge(page, live_server, login, schemas, trace):
    judged = services.log_feedback(
        trace=trace,
        name="helpful",
        value=False,
        source_type=SourceType.LLM_JUDGE,
        source_id="judge-v2",
    )
    login(page, make_reviewer())
    page.goto(live_server.url + trace.get_absolute_url())
    entry = page.locator(f"#{judged.assessment_id}")
    entry.locator("details.override > summary").click()
    entry.get_by_label("Yes", exact=True).check()
    entry.get_by_label("Rationale").fill("The answer was right")
    entry.get_by_role("button", name="Override").click()
    old = page.locator(f"#{judged.assessment_id}")
    expect(old.locator(".overridden-badge")).to_be_visible()
    expect(old).to_contain_text("judge-v2")
    expect(region(page, "trace")).to_contain_text("The answer was right")
    judged.refresh_from_db()
    assert not judged.valid


def test_keyboard_only_labelling_of_three_traces(page, live_server, login, schemas):
    first, second, third = (make_trace(request_time=t) for t in (3_000, 2_000, 1_000))
    for t in (first, second, third):
        make_span(t, name="agent")
    login(page, make_reviewer())
    page.goto(live_server.url + first.get_absolute_url())
    for key, trace in (("y", first), ("4", second), ("n", third)):
        expect(page.locator("h1")).to_contain_text(trace.trace_id)
        page.keyboard.press(key)
        expect(region(page, "trace").locator(".assessment")).to_have_count(1)
        if trace is not third:
            page.keyboard.press("j")
    values = {a.trace_id: a.value for a in Assessment.objects.all()}
    assert values == {first.pk: True, second.pk: 4, third.pk: False}
    page.keyboard.press("k")
    expect(page.locator("h1")).to_contain_text(second.trace_id)
    page.keyboard.press("?")
    expect(page.get_by_role("dialog")).to_contain_text("yYes")
    expect(page.get_by_role("dialog")).to_contain_text("nNo")
    expect(page.get_by_role("dialog")).not_to_contain_text("Thumbs")


def test_e_edits_only_your_own_entry(page, live_server, login, schemas, trace):
    theirs = services.log_feedback(
        trace=trace, name="rating", value=2, rationale="RAVI-SAYS", actor=make_reviewer()
    )
    login(page, make_reviewer(username="rita"))
    page.goto(live_server.url + trace.get_absolute_url())
    card = page.locator(f"#{theirs.assessment_id}")
    expect(card).to_contain_text("RAVI-SAYS")
    expect(card.locator("details.edit, details.delete")).to_have_count(0)
    page.locator("h1").click()
    page.keyboard.press("e")
    expect(page.locator("details.edit[open]")).to_have_count(0)

    region(page, "trace").get_by_role("button", name="Yes").click()
    mine = region(page, "trace").locator(".assessment[data-mine]")
    expect(mine).to_have_count(1)
    page.keyboard.press("e")
    expect(mine.locator("details.edit")).to_have_attribute("open", "")
    expect(page.locator("details.edit[open]")).to_have_count(1)


def test_arrow_keys_move_in_the_span_tree(page, live_server, login, trace):
    login(page, make_reviewer())
    page.goto(live_server.url + trace.get_absolute_url())
    page.get_by_role("treeitem", name=re.compile("agent")).focus()
    page.keyboard.press("ArrowDown")
    focused = page.locator('[role="treeitem"]:focus')
    expect(focused).to_contain_text("retrieve_docs")
    page.keyboard.press("ArrowRight")
    expect(page.get_by_role("treeitem", name=re.compile("embed_query"))).to_be_visible()
    page.keyboard.press("ArrowRight")
    expect(focused).to_contain_text("embed_query")
    page.keyboard.press("ArrowLeft")
    expect(focused).to_contain_text("retrieve_docs")
    page.keyboard.press("Enter")
    expect(page.locator("#span-panel h2")).to_contain_text("retrieve_docs")


def test_one_entry_edited_in_two_browsers_shows_the_conflict(browser, live_server, login, trace):
    # Only its author edits an entry, so the race is the author's own, in two browsers.
    author = make_reviewer(username="ana")
    rating = services.log_feedback(trace=trace, name="tone", value="calm", actor=author)
    pages = []
    for _ in range(2):
        page = browser.new_context().new_page()
        login(page, author)
        page.goto(live_server.url + trace.get_absolute_url())
        page.locator(f"#{rating.assessment_id} details.edit > summary").click()
        pages.append(page)
    ana, ben = pages
    ana.locator(f"#{rating.assessment_id}").get_by_label("Value").fill("curt")
    ana.locator(f"#{rating.assessment_id}").get_by_role("button", name="Save").click()
    expect(ana.locator(f"#{rating.assessment_id}")).to_contain_text("v2")

    ben_entry = ben.locator(f"#{rating.assessment_id}")
    ben_entry.get_by_label("Value").fill("friendly")
    ben_entry.get_by_role("button", name="Save").click()
    conflict = ben.locator(".conflict")
    expect(conflict).to_contain_text("Someone else saved this entry")
    expect(conflict).to_contain_text("curt")
    expect(conflict).to_contain_text("friendly")
    expect(conflict).to_be_focused()
    rating.refresh_from_db()
    assert rating.value == "curt"
    ben.locator(f"#{rating.assessment_id}").get_by_role("button", name="Save mine instead").click()
    expect(ben.locator(".conflict")).to_have_count(0)
    rating.refresh_from_db()
    assert (rating.value, rating.version) == ("friendly", 3)


def test_saving_an_entry_someone_deleted_meanwhile_says_so(page, live_server, login, trace):
    ben = make_reviewer(username="ben")
    tone = services.log_feedback(trace=trace, name="tone", value="calm", actor=ben)
    login(page, ben)
    page.goto(live_server.url + trace.get_absolute_url())
    entry = page.locator(f"#{tone.assessment_id}")
    entry.locator("details.edit > summary").click()
    entry.get_by_label("Value").fill("friendly")
    services.delete_assessment(assessment_id=tone.assessment_id)

    entry.get_by_role("button", name="Save").click()

    alert = region(page, "trace").get_by_role("alert")
    expect(alert).to_contain_text("This entry was deleted by someone else")
    expect(page.locator(f"#{tone.assessment_id}")).to_contain_text("Restore")
    tone.refresh_from_db()
    assert (tone.value, tone.version) == ("calm", 2)


def test_a_span_with_an_xss_payload_runs_no_script(page, live_server, login):
    payload = (
        '<script>window.pwned=1;alert(1)</script><img src=x onerror="window.pwned=2;alert(2)">'
    )
    trace = make_trace(request_preview=payload)
    root = make_span(trace, name=f"agent {payload}")
    evil = make_span(
        trace,
        parent=root,
        name=payload,
        inputs={"messages": [{"role": "user", "content": payload}], "html": payload},
        outputs=payload,
        attributes={"note": payload},
    )
    make_span(trace, parent=evil, name=payload)
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    login(page, make_reviewer())
    page.goto(live_server.url + trace.get_absolute_url())
    page.get_by_role("treeitem", name=re.compile("alert")).nth(1).locator(
        ".node-link"
    ).first.click()
    expect(page.locator("#span-panel .span-detail")).to_be_visible()
    page.get_by_role("treeitem", name=re.compile("alert")).nth(2).wait_for()
    expect(page.locator("#span-panel")).to_contain_text("<script>window.pwned=1")
    assert page.evaluate("window.pwned") is None
    assert dialogs == []
