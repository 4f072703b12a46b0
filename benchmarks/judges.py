"""Server time of the Judges page over 100,000 judge entries with 10,000 gold items.

    createdb -h 127.0.0.1 -U postgres tm_bench_judges
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tm_bench_judges \\
        .venv/bin/python benchmarks/judges.py

The script migrates the database and, unless it already holds them, creates 50,000 traces
in one experiment, each scored by two LLM judges of the boolean schema ``correct`` (100,000
judge entries), and on 10,000 of them two people who agree (10,000 gold items, 20,000 human
answers). Responses vary in length so the bias checks have thirds to compare.

BENCHMARK DATA ONLY: the rows are written with bulk_create, bypassing annotation.services
(no revisions, no validation), because 120,000 single-row transactions would take far
longer than the page being measured. Never do this for real data.

Requests go through the Django test client signed in as an Admin: routing, middleware,
queries and template rendering, without the network. Each figure is the median of five
timed requests after one warm-up, with the number of SQL queries per request and the load
average (1, 5, 15 minutes) when it was taken: on a busy machine the figures are noise.
"""

import argparse
import gc
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENT = "judges-benchmark"
TRACES = 50_000
GOLD = 10_000
BATCH = 5_000
RUNS = 5


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("SECRET_KEY", "benchmark-only-not-secret")
    os.environ.setdefault("DEBUG", "false")
    os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
    os.environ.setdefault("SECURE_COOKIES", "false")
    os.environ.setdefault("STATIC_MANIFEST", "false")
    import django

    django.setup()


def create_rows(traces_wanted: int, gold: int):
    """Bulk-create the benchmark data (bypasses annotation.services; see the module doc)."""
    from django.core.management import call_command
    from django.db import connection, transaction

    from annotation.models import Assessment, Kind, LabelSchema, SourceType
    from tests.factories import make_admin, make_reviewer
    from traces.models import Experiment, Trace

    call_command("migrate", verbosity=0)
    LabelSchema.objects.get_or_create(
        name="correct", defaults={"value_type": "boolean", "applies_to": "trace"}
    )
    experiment, _ = Experiment.objects.get_or_create(name=EXPERIMENT)
    if Trace.objects.filter(experiment=experiment).count() >= traces_wanted:
        print("Reusing the benchmark rows.", file=sys.stderr)
        return experiment
    Trace.objects.filter(experiment=experiment).delete()
    make_admin(username=f"bench-admin-{os.getpid()}")
    people = [make_reviewer(username=f"bench-{os.getpid()}-{n}") for n in range(2)]
    print(f"Creating {traces_wanted} traces, {2 * traces_wanted} judge entries…", file=sys.stderr)
    start_ms = 1_764_547_200_000  # 2025-12-01
    for first in range(0, traces_wanted, BATCH):
        numbers = range(first, min(first + BATCH, traces_wanted))
        with transaction.atomic():
            traces = Trace.objects.bulk_create(
                Trace(
                    trace_id=f"tr-judges-{n:026x}",
                    experiment=experiment,
                    request_time=start_ms + n * 60_000,
                    execution_duration=100,
                    state=Trace.State.OK if n % 9 else Trace.State.ERROR,
                    request_preview=f"Question {n}",
                    response_preview="Answer " + "x" * (n % 300),
                )
                for n in numbers
            )
            rows = []
            for n, trace in zip(numbers, traces, strict=True):
                truth = n % 3 != 0
                long = n % 300 >= 200
                created = trace.request_time + 1000
                for source, value in [
                    ("careful", truth if n % 20 else not truth),
                    ("lenient", truth or long),
                ]:
                    rows.append(
                        Assessment(
                            trace=trace,
                            experiment_id=trace.experiment_id,
                            kind=Kind.FEEDBACK,
                            name="correct",
                            value=value,
                            rationale="judged",
                            source_type=SourceType.LLM_JUDGE,
                            source_id=f"judge-{source}",
                            metadata={"judge_version": "v1" if 2 * n < traces_wanted else "v2"},
                            create_time=created,
                            last_update_time=created,
                        )
                    )
                if n % (traces_wanted // gold) == 0:
                    for person in people:
                        rows.append(
                            Assessment(
                                trace=trace,
                                experiment_id=trace.experiment_id,
                                kind=Kind.FEEDBACK,
                                name="correct",
                                value=truth,
                                source_type=SourceType.HUMAN,
                                source_id=person.username,
                                annotator=person,
                                create_time=created + 1,
                                last_update_time=created + 1,
                            )
                        )
            Assessment.objects.bulk_create(rows, batch_size=2_000)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return experiment


def measure(url: str) -> tuple[float, int]:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.force_login(get_user_model().objects.filter(username__startswith="bench-admin").first())
    assert client.get(url).status_code == 200
    times = []
    for _ in range(RUNS):
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            response = client.get(url)
            times.append(time.perf_counter() - started)
        assert response.status_code == 200
    return statistics.median(times) * 1000, len(queries)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=TRACES)
    parser.add_argument("--gold", type=int, default=GOLD)
    args = parser.parse_args()
    setup_django()
    from django.conf import settings
    from django.test.utils import setup_test_environment
    from django.urls import reverse

    setup_test_environment()
    settings.ALLOWED_HOSTS = ["testserver"]
    experiment = create_rows(args.traces, args.gold)
    gc.freeze()  # as config/gunicorn.conf.py does in each worker once the app is loaded
    from annotation.models import Assessment

    judged = Assessment.objects.filter(trace__experiment=experiment, source_type="LLM_JUDGE")
    print(f"{judged.count()} judge entries in {experiment.name!r}")
    pages = {
        "Judges page": reverse("annotation:judges", args=[experiment.pk]),
        "one judge's page": reverse("annotation:judge-detail", args=[experiment.pk])
        + "?name=correct&source=judge-lenient",
    }
    print(f"{'page':<20} {'median ms':>10} {'queries':>8} {'load average':>16}   goal < 500 ms")
    for label, url in pages.items():
        ms, queries = measure(url)
        load = " ".join(f"{figure:.2f}" for figure in os.getloadavg())
        print(f"{label:<20} {ms:>10.0f} {queries:>8} {load:>16}")


if __name__ == "__main__":
    main()
