"""Memory and speed of annotation.export on a large data set.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tm_bench_export \\
        .venv/bin/python benchmarks/export_memory.py
    DATABASE_URL=sqlite:////tmp/tm_bench_export.sqlite3 .venv/bin/python benchmarks/export_memory.py

The database must exist (``createdb tm_bench_export``); the script migrates it and, unless it
already holds them, creates the benchmark rows: 50,000 traces with a root span each and four
assessments per trace (200,000 in all) from five annotators, with booleans, ratings, text
holding commas, quotes and newlines, and objects.

BENCHMARK DATA ONLY: the rows are written with bulk_create, bypassing annotation.services
(no revisions, no validation), because writing 200,000 assessments one transaction at a
time would take far longer than the export being measured. Never do this for real data.

Each export runs in a fresh child process that reports the growth of its peak resident
memory (ru_maxrss) over its own start, after Django is set up and connected, so the figure
is what the export itself costs. Output goes to /dev/null; the time to the first chunk shows
how soon a download would start. On a shared machine wall time follows the load, so each run
also reports the CPU time this process spent (``time.process_time``, the database server's
share not included) per 100,000 rows and the load average when it ended. ``--only long-csv``
(repeatable) runs some of the exports.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENT = "export-benchmark"
ANNOTATORS = 5
PER_TRACE = 4
RUNS = {
    "long-csv": {"shape": "long", "format": "csv"},
    "long-jsonl": {"shape": "long", "format": "jsonl"},
    "long-csv-inputs": {"shape": "long", "format": "csv", "include_inputs": True},
    "wide-csv": {"shape": "wide", "format": "csv", "per_annotator": True},
}


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("SECRET_KEY", "benchmark-only-not-secret")
    os.environ.setdefault("DEBUG", "false")
    import django

    django.setup()


def create_rows(assessments: int) -> None:
    """Bulk-create the benchmark data (bypasses annotation.services; see the module doc)."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection, transaction

    from annotation.models import Assessment, Kind, SourceType
    from traces.models import Experiment, Span, Trace

    call_command("migrate", verbosity=0)
    experiment, _ = Experiment.objects.get_or_create(name=EXPERIMENT)
    have = Assessment.objects.filter(trace__experiment=experiment).count()
    if have >= assessments:
        print(f"Reusing {have} assessments in experiment {EXPERIMENT!r}.", file=sys.stderr)
        return
    Trace.objects.filter(experiment=experiment).delete()
    users = [
        get_user_model().objects.get_or_create(username=f"bench-annotator-{n}")[0]
        for n in range(ANNOTATORS)
    ]
    start_ms = 1_700_000_000_000
    traces_needed = assessments // PER_TRACE
    batch = 2_000
    print(f"Creating {traces_needed * PER_TRACE} assessments…", file=sys.stderr)
    for first in range(0, traces_needed, batch):
        numbers = range(first, min(first + batch, traces_needed))
        with transaction.atomic():
            traces = Trace.objects.bulk_create(
                Trace(
                    trace_id=f"tr-{n:032x}",
                    experiment=experiment,
                    request_time=start_ms + n * 1000,
                    execution_duration=100 + n % 900,
                    state=Trace.State.OK if n % 7 else Trace.State.ERROR,
                    client_request_id=f"req-{n}",
                    request_preview=f'{{"question": "Question {n}, with a comma?"}}',
                    response_preview=f'"Answer {n}: ""quoted""\\nsecond line"',
                    user=f"user-{n % 300}",
                    session=f"session-{n % 5000}",
                    trace_metadata={"mlflow.trace.user": f"user-{n % 300}"},
                )
                for n in numbers
            )
            Span.objects.bulk_create(
                Span(
                    trace=trace,
                    span_id=f"{n:016x}",
                    name="agent",
                    span_type="AGENT",
                    start_time_ns=trace.request_time * 1_000_000,
                    end_time_ns=trace.request_time * 1_000_000 + 5_000_000,
                    inputs={"messages": [{"role": "user", "content": f"Question {n}"}]},
                    outputs={"content": f"Answer {n}", "tokens": n % 500},
                )
                for n, trace in zip(numbers, traces, strict=True)
            )
            rows = []
            for n, trace in zip(numbers, traces, strict=True):
                who = users[n % ANNOTATORS]
                values = [
                    ("correct", n % 3 != 0),
                    ("rating", n % 5 + 1),
                    ("comment", f'Line one, with a comma.\nLine two: "{n}" — ünïcödé'),
                    ("labels", {"topic": ["billing", "refunds"][n % 2], "score": n % 100 / 10}),
                ]
                for offset, (name, value) in enumerate(values):
                    created = trace.request_time + 60_000 + offset
                    rows.append(
                        Assessment(
                            trace=trace,
                            experiment_id=trace.experiment_id,
                            kind=Kind.FEEDBACK,
                            name=name,
                            value=value,
                            rationale="because" if offset else "",
                            source_type=SourceType.HUMAN,
                            source_id=who.username,
                            annotator=who,
                            metadata={"batch": str(n // batch)},
                            create_time=created,
                            last_update_time=created,
                        )
                    )
            Assessment.objects.bulk_create(rows)
    # Fresh planner statistics, as autovacuum would soon give a real database.
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def measure(options: dict) -> dict:
    """Run one export in this process and report its speed and memory growth."""
    from django.db import connection

    from annotation.export import Export, ExportOptions
    from traces.models import Trace

    connection.ensure_connection()
    traces = Trace.objects.filter(experiment__name=EXPERIMENT)
    baseline_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    export = Export(traces, ExportOptions(**options))
    started = time.perf_counter()
    cpu_started = time.process_time()
    first_chunk = None
    size = 0
    with open(os.devnull, "w", encoding="utf-8") as sink:
        for chunk in export:
            if first_chunk is None:
                first_chunk = time.perf_counter() - started
            size += len(chunk.encode("utf-8"))
            sink.write(chunk)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        **options,
        "rows": export.rows,
        "seconds": round(elapsed, 2),
        "rows_per_second": round(export.rows / elapsed),
        "cpu_seconds_per_100k_rows": round(cpu * 100_000 / max(export.rows, 1), 3),
        "rows_per_cpu_second": round(export.rows / cpu),
        "first_chunk_seconds": round(first_chunk, 3),
        "megabytes_written": round(size / 1e6, 1),
        "start_rss_mb": round(baseline_kb / 1024, 1),
        "peak_rss_mb": round(peak_kb / 1024, 1),
        "peak_memory_above_start_mb": round((peak_kb - baseline_kb) / 1024, 1),
        "load_average": [round(load, 2) for load in os.getloadavg()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assessments", type=int, default=200_000)
    parser.add_argument("--only", action="append", choices=sorted(RUNS), help="runs to do")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    setup_django()
    if args.measure:
        print(json.dumps(measure(json.loads(args.measure))))
        return
    from django.db import connection

    create_rows(args.assessments)
    print(f"Database: {connection.vendor}", file=sys.stderr)
    for name in args.only or RUNS:
        options = RUNS[name]
        child = subprocess.run(
            [sys.executable, __file__, "--measure", json.dumps(options)],
            check=True,
            capture_output=True,
            text=True,
        )
        print(child.stdout.strip())


if __name__ == "__main__":
    main()
