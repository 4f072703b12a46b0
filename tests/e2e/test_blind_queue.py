"""A member of a blind queue browses the queue's other traces in a real browser: until they
have answered a trace, no page shows them anyone else's answer there."""

import pytest
from playwright.sync_api import expect

from annotation import queues
from annotation.models import LabelSchema
from tests.factories import make_reviewer, make_trace

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_blind_member_sees_no_answers_on_any_item_until_they_answer_it(page, live_server, login):
    rita, ravi = make_reviewer(username="rita"), make_reviewer(username="ravi")
    helpful = LabelSchema.objects.create(name="helpful", title="Helpful", value_type="boolean")
    traces = [make_trace() for _ in range(3)]
    queue = queues.create_queue(
        name="Helpfulness", traces=traces, schemas=[helpful], annotators=[rita, ravi], overlap=2
    )
    for n in range(1, 4):
        queues.submit(
            assignment=queues.next_assignment(queue=queue, user=rita),
            values={"helpful": False},
            rationales={"helpful": f"RITA-SAYS-{n}"},
            actor=rita,
        )

    login(page, ravi)
    page.goto(f"{live_server.url}/queues/")
    page.get_by_role("button", name="Label").click()
    expect(page.get_by_test_id("blind-note")).to_be_visible()
    expect(page.get_by_text("RITA-SAYS-1")).to_have_count(0)

    # The other items, never handed to ravi yet, hide rita's answers on the review page too.
    for trace in traces[1:]:
        page.goto(live_server.url + trace.get_absolute_url())
        expect(page.get_by_test_id("blind-notice")).to_be_visible()
        expect(page.locator("main")).not_to_contain_text("RITA-SAYS")
        # The notice leads to the queue, since the item is not ravi's to open yet.
        page.get_by_test_id("blind-notice").get_by_role("link", name="Helpfulness").click()
        expect(page.get_by_role("heading", name="Helpfulness")).to_be_visible()
    page.goto(f"{live_server.url}/?feedback=helpful%3Dfalse")
    expect(page.get_by_text("No traces match")).to_be_visible()

    # Answering the first item reveals that one trace, and only that one.
    queues.submit(
        assignment=queues.in_progress(queue=queue, user=ravi), values={"helpful": True}, actor=ravi
    )
    page.goto(live_server.url + traces[0].get_absolute_url())
    expect(page.get_by_text("RITA-SAYS-1")).to_be_visible()
    page.goto(live_server.url + traces[1].get_absolute_url())
    expect(page.get_by_test_id("blind-notice")).to_be_visible()
    expect(page.locator("main")).not_to_contain_text("RITA-SAYS")
