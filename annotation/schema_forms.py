"""The label schema editor: one ModelForm, with list fields typed as lines and commas."""

from django import forms
from django.core.exceptions import ValidationError

from .models import Assessment, LabelSchema
from .validation import check_against_schema

ValueType = LabelSchema.ValueType


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
    options = LinesField(required=False, help_text="Categorical: one option per line.")
    span_types = CommaListField(
        required=False, help_text="e.g. LLM, RETRIEVER. Leave empty for every span type."
    )
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
            "step": "Numeric: the spacing of allowed values (1 for a 1-5 rating).",
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
        if value_type != ValueType.NUMERIC:
            cleaned["min_value"] = cleaned["max_value"] = cleaned["step"] = None
        else:
            low, high, step = (cleaned.get(k) for k in ("min_value", "max_value", "step"))
            if low is not None and high is not None and low > high:
                self.add_error("max_value", "The maximum must not be below the minimum.")
            if step is not None and step <= 0:
                self.add_error("step", "The step must be positive.")
        if value_type == ValueType.CATEGORICAL and len(cleaned.get("options") or []) < 2:
            self.add_error("options", "A categorical schema needs at least two options.")
        if value_type != ValueType.CATEGORICAL:
            cleaned["options"] = []
            cleaned["multi_select"] = False
        if value_type != ValueType.BOOLEAN:
            cleaned["positive_label"] = cleaned["negative_label"] = ""
        if value_type != ValueType.TEXT:
            cleaned["max_length"] = None
        if cleaned.get("applies_to") == LabelSchema.AppliesTo.TRACE:
            cleaned["span_types"] = []
        return cleaned

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
