"""The judge report pages (see annotation.judge_report): an experiment's judges, one judge,
the queue made from a judge's disagreements (Admins) and the judge–gold pairs download,
which scripts can call with an API token like the export's."""

from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.datastructures import MultiValueDict
from django.utils.http import content_disposition_header
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_POST

from accounts.roles import admin_required, is_admin
from traces.models import Experiment, Trace

from . import datasets, judge_report
from .export import FORMATS, write_csv, write_jsonl
from .export_views import login_or_token_required
from .judge_report import ITEM_CHOICES, PAIR_COLUMNS, JudgeKey
from .models import EvaluationDataset
from .queue_forms import PersonChoiceField, annotator_choices

REFUSED_QUEUE_FORM = "judge_queue_form"


class JudgeForm(forms.Form):
    """Which judge: the feedback name and the judge's source id."""

    name = forms.CharField(max_length=255)
    source = forms.CharField(max_length=255, required=False)

    def key(self) -> JudgeKey:
        return JudgeKey(self.cleaned_data["name"], self.cleaned_data["source"])


class JudgeQueueForm(JudgeForm):
    items = forms.ChoiceField(
        choices=[(value, f"Items that {words}") for value, words in ITEM_CHOICES.items()],
        widget=forms.RadioSelect,
        initial="disagreeing",
    )
    annotators = PersonChoiceField(queryset=None, widget=forms.CheckboxSelectMultiple)
    overlap = forms.IntegerField(min_value=1, initial=2, help_text="People per item.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["annotators"].queryset = annotator_choices()


class JudgeDatasetForm(JudgeForm):
    """Which dataset of the experiment gets the disagreements, or the new one's name."""

    dataset = forms.ModelChoiceField(
        queryset=EvaluationDataset.objects.none(),
        required=False,
        empty_label="A new dataset",
        help_text="Records whose inputs are already there are merged, not repeated.",
    )
    dataset_name = forms.CharField(max_length=255, required=False, label="New dataset's name")

    def __init__(self, *args, experiment, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["dataset"].queryset = EvaluationDataset.objects.filter(
            experiments=experiment
        ).order_by("name")

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("dataset") and not (cleaned.get("dataset_name") or "").strip():
            self.add_error("dataset_name", "Name the new dataset, or choose one.")
        return cleaned


class PairsForm(forms.Form):
    name = forms.CharField(max_length=255, required=False)
    source = forms.CharField(max_length=255, required=False)
    format = forms.ChoiceField(choices=[(f, f) for f in FORMATS], required=False)


def _report_or_404(request, experiment, key: JudgeKey, with_open=False):
    found = judge_report.build(experiment, user=request.user, key=key, with_open=with_open)
    [report] = found or [None]
    if report is None:
        raise Http404("No such judge in this experiment.")
    return report


@require_GET
@login_required
def judge_list(request, experiment_id):
    experiment = get_object_or_404(Experiment, pk=experiment_id)
    context = {
        "experiment": experiment,
        "reports": judge_report.build(experiment, user=request.user),
        "experiments": Experiment.objects.only("id", "name"),
    }
    return render(request, "annotation/judge_list.html", context)


def _judge_page(request, experiment, report, queue_form=None, dataset_form=None):
    """The judge page; an invalid queue or dataset form comes back to it with its errors
    (200)."""
    initial = {"name": report.key.name, "source": report.key.source_id}
    context = {
        "experiment": experiment,
        "report": report,
        "disagreeing": judge_report.with_details(report.disagreeing[: judge_report.MAX_LISTED]),
        "is_admin": is_admin(request.user),
        "version_key": settings.TRACEMARK_JUDGE_VERSION_KEY,
        "queue_form": queue_form or JudgeQueueForm(initial=initial),
        "dataset_form": dataset_form or JudgeDatasetForm(initial=initial, experiment=experiment),
    }
    return render(request, "annotation/judge_detail.html", context)


@require_GET
@login_required
def judge_detail(request, experiment_id):
    experiment = get_object_or_404(Experiment, pk=experiment_id)
    form = JudgeForm(request.GET)
    if not form.is_valid():
        raise Http404("Name a judge.")
    report = _report_or_404(request, experiment, form.key())
    return _judge_page(request, experiment, report, _refused_queue_form(request, experiment))


@require_POST
@login_required
@admin_required
def judge_queue(request, experiment_id):
    experiment = get_object_or_404(Experiment, pk=experiment_id)
    form = JudgeQueueForm(request.POST)
    judge = JudgeForm(request.POST)
    if not judge.is_valid():
        raise Http404("Name a judge.")
    report = _report_or_404(request, experiment, judge.key(), with_open=True)
    if form.is_valid():
        try:
            queue = judge_report.queue_for_judge(
                report=report,
                items=form.cleaned_data["items"],
                annotators=form.cleaned_data["annotators"],
                overlap=form.cleaned_data["overlap"],
                created_by=request.user,
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(
                request, f"Queue '{queue.name}' made with {queue.items.count()} items."
            )
            return redirect("annotation:queue-detail", queue.pk)
    # Back to the judge page (its own address, not this one's), the form filled in as sent.
    request.session[REFUSED_QUEUE_FORM] = {
        "experiment": experiment.pk,
        "data": {key: request.POST.getlist(key) for key in form.fields},
        "errors": list(form.non_field_errors()),
    }
    query = urlencode({"name": report.key.name, "source": report.key.source_id})
    return redirect(
        f"{reverse('annotation:judge-detail', args=[experiment.pk])}?{query}#judge-queue"
    )


def _refused_queue_form(request, experiment) -> JudgeQueueForm | None:
    """The queue form a POST to ``judge_queue`` refused, bound again to show its errors."""
    refused = request.session.pop(REFUSED_QUEUE_FORM, None)
    if not refused or refused["experiment"] != experiment.pk:
        return None
    form = JudgeQueueForm(MultiValueDict(refused["data"]))
    if form.is_valid():  # Refused when making the queue, not by the form: say why again.
        for message in refused["errors"]:
            form.add_error(None, message)
    return form if form.errors else None


@require_POST
@login_required
@admin_required
def judge_dataset(request, experiment_id):
    """Add the judge's disagreements to a dataset: the traces' inputs, the gold values as
    expectations."""
    experiment = get_object_or_404(Experiment, pk=experiment_id)
    form = JudgeDatasetForm(request.POST, experiment=experiment)
    judge = JudgeForm(request.POST)
    if not judge.is_valid():
        raise Http404("Name a judge.")
    report = _report_or_404(request, experiment, judge.key())
    if not report.disagreeing:
        form.add_error(None, "The judge disagrees with no gold value; nothing would be added.")
    if not form.is_valid():
        return _judge_page(request, experiment, report, dataset_form=form)
    traces = Trace.objects.in_bulk([pair.trace_pk for pair in report.disagreeing])
    dataset, inserted, updated = datasets.add_traces(
        dataset=form.cleaned_data["dataset"],
        name=form.cleaned_data["dataset_name"],
        traces=traces.values(),
        experiments=[experiment],
        expectations=judge_report.gold_expectations(report),
        user=request.user.username,
    )
    messages.success(request, f"{inserted} records added, {updated} merged.")
    return redirect(dataset)


@require_GET
@login_or_token_required
def judge_pairs(request, experiment_id):
    """Stream the judge–gold pairs; a script sends its API token like the export's."""
    experiment = get_object_or_404(Experiment, pk=experiment_id)
    form = PairsForm(request.GET)
    if not form.is_valid():
        return HttpResponse(form.errors.as_text(), status=400, content_type="text/plain")
    data = form.cleaned_data
    key = JudgeKey(data["name"], data["source"]) if data["name"] else None
    reports = judge_report.build(experiment, user=request.user, key=key)
    fmt = data["format"] or "csv"
    records = judge_report.pair_records(reports)
    body = write_csv(PAIR_COLUMNS, records, bom=False, raw=False) if fmt == "csv" else None
    response = StreamingHttpResponse(body or write_jsonl(records), content_type=FORMATS[fmt])
    what = slugify(f"{experiment.name} {data['name']} {data['source']}")
    filename = f"tracemark_judge-pairs_{what}_{timezone.localdate():%Y-%m-%d}.{fmt}"
    response["Content-Disposition"] = content_disposition_header(True, filename)
    response["Cache-Control"] = "no-store"
    return response
