"""Django CPU time and SQL queries per MLflow API request, in-process and deterministic.

    .venv/bin/python benchmarks/api_cpu.py
    .venv/bin/python benchmarks/api_cpu.py --profile log_feedback   # cProfile of one kind

Requests go through Django's test client (URL routing, every middleware, the view, the
database) on PostgreSQL, DEBUG off, signed in with a Reviewer's API token as the MLflow
client is: no network, no gunicorn, no client parsing, so the figures are the server's own
share and hardly move with the machine's load. The database (``--database``, default
tm_apicpu) is dropped, created and migrated, and dropped again unless ``--keep-database``.

Request kinds, with bodies shaped as mlflow-skinny 3.17 sends them (payloads built before
the clock starts):
- health: ``GET /health``, no credentials: the floor of routing and middleware;
- get_experiment: ``GET experiments/get``, the cheapest authenticated request;
- otlp_span: ``POST /v1/traces`` with one span, as the client's synchronous exporter sends
  each span when it ends (ten per trace: nine children, then the root);
- start_trace: StartTraceV3 for each of those traces, after its spans;
- log_feedback: CreateAssessment of a numeric HUMAN feedback with a rationale;
- trace_info: GetTraceInfoV3 of a trace with one feedback;
- search_page: SearchTracesV3, a page of 100 of ``--store-traces`` traces (every other one
  with a feedback), no filter.

CPU is this process's time (Django, psycopg and the test client, not PostgreSQL's);
queries are counted in a separate pass, so the counting does not weigh on the timing.
"""

import argparse
import cProfile
import gc
import json
import os
import pstats
import secrets
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings",
    "DEBUG": "false",
    "SECRET_KEY": "benchmark-only-" + secrets.token_hex(16),
    "ALLOWED_HOSTS": "testserver",
    "SECURE_SSL_REDIRECT": "false",
    "SECURE_COOKIES": "false",
    "STATIC_MANIFEST": "false",
    "LOG_LEVEL": "ERROR",
}
SPANS_PER_TRACE = 10
COUNTED = 10
CHUNKS = 5


