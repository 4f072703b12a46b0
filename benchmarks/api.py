"""Throughput, latency and memory of the MLflow tracking API, measured with the real client.

    .venv/bin/python benchmarks/api.py            # full run, a few minutes
    .venv/bin/python benchmarks/api.py --quick    # small sizes, to check the setup
    .venv/bin/python benchmarks/api.py --mlflow-venv VENV   # the write path beside MLflow's

``--mlflow-venv`` (or the MLFLOW_SERVER_VENV environment variable) names a virtualenv outside
the repository holding the full MLflow server, the version Tracemark reports (e.g. ``python
-m venv VENV && VENV/bin/pip install mlflow==3.17.2 "psycopg[binary]"``). The benchmark then runs
the same client workload (10-span traces on 8 threads, log_feedback on 1 and 8 threads,
override_feedback, update_assessment, get_trace) against Tracemark and against ``VENV/bin/mlflow
server --backend-store-uri postgresql://… --workers 2`` (uvicorn) on its own database, two
interleaved runs each, and prints both beside the goals with the load average of each run.
Client and servers share the cores, so it also prints the CPU time per call of the client
and of each server with PostgreSQL (all its processes, as /proc counts them): where the
client's own time is most of a call, that is what tells the servers apart.

Tracemark runs as in production: gunicorn with config/gunicorn.conf.py (two gthread workers
for two cores, four threads each; the module says why) on PostgreSQL, DEBUG off, on a
loopback port. The database (``--database``, default tm_bench_api on
postgres://postgres@127.0.0.1:5432) is dropped, created and migrated; a Reviewer gets an API
token from accounts.tokens.create_token, and the client sends it as MLFLOW_TRACKING_TOKEN.
``--plain-gunicorn`` runs gunicorn with command-line flags only (the same worker counts,
without the config module) to compare.

BENCHMARK DATA ONLY: the search store (20,000 traces with a root span each and a feedback on
every other one) is written with bulk_create, bypassing traces.ingest and annotation.services,
because sending it through the client one trace at a time would take longer than everything
measured. Everything measured goes through the mlflow client over HTTP: 10-span traces with
synchronous export (StartTraceV3 plus an OTLP span upload each), log_feedback,
override_feedback, update_assessment, search_traces (trace infos, ``include_spans=False``: the
spans of a result page are a separate batchGet, measured by get_trace), and get_trace of a
10-span and a 5,000-span trace. The 5,000-span trace copies the spans of a client-logged one
and is stored through traces.ingest in this process: the client exports each span as it ends,
one request per span, so logging it would only measure ingest again. Searches and get_trace
are also timed as plain HTTP requests (no client parsing), to show the server's share.

Client and server share the machine, so throughput includes the client's own CPU time; the
load average is printed before and after. Server memory is the PSS of the gunicorn master and
its workers (/proc/<pid>/smaps_rollup) after the run. Every loop is bounded, the server is
stopped on exit and the database dropped unless ``--keep-database``.
"""

import argparse
import http.client
import itertools
import json
import os
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GUNICORN_CONFIG = ROOT / "config" / "gunicorn.conf.py"
SERVER_ENV = {
    "DEBUG": "false",
    "SECRET_KEY": "benchmark-only-" + secrets.token_hex(16),
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "SECURE_SSL_REDIRECT": "false",
    "SECURE_COOKIES": "false",
    "STATIC_MANIFEST": "false",
    "LOG_LEVEL": "WARNING",
}
STORE_EXPERIMENT = "bench-store"
LIVE_EXPERIMENT = "bench-live"
USERS = 200
TEAMS = 50

# MLflow 3.17.2 server, 2 workers on PostgreSQL, same kind of machine, measured once.
MLFLOW = {
    "ingest_1": 4.8,
    "ingest_8": 9.5,
    "feedback_1": 19,
    "feedback_1_p50": 52,
    "feedback_8": 120,
    "override_p50": 100,
    "get_10_p50": 108,
    "get_5000_p50": 2400,
    "search_p50": "52-73",
    "pss_mb": 2000,
}

SIZES = {
    "full": {
        "store_traces": 20_000,
        "ingest_traces": 100,
        "feedback_calls": 400,
        "edit_calls": 100,
        "search_repeats": 200,
        "get_repeats": 100,
        "big_spans": 5_000,
        "big_repeats": 20,
    },
    "quick": {
        "store_traces": 2_000,
        "ingest_traces": 30,
        "feedback_calls": 60,
        "edit_calls": 20,
        "search_repeats": 30,
        "get_repeats": 20,
        "big_spans": 5_000,
        "big_repeats": 3,
    },
}


