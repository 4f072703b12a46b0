"""Labeling on the review page from the keyboard: keys per label, focus, the filtered chain."""

import re

import pytest
from playwright.sync_api import expect

from annotation import services
from annotation.models import Assessment, LabelSchema, SourceType
from tests.factories import make_reviewer, make_span, make_trace, make_viewer

pytestmark = pytest.mark.django_db(transaction=True)


class Keys:
    """Presses keys and counts them."""

    def __init__(self, page):
        self.page, self.count = page, 0

    def press(self, *keys):
        for key in keys:
            self.page.keyboard.press(key)
            self.count += 1


@pytest.fixture
def questions(db):
    LabelSchema.objects.create(name="grounded", title="Grounded", value_type="boolean")
    LabelSchema.objects.create(name="helpful", title="Helpful", value_type="boolean")
    LabelSchema.objects.create(
        name="main_issue",
        title="Main issue",
        value_type="categorical",
        options=["none", "hallucination", "off topic"],
    )
    LabelSchema.objects.create(
        name="rating", title="Rating", value_type="numeric", min_value=1, max_value=5, step=1
    )


def saved(trace):
    return {
        a.name: a.value for a in Assessment.objects.filter(trace=trace, deleted_at__isnull=True)
    }


def focused_question(page):
    return page.evaluate(
        "() => { const q = document.activeElement.closest('[data-question]'); return q && q.id }"
    )


def test_every_question_takes_at_most_two_keys(page, live_server, login, questions):
    trace = make_trace()
    make_span(trace, name="agent")
    # The strict CSP reports every inline style or script to the console: none may appear.
    problems = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else 0)
    login(page, make_reviewer())
    page.goto(live_server.url + trace.get_absolute_url())
    region = page.locator("#assessments-trace")
    issue = region.locator("form[data-question]", has_text="Main issue")
    expect(issue.get_by_role("button", name="hallucination")).to_contain_text("b")
    expect(region.get_by_role("button", name="Yes").first).to_contain_text("y")

    steps = [
        ("grounded", True, ["y"]),
        ("helpful", False, ["q", "n"]),
        ("rating", 4, ["4"]),
        ("main_issue", "hallucination", ["b"]),
    ]
    per_label = {}
    for name, _value, keys in steps:
        counter = Keys(page)
        counter.press(*keys)
        expect(region.locator(".assessment-group h4", has_text=name)).to_be_visible()
        # Focus comes back to the question just answered, never to <body>.
        schema = LabelSchema.objects.get(name=name)
        page.wait_for_function(
            "id => document.activeElement.closest('[data-question]')?.id === id",
            arg=f"w-assessments-trace-{schema.pk}",
        )
        per_label[name] = counter.count
    assert saved(trace) == {name: value for name, value, _ in steps}
    assert all(count <= 2 for count in per_label.values()), per_label
    # An edit through the entry's own form, the path that once injected indicator styles.
    entry = region.locator(".assessment", has_text="hallucination")
    entry.locator("details.edit > summary").click()
    entry.get_by_role("button", name=re.compile("Save")).click()
    expect(region.locator(".assessment", has_text="v2")).to_have_count(1)
    assert problems == []


def test_keys_pressed_while_a_save_settles_still_save_in_place(page, live_server, login, questions):
    """htmx wires a swapped-in form only when the swap settles; the next answer must not
    post it as a plain form (a full reload that loses focus). A long settle delay holds that
    moment open."""
    trace = make_trace()
    login(page, make_reviewer())
    page.goto(live_server.url + trace.get_absolute_url())
    page.evaluate("htmx.config.defaultSettleDelay = 1500")
    region = page.locator("#assessments-trace")
    page.keyboard.press("y")
    expect(region.locator(".assessment-group h4", has_text="grounded")).to_be_visible()
    page.keyboard.press("q")
    page.keyboard.press("n")
    expect(region.locator(".assessment-group h4", has_text="helpful")).to_be_visible()
    assert "#" not in page.url  # no plain post, whose answer is a redirect to the entry
    assert saved(trace) == {"grounded": True, "helpful": False}
    schema = LabelSchema.objects.get(name="helpful")
    page.wait_for_function(
        "id => document.activeElement.closest('[data-question]')?.id === id",
        arg=f"w-assessments-trace-{schema.pk}",
    )


def test_q_and_shift_q_move_between_questions(page, live_server, login, questions):
    trace = make_trace()
    login(page, make_reviewer())
    page.goto(live_server.url + trace.get_absolute_url())
    ids = page.locator("#assessments-trace form[data-question]").evaluate_all(
        "forms => forms.map(f => f.id)"
    )
    page.keyboard.press("q")
    assert focused_question(page) == ids[0]
    page.keyboard.press("q")
    assert focused_question(page) == ids[1]
    page.keyboard.press("Shift+Q")
    assert focused_question(page) == ids[0]
    # A key the focused question lacks answers the first question that has it.
    page.keyboard.press("c")
    expect(page.locator("#assessments-trace .assessment")).to_contain_text("off topic")


