"""Migration 0004 measures spans stored before per-trace limits existed."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("traces", "0003_search_indexes")]
AFTER = [("traces", "0004_trace_size_limits")]


@pytest.mark.django_db(transaction=True)
def test_stored_spans_and_traces_get_their_sizes():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    apps = executor.loader.project_state(BEFORE).apps
    experiment = apps.get_model("traces", "Experiment").objects.create(name="old")
    trace = apps.get_model("traces", "Trace").objects.create(
        trace_id="tr-old", experiment=experiment, request_time=1, span_count=2
    )
    Span = apps.get_model("traces", "Span")
    Span.objects.create(
        trace=trace, span_id="a" * 16, name="root", start_time_ns=1, inputs={"q": "x" * 1000}
    )
    Span.objects.create(trace=trace, span_id="b" * 16, name="child", start_time_ns=2)

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    apps = executor.loader.project_state(AFTER).apps

    sizes = dict(apps.get_model("traces", "Span").objects.values_list("span_id", "size_bytes"))
    assert sizes["a" * 16] > 1000
    assert sizes["b" * 16] > 0
    stored = apps.get_model("traces", "Trace").objects.get(trace_id="tr-old")
    assert stored.span_bytes == sum(sizes.values())

    # Back to the latest schema, so later migrations' columns exist for the tests after this.
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
