import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def _allow_sync_orm_in_async_contexts():
    # Playwright's sync API runs an event loop in the test thread; Django's ORM refuses to
    # run there unless told it is safe. Tests are single-threaded per process.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    # Each test starts with a worker that remembers no API token and no label schema
    # (accounts.tokens, annotation.schema_cache), whatever ran before. A hook, not a
    # fixture: it runs before a test class's setUpTestData too, which may write through
    # the caches while the previous class's rolled-back rows are still remembered.
    from accounts import tokens
    from annotation import schema_cache

    tokens._cache.clear()
    schema_cache.forget()