@dataclass
class Timing:
    per_second: float
    latencies_ms: list[float]
    client_cpu_ms: float
    server_cpu_ms: float
    database_cpu_ms: float = 0.0

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies_ms)

    @property
    def p95(self) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def timed(calls: int, threads: int, call) -> Timing:
    """Run ``call(i)`` for i in range(calls) on ``threads`` threads; rate and latencies."""
    numbers = itertools.count()

    def worker() -> list[float]:
        latencies = []
        while (i := next(numbers)) < calls:
            started = time.perf_counter()
            call(i)
            latencies.append((time.perf_counter() - started) * 1000)
        return latencies

    client_cpu, server_cpu = time.process_time(), server_cpu_seconds()
    database_cpu = database_cpu_seconds()
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(worker) for _ in range(threads)]
        latencies = [ms for future in futures for ms in future.result()]
    return Timing(
        calls / (time.perf_counter() - started),
        latencies,
        client_cpu_ms=(time.process_time() - client_cpu) * 1000 / calls,
        server_cpu_ms=(server_cpu_seconds() - server_cpu) * 1000 / calls,
        database_cpu_ms=(database_cpu_seconds() - database_cpu) * 1000 / calls,
    )


# The gunicorn master and workers, once started: timed() reads their CPU time.
SERVER_PIDS: list[int] = []
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def server_cpu_seconds() -> float:
    ticks = 0
    for pid in SERVER_PIDS:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        ticks += int(fields[11]) + int(fields[12])  # utime and stime
    return ticks / CLOCK_TICKS


def database_cpu_seconds() -> float:
    """CPU time of the PostgreSQL server on this machine: its live processes' own, and the
    postmaster's count of the backends that have exited (cutime and cstime). The benchmark
    is its only client, so this is the database's share of the work measured."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the process has just exited
            continue
        name, _, rest = text.partition("(")[2].rpartition(")")
        if name != "postgres":
            continue
        fields = rest.split()
        ticks += int(fields[11]) + int(fields[12])
        if _command(int(fields[1])) != "postgres":  # its parent is not: the postmaster
            ticks += int(fields[13]) + int(fields[14])  # cutime and cstime
    return ticks / CLOCK_TICKS


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


# -- database and server -------------------------------------------------------------------


def recreate_database(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    import django

    django.setup()


def prepare_database(store_traces: int) -> tuple[str, str]:
    """Migrate, create the Reviewer and the search store; return (token, store experiment id)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.db import connection

    from accounts.roles import Role
    from accounts.tokens import create_token
    from traces.models import Experiment

    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_user("bench-reviewer", password=None)
    user.groups.add(Group.objects.get_or_create(name=Role.REVIEWER)[0])
    token = create_token(user=user, name="benchmark")[1]
    experiment = Experiment.objects.create(name=STORE_EXPERIMENT)
    started = time.perf_counter()
    bulk_load(experiment, store_traces, user)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    print(
        f"Loaded {store_traces:,} traces with bulk_create in {time.perf_counter() - started:.1f} s",
        file=sys.stderr,
    )
    connection.close()
    return token, experiment.experiment_id


