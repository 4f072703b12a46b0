"""Runs pages: an experiment's runs with their metrics, two side by side, and one run."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from . import runs
from .models import Experiment, Run

MAX_RUNS = 200


@require_GET
@login_required
def run_list(request, experiment_id):
    """The experiment's newest runs, a column per metric; ``?compare=<id>&compare=<id>``
    puts two of them side by side. Two queries whatever the number of runs."""
    experiment = get_object_or_404(Experiment, pk=experiment_id)
    listed = list(experiment.runs.order_by("-start_time", "run_id")[:MAX_RUNS])
    chosen = request.GET.getlist("compare")[:2]
    by_id = {run.run_id: run for run in listed}
    compared = [by_id[run_id] for run_id in chosen if run_id in by_id]
    metric_keys = sorted({key for run in listed for key in run.metrics})
    context = {
        "experiment": experiment,
        "rows": [
            (run, [run.metrics.get(key, {}).get("value") for key in metric_keys]) for run in listed
        ],
        "metric_keys": metric_keys,
        "compared": compared if len(compared) == 2 else [],
        "compare_hint": request.GET.getlist("compare") and len(compared) != 2,
        "comparison": _comparison(compared) if len(compared) == 2 else [],
    }
    return render(request, "traces/run_list.html", context)


def _comparison(pair: list[Run]) -> list[tuple[str, str, object, object]]:
    """Rows (section, key, first value, second value) for metrics, then params."""
    rows = []
    for section, values in (("Metric", lambda r: r.metrics), ("Param", lambda r: r.params)):
        keys = sorted(set(values(pair[0])) | set(values(pair[1])))
        for key in keys:
            first, second = (values(run).get(key) for run in pair)
            if section == "Metric":
                first, second = (v["value"] if v else None for v in (first, second))
            rows.append((section, key, first, second))
    return rows


@require_GET
@login_required
def run_detail(request, run_id):
    run = get_object_or_404(Run.objects.select_related("experiment"), run_id=run_id)
    context = {
        "run": run,
        "trace_count": runs.traces_of(run).count(),
        "metrics": sorted(run.metrics.items()),
        "params": sorted(run.params.items()),
        "tags": sorted((k, v) for k, v in run.tags.items() if not k.startswith("mlflow.")),
    }
    return render(request, "traces/run_detail.html", context)
