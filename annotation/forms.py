"""One form per widget kind, shaped by the LabelSchema of the assessment's name.

The forms turn posted text into typed JSON values (True, 4, "fluent", {...}) and apply the
schema's bounds and options so the reviewer sees the error next to the field. The service
layer validates again and its ValidationError is attached with ``form.add_error(None, exc)``.
"""

import json
import re

from django import forms
from django.core import validators

from .models import LABEL_KINDS, Kind, LabelSchema

ValueType = LabelSchema.ValueType
# Scales with at most this many points render as one button per value.
MAX_BUTTON_SCALE = 10


BACK_TRAIL = 20
TRACE_ID = re.compile(r"^[\w.-]{1,64}$")


class ReviewQueryForm(forms.Form):
    """GET parameters of the review page."""

    span = forms.RegexField(regex=r"^[0-9a-fA-F]{1,16}$", required=False)
    # The trace list's query string, carried so next/previous follow the same filter.
    from_ = forms.CharField(required=False, max_length=2000)
    # The traces walked through with "Next", oldest first: "Previous" retraces them even
    # when labeling took them out of the filtered list.
    back = forms.CharField(required=False, max_length=BACK_TRAIL * 65)
    # The span tree: find spans by text, expand every row, jump to the next failing span.
    find = forms.CharField(required=False, max_length=200)
    expand = forms.ChoiceField(required=False, choices=[("all", "all")])
    next_error = forms.BooleanField(required=False)

    FIELDS = {"span": "span", "from_": "from", "back": "back", "find": "find", "expand": "expand"}

    def __init__(self, data=None, **kwargs):
        if data is not None:
            values = {field: data.get(param, "") for field, param in self.FIELDS.items()}
            data = {**values, "next_error": data.get("next_error", "")}
        super().__init__(data, **kwargs)

    def tree_options(self) -> dict:
        """What the span tree shows, for ``build_tree`` and the tree tools."""
        data = self.cleaned_data
        return {
            "find": data.get("find", "").strip(),
            "expand_all": data.get("expand") == "all",
            "next_error": bool(data.get("next_error")),
        }

    def clean_back(self) -> list[str]:
        trail = [t for t in self.cleaned_data["back"].split(",") if t]
        if not all(TRACE_ID.match(t) for t in trail):
            raise forms.ValidationError("Not a list of trace ids.", code="invalid")
        return trail[-BACK_TRAIL:]


class TargetForm(forms.Form):
    """Where a new assessment goes (the trace, or one of its spans) and the schema shaping it."""

    span_id = forms.RegexField(regex=r"^[0-9a-fA-F]{1,16}$", required=False)
    schema = forms.CharField(required=False, max_length=255)


class VersionForm(forms.Form):
    """Delete and restore: only the version the reviewer saw."""

    version = forms.IntegerField(min_value=1, widget=forms.HiddenInput)
    key = forms.SlugField(required=False, max_length=120, widget=forms.HiddenInput)