def bulk_load(experiment, count: int, annotator) -> None:
    """Benchmark rows only: bulk_create bypasses traces.ingest and annotation.services."""
    from django.db import transaction

    from annotation.models import Assessment, Kind, SourceType
    from traces.models import Span, Trace

    start_ms = int(time.time() * 1000) - count * 1000
    batch = 2_000
    for first in range(0, count, batch):
        numbers = range(first, min(first + batch, count))
        with transaction.atomic():
            traces = Trace.objects.bulk_create(
                Trace(
                    trace_id=f"tr-{secrets.token_hex(16)}",
                    experiment=experiment,
                    request_time=start_ms + n * 1000,
                    execution_duration=200 + n % 800,
                    state=Trace.State.OK if n % 10 else Trace.State.ERROR,
                    client_request_id=f"req-{n}",
                    request_preview=json.dumps({"question": f"Question {n}?"}),
                    response_preview=json.dumps(f"Answer {n}."),
                    trace_metadata={
                        "mlflow.trace.user": f"user-{n % USERS}",
                        "mlflow.trace.session": f"session-{n // 5}",
                        "mlflow.trace.sizeStats": json.dumps({"num_spans": 1}),
                        "mlflow.trace.infoFinalized": "true",
                    },
                    tags={"mlflow.traceName": "agent", "team": f"team-{n % TEAMS}"},
                    user=f"user-{n % USERS}",
                    session=f"session-{n // 5}",
                    span_count=1,
                )
                for n in numbers
            )
            Span.objects.bulk_create(
                Span(
                    trace=trace,
                    span_id=secrets.token_hex(8),
                    name="agent",
                    span_type="AGENT",
                    start_time_ns=trace.request_time * 1_000_000,
                    end_time_ns=(trace.request_time + trace.execution_duration) * 1_000_000,
                    status=Span.Status.OK,
                    inputs={"question": f"Question {n}?"},
                    outputs=f"Answer {n}.",
                    attributes={"mlflow.spanType": "AGENT"},
                )
                for n, trace in zip(numbers, traces, strict=True)
            )
            Assessment.objects.bulk_create(
                Assessment(
                    trace=trace,
                    experiment_id=trace.experiment_id,
                    kind=Kind.FEEDBACK,
                    name="correct",
                    value=n % 3 != 0,
                    rationale="checked against the source",
                    source_type=SourceType.HUMAN,
                    source_id=annotator.username,
                    annotator=annotator,
                    create_time=trace.request_time + 60_000,
                    last_update_time=trace.request_time + 60_000,
                )
                for n, trace in zip(numbers, traces, strict=True)
                if n % 2 == 0
            )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(database_url: str, plain: bool, log_path: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "config.wsgi:application"]
    if plain:
        command += ["--workers", "2", "--threads", "4"]
    else:
        command += ["--config", str(GUNICORN_CONFIG)]
    command += ["--bind", f"127.0.0.1:{port}", "--log-level", "warning"]
    env = {**os.environ, **SERVER_ENV, "DATABASE_URL": database_url}
    with open(log_path, "wb") as log:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"gunicorn did not start:\n{log_path.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"GET /health HTTP/1.0\r\n\r\n")
                if sock.recv(64).split(b" ")[1:2] == [b"200"]:
                    return server, url
        except OSError:
            time.sleep(0.2)
    stop_server(server)
    raise SystemExit(f"gunicorn did not answer within 30 s:\n{log_path.read_text()}")


def stop_server(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=5)


def server_pids(master_pid: int) -> list[int]:
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    return [master_pid, *map(int, children)]


def server_pss_mb(master_pid: int) -> tuple[float, int]:
    """PSS of the gunicorn master and its workers in MB, and how many processes that is."""
    total_kb = 0
    pids = server_pids(master_pid)
    for pid in pids:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                total_kb += int(line.split()[1])
    return total_kb / 1024, len(pids)


def process_tree(pid: int) -> list[int]:
    """The process and all its descendants (uvicorn's workers are grandchildren)."""
    pids = [pid]
    for found in pids:
        try:
            pids += map(int, Path(f"/proc/{found}/task/{found}/children").read_text().split())
        except FileNotFoundError:
            continue
    return pids


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


# -- client measurements -------------------------------------------------------------------


def configure_client(url: str, token: str) -> None:
    os.environ.update(
        {
            "MLFLOW_TRACKING_URI": url,
            "MLFLOW_TRACKING_TOKEN": token,
            "MLFLOW_ENABLE_ASYNC_TRACE_LOGGING": "false",
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
            "MLFLOW_HTTP_REQUEST_TIMEOUT": "120",
        }
    )


def keep_alive_round_trips(url: str, token: str, count: int) -> list[float]:
    """Latencies (ms) of small requests on one kept-alive connection.

    A server that writes headers and body separately without TCP_NODELAY shows ~40 ms here.
    """
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    headers = {"Authorization": f"Bearer {token}"}
    latencies = []
    try:
        for i in range(count):
            path = "/version" if i % 2 else "/api/2.0/mlflow/experiments/get?experiment_id=0"
            started = time.perf_counter()
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            response.read()
            latencies.append((time.perf_counter() - started) * 1000)
            if response.status != 200 or response.will_close:
                raise SystemExit(f"GET {path} answered {response.status} or closed.")
    finally:
        connection.close()
    return latencies


