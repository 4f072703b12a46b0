"""The trace list's filters: every GET parameter of the list goes through TraceFilter.

Each filter lands on an indexed column (experiment, request_time, state, user, session,
client_request_id, execution_duration) or on an EXISTS over assessments, which
assessment_trace_name_idx / assessment_annotator_idx serve. Tag and metadata filters are
the trace search's JSONHasString: containment that the GIN indexes serve on PostgreSQL,
the same string comparison on SQLite. Text search in previews is the one unindexed filter.
"""

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q

from . import feedback, runs
from .models import Experiment, Trace
from .pagination import DEFAULT_SORT, SORTS
from .search import JSONHasString


class KeyValueField(forms.CharField):
    """``key=value`` (split at the first "="); with ``value_optional`` a bare ``key`` too."""

    def __init__(self, *args, value_optional=False, **kwargs):
        self.value_optional = value_optional
        super().__init__(*args, **kwargs)

    def to_python(self, value):
        value = super().to_python(value).strip()
        if not value:
            return None
        key, sep, val = value.partition("=")
        key = key.strip()
        if not key or not (sep or self.value_optional):
            raise ValidationError("Write it as key=value.", code="invalid_key_value")
        return (key, val.strip() if sep else None)


class KeyValueFilter(django_filters.CharFilter):
    field_class = KeyValueField


def _ms(moment) -> int:
    return int(moment.timestamp() * 1000)


def _search(placeholder: str, **attrs):
    return forms.TextInput(attrs={"type": "search", "placeholder": placeholder, **attrs})


def _moment():
    return forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


class TraceFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(
        method="filter_text", label="Search", widget=_search("Request or response text")
    )
    experiment = django_filters.ModelChoiceFilter(
        queryset=Experiment.objects.all(), empty_label="All experiments"
    )
    state = django_filters.ChoiceFilter(choices=Trace.State.choices, empty_label="Any state")
    since = django_filters.DateTimeFilter(method="filter_since", label="From", widget=_moment())
    until = django_filters.DateTimeFilter(method="filter_until", label="To", widget=_moment())
    user = django_filters.CharFilter(widget=_search("User id"))
    session = django_filters.CharFilter(widget=_search("Session id"))
    client_request_id = django_filters.CharFilter(
        label="Client request id", widget=_search("Client request id")
    )
    run = django_filters.CharFilter(
        method="filter_run",
        label="Run",
        help_text="A run's id or name.",
        widget=_search("Run id or name"),
    )
    tag = KeyValueFilter(method="filter_tag", label="Tag", widget=_search("key=value"))
    metadata = KeyValueFilter(
        method="filter_metadata", label="Metadata", widget=_search("key=value")
    )
    feedback = KeyValueFilter(
        method="filter_feedback",
        value_optional=True,
        label="Has feedback",
        widget=_search("name[=value]"),
    )
    reviewed = django_filters.ChoiceFilter(
        method="filter_reviewed",
        label="Reviewed",
        choices=[("me", "Reviewed by me"), ("not-me", "Not reviewed by me")],
        empty_label="Anyone or no one",
    )
    sort = django_filters.ChoiceFilter(
        method="filter_sort",
        label="Sort",
        choices=[(sort.key, sort.label) for sort in SORTS.values()],
        empty_label=None,
    )

    class Meta:
        model = Trace
        fields = []

    @property
    def sort_order(self):
        """The chosen Sort; the list's keyset pagination orders by it (see pagination.py)."""
        self.form.is_valid()
        return SORTS.get(self.form.cleaned_data.get("sort"), DEFAULT_SORT)

    @property
    def is_filtered(self) -> bool:
        """Whether anything narrows the list (the sort order does not)."""
        return any(self.data.get(name) for name in self.filters if name != "sort")

    def filter_text(self, queryset, name, value):
        return queryset.filter(
            Q(request_preview__icontains=value) | Q(response_preview__icontains=value)
        )

    def filter_since(self, queryset, name, value):
        return queryset.filter(request_time__gte=_ms(value))

    def filter_until(self, queryset, name, value):
        return queryset.filter(request_time__lt=_ms(value))

    def filter_run(self, queryset, name, value):
        # The client names the run in each trace made inside it, as MLflow's search does;
        # people know a run by the name the pages show, which several runs may share.
        return queryset.filter(runs.made_in(runs.ids_named(value)))

    def filter_tag(self, queryset, name, value):
        return queryset.filter(JSONHasString("tags", *value))

    def filter_metadata(self, queryset, name, value):
        return queryset.filter(JSONHasString("trace_metadata", *value))

    def filter_feedback(self, queryset, name, value):
        condition = feedback.has_feedback(
            *value, user=self.request.user, experiment=self._experiment
        )
        return queryset.filter(condition)

    def filter_reviewed(self, queryset, name, value):
        mine = feedback.reviewed_by(self.request.user, experiment=self._experiment)
        return queryset.filter(mine if value == "me" else ~mine)

    @property
    def _experiment(self):
        """The experiment the list is narrowed to, or None."""
        return self.form.cleaned_data.get("experiment")

    def filter_sort(self, queryset, name, value):
        # Ordering belongs to keyset pagination; the field only validates the choice.
        return queryset
