"""Server time of the trace list page at a million traces, on PostgreSQL.

    .venv/bin/python benchmarks/trace_list.py --keep-database          # load once, time, keep
    .venv/bin/python benchmarks/trace_list.py --keep-database --profile "newest first"
    .venv/bin/python benchmarks/trace_list.py                          # time, then drop

DATABASE_URL defaults to postgres://postgres@127.0.0.1:5432/tm_bench_trace_list, a database
of its own: created if missing, migrated, and filled unless it already holds the rows:
1,000,000 traces over a year in four experiments, feedback (a thumb, a rating) on one in ten.
Without ``--keep-database`` it is dropped at the end.

BENCHMARK DATA ONLY: the rows are written with PostgreSQL's COPY, bypassing traces.ingest and
annotation.services (no spans, no revisions, no validation), because ingesting a million
traces one transaction at a time would take hours. Never do this for real data.

Each case is a GET of the list as a reviewer's browser sends it (the Django test client,
in this process, signed in as an Admin), so the figure is the server's time: middleware,
queries and template rendering, without the network. p50 and p95 over ``--runs`` requests;
"queries" is how many SQL statements one request runs. Later pages are reached through the
page's own next links. ``--profile CASE`` prints the top functions of one case by cumulative
and by own time.
"""

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/tm_bench_trace_list"
TRACES = 1_000_000
EXPERIMENTS = ["list-bench-chat", "list-bench-rag", "list-bench-agent", "list-bench-eval"]
START_MS = 1_700_000_000_000
YEAR_MS = 365 * 86_400_000
LATER_PAGE = 5
USER = "list-bench-admin"
NEXT_LINK = re.compile(r'rel="next" href="[^"]*?(?:\?|&amp;)after=([^"&]+)')


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DATABASE_URL", DEFAULT_URL)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("SECRET_KEY", "benchmark-only-not-secret")
    os.environ.setdefault("DEBUG", "false")
    os.environ.setdefault("ALLOWED_HOSTS", "testserver")
    os.environ.setdefault("STATIC_MANIFEST", "false")
    import django

    django.setup()


def _admin_connection():
    import psycopg
    from django.db import connection

    settings = connection.settings_dict
    params = {
        "host": settings["HOST"] or None,
        "port": settings["PORT"] or None,
        "user": settings["USER"] or None,
        "password": settings["PASSWORD"] or None,
    }
    return psycopg.connect(dbname="postgres", autocommit=True, **params), settings["NAME"]


def create_database() -> None:
    from psycopg import sql

    admin, name = _admin_connection()
    with admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database() -> None:
    from django.db import connections
    from psycopg import sql

    connections.close_all()
    admin, name = _admin_connection()
    with admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
    print(f"Dropped database {name}.", file=sys.stderr)


def copy_rows(model, rows) -> None:
    """COPY dicts of field values into ``model``'s table; fields left out get their default."""
    from django.db import connection

    fields = [field for field in model._meta.concrete_fields if not field.primary_key]
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    table = connection.ops.quote_name(model._meta.db_table)
    defaults = {field.attname: field.get_default() for field in fields}
    json_fields = {field.attname for field in fields if field.get_internal_type() == "JSONField"}
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
    ):
        for row in rows:
            values = []
            for field in fields:
                value = row.get(field.attname, defaults[field.attname])
                values.append(json.dumps(value) if field.attname in json_fields else value)
            copy.write_row(values)