def log_trace(mlflow, n: int, spans: int) -> str:
    """One trace of ``spans`` spans (a root and its children), exported synchronously."""
    with mlflow.start_span(name="agent", span_type="AGENT") as root:
        root.set_inputs({"question": f"What is item {n}?", "history": ["hello", "hi"]})
        mlflow.update_current_trace(
            client_request_id=f"live-{n}-{secrets.token_hex(4)}",
            tags={"team": f"team-{n % TEAMS}"},
            metadata={"mlflow.trace.user": f"user-{n % USERS}"},
        )
        for step in range(spans - 1):
            with mlflow.start_span(name=f"step-{step}", span_type="LLM") as span:
                span.set_inputs({"messages": [{"role": "user", "content": f"part {step}"}]})
                span.set_outputs({"content": f"reply {step}", "tokens": step})
                span.set_attributes({"model": "bench-model", "temperature": 0.2})
        root.set_outputs({"answer": f"Item {n} is fine."})
    return root.trace_id


def measure(url: str, token: str, store_id: str, sizes: dict, results: dict) -> None:
    configure_client(url, token)
    results["keep_alive"] = keep_alive_round_trips(url, token, 200)
    trace_ids = measure_writes(url, sizes, results, single_thread_ingest=True)
    measure_reads(url, token, store_id, sizes, results, trace_ids)


def measure_writes(url: str, sizes: dict, results: dict, single_thread_ingest: bool) -> list:
    """The workload both servers get: 10-span traces, log_feedback, override_feedback,
    update_assessment and get_trace through the client; returns the logged trace ids."""
    import mlflow
    from mlflow.entities import AssessmentSource, Feedback
    from mlflow.store.tracking.rest_store import RestStore

    # The client remembers the last server's version and its span exporter.
    RestStore._get_server_version.cache_clear()
    mlflow.tracing.reset()
    mlflow.set_tracking_uri(url)
    mlflow.set_experiment(LIVE_EXPERIMENT)
    source = AssessmentSource(source_type="HUMAN", source_id="bench-reviewer")
    counter = itertools.count()
    trace_ids: list[str] = []

    def ingest(_):
        trace_ids.append(log_trace(mlflow, next(counter), 10))

    timed(5, 1, ingest)
    n = sizes["ingest_traces"]
    if single_thread_ingest:
        results["ingest_1"] = timed(n, 1, ingest)
    results["ingest_8"] = timed(2 * n, 8, ingest)
    print(f"ingest done ({len(trace_ids)} traces)", file=sys.stderr)

    feedback_ids: list[tuple[str, str]] = []

    def feedback(i):
        trace_id = trace_ids[i % len(trace_ids)]
        created = mlflow.log_feedback(
            trace_id=trace_id,
            name="quality",
            value=i % 5 + 1,
            source=source,
            rationale="benchmark rating",
        )
        feedback_ids.append((trace_id, created.assessment_id))

    timed(5, 1, feedback)
    calls = sizes["feedback_calls"]
    results["feedback_1"] = timed(calls, 1, feedback)
    results["feedback_8"] = timed(2 * calls, 8, feedback)
    print("log_feedback done", file=sys.stderr)

    edits = sizes["edit_calls"]
    to_override, to_update = feedback_ids[:edits], feedback_ids[edits : 2 * edits]
    results["override"] = timed(
        edits,
        1,
        lambda i: mlflow.override_feedback(
            trace_id=to_override[i][0],
            assessment_id=to_override[i][1],
            value=1,
            rationale="overridden",
            source=source,
        ),
    )
    results["update"] = timed(
        edits,
        1,
        lambda i: mlflow.update_assessment(
            trace_id=to_update[i][0],
            assessment_id=to_update[i][1],
            assessment=Feedback(name="quality", value=2, rationale="updated"),
        ),
    )
    print("override and update done", file=sys.stderr)
    results["get_10"] = timed(
        sizes["get_repeats"], 1, lambda i: mlflow.get_trace(trace_ids[i % len(trace_ids)])
    )
    return trace_ids


