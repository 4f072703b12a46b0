"""Speed of traces.search.search_traces for each filter kind and order, on PostgreSQL.

    .venv/bin/python benchmarks/search.py                 # every case, 30 runs each
    .venv/bin/python benchmarks/search.py --only tags --explain
    .venv/bin/python benchmarks/search.py --scales 2000,20000,200000  # growth with the table

DATABASE_URL defaults to postgres://postgres@127.0.0.1:5432/tm_bench_search; the database is
created if missing, migrated, and filled unless it already holds the rows: 20,000 traces
over 30 days in one experiment, three spans each (60,000), and feedback on a third of them.

BENCHMARK DATA ONLY: the rows are written with bulk_create, bypassing traces.ingest and
annotation.services (no span counts kept in step, no revisions, no validation), because
ingesting 20,000 traces one transaction at a time would take far longer than the searches
being measured. Never do this for real data.

Each case is timed as the API calls it (experiment_id IN (...), 100 rows a page), on its first
page and on its fifth, reached through page tokens fetched beforehand. The figures are
wall-clock milliseconds in this process, query compilation and row loading included; p95 is
the 95th percentile of the runs. "p1 sql" is the median execution time PostgreSQL itself
reports for the first page (EXPLAIN ANALYZE, five runs), which separates the database's share
from Python's. ``--explain`` prints EXPLAIN ANALYZE of each timed query.
"""

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/tm_bench_search"
EXPERIMENT = "search-benchmark"
TRACES = 20_000
PAGE_SIZE = 100
LATER_PAGE = 5
DAY_MS = 86_400_000
START_MS = 1_700_000_000_000

TRACE_NAMES = ["qa-bot", "summarize", "classify", "retrieve", "chat", "translate", "agent", "rag"]
ENVS = ["prod"] * 12 + ["staging"] * 5 + ["dev"] * 2 + [None]
REGIONS = ["eu-west", "us-east", "us-west", "ap-south"]
SPAN_TYPES = ["LLM", "TOOL", "RETRIEVER"]
VOCABULARY = """
the a of to and in is for on with that this it as be by from at or an are was order refund
invoice account password shipping delivery billing subscription plan question answer policy
document customer support ticket status update error retry timeout model prompt context token
latency summary translation sentiment category weather flight hotel booking payment card
address email phone reset login upgrade
"""
WORDS = VOCABULARY.split()

# (label, filter_string, order_by)
CASES = [
    ("default order", None, None),
    ("timestamp ASC", None, ["timestamp_ms ASC"]),
    ("timestamp_ms > 15 days", f"timestamp_ms > {START_MS + 15 * DAY_MS}", None),
    ("client_request_id =", "client_request_id = 'req-12345'", None),
    ("request_id IN", f"request_id IN ('tr-{12345:032x}', 'tr-{54:032x}')", None),
    ("status = ERROR", "status = 'ERROR'", None),
    ("execution_time > 1000", "execution_time_ms > 1000", None),
    ("user (metadata =)", "metadata.`mlflow.trace.user` = 'user-42'", None),
    ("session (metadata =)", "metadata.`mlflow.trace.session` = 'session-42'", None),
    ("tags.env = prod", "tags.env = 'prod'", None),
    ("tags.env = dev", "tags.env = 'dev'", None),
    ("tags.release = v7 (rare)", "tags.release = 'v7'", None),
    ("name = qa-bot", "name = 'qa-bot'", None),
    ("tags.env != prod", "tags.env != 'prod'", None),
    ("tags.env LIKE pro%", "tags.env LIKE 'pro%'", None),
    ("tags.env IS NULL", "tags.env IS NULL", None),
    ("tags.env IS NOT NULL", "tags.env IS NOT NULL", None),
    ("metadata.region =", "metadata.region = 'eu-west'", None),
    ("run_id =", "run_id = 'run-7'", None),
    ("tags.env = prod AND status", "tags.env = 'prod' AND status = 'ERROR'", None),
    ("span.type = TOOL", "span.type = 'TOOL'", None),
    ("span.name = search_docs", "span.name = 'search_docs'", None),
    ("span.attributes.model =", "span.attributes.model = 'gpt-4o-mini'", None),
    ("feedback IS NULL", "feedback.is_correct IS NULL", None),
    ("feedback IS NOT NULL", "feedback.is_correct IS NOT NULL", None),
    ("feedback = 'true'", "feedback.is_correct = 'true'", None),
    ("feedback.score > 0.5", "feedback.score > 0.5", None),
    ("text LIKE %hello%", "text LIKE '%hello%'", None),
    ("text ILIKE %hello%", "text ILIKE '%hello%'", None),
    ("text LIKE %refund policy%", "text LIKE '%refund policy%'", None),
    ("execution_time DESC", None, ["execution_time DESC"]),
    ("execution_time ASC", None, ["execution_time ASC"]),
    ("end_time DESC", None, ["end_time DESC"]),
    ("status ASC", None, ["status ASC"]),
    ("tags.env DESC", None, ["tags.env DESC"]),
    ("name ASC", None, ["name ASC"]),
    ("metadata session DESC", None, ["metadata.`mlflow.trace.session` DESC"]),
]


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DATABASE_URL", DEFAULT_URL)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("SECRET_KEY", "benchmark-only-not-secret")
    os.environ.setdefault("DEBUG", "false")
    os.environ.setdefault("ALLOWED_HOSTS", "testserver")
    import django

    django.setup()