def test_previous_returns_to_a_trace_that_left_the_filtered_list(page, live_server, login):
    LabelSchema.objects.create(name="helpful", value_type="boolean")
    first, second = make_trace(request_time=2_000), make_trace(request_time=1_000)
    login(page, make_reviewer())
    page.goto(f"{live_server.url}/?reviewed=not-me")
    page.locator(f'a[href^="{first.get_absolute_url()}"]').first.click()
    expect(page.locator("h1")).to_contain_text(first.trace_id)
    page.wait_for_load_state()
    page.keyboard.press("y")
    expect(page.locator("#assessments-trace .assessment")).to_have_count(1)
    page.keyboard.press("j")
    expect(page.locator("h1")).to_contain_text(second.trace_id)
    page.keyboard.press("k")
    expect(page.locator("h1")).to_contain_text(first.trace_id)
    expect(page.locator('.trace-nav a[rel="next"]')).to_be_visible()


def test_on_a_short_screen_the_question_q_moves_to_is_scrolled_into_view(
    page, live_server, login, questions
):
    trace = make_trace()
    make_span(trace, name="agent")
    login(page, make_reviewer())
    page.set_viewport_size({"width": 640, "height": 400})
    page.goto(live_server.url + trace.get_absolute_url())
    page.wait_for_load_state()
    forms = page.locator("#assessments-trace form[data-question]")
    page.keyboard.press("q")
    expect(forms.first).to_be_focused()
    expect(forms.first).to_be_in_viewport(ratio=1)
    page.evaluate(
        "window.scrollTo(0, 0)"
    )  # scrolled away, saving brings the answered question back
    page.keyboard.press("y")
    expect(
        page.locator("#assessments-trace .assessment-group h4", has_text="grounded")
    ).to_have_count(1)
    page.wait_for_load_state("networkidle")
    page.wait_for_function("() => document.activeElement.closest('[data-question]')")
    answered = page.locator("#assessments-trace [data-question]:focus-within")
    expect(answered).to_be_in_viewport(ratio=1)


def test_a_key_the_focused_question_lacks_answers_only_a_question_still_unanswered(
    page, live_server, login, questions
):
    trace = make_trace()
    login(page, make_reviewer())
    page.goto(live_server.url + trace.get_absolute_url())
    page.wait_for_load_state()
    region = page.locator("#assessments-trace")

    def entries():
        page.wait_for_load_state("networkidle")
        return saved(trace)

    page.keyboard.press("y")
    expect(region.locator(".assessment-group h4", has_text="grounded")).to_be_visible()
    issue = region.locator("form[data-question]", has_text="Main issue")
    helpful = region.locator("form[data-question]", has_text="Helpful")
    # From a category question, y answers the yes/no question still open, and focus moves there.
    issue.focus()
    page.keyboard.press("y")
    expect(region.locator(".assessment-group h4", has_text="helpful")).to_be_visible()
    expect(helpful).to_be_focused()
    # With every yes/no answered, y and n from elsewhere change nothing: not out of sight.
    for key in ("n", "y"):
        issue.focus()
        page.keyboard.press(key)
        expect(issue).to_be_focused()
    expect(page.locator("#review-status")).to_contain_text("Already answered")
    assert entries() == {"grounded": True, "helpful": True}
    # Likewise a digit: it answers the open rating once, then only with the rating focused.
    page.keyboard.press("3")
    expect(region.locator(".assessment-group h4", has_text="rating")).to_be_visible()
    issue.focus()
    page.keyboard.press("5")
    expect(issue).to_be_focused()
    assert entries() == {"grounded": True, "helpful": True, "rating": 3}
    # On its own question a key changes the answer.
    helpful.focus()
    page.keyboard.press("n")
    expect(region.locator(".assessment", has_text="v2")).to_have_count(1)
    assert entries() == {"grounded": True, "helpful": False, "rating": 3}


def focus_in(page, entry_id):
    page.wait_for_function(
        "id => document.activeElement.closest('.assessment')?.id === id", arg=entry_id
    )


