"""The label schema editor: one ModelForm, with list fields typed as lines and commas."""

from django import forms
from django.core.exceptions import ValidationError

from .models import Assessment, LabelSchema
from .validation import check_against_schema

ValueType = LabelSchema.ValueType
AppliesTo = LabelSchema.AppliesTo

# The fields only some value types have; saving with another type empties them.
TYPE_FIELDS = {
    ValueType.NUMERIC: ("min_value", "max_value", "step"),
    ValueType.CATEGORICAL: ("options", "multi_select"),
    ValueType.BOOLEAN: ("positive_label", "negative_label"),
    ValueType.TEXT: ("max_length",),
}
# Span types narrow a schema that applies to spans.
SPAN_TARGETS = (AppliesTo.SPAN, AppliesTo.BOTH)


def _empty(name: str):
    field = LabelSchema._meta.get_field(name)
    return None if field.null else field.get_default()


class LinesField(forms.CharField):
    """A list of strings typed one per line (categorical options)."""

    widget = forms.Textarea(attrs={"rows": 4})

    def prepare_value(self, value):
        return "\n".join(map(str, value)) if isinstance(value, list) else value

    def to_python(self, value):
        lines = [line.strip() for line in (value or "").splitlines()]
        return list(dict.fromkeys(line for line in lines if line))


class CommaListField(LinesField):
    """A list of strings typed with commas (span types)."""

    widget = forms.TextInput

    def prepare_value(self, value):
        return ", ".join(map(str, value)) if isinstance(value, list) else value

    def to_python(self, value):
        items = [item.strip() for item in (value or "").split(",")]
        return list(dict.fromkeys(item for item in items if item))


class LabelSchemaForm(forms.ModelForm):
    options = LinesField(required=False, help_text="One option per line.")
    span_types = CommaListField(
        required=False, help_text="e.g. LLM, RETRIEVER. Leave empty for every span type."
    )
    # The applies_to values that show span_types, for the form's script.
    span_targets = " ".join(SPAN_TARGETS)
    # Sent by the "Save anyway" button once the editor has seen how many stored values break.
    confirm = forms.BooleanField(required=False, widget=forms.HiddenInput)

    class Meta:
        model = LabelSchema
        fields = [
            "name",
            "title",
            "instructions",
            "kind",
            "value_type",
            "min_value",
            "max_value",
            "step",
            "options",
            "multi_select",
            "positive_label",
            "negative_label",
            "max_length",
            "applies_to",
            "span_types",
            "experiments",
            "one_per_annotator",
        ]
        widgets = {
            "instructions": forms.Textarea(attrs={"rows": 3}),
            "experiments": forms.CheckboxSelectMultiple,
        }
        help_texts = {
            "name": "The assessment name it governs, as the API and exports see it.",
            # Each shows inside its value type's fieldset, so none repeats the type's name
            # (the model's help texts do, for the admin, which shows every field at once).
            "step": "The spacing of allowed values (1 for a 1-5 rating).",
            "multi_select": "An answer may be a list of several options.",
            "positive_label": "What true means, shown instead of Yes (e.g. Helpful).",
            "negative_label": "What false means, shown instead of No (e.g. Unhelpful).",
            "max_length": "The longest answer allowed, in characters.",
            "experiments": "The review page and queues offer it on traces of these experiments. "
            "Tick none for every experiment.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            # Stored assessments are linked to a schema by name; renaming would orphan them.
            self.fields["name"].disabled = True
            self.fields["name"].help_text = "Fixed: stored assessments are linked by name."

    def clean(self):
        cleaned = super().clean()
        value_type = cleaned.get("value_type")
        if value_type == ValueType.NUMERIC:
            low, high, step = (cleaned.get(k) for k in TYPE_FIELDS[ValueType.NUMERIC])
            if low is not None and high is not None and low > high:
                self.add_error("max_value", "The maximum must not be below the minimum.")
            if step is not None and step <= 0:
                self.add_error("step", "The step must be positive.")
        if value_type == ValueType.CATEGORICAL and len(cleaned.get("options") or []) < 2:
            self.add_error("options", "A categorical schema needs at least two options.")
        for other, names in TYPE_FIELDS.items():
            if other != value_type:
                cleaned.update((name, _empty(name)) for name in names)
        if cleaned.get("applies_to") not in SPAN_TARGETS:
            cleaned["span_types"] = []
        return cleaned

    def type_fieldsets(self) -> list[dict]:
        """The fields of each value type, for one fieldset per type."""
        return [
            {
                "value_type": value_type,
                "legend": value_type.label,
                "fields": [self[n] for n in names],
            }
            for value_type, names in TYPE_FIELDS.items()
        ]

    def invalid_existing(self) -> int:
        """How many stored, live assessments with this name the new rules would reject."""
        rejected = 0
        rows = (
            Assessment.objects.live()
            .filter(name=self.instance.name)
            .values_list("kind", "value", "span_id")
        )
        for kind, value, span_id in rows.iterator():
            try:
                check_against_schema(self.instance, kind=kind, value=value, span_id=span_id)
            except ValidationError:
                rejected += 1
        return rejected
