"""The per-experiment overview page (see annotation.overview for what it computes)."""

from django import forms
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET

from traces.models import Experiment, Trace

from . import overview


class ExperimentPicker(forms.Form):
    experiment = forms.ModelChoiceField(queryset=Experiment.objects.all())


@require_GET
@login_required
def overview_index(request):
    """Open the chosen experiment's overview, else that of the experiment with the newest trace."""
    picker = ExperimentPicker(request.GET)
    if picker.is_valid():
        return redirect("annotation:overview", experiment_id=picker.cleaned_data["experiment"].pk)
    newest = Trace.objects.order_by("-request_time").values_list("experiment_id", flat=True)
    experiment_id = newest.first()
    if experiment_id is None:
        experiment_id = Experiment.objects.order_by("id").values_list("id", flat=True).first()
    if experiment_id is None:
        return render(request, "annotation/overview.html", {"summary": None, "experiments": []})
    return redirect("annotation:overview", experiment_id=experiment_id)


@require_GET
@login_required
def experiment_overview(request, experiment_id):
    experiment = get_object_or_404(Experiment, pk=experiment_id)
    context = {
        "summary": overview.build(experiment, user=request.user),
        "experiments": Experiment.objects.only("id", "name"),
    }
    return render(request, "annotation/overview.html", context)