def test_edit_delete_restore_and_override_keep_focus_on_the_entry(page, live_server, login):
    LabelSchema.objects.create(name="helpful", title="Helpful", value_type="boolean")
    trace = make_trace()
    ben = make_reviewer(username="ben")
    tone = services.log_feedback(trace=trace, name="tone", value="calm", actor=ben)
    judged = services.log_feedback(
        trace=trace, name="helpful", value=False, source_type=SourceType.LLM_JUDGE
    )
    login(page, ben)
    page.goto(live_server.url + trace.get_absolute_url())
    page.wait_for_load_state()
    status = page.locator("#review-status")
    entry = page.locator(f"#{tone.assessment_id}")

    entry.locator("details.edit > summary").focus()
    page.keyboard.press("Enter")
    entry.get_by_label("Value").fill("friendly")
    entry.get_by_role("button", name="Save").focus()
    page.keyboard.press("Enter")
    expect(entry).to_contain_text("v2")
    expect(status).to_have_text("Saved.")
    focus_in(page, tone.assessment_id)

    entry.locator("details.delete > summary").focus()
    page.keyboard.press("Enter")
    entry.locator("details.delete button").focus()
    page.keyboard.press("Enter")
    expect(entry.locator(".deleted-badge")).to_be_visible()
    expect(status).to_have_text("Deleted.")
    expect(entry.get_by_role("button", name="Restore")).to_be_focused()

    page.keyboard.press("Enter")
    expect(entry.locator(".deleted-badge")).to_have_count(0)
    expect(status).to_have_text("Restored.")
    focus_in(page, tone.assessment_id)

    judge_entry = page.locator(f"#{judged.assessment_id}")
    judge_entry.locator("details.override > summary").focus()
    page.keyboard.press("Enter")
    judge_entry.get_by_label("Yes", exact=True).check()
    judge_entry.get_by_role("button", name="Override").focus()
    page.keyboard.press("Enter")
    expect(judge_entry.locator(".overridden-badge")).to_be_visible()
    expect(status).to_have_text("Overridden.")
    mine = Assessment.objects.get(name="helpful", annotator=ben)
    focus_in(page, mine.assessment_id)


def test_shift_t_goes_to_the_span_tree_from_anywhere(page, live_server, login, questions):
    trace = make_trace()
    root = make_span(trace, name="agent")
    make_span(trace, parent=root, name="lookup")
    login(page, make_reviewer())
    page.goto(live_server.url + trace.get_absolute_url())
    page.wait_for_load_state()
    page.keyboard.press("q")
    page.keyboard.press("Shift+T")
    expect(page.locator('#span-tree [role="treeitem"]').first).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#span-title")).to_contain_text("agent")
    page.keyboard.press("q")
    page.keyboard.press("Shift+T")
    expect(page.locator('#span-tree [aria-selected="true"]')).to_be_focused()


def help_keys(page):
    page.keyboard.press("?")
    dialog = page.locator("#shortcut-help[open]")
    dialog.wait_for()
    keys = dialog.locator("kbd").all_inner_texts()
    page.keyboard.press("Escape")
    return keys


def test_the_help_lists_labelling_keys_only_to_those_who_can_label(
    page, live_server, login, questions
):
    trace = make_trace()
    make_span(trace, name="agent")
    login(page, make_viewer())
    page.goto(live_server.url + trace.get_absolute_url())
    page.wait_for_load_state()
    shown = help_keys(page)
    assert {"j", "k", "Shift+t", "/"} <= set(shown)
    assert not {"y", "n", "q", "e"} & set(shown), shown
    page.context.clear_cookies()
    login(page, make_reviewer())
    page.goto(live_server.url + trace.get_absolute_url())
    page.wait_for_load_state()
    assert {"y", "n", "q", "e", "Shift+t"} <= set(help_keys(page))


def test_with_a_span_selected_that_has_no_questions_keys_answer_the_trace(page, live_server, login):
    helpful = LabelSchema.objects.create(
        name="helpful", title="Helpful", value_type="boolean", applies_to="trace"
    )
    LabelSchema.objects.create(
        name="relevant",
        title="Relevant",
        value_type="boolean",
        applies_to="span",
        span_types=["RETRIEVER"],
    )
    trace = make_trace()
    make_span(trace, name="agent", span_type="AGENT")
    login(page, make_reviewer())
    page.goto(live_server.url + trace.get_absolute_url())
    page.wait_for_load_state()
    page.keyboard.press("Shift+T")
    page.keyboard.press("Enter")
    expect(page.locator("#span-title")).to_contain_text("agent")
    expect(page.locator("#span-panel [data-region]")).to_be_visible()
    page.keyboard.press("n")
    region = page.locator("#assessments-trace")
    expect(region.locator(".assessment-group h4", has_text="helpful")).to_be_visible()
    expect(region.locator(f"#w-assessments-trace-{helpful.pk}")).to_be_focused()
    assert saved(trace) == {"helpful": False}
