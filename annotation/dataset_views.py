"""Evaluation datasets in the browser: the list, one dataset's records with their source
traces, adding traces (from the trace list's filter or a queue), and export."""

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from accounts.roles import write_required
from traces.models import Trace

from . import datasets
from .dataset_forms import AddToDatasetForm
from .export import write_csv, write_jsonl
from .export_views import login_or_token_required
from .models import EvaluationDataset

RECORDS_PER_PAGE = 100
EXPORT_COLUMNS = [
    "dataset_record_id", "inputs", "outputs", "expectations", "tags", "source_type",
    "source_id", "created_time", "last_update_time",
]  # fmt: skip


SHOWN_FIELDS = ("inputs", "expectations", "outputs")


def _json(record, field: str) -> str:
    return json.dumps(getattr(record, field), ensure_ascii=False)


@require_GET
@login_required
def dataset_list(request):
    listed = datasets.with_counts(EvaluationDataset.objects.all())
    return render(request, "annotation/dataset_list.html", {"datasets": listed})


@require_GET
@login_required
def dataset_detail(request, dataset_id):
    dataset = get_object_or_404(EvaluationDataset, dataset_id=dataset_id)
    page = Paginator(
        dataset.records.order_by("created_time", "dataset_record_id"), RECORDS_PER_PAGE
    ).get_page(request.GET.get("page"))
    sources = Trace.objects.in_bulk(
        [record.source_id for record in page if record.source_id], field_name="trace_id"
    )
    rows = [
        (record, sources.get(record.source_id), [_json(record, f) for f in SHOWN_FIELDS])
        for record in page
    ]
    context = {"dataset": dataset, "page": page, "rows": rows}
    return render(request, "annotation/dataset_detail.html", context)


@require_http_methods(["GET", "POST"])
@login_required
@write_required
def dataset_add(request):
    initial = {"filter_query": request.GET.urlencode(), "queue": request.GET.get("queue")}
    if initial["queue"]:
        initial["filter_query"] = ""
    form = AddToDatasetForm(request.POST or None, request=request, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        dataset, inserted, updated = datasets.add_traces(
            dataset=data["dataset"],
            name=data["name"],
            traces=data["traces"],
            user=request.user.username,
        )
        messages.success(request, f"{inserted} records added, {updated} merged.")
        return redirect(dataset)
    return render(request, "annotation/dataset_add.html", {"form": form})


@require_GET
@login_or_token_required
def dataset_export(request, dataset_id):
    dataset = get_object_or_404(EvaluationDataset, dataset_id=dataset_id)
    as_csv = request.GET.get("format") == "csv"
    records = (
        {column: getattr(record, column) for column in EXPORT_COLUMNS}
        for record in dataset.records.order_by("created_time", "dataset_record_id").iterator()
    )
    body = (
        write_csv(EXPORT_COLUMNS, records, bom=False, raw=False) if as_csv else write_jsonl(records)
    )
    response = StreamingHttpResponse(
        body, content_type="text/csv; charset=utf-8" if as_csv else "application/x-ndjson"
    )
    extension = "csv" if as_csv else "jsonl"
    response["Content-Disposition"] = f'attachment; filename="{dataset.dataset_id}.{extension}"'
    return response