def measure_reads(
    url: str, token: str, store_id: str, sizes: dict, results: dict, trace_ids: list
) -> None:
    """Searches of the store, and get_trace of a 10-span and a big trace, client and raw."""
    import mlflow
    import requests
    from mlflow import MlflowClient

    client = MlflowClient(url)
    rng = random.Random(8)
    store_size = sizes["store_traces"]
    searches = {
        "search_request_id": lambda: f"client_request_id = 'req-{rng.randrange(store_size)}'",
        "search_user": lambda: f"metadata.`mlflow.trace.user` = 'user-{rng.randrange(USERS)}'",
        "search_tag": lambda: f"tags.team = 'team-{rng.randrange(TEAMS)}'",
        "search_page": lambda: None,
    }
    raw = requests.Session()
    raw.headers["Authorization"] = f"Bearer {token}"
    for key, make_filter in searches.items():
        found = []

        def search(_, make_filter=make_filter, found=found):
            page = client.search_traces(
                locations=[store_id],
                filter_string=make_filter(),
                max_results=100,
                include_spans=False,
            )
            found.append(len(page))

        def search_raw(_, make_filter=make_filter):
            body = {"locations": [{"mlflow_experiment": {"experiment_id": store_id}}]}
            body.update(max_results=100, filter=make_filter())
            answer = raw.post(f"{url}/api/3.0/mlflow/traces/search", json=body, timeout=60)
            answer.raise_for_status()

        timed(5, 1, search)
        found.clear()
        results[key] = timed(sizes["search_repeats"], 1, search)
        results[key + "_rows"] = statistics.median(found)
        results[key + "_raw"] = timed(sizes["search_repeats"], 1, search_raw)
    print("search done", file=sys.stderr)

    started = time.perf_counter()
    big_id = copy_as_big_trace(trace_ids[0], sizes["big_spans"])
    results["big_load_s"] = time.perf_counter() - started
    spans = len(mlflow.get_trace(big_id).data.spans)
    if spans != sizes["big_spans"]:
        raise SystemExit(f"The big trace came back with {spans} spans.")
    results["get_5000"] = timed(sizes["big_repeats"], 1, lambda i: mlflow.get_trace(big_id))
    for key, trace_id, repeats in (
        ("get_10", None, sizes["get_repeats"]),
        ("get_5000", big_id, sizes["big_repeats"]),
    ):

        def get_raw(i, trace_id=trace_id):
            params = {"trace_id": trace_id or trace_ids[i % len(trace_ids)]}
            answer = raw.get(f"{url}/api/3.0/mlflow/traces/get", params=params, timeout=60)
            answer.raise_for_status()

        results[key + "_raw"] = timed(repeats, 1, get_raw)
    print("get_trace done", file=sys.stderr)


