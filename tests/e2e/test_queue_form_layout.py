"""The New queue form lines up field by field: each label sits right above its input (a
checkbox's beside it), at a desktop width and a narrow one."""

import pytest

from annotation.models import LabelSchema
from tests.factories import make_admin, make_reviewer

pytestmark = pytest.mark.django_db(transaction=True)

# For every visible control: its label's box and the box it labels. Choices in a list are
# labeled by their fieldset's legend, above the whole list.
LABEL_BOXES = """() => {
  const box = (el) => { const r = el.getBoundingClientRect();
    return {left: r.left, right: r.right, top: r.top, bottom: r.bottom}; };
  const controls = document.querySelectorAll(
    'main form :is(input:not([type=hidden]), select, textarea)');
  return Array.from(controls).filter((el) => el.getClientRects().length).map((el) => {
    const list = el.closest('fieldset.form-field > legend + div');
    const label = list ? list.previousElementSibling
      : document.querySelector('label[for="' + el.id + '"]');
    const beside = !list && el.type === 'checkbox';
    return {name: el.name, beside, label: box(label), control: box(list || el)};
  });
}"""


@pytest.mark.parametrize("width", [1280, 640])
def test_each_label_is_directly_above_its_input(page, live_server, login, width):
    for name in ("correct", "helpful"):
        LabelSchema.objects.create(name=name, value_type="boolean", applies_to="trace")
    LabelSchema.objects.create(name="retrieval", value_type="boolean", applies_to="span")
    make_reviewer(username="rita")
    login(page, make_admin())
    page.set_viewport_size({"width": width, "height": 800})
    page.goto(f"{live_server.url}/queues/new/")
    fields = page.evaluate(LABEL_BOXES)
    names = {field["name"] for field in fields}
    assert {"name", "limit", "overlap", "blind", "control_rate", "accuracy_threshold"} <= names
    assert any(name.endswith("-span_type") for name in names)
    for field in fields:
        label, control = field["label"], field["control"]
        if field["beside"]:
            middle = (label["top"] + label["bottom"]) / 2
            assert control["top"] <= middle <= control["bottom"], field
            assert 0 <= label["left"] - control["right"] <= 16, field
        else:
            assert 0 <= control["top"] - label["bottom"] <= 12, field
            assert abs(label["left"] - control["left"]) <= 2, field
