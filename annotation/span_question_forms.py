"""Forms for span questions (annotation.span_questions): choosing them on the new-queue
page, and answering them on a queue item, one set of questions per matching span."""

from dataclasses import dataclass

from django import forms

from traces.models import Span
from traces.span_detail import show_value
from traces.tree import TYPE_LABELS

from .models import LabelSchema
from .queue_forms import LabelForms
from .span_questions import SpanTarget, asked_spans

SPAN_QUESTION_ROWS = 2
PREFIX = "spanq"
# MLflow writes its span types in upper case; these are accepted in any case.
KNOWN_SPAN_TYPES = {*TYPE_LABELS, "MEMORY", "UNKNOWN"}


class SpanQuestionForm(forms.Form):
    """One span question; a row with no schema is left out."""

    schema = forms.ModelChoiceField(
        queryset=LabelSchema.objects.exclude(applies_to=LabelSchema.AppliesTo.TRACE),
        required=False,
        label="Schema",
        help_text="A schema that applies to spans.",
    )
    span_type = forms.CharField(
        required=False,
        max_length=64,
        label="Span type",
        help_text="e.g. RETRIEVER, TOOL, LLM, in any case. Empty: any type.",
        widget=forms.TextInput(attrs={"list": "span-types", "spellcheck": "false"}),
    )
    name_pattern = forms.CharField(
        required=False,
        max_length=500,
        label="Span name pattern",
        help_text="Glob syntax: search_* (* any text, ? one character, [ab] one of them); "
        "case-sensitive. Empty: any name.",
        widget=forms.TextInput(attrs={"spellcheck": "false"}),
    )
    optional = forms.BooleanField(
        required=False, help_text="An item can be done without answering it."
    )

    def clean_span_type(self):
        span_type = self.cleaned_data["span_type"]
        return span_type.upper() if span_type.upper() in KNOWN_SPAN_TYPES else span_type

    def clean(self):
        cleaned = super().clean()
        has_target = cleaned.get("span_type") or cleaned.get("name_pattern")
        if cleaned.get("schema") and not has_target:
            raise forms.ValidationError("Give a span type, a name pattern or both.")
        if has_target and not cleaned.get("schema"):
            raise forms.ValidationError("Choose the schema to ask of these spans.")
        return cleaned

    def target(self) -> SpanTarget | None:
        data = self.cleaned_data
        if not data.get("schema"):
            return None
        return SpanTarget(
            schema=data["schema"],
            span_type=data["span_type"].strip(),
            name_pattern=data["name_pattern"].strip(),
            required=not data["optional"],
        )


SpanQuestionFormSet = forms.formset_factory(
    SpanQuestionForm, extra=SPAN_QUESTION_ROWS, max_num=20, validate_max=True
)


def span_question_formset(data=None) -> forms.BaseFormSet:
    """The span question rows; a post without them (a script's) asks no span questions."""
    if data is not None and f"{PREFIX}-TOTAL_FORMS" not in data:
        data = data.copy()
        data.update({f"{PREFIX}-TOTAL_FORMS": "0", f"{PREFIX}-INITIAL_FORMS": "0"})
    return SpanQuestionFormSet(data, prefix=PREFIX)


def span_targets(formset) -> list[SpanTarget]:
    return [target for form in formset if (target := form.target()) is not None]


@dataclass(frozen=True)
class SpanQuestions:
    """One matching span on the queue item: what it read and wrote, and its questions."""

    span: Span
    inputs: dict
    outputs: dict
    forms: LabelForms


class SpanLabelForms:
    """The queue item's span questions: for each matching span, its questions' forms
    (``LabelForms``, prefixed by the span id), posted with the trace questions."""

    def __init__(self, item, data=None, answers=None):
        answers = answers or {}
        self.spans = []
        for asked in asked_spans(item):
            span_id = asked.span.span_id
            mine = {name: a for (sid, name), a in answers.items() if sid == span_id}
            group = LabelForms(asked.schemas, data=data, answers=mine, prefix=f"span{span_id}-s")
            shown = [show_value(asked.span.inputs), show_value(asked.span.outputs)]
            self.spans.append(SpanQuestions(asked.span, *shown, group))

    def __iter__(self):
        return iter(self.spans)

    def is_valid(self) -> bool:
        return all([asked.forms.is_valid() for asked in self.spans])

    def values(self) -> dict:
        return {
            (asked.span.span_id, name): value
            for asked in self.spans
            for name, value in asked.forms.values().items()
        }

    def rationales(self) -> dict:
        return {
            (asked.span.span_id, name): text
            for asked in self.spans
            for name, text in asked.forms.rationales().items()
        }