def copy_as_big_trace(template_id: str, spans: int) -> str:
    """A trace of ``spans`` spans shaped like a client-logged one, stored through traces.ingest.

    Logging it through the client would send one request per span (the client exports each
    span as it ends), which measures ingest again and takes minutes on a busy machine.
    """
    from traces import ingest
    from traces.models import Span, Trace

    template = Trace.objects.select_related("experiment").get(trace_id=template_id)
    rows = list(Span.objects.filter(trace=template).order_by("start_time_ns"))
    root = next(row for row in rows if row.parent_span_id is None)
    children = [row for row in rows if row.parent_span_id is not None]
    trace_id = "tr-" + secrets.token_hex(16)
    root_id = secrets.token_hex(8)
    start = time.time_ns()

    def record(row, n: int, span_id: str, parent_id: str | None) -> ingest.SpanRecord:
        return ingest.SpanRecord(
            trace_id=trace_id,
            span_id=span_id,
            parent_span_id=parent_id,
            name=row.name if parent_id is None else f"step-{n}",
            start_time_ns=start + n * 1_000_000,
            end_time_ns=start + (n + 1) * 1_000_000 if parent_id else start + spans * 1_000_000,
            status=row.status,
            status_message=row.status_message,
            inputs=row.inputs,
            outputs=row.outputs,
            attributes={**row.attributes, "mlflow.traceRequestId": json.dumps(trace_id)},
            events=row.events,
        )

    records = [record(root, 0, root_id, None)] + [
        record(children[n % len(children)], n, secrets.token_hex(8), root_id)
        for n in range(1, spans)
    ]
    ingest.store_spans(template.experiment, records)
    size_stats = json.dumps({"num_spans": spans})
    ingest.start_trace(
        ingest.parse_trace_info(
            {
                "trace_id": trace_id,
                "trace_location": {
                    "mlflow_experiment": {"experiment_id": template.experiment.experiment_id}
                },
                "request_time": ms_to_rfc3339(start // 1_000_000),
                "execution_duration": f"{spans / 1000}s",
                "state": "OK",
                "request_preview": template.request_preview,
                "response_preview": template.response_preview,
                "trace_metadata": {
                    **template.trace_metadata,
                    "mlflow.trace.sizeStats": size_stats,
                },
                "tags": template.tags,
            }
        )
    )
    return trace_id


def ms_to_rfc3339(ms: int) -> str:
    moment = time.gmtime(ms // 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", moment) + f".{ms % 1000:03d}Z"


# -- report --------------------------------------------------------------------------------


def report(results: dict, sizes: dict) -> list[tuple]:
    r = results
    big = sizes["big_spans"]
    store = sizes["store_traces"]
    stalls = sum(ms >= 35 for ms in r["keep_alive"])
    rows = [
        (
            "keep-alive round trip p50 / max ms, 40 ms stalls",
            f"{statistics.median(r['keep_alive']):.1f} / {max(r['keep_alive']):.1f}, {stalls}",
            "p50 < 20",
            "~40",
            statistics.median(r["keep_alive"]) < 20,
        ),
        ("ingest 10-span traces/s, 1 thread", f"{r['ingest_1'].per_second:.1f}", "", "4.8"),
        (
            "ingest 10-span traces/s, 8 threads",
            f"{r['ingest_8'].per_second:.1f}",
            ">= 28.5",
            "9.5",
            r["ingest_8"].per_second >= 3 * MLFLOW["ingest_8"],
        ),
        cpu_row(r["ingest_8"], "trace"),
        (
            "log_feedback calls/s, 1 thread",
            f"{r['feedback_1'].per_second:.0f}",
            "",
            "19",
        ),
        (
            "log_feedback p50 / p95 ms, 1 thread",
            f"{r['feedback_1'].p50:.1f} / {r['feedback_1'].p95:.1f}",
            "p50 < 10",
            "52 / -",
            r["feedback_1"].p50 < 10,
        ),
        (
            "log_feedback calls/s, 8 threads",
            f"{r['feedback_8'].per_second:.0f}",
            ">= 360",
            "120",
            r["feedback_8"].per_second >= 3 * MLFLOW["feedback_8"],
        ),
        cpu_row(r["feedback_8"], "call"),
        (
            "log_feedback p50 / p95 ms, 8 threads",
            f"{r['feedback_8'].p50:.1f} / {r['feedback_8'].p95:.1f}",
            "",
            "",
        ),
        ("override_feedback p50 ms", f"{r['override'].p50:.1f}", "", "100"),
        ("update_assessment p50 ms", f"{r['update'].p50:.1f}", "", ""),
    ]
    for key, label in (
        ("search_request_id", "client_request_id"),
        ("search_user", "user"),
        ("search_tag", "tag"),
        ("search_page", "unfiltered page"),
    ):
        rows.append(
            (
                f"search {label} p50 / p95 ms ({r[key + '_rows']:.0f} rows of {store:,})",
                f"{r[key].p50:.1f} / {r[key].p95:.1f}",
                "p95 < 20",
                "52-73 / -",
                r[key].p95 < 20,
            )
        )
        rows.append(raw_row(r[key + "_raw"]))
    rows += [
        (
            "get_trace 10 spans p50 / p95 ms",
            f"{r['get_10'].p50:.1f} / {r['get_10'].p95:.1f}",
            "",
            "108 / -",
        ),
        raw_row(r["get_10_raw"]),
        (
            f"get_trace {big:,} spans p50 / p95 ms",
            f"{r['get_5000'].p50:.0f} / {r['get_5000'].p95:.0f}",
            "< 500",
            "2400 / -",
            r["get_5000"].p95 < 500,
        ),
        raw_row(r["get_5000_raw"]),
        (f"store the {big:,}-span trace via traces.ingest, s", f"{r['big_load_s']:.1f}", "", ""),
        (
            f"server PSS MB ({r['processes']} processes)",
            f"{r['pss_mb']:.0f}",
            "< 400",
            "~2000",
            r["pss_mb"] < 400,
        ),
    ]
    return rows


def cpu_row(timing: Timing, unit: str) -> tuple:
    """CPU time per call of the client (this process) and of the gunicorn processes."""
    figures = f"{timing.client_cpu_ms:.1f} / {timing.server_cpu_ms:.1f}"
    return (f"  CPU ms per {unit}, client / server (PostgreSQL apart)", figures, "", "")


def raw_row(timing: Timing) -> tuple:
    """The same request without the client (requests, JSON not parsed into entities)."""
    return (
        "  same request, plain HTTP p50 / p95 ms",
        f"{timing.p50:.1f} / {timing.p95:.1f}",
        "",
        "",
    )


def print_table(rows: list[tuple]) -> None:
    header = ("measure", "Tracemark", "target", "MLflow", "")
    table = [header] + [
        (*row[:4], "" if len(row) < 5 else ("ok" if row[4] else "MISSED")) for row in rows
    ]
    widths = [max(len(str(row[i])) for row in table) for i in range(5)]
    for row in table:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)))