def create_rows(traces: int) -> None:
    """COPY the benchmark data (bypasses ingest and services; see the module doc)."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection, transaction

    from annotation.models import Assessment, Kind, SourceType
    from traces.models import Experiment, Trace

    call_command("migrate", verbosity=0)
    if not get_user_model().objects.filter(username=USER).exists():
        get_user_model().objects.create_superuser(USER, password="benchmark-only")
    have = Trace.objects.count()
    if have >= traces:
        print(f"Reusing {have} traces.", file=sys.stderr)
        return
    experiments = [Experiment.objects.get_or_create(name=name)[0] for name in EXPERIMENTS]
    rng = random.Random(11)
    print(f"Copying {traces} traces…", file=sys.stderr)
    started = time.perf_counter()

    def trace_rows():
        for n in range(traces):
            state = rng.choices(["OK", "ERROR", "IN_PROGRESS"], weights=[90, 8, 2])[0]
            user, session = f"user-{n % 5000}", f"session-{n % 200_000}"
            yield {
                "trace_id": f"tr-{n:032x}",
                "experiment_id": experiments[n % len(experiments)].pk,
                "request_time": START_MS + rng.randrange(YEAR_MS),
                "execution_duration": None if state == "IN_PROGRESS" else rng.randrange(50, 9000),
                "state": state,
                "client_request_id": f"req-{n}",
                "request_preview": f'{{"question": "How do I reset my password, case {n}?"}}',
                "response_preview": f'"Open Settings, then Security, then Reset ({n})."',
                "trace_metadata": {"mlflow.trace.user": user, "mlflow.trace.session": session},
                "tags": {"mlflow.traceName": "chat"},
                "user": user,
                "session": session,
                "span_count": 3,
                "span_bytes": 2048,
            }

    with transaction.atomic():
        copy_rows(Trace, trace_rows())
    pks = list(Trace.objects.order_by("pk").values_list("pk", "request_time", "experiment_id"))

    def assessment_rows():
        for pk, request_time, experiment_id in pks[::10]:
            for name, value, source in [
                ("thumbs", rng.random() < 0.7, SourceType.HUMAN),
                ("rating", rng.randrange(1, 6), SourceType.LLM_JUDGE),
            ]:
                yield {
                    "assessment_id": f"a-{pk}-{name}",
                    "trace_id": pk,
                    "experiment_id": experiment_id,
                    "kind": Kind.FEEDBACK,
                    "name": name,
                    "value": value,
                    "source_type": source,
                    "source_id": "bench",
                    "create_time": request_time + 60_000,
                    "last_update_time": request_time + 60_000,
                }

    with transaction.atomic():
        copy_rows(Assessment, assessment_rows())
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    print(f"Loaded in {time.perf_counter() - started:.0f} s.", file=sys.stderr)


def cases() -> list[tuple[str, dict, bool]]:
    """(label, query parameters, htmx) as a reviewer's clicks and filters send them."""
    from traces.models import Experiment

    experiment = Experiment.objects.get(name=EXPERIMENTS[1]).pk
    return [
        ("newest first", {}, False),
        ("newest first, htmx", {}, True),
        ("oldest first", {"sort": "time"}, True),
        ("slowest first", {"sort": "-duration"}, True),
        ("fastest first", {"sort": "duration"}, True),
        ("experiment", {"experiment": experiment}, True),
        ("experiment, slowest", {"experiment": experiment, "sort": "-duration"}, True),
        ("state = ERROR", {"state": "ERROR"}, True),
        ("user", {"user": "user-42"}, True),
        ("session", {"session": "session-4242"}, True),
        ("since a month ago", {"since": "2024-10-15T00:00"}, True),
        ("has feedback thumbs", {"feedback": "thumbs"}, True),
        ("thumbs = true, exp.", {"feedback": "thumbs=true", "experiment": experiment}, True),
        ("reviewed by me", {"reviewed": "me"}, True),
        ("reviewed by me: not", {"reviewed": "not-me"}, True),
        ("text search (unindexed)", {"q": "case 4242?"}, True),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--traces", type=int, default=TRACES)
    parser.add_argument("--runs", type=int, default=20, help="timed requests per case and page")
    parser.add_argument("--only", default="", help="run the cases whose label contains this")
    parser.add_argument("--profile", help="profile the case with this label")
    parser.add_argument("--keep-database", action="store_true")
    args = parser.parse_args()
    setup_django()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    create_database()
    create_rows(args.traces)
    client = Client()
    client.force_login(get_user_model().objects.get(username=USER))

    def get(params, htmx):
        headers = {"HX-Request": "true"} if htmx else {}
        response = client.get("/", params, headers=headers, secure=True)
        assert response.status_code == 200, response.status_code
        return response

    def later_page(params, htmx):
        """The query string of page LATER_PAGE, following each page's next link."""
        page_params = dict(params)
        for _ in range(LATER_PAGE - 1):
            found = NEXT_LINK.search(get(page_params, htmx).content.decode())
            if found is None:
                return None
            page_params = {**params, "after": found[1]}
        return page_params

    if args.profile:
        label, params, htmx = next(case for case in cases() if case[0] == args.profile)
        for _ in range(3):
            get(params, htmx)
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(args.runs):
            get(params, htmx)
        profile.disable()
        for order in ("cumulative", "tottime"):
            out = io.StringIO()
            pstats.Stats(profile, stream=out).sort_stats(order).print_stats(25)
            print(out.getvalue())
        return

    print(
        f"Database: {connection.vendor} {connection.settings_dict['NAME']}, "
        f"{args.traces} traces, load average {os.getloadavg()[0]:.2f} at start, "
        f"{args.runs} runs per cell",
        file=sys.stderr,
    )
    header = (
        f"{'case':<26} {'rows':>4} {'queries':>7} {'p1 p50':>7} {'p1 p95':>7}"
        f" {'p5 p50':>7} {'p5 p95':>7}"
    )
    print(header)
    print("-" * len(header))
    all_times = []
    for label, params, htmx in cases():
        if args.only not in label:
            continue
        cells = []
        queries = QueryCount()
        with connection.execute_wrapper(queries):
            first = get(params, htmx)
        rows = first.content.decode().count("<a data-trace-link")
        for page_params in [params, later_page(params, htmx)]:
            if page_params is None:
                cells += ["-", "-"]
                continue
            get(page_params, htmx)
            times = []
            for _ in range(args.runs):
                started = time.perf_counter()
                get(page_params, htmx)
                times.append((time.perf_counter() - started) * 1000)
            all_times += times
            cells += [f"{statistics.median(times):.1f}", f"{percentile(times, 0.95):.1f}"]
        print(
            f"{label:<26} {rows:>4} {queries.count:>7} " + " ".join(f"{c:>7}" for c in cells),
            flush=True,
        )
    if all_times:
        print(
            f"all cases: p50 {statistics.median(all_times):.1f} ms, "
            f"p95 {percentile(all_times, 0.95):.1f} ms; "
            f"load average {os.getloadavg()[0]:.2f} at end"
        )
    if not args.keep_database:
        drop_database()


class QueryCount:
    """An execute wrapper counting the statements run."""

    def __init__(self):
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


def percentile(times: list[float], fraction: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


if __name__ == "__main__":
    main()