def otlp_span(trace_hex: str, span_hex: str, parent_hex: str | None, n: int) -> bytes:
    """One span in an ExportTraceServiceRequest, with the attributes the MLflow client sets."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )
    from opentelemetry.proto.trace.v1.trace_pb2 import Status

    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    for key, value in (("service.name", "bench-app"), ("telemetry.sdk.language", "python")):
        attribute = resource_spans.resource.attributes.add()
        attribute.key, attribute.value.string_value = key, value
    span = resource_spans.scope_spans.add().spans.add()
    span.trace_id = bytes.fromhex(trace_hex)
    span.span_id = bytes.fromhex(span_hex)
    if parent_hex:
        span.parent_span_id = bytes.fromhex(parent_hex)
    span.name = f"step-{n}" if parent_hex else "agent"
    start = time.time_ns()
    span.start_time_unix_nano = start
    span.end_time_unix_nano = start + 5_000_000
    span.status.code = Status.STATUS_CODE_OK
    if parent_hex:
        inputs = {"messages": [{"role": "user", "content": f"part {n}"}]}
        outputs = {"content": f"reply {n}", "tokens": n}
        extra = {"model": "bench-model", "temperature": 0.2}
    else:
        inputs = {"question": f"What is item {n}?", "history": ["hello", "hi"]}
        outputs = {"answer": f"Item {n} is fine."}
        extra = {}
    attributes = {
        "mlflow.traceRequestId": f"tr-{trace_hex}",
        "mlflow.spanType": "LLM" if parent_hex else "AGENT",
        "mlflow.spanFunctionName": "step" if parent_hex else "agent",
        "mlflow.spanInputs": inputs,
        "mlflow.spanOutputs": outputs,
        **extra,
    }
    for key, value in attributes.items():
        attribute = span.attributes.add()
        attribute.key, attribute.value.string_value = key, json.dumps(value)
    return request.SerializeToString()


def start_trace_body(trace_hex: str, experiment_id: str, n: int) -> str:
    now = int(time.time() * 1000)
    info = {
        "trace_id": f"tr-{trace_hex}",
        "client_request_id": f"live-{n}-{secrets.token_hex(4)}",
        "trace_location": {
            "type": "MLFLOW_EXPERIMENT",
            "mlflow_experiment": {"experiment_id": experiment_id},
        },
        "request_time": ms_to_rfc3339(now),
        "execution_duration": "0.050s",
        "state": "OK",
        "request_preview": json.dumps({"question": f"What is item {n}?"}),
        "response_preview": json.dumps({"answer": f"Item {n} is fine."}),
        "trace_metadata": {
            "mlflow.trace_schema.version": "3",
            "mlflow.trace.user": f"user-{n % 200}",
            "mlflow.trace.sizeStats": json.dumps({"total_size_bytes": 4000, "num_spans": 10}),
            "mlflow.trace.sizeBytes": "4000",
            "mlflow.source.name": "bench.py",
            "mlflow.source.type": "LOCAL",
        },
        "tags": {"mlflow.traceName": "agent", "team": f"team-{n % 50}"},
    }
    return json.dumps({"trace": {"trace_info": info}})


def feedback_body(trace_id: str, n: int) -> str:
    now = ms_to_rfc3339(int(time.time() * 1000))
    assessment = {
        "assessment_name": "quality",
        "trace_id": trace_id,
        "source": {"source_type": "HUMAN", "source_id": "bench-reviewer"},
        "create_time": now,
        "last_update_time": now,
        "feedback": {"value": n % 5 + 1},
        "rationale": "benchmark rating",
    }
    return json.dumps({"assessment": assessment})


def ms_to_rfc3339(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def build_requests(store_id: str, live_id: str, store_trace_ids: list[str], n: int) -> dict:
    """Per kind, a list of (method, path, body, content_type, headers) ready to send."""
    json_type = "application/json"
    traces = max(1, (n + COUNTED) // SPANS_PER_TRACE + 1)
    spans, starts = [], []
    for t in range(traces):
        trace_hex, root_hex = secrets.token_hex(16), secrets.token_hex(8)
        for s in range(1, SPANS_PER_TRACE):
            body = otlp_span(trace_hex, secrets.token_hex(8), root_hex, s)
            spans.append(("post", "/v1/traces", body, "application/x-protobuf", live_id))
        body = otlp_span(trace_hex, root_hex, None, t)
        spans.append(("post", "/v1/traces", body, "application/x-protobuf", live_id))
        starts.append(("post", "/api/3.0/mlflow/traces", start_trace_body(trace_hex, live_id, t)))
    location = {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": store_id}}
    search = json.dumps({"locations": [location], "max_results": 100})
    total = n + COUNTED
    pick = [store_trace_ids[i * 7 % len(store_trace_ids)] for i in range(total)]
    return {
        "health": [("get", "/health", None)] * total,
        "get_experiment": [
            ("get", f"/api/2.0/mlflow/experiments/get?experiment_id={live_id}", None)
        ]
        * total,
        "otlp_span": [(m, p, b, t, {"x-mlflow-experiment-id": e}) for m, p, b, t, e in spans][
            :total
        ],
        "start_trace": [(m, p, b, json_type, {}) for m, p, b in starts][: total // SPANS_PER_TRACE],
        "log_feedback": [
            ("post", f"/api/3.0/mlflow/traces/{trace_id}/assessments", feedback_body(trace_id, i))
            for i, trace_id in enumerate(pick)
        ],
        "trace_info": [("get", f"/api/3.0/mlflow/traces/{trace_id}", None) for trace_id in pick],
        "search_page": [("post", "/api/3.0/mlflow/traces/search", search)] * total,
    }


def send(client, request) -> None:
    method, path, body, *rest = request
    content_type = rest[0] if rest else "application/json"
    headers = rest[1] if len(rest) > 1 else {}
    if method == "get":
        response = client.get(path, headers=headers)
    else:
        response = client.post(path, body, content_type=content_type, headers=headers)
    if response.status_code != 200:
        raise SystemExit(f"{method.upper()} {path} answered {response.status_code}:\n{response}")


def prepare(store_traces: int) -> tuple[str, str, str, list[str]]:
    """Migrate, create a Reviewer with a token and the stores; (token, store, live, ids)."""
    from api import bulk_load
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.db import connection

    from accounts.roles import Role
    from accounts.tokens import create_token
    from traces.models import Experiment, Trace

    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_user("bench-reviewer", password=None)
    user.groups.add(Group.objects.get_or_create(name=Role.REVIEWER)[0])
    token = create_token(user=user, name="benchmark")[1]
    store = Experiment.objects.create(name="bench-store")
    live = Experiment.objects.create(name="bench-live")
    bulk_load(store, store_traces, user)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    ids = list(Trace.objects.filter(experiment=store).values_list("trace_id", flat=True))
    return token, store.experiment_id, live.experiment_id, ids


def run(client, kind: str, requests: list, profile: bool, show_sql: bool) -> tuple[float, float]:
    """(CPU ms per request, queries per request) over ``requests``: the first COUNTED are
    sent while counting queries, the rest in CHUNKS timed chunks, of which the fastest counts
    (the least disturbed by other processes)."""
    from django.db import connection

    counted, timed = requests[:COUNTED], requests[COUNTED:]
    if kind == "start_trace":
        counted, timed = requests[:1], requests[1:]
    queries = []

    def count(execute, sql, params, many, context):
        queries.append(sql)
        return execute(sql, params, many, context)

    # Django's request_started signal empties connection.queries, so count with a wrapper.
    with connection.execute_wrapper(count):
        for request in counted:
            send(client, request)
    if show_sql:
        print(
            f"-- {kind}: the queries of one request",
            *queries[: len(queries) // len(counted)],
            sep="\n",
        )
    profiler = cProfile.Profile(time.process_time) if profile else None
    chunk = -(-len(timed) // CHUNKS)
    per_request = []
    for first in range(0, len(timed), chunk):
        gc.collect()
        started = time.process_time()
        if profiler:
            profiler.enable()
        for request in timed[first : first + chunk]:
            send(client, request)
        if profiler:
            profiler.disable()
        per_request.append(
            (time.process_time() - started) * 1000 / len(timed[first : first + chunk])
        )
    cpu_ms = min(per_request)
    if profiler:
        stats = pstats.Stats(profiler).strip_dirs().sort_stats("cumulative")
        stats.print_stats(45)
        stats.sort_stats("tottime").print_stats(25)
    return cpu_ms, len(queries) / len(counted)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--database", default="tm_apicpu")
    parser.add_argument("--keep-database", action="store_true")
    parser.add_argument("--requests", type=int, default=500, help="timed per kind; default 500")
    parser.add_argument("--store-traces", type=int, default=2000, help="default 2,000")
    parser.add_argument("--profile", metavar="KIND", help="print a cProfile of this kind")
    parser.add_argument("--sql", action="store_true", help="print the queries of each kind")
    args = parser.parse_args()

    sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
    os.environ.update({**ENV, "DATABASE_URL": f"{args.postgres}/{args.database}"})
    from api import drop_database, recreate_database

    recreate_database(f"{args.postgres}/postgres", args.database)
    try:
        import django

        # STATIC_ROOT exists only after collectstatic, which the API does not need.
        warnings.filterwarnings("ignore", message="No directory at", module="whitenoise")
        django.setup()
        from django.test import Client

        token, store_id, live_id, ids = prepare(args.store_traces)
        client = Client(headers={"Authorization": f"Bearer {token}"})
        requests = build_requests(store_id, live_id, ids, args.requests)
        # Warm up every code path (imports, URL resolver, prepared statements) first.
        for kind in ("health", "get_experiment", "log_feedback", "trace_info", "search_page"):
            for request in requests[kind][-3:]:
                send(client, request)
        rows = []
        for kind, batch in requests.items():
            # Spans go first when StartTraceV3 is profiled: it completes their traces.
            feeds_profiled = args.profile == "start_trace" and kind == "otlp_span"
            if args.profile and kind != args.profile and not feeds_profiled:
                continue
            cpu_ms, queries = run(
                client, kind, batch, profile=kind == args.profile, show_sql=args.sql
            )
            rows.append((kind, cpu_ms, queries))
        print(f"{'request':<16} {'CPU ms':>8} {'queries':>8}")
        for kind, cpu_ms, queries in rows:
            print(f"{kind:<16} {cpu_ms:>8.2f} {queries:>8.1f}")
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep_database:
            drop_database(f"{args.postgres}/postgres", args.database)


if __name__ == "__main__":
    main()