# -- beside the MLflow server -----------------------------------------------------------

MLFLOW_VENV_ENV = "MLFLOW_SERVER_VENV"
# (label, result key, figure, goal, whether Tracemark meets it given MLflow's figure)
COMPARED = [
    ("ingest 10-span traces/s, 8 threads", "ingest_8", "rate", ">= 3x MLflow", 3.0),
    ("log_feedback calls/s, 8 threads", "feedback_8", "rate", ">= 3x MLflow", 3.0),
    ("log_feedback p50 ms, 1 thread", "feedback_1", "p50", "< 5", 5),
    ("update_assessment p50 ms", "update", "p50", "< 8", 8),
    ("override_feedback p50 ms (GET + POST)", "override", "p50", "< 12", 12),
    ("get_trace 10 spans p50 ms", "get_10", "p50", "< 12", 12),
    ("  server CPU ms per trace, 8 threads", "ingest_8", "cpu", "<= 45 (+ DB)", 45),
    ("  server CPU ms per log_feedback, 8 threads", "feedback_8", "cpu", "<= 3 (+ DB)", 3),
    # Client and servers share the cores: where the client's own CPU is most of a call,
    # the servers' work (the server's and the database's) shows what each costs.
    ("  client CPU ms per trace, 8 threads", "ingest_8", "client", "", None),
    ("  server + database CPU ms per trace", "ingest_8", "work", "<= MLflow's / 3", 3.0),
    ("  client CPU ms per log_feedback, 8 threads", "feedback_8", "client", "", None),
    ("  server + database CPU ms per log_feedback", "feedback_8", "work", "<= MLflow's / 3", 3.0),
]


def start_mlflow(venv: Path, database_url: str, log_path: Path) -> tuple[subprocess.Popen, str]:
    """``mlflow server`` with 2 uvicorn workers on ``database_url``, in its own process group."""
    port = free_port()
    artifacts = tempfile.mkdtemp(prefix="mlflow-bench-artifacts-")
    command = [
        str(venv / "bin" / "mlflow"), "server",
        "--backend-store-uri", database_url,
        "--artifacts-destination", artifacts,
        "--host", "127.0.0.1", "--port", str(port), "--workers", "2",
        # A worker busy starting on a loaded machine must not be restarted mid-run.
        "--uvicorn-opts", "--timeout-worker-healthcheck 60",
    ]  # fmt: skip
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180  # it migrates its empty database first
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"mlflow server did not start:\n{log_path.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
                answered = sock.recv(64).split(b" ")[1:2] == [b"200"]
            if answered and log_path.read_text().count("Application startup complete") >= 2:
                return server, url
        except OSError:
            pass
        time.sleep(0.5)
    stop_group(server)
    raise SystemExit(f"mlflow server did not answer within 180 s:\n{log_path.read_text()}")


def stop_group(server: subprocess.Popen) -> None:
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=5)


def run_writes(system: str, args, sizes: dict, venv: Path) -> dict:
    """One run of the shared workload against a fresh server and database of ``system``."""
    name = f"{args.database}_{system}"
    admin_url = f"{args.postgres}/postgres"
    recreate_database(admin_url, name)
    log_path = Path(tempfile.gettempdir()) / f"{name}-server.log"
    server = None
    try:
        if system == "tracemark":
            os.environ["DATABASE_URL"] = f"{args.postgres}/{name}"
            from django.db import connections

            connections["default"].settings_dict["NAME"] = name
            token, _ = prepare_database(0)
            server, url = start_server(os.environ["DATABASE_URL"], False, log_path)
        else:
            token = "unused"  # noqa: S105 - MLflow's server runs without authentication here
            backend = args.postgres.replace("postgres://", "postgresql://", 1) + f"/{name}"
            server, url = start_mlflow(venv, backend, log_path)
        SERVER_PIDS[:] = process_tree(server.pid)
        configure_client(url, token)
        results = {"load_before": load_average()}
        measure_writes(url, sizes, results, single_thread_ingest=False)
        results["load_after"] = load_average()
        return results
    finally:
        if server is not None:
            (stop_server if system == "tracemark" else stop_group)(server)
        drop_database(admin_url, name)


def figure(timing: Timing, kind: str) -> float:
    return {
        "rate": timing.per_second,
        "p50": timing.p50,
        "cpu": timing.server_cpu_ms,
        "client": timing.client_cpu_ms,
        "work": timing.server_cpu_ms + timing.database_cpu_ms,
    }[kind]


