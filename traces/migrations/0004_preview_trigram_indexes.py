"""Trigram indexes for the trace list's text search on PostgreSQL (no-ops on SQLite).

The list's search is ``request_preview__icontains`` OR ``response_preview__icontains``, which
Django writes as ``UPPER(column) LIKE UPPER('%text%')``; a pg_trgm GIN index on the same
``UPPER(column)`` expression serves it, where otherwise every trace is read. pg_trgm itself
is created by 0003_search_indexes. Built CONCURRENTLY, so the migration is not atomic.
"""

from django.db import migrations

POSTGRES_INDEXES = {
    "trace_request_trgm_idx": "traces_trace USING gin (UPPER(request_preview) gin_trgm_ops)",
    "trace_response_trgm_idx": "traces_trace USING gin (UPPER(response_preview) gin_trgm_ops)",
}


def create_postgres_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
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
        ("traces", "0003_search_indexes"),
    ]

    operations = [migrations.RunPython(create_postgres_indexes, drop_postgres_indexes)]
