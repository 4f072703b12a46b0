"""Label schemas as assessment writes check them: each worker process keeps a copy.

Every write checks its value against the schema of its name, and most names have none; asking
the database each time cost a round trip per write. A worker keeps all schemas by name and,
every ``SCHEMA_CACHE_SECONDS`` (2 by default), reads the one-row LabelSchemaVersion to learn
whether they changed, reloading them only then. Every writer of LabelSchema (pages, MLflow's
label-schema API, admin, demo) calls ``schemas_changed`` in its transaction: it renews the
version, which reaches every other worker within that bound, and drops this process's copy
at once.
"""

import secrets
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from .models import LabelSchema, LabelSchemaVersion

VERSION_ROW = 1


@dataclass(frozen=True)
class _Copy:
    token: str | None
    by_name: dict[str, LabelSchema]
    fresh_until: float


class SchemaCache:
    """One process's copy of the schemas; ``clock`` is a monotonic time in seconds."""

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._copy: _Copy | None = None
        self._lock = threading.Lock()

    def get(self, name: str) -> LabelSchema | None:
        """The schema of that name, at most ``SCHEMA_CACHE_SECONDS`` old; shared, read-only."""
        copy, now = self._copy, self._clock()
        if copy is None or copy.fresh_until <= now:
            with self._lock:
                copy = self._refresh(self._copy, now)
        return copy.by_name.get(name)

    def clear(self) -> None:
        self._copy = None

    def _refresh(self, copy: _Copy | None, now: float) -> _Copy:
        if copy is not None and copy.fresh_until > now:
            return copy  # another thread refreshed it while this one waited
        # The version first: a change committed in between only costs one more reload.
        token = LabelSchemaVersion.objects.filter(pk=VERSION_ROW).values_list("token", flat=True)
        token = token.first()
        if copy is None or copy.token != token:
            by_name = {schema.name: schema for schema in LabelSchema.objects.all()}
        else:
            by_name = copy.by_name
        self._copy = _Copy(token, by_name, now + settings.TRACEMARK_SCHEMA_CACHE_SECONDS)
        return self._copy


_cache = SchemaCache()


def schema_named(name: str) -> LabelSchema | None:
    return _cache.get(name)


def schemas_changed() -> None:
    """Call in the transaction of every write of label schemas (their experiments included)."""
    LabelSchemaVersion.objects.bulk_create(
        [LabelSchemaVersion(pk=VERSION_ROW, token=secrets.token_hex(16))],
        update_conflicts=True,
        unique_fields=["id"],
        update_fields=["token"],
    )
    # Now, for the rest of this transaction, and at commit, for a thread that reloaded the
    # old schemas in between.
    _cache.clear()
    transaction.on_commit(_cache.clear)


def forget() -> None:
    """Drop this process's copy (tests do, as each starts from another database state)."""
    _cache.clear()
