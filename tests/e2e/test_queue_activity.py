"""The item page tells the server when its tab is hidden and shown again, so that hidden
time never counts as active (annotation.quality.record_activity)."""

import pytest

from annotation import queues
from annotation.models import LabelSchema
from tests.factories import make_reviewer, make_trace

pytestmark = pytest.mark.django_db(transaction=True)

SET_VISIBILITY = """state => {
  Object.defineProperty(document, "visibilityState", { value: state, configurable: true });
  document.dispatchEvent(new Event("visibilitychange"));
}"""


def test_hiding_the_tab_closes_the_active_stretch_and_showing_it_opens_one(
    page, live_server, login
):
    ann = make_reviewer(username="ann")
    schema = LabelSchema.objects.create(name="correct", value_type="boolean", applies_to="trace")
    queue = queues.create_queue(
        name="Timed", traces=[make_trace()], schemas=[schema], annotators=[ann]
    )
    assignment = queues.next_assignment(queue=queue, user=ann)
    login(page, ann)
    page.goto(
        f"{page.url.split('/', 3)[0]}//{page.url.split('/', 3)[2]}/queues/{queue.pk}/items/1/"
    )

    def sign(state):
        with page.expect_response(lambda r: "/activity/" in r.url) as response:
            page.evaluate(SET_VISIBILITY, state)
        assert response.value.status == 204
        assignment.refresh_from_db()
        return response.value.request.post_data

    assert sign("hidden") == "state=hidden"
    assert assignment.seen_at is None  # the stretch is closed
    assert sign("visible") == "state=resumed"
    assert assignment.seen_at is not None
