"""The form that adds traces to an evaluation dataset, from a trace-list filter or a queue."""

from django import forms
from django.db.models import Q
from django.http import QueryDict

from traces.filters import TraceFilter
from traces.models import Trace

from .models import EvaluationDataset, Queue, QueueAssignment, QueueItem
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
    items = forms.ChoiceField(
        choices=[("completed", "Completed items only"), ("all", "Every item")],
        initial="completed",
        required=False,
        widget=forms.RadioSelect,
        label="Which of the queue's items",
        help_text="Completed: someone submitted the item. Skipped and declined items are "
        "left out unless you choose every item.",
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
            queue = cleaned["queue"]
            items = queue.items.select_related("trace").order_by("position")
            if cleaned.get("items") != "all":
                submitted = QueueAssignment.objects.filter(
                    item__queue=queue, status=QueueAssignment.Status.DONE
                ).values("item_id")
                items = items.filter(
                    Q(status=QueueItem.Status.COMPLETE) | Q(pk__in=submitted), is_control=False
                )
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
