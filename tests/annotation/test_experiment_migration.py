"""Migrations 0017 and 0018 give stored assessments their trace's experiment."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("annotation", "0016_assessment_live_human_index")]
AFTER = [("annotation", "0018_assessment_experiment_required")]


@pytest.mark.django_db(transaction=True)
def test_stored_assessments_get_their_traces_experiment():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    apps = executor.loader.project_state(BEFORE).apps
    Experiment, Trace = (apps.get_model("traces", name) for name in ("Experiment", "Trace"))
    traces = [
        Trace.objects.create(
            trace_id=f"tr-{name}",
            experiment=Experiment.objects.create(name=name),
            request_time=1,
        )
        for name in ("first", "second")
    ]
    Assessment = apps.get_model("annotation", "Assessment")
    for trace in traces:
        Assessment.objects.create(
            assessment_id=f"a-{trace.trace_id}",
            trace=trace,
            kind="feedback",
            name="helpful",
            value=True,
            source_type="HUMAN",
        )

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    apps = executor.loader.project_state(AFTER).apps

    stored = apps.get_model("annotation", "Assessment").objects.values_list(
        "trace__experiment_id", "experiment_id"
    )
    assert len(stored) == 2
    assert all(trace_experiment == experiment for trace_experiment, experiment in stored)

    # Back to the latest schema, so later migrations' columns exist for the tests after this.
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
