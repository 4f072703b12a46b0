import pytest
from playwright.sync_api import expect

from tests.factories import make_reviewer

pytestmark = pytest.mark.django_db(transaction=True)


def test_reviewer_signs_in_and_sees_the_trace_list(page, live_server, login):
    user = make_reviewer(username="rita")
    login(page, user)
    expect(page.get_by_role("heading", name="Traces", exact=True)).to_be_visible()
    expect(page.get_by_text("rita", exact=True)).to_be_visible()
