import pytest
from playwright.sync_api import expect

from annotation.models import LabelSchema
from annotation.schema_forms import TYPE_FIELDS
from tests.factories import make_admin

pytestmark = pytest.mark.django_db(transaction=True)

ValueType = LabelSchema.ValueType


def expect_shown(locator, shown: bool):
    if shown:
        expect(locator).to_be_visible()
    else:
        expect(locator).to_be_hidden()


def type_fieldset(page, value_type):
    return page.locator(f'fieldset[data-shown-when="value_type"][data-shown-for="{value_type}"]')


def test_choosing_each_value_type_shows_only_its_fields(page, live_server, login):
    login(page, make_admin())
    page.goto(f"{live_server.url}/schemas/new/")
    for value_type in ValueType:
        page.get_by_label("Value type").select_option(value_type.value)
        for other, names in TYPE_FIELDS.items():
            shown = other == value_type
            fieldset = type_fieldset(page, other)
            expect_shown(fieldset, shown)
            expect(fieldset.locator("legend")).to_have_text(f"{other.label} only")
            for name in names:
                expect_shown(page.locator(f'[name="{name}"]'), shown)
        expect(page.get_by_label("Name")).to_be_visible()
        expect(page.get_by_label("Applies to")).to_be_visible()


def test_span_types_show_only_for_schemas_on_spans(page, live_server, login):
    login(page, make_admin())
    page.goto(f"{live_server.url}/schemas/new/")
    span_types = page.get_by_label("Span types")
    for applies_to, shown in (("trace", False), ("span", True), ("both", True)):
        page.get_by_label("Applies to").select_option(applies_to)
        expect_shown(span_types, shown)


def test_editing_opens_with_the_schemas_own_fields_and_saves_them(page, live_server, login):
    schema = LabelSchema.objects.create(
        name="tone", value_type=ValueType.CATEGORICAL, options=["calm", "curt"], applies_to="trace"
    )
    login(page, make_admin())
    page.goto(f"{live_server.url}/schemas/{schema.pk}/")
    expect(page.get_by_label("Options")).to_be_visible()
    expect(page.get_by_label("Min value")).to_be_hidden()
    expect(page.get_by_label("Span types")).to_be_hidden()
    page.get_by_label("Options").fill("calm\ncurt\nwarm")
    page.get_by_role("button", name="Save schema").click()
    page.wait_for_url(f"{live_server.url}/schemas/")
    schema.refresh_from_db()
    assert schema.options == ["calm", "curt", "warm"]