def create_database() -> None:
    """CREATE DATABASE when the configured PostgreSQL database does not exist yet."""
    import psycopg
    from django.db import connection
    from psycopg import sql

    settings = connection.settings_dict
    if connection.vendor != "postgresql":
        return
    params = {
        "host": settings["HOST"] or None,
        "port": settings["PORT"] or None,
        "user": settings["USER"] or None,
        "password": settings["PASSWORD"] or None,
    }
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as admin:
        exists = admin.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [settings["NAME"]]
        ).fetchone()
        if not exists:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(settings["NAME"])))


def sentence(rng: random.Random, words: int, hello: bool) -> str:
    picked = rng.choices(WORDS, k=words)
    if hello:
        picked.insert(rng.randrange(len(picked) + 1), "hello")
    return " ".join(picked).capitalize() + "."


def create_rows(count: int = TRACES) -> None:
    """Bulk-create the benchmark data (bypasses ingest and services; see the module doc)."""
    from django.core.management import call_command
    from django.db import connection, transaction

    from annotation.models import Assessment, Kind, SourceType
    from traces.models import Experiment, Span, Trace

    call_command("migrate", verbosity=0)
    experiment, _ = Experiment.objects.get_or_create(name=EXPERIMENT)
    have = Trace.objects.filter(experiment=experiment).count()
    if have >= count:
        print(f"Reusing {have} traces in experiment {EXPERIMENT!r}.", file=sys.stderr)
        return
    Trace.objects.filter(experiment=experiment).delete()
    rng = random.Random(7)
    batch = 2_000
    print(f"Creating {count} traces…", file=sys.stderr)
    for first in range(0, count, batch):
        numbers = range(first, min(first + batch, count))
        traces, spans, feedback = [], [], []
        for n in numbers:
            state = rng.choices(["OK", "ERROR", "IN_PROGRESS"], weights=[90, 8, 2])[0]
            duration = None if state == "IN_PROGRESS" else int(rng.lognormvariate(6, 1))
            tags = {"mlflow.traceName": rng.choice(TRACE_NAMES)}
            env = rng.choice(ENVS)
            if env:
                tags["env"] = env
            if rng.random() < 0.5:
                tags["release"] = f"v{rng.randrange(50)}"
            user, session = f"user-{rng.randrange(500)}", f"session-{rng.randrange(4000)}"
            metadata = {
                "mlflow.trace.user": user,
                "mlflow.trace.session": session,
                "region": rng.choice(REGIONS),
            }
            if rng.random() < 0.3:
                metadata["mlflow.sourceRun"] = f"run-{rng.randrange(100)}"
            question = sentence(rng, 12, hello=rng.random() < 0.01)
            traces.append(
                Trace(
                    trace_id=f"tr-{n:032x}",
                    experiment=experiment,
                    request_time=START_MS + rng.randrange(30 * DAY_MS),
                    execution_duration=duration,
                    state=state,
                    client_request_id=f"req-{n}",
                    request_preview=question,
                    response_preview=sentence(rng, 20, hello=False),
                    trace_metadata=metadata,
                    tags=tags,
                    user=user,
                    session=session,
                    span_count=3,
                )
            )
        Trace.objects.bulk_create(traces)
        for n, trace in zip(numbers, traces, strict=True):
            start_ns = trace.request_time * 1_000_000
            root = f"{3 * n:016x}"
            kinds = [("CHAIN", trace.tags["mlflow.traceName"])] + [
                (kind, {"LLM": "chat_model", "TOOL": "search_docs", "RETRIEVER": "retrieve"}[kind])
                for kind in rng.sample(SPAN_TYPES, 2)
            ]
            for offset, (kind, name) in enumerate(kinds):
                hello = rng.random() < 0.01
                spans.append(
                    Span(
                        trace=trace,
                        span_id=f"{3 * n + offset:016x}",
                        parent_span_id=None if offset == 0 else root,
                        name=name,
                        span_type=kind,
                        start_time_ns=start_ns + offset * 1_000,
                        end_time_ns=start_ns + (trace.execution_duration or 0) * 1_000_000,
                        status="ERROR" if trace.state == "ERROR" and offset == 0 else "OK",
                        attributes={
                            "mlflow.spanType": f'"{kind}"',
                            **({"model": '"gpt-4o-mini"'} if kind == "LLM" else {}),
                        },
                        inputs={"messages": [{"role": "user", "content": trace.request_preview}]}
                        if offset < 2
                        else {"query": sentence(rng, 8, hello)},
                        outputs={"content": sentence(rng, 40, hello), "tokens": rng.randrange(900)},
                    )
                )
            if rng.random() < 0.35:
                feedback.append(
                    Assessment(
                        trace=trace,
                        experiment_id=trace.experiment_id,
                        kind=Kind.FEEDBACK,
                        name="is_correct",
                        value=rng.random() < 0.7,
                        source_type=SourceType.HUMAN,
                        source_id="bench-reviewer",
                    )
                )
            if rng.random() < 0.2:
                feedback.append(
                    Assessment(
                        trace=trace,
                        experiment_id=trace.experiment_id,
                        kind=Kind.FEEDBACK,
                        name="score",
                        value=round(rng.random(), 2),
                        source_type=SourceType.LLM_JUDGE,
                        source_id="bench-judge",
                    )
                )
        with transaction.atomic():
            Span.objects.bulk_create(spans)
            Assessment.objects.bulk_create(feedback)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")


