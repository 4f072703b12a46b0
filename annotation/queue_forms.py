"""Forms for queues: building one, labeling an item, skipping, and the Admin's actions."""

import re
from dataclasses import dataclass

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.http import QueryDict

from accounts.roles import Role
from traces.filters import TraceFilter
from traces.models import Trace

from . import session_items
from .forms import form_for, initial_value
from .models import LabelSchema, Queue
from .quality import Activity
from .session_item_forms import SessionIdsField

MAX_ITEMS = 5000
# Query-string keys of the trace list that page through it rather than filter it.
PAGING_KEYS = ("cursor", "before", "after", "page")


def annotator_choices():
    """People who may label: active Admins (superusers included) and Reviewers."""
    return (
        get_user_model()
        .objects.filter(is_active=True)
        .filter(Q(is_superuser=True) | Q(groups__name__in=[Role.ADMIN, Role.REVIEWER]))
        .distinct()
        .order_by("username")
    )


class PersonChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj):
        return obj.get_username()


class QueueForm(forms.Form):
    name = forms.CharField(max_length=255)
    description = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text="What to look for."
    )
    source = forms.ChoiceField(
        choices=[
            ("filter", "Traces matching a trace-list filter"),
            ("ids", "These trace ids"),
            ("sessions", "These session ids"),
        ],
        initial="filter",
        widget=forms.RadioSelect,
        label="Items",
    )
    filter_query = forms.CharField(
        required=False,
        max_length=2000,
        label="Trace-list filter",
        help_text="The trace list's address or query string, e.g. state=ERROR&user=alice. "
        "Empty takes every trace.",
    )
    whole_sessions = forms.BooleanField(
        required=False,
        label="One item per session",
        help_text="Each item is a whole session of the matching traces, labeled as one "
        "conversation.",
    )
    limit = forms.IntegerField(
        min_value=1, max_value=MAX_ITEMS, initial=100, help_text="At most this many items."
    )
    trace_ids = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        label="Trace ids",
        help_text="tr-… ids separated by spaces, commas or new lines.",
    )
    session_ids = SessionIdsField()
    schemas = forms.ModelMultipleChoiceField(
        queryset=LabelSchema.objects.exclude(applies_to=LabelSchema.AppliesTo.SPAN),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Schemas that apply to whole traces (none: span questions only).",
    )
    optional_schemas = forms.ModelMultipleChoiceField(
        queryset=LabelSchema.objects.exclude(applies_to=LabelSchema.AppliesTo.SPAN),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Optional schemas",
        help_text="An item is done for an annotator once they have answered every chosen "
        "schema, except those ticked here.",
    )
    annotators = PersonChoiceField(queryset=None, widget=forms.CheckboxSelectMultiple)
    overlap = forms.IntegerField(
        min_value=1, initial=1, help_text="How many annotators label each item."
    )
    blind = forms.BooleanField(
        required=False, initial=True, help_text="Hide others' answers until one has answered."
    )
    control_rate = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=100,
        initial=10,
        label="Control items (%)",
        help_text="Share of each annotator's items taken from control items with known "
        "answers, which you mark on the queue page. They look like any item.",
    )
    accuracy_threshold = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=100,
        initial=70,
        label="Accuracy warning below (%)",
        help_text="The queue page warns when someone's accuracy on control items is lower.",
    )

    def __init__(self, *args, request, **kwargs):
        super().__init__(*args, **kwargs)
        self.request = request
        self.fields["annotators"].queryset = annotator_choices()

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if Queue.objects.filter(name=name).exists():
            raise forms.ValidationError("A queue with this name already exists.")
        return name

    def clean_control_rate(self):
        rate = self.cleaned_data["control_rate"]
        return self.fields["control_rate"].initial if rate is None else rate

    def clean_accuracy_threshold(self):
        percent = self.cleaned_data["accuracy_threshold"]
        return self.fields["accuracy_threshold"].initial if percent is None else percent

    def clean_filter_query(self):
        raw = self.cleaned_data["filter_query"].strip()
        query = QueryDict(raw.partition("?")[2] if "?" in raw else raw, mutable=True)
        for key in PAGING_KEYS:
            query.pop(key, None)
        return query.urlencode()

    def clean(self):
        cleaned = super().clean()
        source, limit = cleaned.get("source"), cleaned.get("limit")
        by_session = source == "sessions" or (source == "filter" and cleaned.get("whole_sessions"))
        cleaned["by_session"] = by_session
        if source == "ids":
            cleaned["traces"] = self._traces_from_ids(cleaned.get("trace_ids", ""))
        elif source == "sessions":
            cleaned["sessions"] = cleaned.get("session_ids") or []
        elif "filter_query" in cleaned and limit:
            traces = self._filtered_traces(cleaned["filter_query"])
            if traces is not None and by_session:
                cleaned["sessions"] = session_items.sessions_of(traces, limit)
            elif traces is not None:
                cleaned["traces"] = list(traces[:limit])
        if cleaned.get("traces") == []:
            self.add_error(None, "No trace matches; the queue would be empty.")
        if cleaned.get("sessions") == []:
            self.add_error(None, "No session matches; the queue would be empty.")
        schemas, optional = cleaned.get("schemas"), cleaned.get("optional_schemas")
        if schemas is not None and optional is not None:
            optional = set(optional)
            if optional - set(schemas):
                self.add_error("optional_schemas", "Tick only schemas chosen for the queue.")
            cleaned["required_schemas"] = [s for s in schemas if s not in optional]
        annotators, overlap = cleaned.get("annotators"), cleaned.get("overlap")
        if annotators is not None and overlap and overlap > len(annotators):
            self.add_error("overlap", "Overlap cannot exceed the number of annotators chosen.")
        return cleaned

    def _filtered_traces(self, query: str) -> QuerySet[Trace] | None:
        filterset = TraceFilter(
            QueryDict(query), queryset=Trace.objects.all(), request=self.request
        )
        if not filterset.is_valid():
            problems = "; ".join(
                f"{name}: {' '.join(errors)}" for name, errors in filterset.errors.items()
            )
            self.add_error("filter_query", f"This filter does not work: {problems}")
            return None
        return filterset.qs.order_by(*filterset.sort_order.ordering())

    def _traces_from_ids(self, text: str) -> list[Trace] | None:
        ids = list(dict.fromkeys(t for t in re.split(r"[\s,]+", text) if t))
        if len(ids) > MAX_ITEMS:
            self.add_error("trace_ids", f"At most {MAX_ITEMS} traces per queue.")
            return None
        found = Trace.objects.in_bulk(ids, field_name="trace_id")
        unknown = [t for t in ids if t not in found]
        if unknown:
            self.add_error("trace_ids", f"Unknown trace ids: {', '.join(unknown[:5])}.")
            return None
        return [found[t] for t in ids]


