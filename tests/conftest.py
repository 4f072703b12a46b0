import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def _allow_sync_orm_in_async_contexts():
    # Playwright's sync API runs an event loop in the test thread; Django's ORM refuses to
    # run there unless told it is safe. Tests are single-threaded per process.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(autouse=True)
def _forget_remembered_tokens():
    # Each test starts with a worker that remembers no API token, whatever ran before.
    from accounts import tokens

    tokens._cache.clear()


@pytest.fixture(autouse=True)
def _forget_label_schemas():
    # Likewise for the worker's copy of the label schemas (annotation.schema_cache).
    from annotation import schema_cache

    schema_cache.forget()