class QueryLog:
    """Keeps the last SQL statement run, for EXPLAIN ANALYZE."""

    def __init__(self):
        self.last = None

    def __call__(self, execute, sql, params, many, context):
        self.last = (sql, params)
        return execute(sql, params, many, context)


def percentile(times: list[float], fraction: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def server_milliseconds(connection, sql: str, params, runs: int = 5) -> float:
    """The median execution time PostgreSQL reports for one statement (EXPLAIN ANALYZE)."""
    times = []
    with connection.cursor() as cursor:
        for _ in range(runs):
            cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
            (plan,) = cursor.fetchone()
            plan = json.loads(plan) if isinstance(plan, str) else plan
            times.append(plan[0]["Execution Time"])
    return statistics.median(times)


def get_trace_times(experiment, runs: int) -> list[float]:
    """Milliseconds of GetTraceInfoV3 plus traces/get of one trace, per run."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    from accounts.tokens import create_token
    from traces.models import Trace

    user = get_user_model().objects.filter(username="search-bench-admin").first()
    if user is None:
        user = get_user_model().objects.create_superuser("search-bench-admin")
    _, raw = create_token(user=user, name="search benchmark")
    client = Client(headers={"Authorization": f"Bearer {raw}"})
    trace_ids = list(
        Trace.objects.filter(experiment=experiment).values_list("trace_id", flat=True)[:runs]
    )
    times = []
    for trace_id in trace_ids[:3] + trace_ids:
        started = time.perf_counter()
        for response in (
            client.get(f"/api/3.0/mlflow/traces/{trace_id}", secure=True),
            client.get("/api/3.0/mlflow/traces/get", {"trace_id": trace_id}, secure=True),
        ):
            assert response.status_code == 200, response.content
        times.append((time.perf_counter() - started) * 1000)
    return times[3:]


def scale_line(traces: int, runs: int) -> None:
    """One line of ``--scales``, in a process of its own whose database holds ``traces``."""
    from django.db import connection

    from traces.models import Experiment, Trace
    from traces.search import search_traces

    create_database()
    create_rows(traces)
    experiment = Experiment.objects.get(name=EXPERIMENT)
    times = []
    for _, filter_string, order_by in CASES:
        for run in range(runs + 2):
            started = time.perf_counter()
            search_traces(
                Trace.objects.filter(experiment_id__in=[experiment.id]),
                filter_string=filter_string,
                order_by=order_by,
                max_results=PAGE_SIZE,
                page_token=None,
            )
            if run >= 2:
                times.append((time.perf_counter() - started) * 1000)
    gets = get_trace_times(experiment, runs)
    print(
        f"{traces:>8} {percentile(times, 0.95):>10.1f} {statistics.median(gets):>9.1f}"
        f" {percentile(gets, 0.95):>9.1f} {os.getloadavg()[0]:>5.2f}"
        f"  {connection.settings_dict['NAME']}",
        flush=True,
    )


def scales(numbers: list[int], runs: int) -> None:
    base = os.environ.get("DATABASE_URL", DEFAULT_URL)
    print(f"{'traces':>8} {'search p95':>10} {'get p50':>9} {'get p95':>9} {'load':>5}")
    for traces in numbers:
        env = {**os.environ, "DATABASE_URL": f"{base}_{traces}"}
        command = [sys.executable, __file__, "--scale-line", str(traces), "--runs", str(runs)]
        subprocess.run(command, env=env, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="timed runs per case and page")
    parser.add_argument("--only", default="", help="run the cases whose label contains this")
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE too")
    parser.add_argument("--scales", help="comma-separated trace counts, e.g. 2000,20000,200000")
    parser.add_argument("--scale-line", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scales:
        scales([int(n) for n in args.scales.split(",")], args.runs)
        return
    setup_django()
    if args.scale_line:
        scale_line(args.scale_line, args.runs)
        return
    from django.db import connection

    from traces.models import Experiment, Trace
    from traces.search import search_traces

    create_database()
    create_rows()
    experiment = Experiment.objects.get(name=EXPERIMENT)
    print(
        f"Database: {connection.vendor} {connection.settings_dict['NAME']}, "
        f"load average {os.getloadavg()[0]:.2f}, {args.runs} runs per cell",
        file=sys.stderr,
    )

    def search(filter_string, order_by, page_token):
        queryset = Trace.objects.filter(experiment_id__in=[experiment.id])
        return search_traces(
            queryset,
            filter_string=filter_string,
            order_by=order_by,
            max_results=PAGE_SIZE,
            page_token=page_token,
        )

    log = QueryLog()
    header = (
        f"{'case':<30} {'rows':>5} {'p1 p50':>7} {'p1 p95':>7} {'p5 p50':>7} {'p5 p95':>7}"
        f" {'p1 sql':>7}"
    )
    print(header)
    print("-" * len(header))
    for label, filter_string, order_by in CASES:
        if args.only not in label:
            continue
        rows, token = search(filter_string, order_by, None)
        later = None
        for _ in range(LATER_PAGE - 1):
            if token is None:
                break
            later = token
            _, token = search(filter_string, order_by, later)
        cells, plans = [], []
        for page_token in [None] + ([later] if later else []):
            for _ in range(2):
                search(filter_string, order_by, page_token)
            times = []
            for _ in range(args.runs):
                started = time.perf_counter()
                with connection.execute_wrapper(log):
                    search(filter_string, order_by, page_token)
                times.append((time.perf_counter() - started) * 1000)
            cells += [f"{statistics.median(times):.1f}", f"{percentile(times, 0.95):.1f}"]
            plans.append(log.last)
        cells += ["-"] * (4 - len(cells))
        cells.append(f"{server_milliseconds(connection, *plans[0]):.1f}")
        print(f"{label:<30} {len(rows):>5} " + " ".join(f"{c:>7}" for c in cells), flush=True)
        if args.explain:
            for sql, params in plans:
                with connection.cursor() as cursor:
                    cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
                    print("\n".join("    " + line for (line,) in cursor.fetchall()))


if __name__ == "__main__":
    main()