class LabelForms:
    """The queue item's per-schema forms, one per schema of the item, posted together.

    Only a form with something typed in it (a value or a rationale) is bound and validated;
    the others mean "no answer" and show what was there. Whether the answers given are
    enough is ``queues.submit``'s rule.
    """

    # The fields whose text makes a form an answer (bound and validated).
    answer_fields = ("value", "rationale")

    def __init__(self, schemas, data=None, answers=None, prefix="s"):
        answers = answers or {}
        self.forms = []
        for schema in schemas:
            current = answers.get(schema.name)
            initial = (
                {"value": initial_value(current.value), "rationale": current.rationale}
                if current
                else {}
            )
            name = f"{prefix}{schema.pk}"
            typed = data is not None and any(
                data.get(f"{name}-{field}", "").strip() for field in self.answer_fields
            )
            form = form_for(schema, data=data if typed else None, prefix=name, initial=initial)
            if schema.value_type == LabelSchema.ValueType.CATEGORICAL:
                form.fields["value"].widget = forms.RadioSelect(
                    choices=form.fields["value"].choices
                )
            # The person's answer from before (the review page, another queue): submitting
            # keeps or changes it, as they have one answer per question.
            form.earlier = current
            self.forms.append(form)

    def __iter__(self):
        return iter(self.forms)

    def is_valid(self) -> bool:
        return all([form.is_valid() for form in self.forms if form.is_bound])

    def values(self) -> dict:
        return {
            form.schema.name: form.cleaned_data["value"] if form.is_bound else None
            for form in self.forms
        }

    def rationales(self) -> dict:
        return {
            form.schema.name: form.cleaned_data.get("rationale", "")
            for form in self.forms
            if form.is_bound
        }


class ControlAnswerForms(LabelForms):
    """The known answers of a control item, one optional form per queue schema, starting
    from ``known`` (schema name → value)."""

    # Known answers carry no rationale.
    answer_fields = ("value",)

    def __init__(self, schemas, data=None, known=None):
        answers = {name: KnownAnswer(value) for name, value in (known or {}).items()}
        super().__init__(schemas, data=data, answers=answers)


@dataclass(frozen=True)
class KnownAnswer:
    value: object
    rationale: str = ""


class SkipForm(forms.Form):
    reason = forms.CharField(
        max_length=1000, label="Why skip?", help_text="e.g. not in English, trace is broken."
    )


class QueueStatusForm(forms.Form):
    status = forms.ChoiceField(choices=Queue.Status.choices)


class ReassignForm(forms.Form):
    to_user = forms.ModelChoiceField(queryset=None, label="Give to")

    def __init__(self, *args, queue, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["to_user"].queryset = queue.annotators.filter(is_active=True)
        self.fields["to_user"].label_from_instance = lambda user: user.get_username()


class ControlItemForm(forms.Form):
    """Whether an item is a control item; its known answers come in LabelForms beside it."""

    control = forms.TypedChoiceField(
        choices=[("true", "Control item"), ("false", "Ordinary item")],
        coerce=lambda value: value == "true",
    )


class ActivityForm(forms.Form):
    """A sign of life from the item page (annotation.quality.record_activity)."""

    state = forms.ChoiceField(choices=Activity.choices, required=False)

    def clean_state(self):
        return self.cleaned_data["state"] or Activity.ACTIVE
