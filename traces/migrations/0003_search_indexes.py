"""Indexes for traces.search, so that trace searches on PostgreSQL read few rows.

The two model indexes (end_time_ms and name orders) work on both databases. The rest only
PostgreSQL can build, so they are created here, outside the model state, and are no-ops on
SQLite:

- GIN on tags and trace_metadata: ``tags.k = 'v'`` becomes ``tags @> '{"k": "v"}'``
  (traces.search.JSONHasString), ``IS NULL`` / ``IS NOT NULL`` are ``tags ? 'k'``.
- execution_duration DESC NULLS LAST with the search's tie-breakers, for
  ``order_by execution_time DESC`` (trace_duration_idx serves the ascending order).
- A pg_trgm GIN index on a span's content, for ``text`` / ``span.content`` LIKE and ILIKE;
  its expression is traces.search.SpanContent's SQL. pg_trgm is a trusted extension: the
  database owner may create it.
- pg_trgm GIN indexes on ``UPPER(request_preview)`` and ``UPPER(response_preview)``, for the
  trace list's text search, which Django writes as ``UPPER(column) LIKE UPPER('%text%')``.

They are built CONCURRENTLY, so ingest keeps writing while a large table is indexed; hence the
migration is not atomic.
"""

import django.db.models.expressions
import django.db.models.fields.json
import django.db.models.functions.comparison
from django.db import migrations, models

SPAN_CONTENT = (
    "(COALESCE((name), '') || ' ' || COALESCE((attributes)::text, '') || ' ' || "
    "COALESCE((inputs)::text, '') || ' ' || COALESCE((outputs)::text, '') || ' ' || "
    "COALESCE((events)::text, ''))"
)
POSTGRES_INDEXES = {
    "trace_tags_gin_idx": "traces_trace USING gin (tags)",
    "trace_metadata_gin_idx": "traces_trace USING gin (trace_metadata)",
    "trace_duration_desc_idx": (
        "traces_trace (execution_duration DESC NULLS LAST, request_time DESC, trace_id)"
    ),
    "span_content_trgm_idx": f"traces_span USING gin ({SPAN_CONTENT} gin_trgm_ops)",
    "trace_request_trgm_idx": "traces_trace USING gin (UPPER(request_preview) gin_trgm_ops)",
    "trace_response_trgm_idx": "traces_trace USING gin (UPPER(response_preview) gin_trgm_ops)",
}


def create_postgres_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, definition in POSTGRES_INDEXES.items():
        schema_editor.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {definition}")


def drop_postgres_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in POSTGRES_INDEXES:
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("traces", "0002_roles_and_default_experiment"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="trace",
            index=models.Index(
                models.OrderBy(
                    django.db.models.expressions.CombinedExpression(
                        models.F("request_time"),
                        "+",
                        django.db.models.functions.comparison.Coalesce("execution_duration", 0),
                    ),
                    descending=True,
                ),
                models.OrderBy(models.F("request_time"), descending=True),
                models.F("trace_id"),
                name="trace_end_time_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="trace",
            index=models.Index(
                django.db.models.fields.json.KeyTextTransform("mlflow.traceName", "tags"),
                models.OrderBy(models.F("request_time"), descending=True),
                models.F("trace_id"),
                name="trace_name_idx",
            ),
        ),
        migrations.RunPython(create_postgres_indexes, drop_postgres_indexes),
    ]