def meets(kind: str, bound: float, ours: list[float], mlflow: list[float]) -> bool:
    pairs = zip(ours, mlflow, strict=True)
    if kind == "rate":
        return all(t >= bound * m for t, m in pairs)
    if kind == "work":
        return all(bound * t <= m for t, m in pairs)
    return all(t <= bound if kind == "cpu" else t < bound for t in ours)


def compare_with_mlflow(args, sizes: dict, venv: Path) -> None:
    setup_django()
    runs = []
    for n in range(2):
        for system in ("tracemark", "mlflow"):
            print(f"run {n + 1}: {system}", file=sys.stderr)
            runs.append((n, system, run_writes(system, args, sizes, venv)))
    by = {(n, system): results for n, system, results in runs}
    table = [("measure", "MLflow (run 1 / 2)", "Tracemark (run 1 / 2)", "goal", "met?")]
    for label, key, kind, goal, bound in COMPARED:
        mlflow_figures = [figure(by[n, "mlflow"][key], kind) for n in range(2)]
        ours = [figure(by[n, "tracemark"][key], kind) for n in range(2)]
        met = "" if bound is None else ("yes" if meets(kind, bound, ours, mlflow_figures) else "NO")
        table.append(
            (
                label,
                " / ".join(f"{value:.1f}" for value in mlflow_figures),
                " / ".join(f"{value:.1f}" for value in ours),
                goal,
                met,
            )
        )
    print(f"\nTracemark beside MLflow's server ({os.cpu_count()} cores, PostgreSQL)")
    for n, system, results in runs:
        print(
            f"run {n + 1} {system:9}  load average before: {results['load_before']}"
            f"   after: {results['load_after']}"
        )
    print("(server CPU: the server's processes, PostgreSQL apart; database CPU: PostgreSQL's)\n")
    widths = [max(len(row[i]) for row in table) for i in range(5)]
    for row in table:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print("  ".join(cells).rstrip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, to check the setup")
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--database", default="tm_bench_api")
    parser.add_argument("--keep-database", action="store_true")
    parser.add_argument(
        "--plain-gunicorn", action="store_true", help="command-line flags, no config module"
    )
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument(
        "--mlflow-venv",
        type=Path,
        default=os.environ.get(MLFLOW_VENV_ENV),
        help=f"virtualenv with the full MLflow server (or ${MLFLOW_VENV_ENV}): compare with it",
    )
    for name, default in SIZES["full"].items():
        parser.add_argument("--" + name.replace("_", "-"), type=int, help=f"default {default:,}")
    args = parser.parse_args()
    sizes = {
        name: getattr(args, name) or default
        for name, default in SIZES["quick" if args.quick else "full"].items()
    }

    database_url = f"{args.postgres}/{args.database}"
    os.environ.update({**SERVER_ENV, "DATABASE_URL": database_url})
    if args.mlflow_venv:
        compare_with_mlflow(args, sizes, Path(args.mlflow_venv))
        return
    recreate_database(f"{args.postgres}/postgres", args.database)
    server = None
    try:
        setup_django()
        token, store_id = prepare_database(sizes["store_traces"])
        log_path = Path(tempfile.gettempdir()) / f"{args.database}-gunicorn.log"
        server, url = start_server(database_url, args.plain_gunicorn, log_path)
        SERVER_PIDS[:] = server_pids(server.pid)
        load_before = load_average()
        results: dict = {}
        measure(url, token, store_id, sizes, results)
        results["pss_mb"], results["processes"] = server_pss_mb(server.pid)
        load_after = load_average()
    finally:
        if server is not None:
            stop_server(server)
        if not args.keep_database:
            drop_database(f"{args.postgres}/postgres", args.database)

    mode = "gunicorn flags only" if args.plain_gunicorn else f"gunicorn -c {GUNICORN_CONFIG.name}"
    print(f"\nTracemark API benchmark ({mode}, PostgreSQL, {os.cpu_count()} cores)")
    print(f"load average before: {load_before}   after: {load_after}\n")
    print_table(report(results, sizes))
    if args.json:
        raw = {
            key: (
                {
                    "per_second": value.per_second,
                    "p50": value.p50,
                    "p95": value.p95,
                    "client_cpu_ms": value.client_cpu_ms,
                    "server_cpu_ms": value.server_cpu_ms,
                }
                if isinstance(value, Timing)
                else value
            )
            for key, value in results.items()
        }
        args.json.write_text(json.dumps({"sizes": sizes, "results": raw}, indent=2))


if __name__ == "__main__":
    main()
