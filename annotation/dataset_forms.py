"""The form that adds traces to an evaluation dataset, from a trace-list filter or a queue."""

from django import forms
from django.http import QueryDict

from traces.filters import TraceFilter
from traces.models import Trace

from .models import EvaluationDataset, Queue
from .queue_forms import MAX_ITEMS, PAGING_KEYS


class AddToDatasetForm(forms.Form):
    dataset = forms.ModelChoiceField(
        queryset=EvaluationDataset.objects.all(),
        required=False,
        empty_label="A new dataset",
        help_text="Records whose inputs are already there are merged, not repeated.",
    )
    name = forms.CharField(max_length=255, required=False, label="New dataset's name")
    filter_query = forms.CharField(
        required=False, max_length=2000, widget=forms.HiddenInput, label="Trace-list filter"
    )
    queue = forms.ModelChoiceField(
        queryset=Queue.objects.all(), required=False, widget=forms.HiddenInput
    )
    limit = forms.IntegerField(min_value=1, max_value=MAX_ITEMS, initial=1000)

    def __init__(self, *args, request, **kwargs):
        super().__init__(*args, **kwargs)
        self.request = request

    def clean_filter_query(self):
        query = QueryDict(self.cleaned_data["filter_query"].lstrip("?"), mutable=True)
        for key in PAGING_KEYS:
            query.pop(key, None)
        return query.urlencode()

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("dataset") and not (cleaned.get("name") or "").strip():
            self.add_error("name", "Name the new dataset, or choose one.")
        if cleaned.get("limit"):
            cleaned["traces"] = self._traces(cleaned)
            if cleaned["traces"] == []:
                self.add_error(None, "No trace matches; nothing would be added.")
        return cleaned

    def _traces(self, cleaned) -> list[Trace] | None:
        if cleaned.get("queue"):
            items = cleaned["queue"].items.select_related("trace").order_by("position")
            return [item.trace for item in items[: cleaned["limit"]]]
        filterset = TraceFilter(
            QueryDict(cleaned.get("filter_query", "")),
            queryset=Trace.objects.all(),
            request=self.request,
        )
        if not filterset.is_valid():
            self.add_error(None, "The trace-list filter does not work.")
            return None
        ordered = filterset.qs.order_by(*filterset.sort_order.ordering())
        return list(ordered[: cleaned["limit"]])
