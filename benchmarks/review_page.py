"""Time to open the review page of the 2,000-span demo trace, the trace list, and the writes.

    .venv/bin/python benchmarks/review_page.py
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tm_bench_review \
        .venv/bin/python benchmarks/review_page.py

A throwaway database (Django's test database for the configured engine, created, migrated
and destroyed here) is loaded with ``seed_demo``'s data, which includes a 2,000-span agent
run whose root has 500 children. Requests go through the Django test client signed in as a
Reviewer: routing, middleware, queries and template rendering, without the network or a
browser. Each number is the median of 20 timed requests after two warm-ups.

Measured:
- the full review page of the big trace, and the same page deep-linked to a leaf span;
- the htmx request that loads the next page (100) of the root's children;
- a feedback submit round trip: an htmx POST of a thumbs-down on a retriever span, which
  writes through annotation.services and answers with the re-rendered span region
  (a different span each time, as a reviewer moving through the run would);
- the trace list's first page (50 rows with readable previews and feedback badges);
- submit and next in a queue: the POST of an item's answer, its redirect, and the next
  item's page, on a queue of the demo's support traces made here for the Reviewer.
"""

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SECRET_KEY", "benchmark-only")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("SECURE_COOKIES", "false")
os.environ.setdefault("STATIC_MANIFEST", "false")
os.environ.setdefault(
    "TEST_DATABASE_NAME", str(Path(tempfile.gettempdir()) / "tm_bench_review.sqlite3")
)

RUNS = 20
WARMUPS = 2


def median_ms(request) -> float:
    for _ in range(WARMUPS):
        request(-1 - _)
    timings = []
    for i in range(RUNS):
        started = time.perf_counter()
        response = request(i)
        timings.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"Unexpected status {response.status_code}")
    return statistics.median(timings)


def main() -> None:
    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment
    from django.urls import reverse

    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        from annotation import queues
        from annotation.demo import BIG_TRACE_SPANS, seed
        from annotation.models import LabelSchema
        from traces.models import Span, Trace

        started = time.perf_counter()
        seed(password="benchmark-only-password")
        print(f"Seeded demo data in {time.perf_counter() - started:.1f}s ({connection.vendor}).")
        trace = Trace.objects.get(client_request_id="req-big-run")
        assert trace.span_count == BIG_TRACE_SPANS, trace.span_count
        root = Span.objects.get(trace=trace, parent_span_id=None)
        leaf = Span.objects.filter(trace=trace, name="stock_api").last()
        retrievers = list(
            Span.objects.filter(trace=trace, span_type="RETRIEVER").values_list(
                "span_id", flat=True
            )[: RUNS + WARMUPS]
        )

        client = Client()
        from django.contrib.auth import get_user_model

        reviewer = get_user_model().objects.get(username="rita")
        client.force_login(reviewer)
        helpful = LabelSchema.objects.get(name="helpful")
        queue = queues.create_queue(
            name="Benchmark: submit and next",
            traces=Trace.objects.filter(experiment__name="bookshop-support-prod").order_by(
                "request_time"
            )[: RUNS + WARMUPS + 1],
            schemas=[helpful],
            annotators=[reviewer],
        )
        assert queue.items.count() == RUNS + WARMUPS + 1, queue.items.count()
        first = queues.next_assignment(queue=queue, user=reviewer)
        item_url = [reverse("annotation:queue-item", args=[queue.pk, first.item.position])]

        def submit_and_next(i):
            response = client.post(item_url[0], {f"s{helpful.pk}-value": "true"}, follow=True)
            item_url[0] = response.redirect_chain[-1][0]
            return response

        page_url = trace.get_absolute_url()
        children_url = reverse("traces:span-children", args=[trace.trace_id, root.span_id])
        create_url = reverse("annotation:assessment-create", args=[trace.trace_id])
        htmx = {"HX-Request": "true"}

        results = {
            "Open the review page (2,000 spans)": median_ms(lambda i: client.get(page_url)),
            "Open it deep-linked to a leaf span": median_ms(
                lambda i: client.get(f"{page_url}?span={leaf.span_id}")
            ),
            "Load the next 100 children (htmx)": median_ms(
                lambda i: client.get(f"{children_url}?offset=100&level=2", headers=htmx)
            ),
            "Submit feedback on a span (htmx round trip)": median_ms(
                lambda i: client.post(
                    create_url,
                    {
                        "schema": "retrieval_relevant",
                        "span_id": retrievers[i],
                        "value": "false",
                        "rationale": "Wrong edition",
                    },
                    headers=htmx,
                )
            ),
            "Open the trace list (50 rows)": median_ms(
                lambda i: client.get(reverse("traces:list"))
            ),
            "Submit a queue answer and open the next item": median_ms(submit_and_next),
        }
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"Load average (1, 5, 15 min): {load} on {os.cpu_count()} CPUs")
        size = len(client.get(page_url).content)
        print(f"Review page HTML: {size / 1024:.0f} KiB")
        for label, ms in results.items():
            print(f"{label:<46} median of {RUNS}: {ms:7.1f} ms")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