class AssessmentForm(forms.Form):
    """Fields every widget shares; subclasses define ``value``."""

    value_type: str = ""
    rationale = forms.CharField(
        required=False,
        max_length=10_000,
        widget=forms.Textarea(attrs={"rows": 1, "placeholder": "Why? (optional)"}),
    )
    version = forms.IntegerField(
        required=False,
        min_value=1,
        widget=forms.HiddenInput,
        error_messages={
            "required": "This form lacks the version it started from; reload the page."
        },
    )
    # Which form on the page was submitted, so errors show next to it.
    key = forms.SlugField(required=False, max_length=120, widget=forms.HiddenInput)

    def __init__(self, *args, schema: LabelSchema | None = None, editing=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.schema = schema
        # An edit must say which version it started from, or conflicts would go unnoticed.
        self.fields["version"].required = editing
        if schema is not None:
            self.fields["value"].label = schema.title or schema.name
        if schema is not None and not schema.enable_comment:
            # The schema asks for no rationale (MLflow's enable_comment=False): none is shown
            # or taken.
            self.fields["rationale"].disabled = True
            self.fields["rationale"].widget = forms.HiddenInput()

    @property
    def name(self) -> str:
        return self.schema.name if self.schema else ""


class BooleanForm(AssessmentForm):
    value_type = ValueType.BOOLEAN
    value = forms.TypedChoiceField(
        choices=[("true", "Yes"), ("false", "No")],
        coerce=lambda v: v == "true",
        widget=forms.RadioSelect,
    )

    def __init__(self, *args, schema=None, **kwargs):
        super().__init__(*args, schema=schema, **kwargs)
        if schema is not None:
            self.fields["value"].choices = [
                ("true", schema.yes_label),
                ("false", schema.no_label),
            ]


class NumericForm(AssessmentForm):
    value_type = ValueType.NUMERIC
    value = forms.FloatField(widget=forms.NumberInput(attrs={"step": "any"}))

    def __init__(self, *args, schema=None, **kwargs):
        super().__init__(*args, schema=schema, **kwargs)
        if schema is None:
            return
        field = self.fields["value"]
        if schema.min_value is not None:
            field.validators.append(validators.MinValueValidator(schema.min_value))
            field.widget.attrs["min"] = f"{schema.min_value:g}"
        if schema.max_value is not None:
            field.validators.append(validators.MaxValueValidator(schema.max_value))
            field.widget.attrs["max"] = f"{schema.max_value:g}"
        if schema.step:
            field.validators.append(
                validators.StepValueValidator(schema.step, offset=schema.min_value or 0)
            )
            field.widget.attrs["step"] = f"{schema.step:g}"

    def clean_value(self):
        value = self.cleaned_data["value"]
        return int(value) if float(value).is_integer() else value

    def scale(self) -> list[int]:
        """The points of a small integer scale (a 1-5 rating), or [] for a free number input."""
        schema = self.schema
        if schema is None or schema.min_value is None or schema.max_value is None:
            return []
        step = schema.step or 1
        low, high = schema.min_value, schema.max_value
        if not (float(low).is_integer() and float(step).is_integer()):
            return []
        if (high - low) / step + 1 > MAX_BUTTON_SCALE:
            return []
        return list(range(int(low), int(high) + 1, int(step)))


# Keys that pick a category, in option order. Letters the pages already use are left out:
# e (edit), j/k (next/previous trace), n/y (thumbs), q (next question).
OPTION_KEYS = "abcdfghilmoprstuvwxz"


class CategoricalForm(AssessmentForm):
    value_type = ValueType.CATEGORICAL
    value = forms.ChoiceField(choices=[])

    def __init__(self, *args, schema=None, **kwargs):
        super().__init__(*args, schema=schema, **kwargs)
        options = schema.options if schema is not None else []
        if schema is not None and schema.multi_select:
            # Several options may be chosen; the answer is the list of them.
            self.fields["value"] = forms.MultipleChoiceField(
                label=self.fields["value"].label, widget=forms.CheckboxSelectMultiple
            )
        self.fields["value"].choices = [(str(o), str(o)) for o in options]

    def keyed_choices(self) -> list[tuple[str, str, str]]:
        """(option, label, key) for each option; options beyond the letters get no key."""
        keys = list(OPTION_KEYS)
        return [
            (option, label, keys[n] if n < len(keys) else "")
            for n, (option, label) in enumerate(self.fields["value"].choices)
        ]


class TextForm(AssessmentForm):
    value_type = ValueType.TEXT
    value = forms.CharField(max_length=100_000, widget=forms.Textarea(attrs={"rows": 3}))


class JSONValueField(forms.JSONField):
    """A JSON box that starts empty when there is no value yet (Django's shows "null", which
    then fails as "required") and shows a stored value as indented JSON."""

    def prepare_value(self, value):
        if value is None:
            return ""
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return json.dumps(value, indent=2, ensure_ascii=False, cls=self.encoder)


class StructuredForm(AssessmentForm):
    value_type = ValueType.STRUCTURED
    value = JSONValueField(
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
        help_text='JSON, e.g. {"answer": "..."}',
    )

    def clean_value(self):
        value = self.cleaned_data["value"]
        if self.schema is not None and not isinstance(value, dict | list):
            raise forms.ValidationError("Enter a JSON object or list.", code="wrong_type")
        return value


FORMS = {
    ValueType.BOOLEAN: BooleanForm,
    ValueType.NUMERIC: NumericForm,
    ValueType.CATEGORICAL: CategoricalForm,
    ValueType.TEXT: TextForm,
    ValueType.STRUCTURED: StructuredForm,
}


def value_type_of(value) -> str:
    """The widget kind for a value that has no schema (for editing it in the same shape)."""
    if isinstance(value, bool):
        return ValueType.BOOLEAN
    if isinstance(value, int | float):
        return ValueType.NUMERIC
    if isinstance(value, dict | list):
        return ValueType.STRUCTURED
    return ValueType.TEXT


def form_for(schema: LabelSchema | None, value=None, **kwargs) -> AssessmentForm:
    """The form for a schema, or, without one, for the type of the current value."""
    value_type = schema.value_type if schema is not None else value_type_of(value)
    return FORMS[value_type](schema=schema, **kwargs)


def initial_value(value):
    """A stored value as the form field's initial data (JSON is written out by its field)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


class NamedAssessmentForm(forms.Form):
    """A feedback or expectation of any name and type, for when no schema fits."""

    TYPES = [
        (ValueType.BOOLEAN, "Yes / no"),
        (ValueType.NUMERIC, "Number"),
        (ValueType.TEXT, "Text"),
        (ValueType.STRUCTURED, "JSON"),
    ]

    name = forms.CharField(max_length=255)
    kind = forms.ChoiceField(choices=LABEL_KINDS, initial=Kind.FEEDBACK)
    value_type = forms.ChoiceField(choices=TYPES, label="Type", initial=ValueType.TEXT)
    value = forms.CharField(
        max_length=100_000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Yes / no: yes, no, true or false. JSON: any JSON value.",
    )
    rationale = forms.CharField(
        required=False, max_length=10_000, widget=forms.Textarea(attrs={"rows": 2})
    )
    key = forms.SlugField(required=False, max_length=120, widget=forms.HiddenInput)

    def clean(self):
        cleaned = super().clean()
        raw, value_type = cleaned.get("value"), cleaned.get("value_type")
        if raw is None or value_type is None:
            return cleaned
        try:
            cleaned["value"] = _parse(raw.strip(), value_type)
        except ValueError as exc:
            self.add_error("value", str(exc))
        return cleaned


def _parse(raw: str, value_type: str):
    if value_type == ValueType.BOOLEAN:
        lowered = raw.lower()
        if lowered in {"yes", "true", "y", "1"}:
            return True
        if lowered in {"no", "false", "n", "0"}:
            return False
        raise ValueError("Enter yes or no.")
    if value_type == ValueType.NUMERIC:
        try:
            number = float(raw)
        except ValueError:
            raise ValueError("Enter a number.") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise ValueError("Enter a finite number.")
        return int(number) if number.is_integer() else number
    if value_type == ValueType.STRUCTURED:
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"Not valid JSON: {exc.msg} (line {exc.lineno}).") from None
    return raw
