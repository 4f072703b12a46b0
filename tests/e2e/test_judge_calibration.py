"""The judge loop in a browser: an Admin opens an experiment's Judges, sees a judge's
figures, sends its items without gold to a queue, two reviewers label them, and the
figures move."""

import re

import pytest
from playwright.sync_api import expect

from annotation import services
from annotation.models import LabelSchema, SourceType
from tests.e2e.labeling import label_every_item
from tests.factories import make_admin, make_experiment, make_reviewer, make_trace

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_admin_sends_a_judges_open_items_to_people_and_the_figures_move(
    page, browser, live_server, login
):
    admin = make_admin(username="ada")
    ann, bob = make_reviewer(username="ann"), make_reviewer(username="bob")
    LabelSchema.objects.create(
        name="correct", title="Correct?", value_type="boolean", applies_to="trace"
    )
    experiment = make_experiment(name="support")
    for n in range(11):
        trace = make_trace(experiment)
        services.log_feedback(
            trace=trace,
            name="correct",
            value=True,
            source_type=SourceType.LLM_JUDGE,
            source_id="judge-a",
        )
        if n < 8:
            for person in (ann, bob):
                services.log_feedback(trace=trace, name="correct", value=n % 4 != 0, actor=person)

    login(page, admin)
    page.goto(f"{live_server.url}/overview/{experiment.pk}/")
    page.get_by_role("link", name="Judges").click()
    expect(page.get_by_role("heading", name="Judges of support")).to_be_visible()
    expect(page.get_by_role("cell", name="8 / 11")).to_be_visible()
    page.get_by_role("link", name="correct").click()
    expect(
        page.get_by_role("heading", name=re.compile("Disagreeing items \\(2\\)"))
    ).to_be_visible()
    page.get_by_label("Items that have no gold value yet").check()
    # No one ticked: back on the judge page, the error in an alert and the form focused.
    page.get_by_role("button", name="Make a queue").click()
    expect(page.get_by_role("alert")).to_contain_text("Annotators: This field is required.")
    expect(page).to_have_url(
        re.compile(r"/judges/judge/\?name=correct&source=judge-a#judge-queue$")
    )
    expect(page.locator("#judge-queue")).to_be_focused()
    expect(page.get_by_role("link", name="Queues")).not_to_have_attribute("aria-current", "page")
    expect(page.get_by_label("Items that have no gold value yet")).to_be_checked()
    page.get_by_label("ann", exact=True).check()
    page.get_by_label("bob", exact=True).check()
    page.get_by_role("button", name="Make a queue").click()
    expect(page.get_by_text(re.compile("made with 3 items"))).to_be_visible()
    expect(page.get_by_test_id("labels-done")).to_have_text("0 / 6")

    label_every_item(browser, login, live_server, ann, ["Yes", "Yes", "No"], keys=False)
    label_every_item(browser, login, live_server, bob, ["Yes", "Yes", "Yes"], keys=False)
    page.goto(f"{live_server.url}/experiments/{experiment.pk}/judges/")
    # Two items got gold (both said yes); the split one did not.
    expect(page.get_by_role("cell", name="10 / 11")).to_be_visible()
