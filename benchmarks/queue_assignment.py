"""Latency of annotation.queues.next_assignment under concurrency.

    createdb -h 127.0.0.1 -U postgres tm_bench_queues
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tm_bench_queues \\
        .venv/bin/python benchmarks/queue_assignment.py

Eight threads, one annotator each, each with its own database connection, start together
behind a barrier and loop: ask for the next item, submit an answer through the service,
repeat until the queue has nothing left for them. Only the ``next_assignment`` calls are
timed. The script migrates the database and builds a fresh queue each run (traces and
people are created through the ordinary code paths); it then checks that no item went
twice to anyone and none beyond its overlap, and prints p50/p95/max per call. ``--controls``
makes that percent of the items control items (0 for none), handed out at the same rate.
"""

import argparse
import os
import statistics
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("SECRET_KEY", "benchmark-only-not-secret")
    os.environ.setdefault("DEBUG", "false")
    import django

    django.setup()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--overlap", type=int, default=3)
    parser.add_argument(
        "--controls", type=int, default=10, help="percent of items made control items"
    )
    args = parser.parse_args()

    setup_django()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    from accounts.roles import Role, set_role
    from annotation import quality, queues
    from annotation.models import LabelSchema, QueueAssignment
    from traces.models import Experiment, Trace, now_ms

    call_command("migrate", verbosity=0)
    run = uuid.uuid4().hex[:8]
    schema, _ = LabelSchema.objects.get_or_create(
        name="bench_correct", defaults={"value_type": "boolean", "applies_to": "trace"}
    )
    experiment = Experiment.objects.get(pk=Experiment.DEFAULT_ID)
    traces = Trace.objects.bulk_create(
        Trace(
            trace_id=f"tr-{uuid.uuid4().hex}",
            experiment=experiment,
            request_time=now_ms(),
            state=Trace.State.OK,
        )
        for _ in range(args.items)
    )
    people = []
    for n in range(args.threads):
        person = get_user_model().objects.create_user(username=f"bench-{run}-{n}")
        set_role(person, Role.REVIEWER)
        people.append(person)
    queue = queues.create_queue(
        name=f"bench-{run}",
        traces=traces,
        schemas=[schema],
        annotators=people,
        overlap=args.overlap,
        control_rate=args.controls,
    )
    control_every = round(100 / args.controls) if args.controls else 0
    for item in queue.items.all():
        if control_every and item.position % control_every == 0:
            quality.set_control_answers(item=item, answers={schema.name: True}, actor=None)

    barrier = threading.Barrier(args.threads)
    timings: list[float] = []
    failures: list[Exception] = []
    lock = threading.Lock()

    def work(person):
        mine = []
        try:
            barrier.wait()
            while True:
                started = time.perf_counter()
                assignment = queues.next_assignment(queue=queue, user=person)
                mine.append(time.perf_counter() - started)
                if assignment is None:
                    break
                queues.submit(assignment=assignment, values={schema.name: True}, actor=person)
        except Exception as exc:  # reported below
            failures.append(exc)
        finally:
            connection.close()
            with lock:
                timings.extend(mine)

    started = time.perf_counter()
    threads = [threading.Thread(target=work, args=(p,)) for p in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started

    if failures:
        raise SystemExit(f"{len(failures)} thread(s) failed: {failures[0]!r}")
    pairs = list(
        QueueAssignment.objects.filter(item__queue=queue).values_list("item_id", "annotator_id")
    )
    controls = set(queue.items.filter(is_control=True).values_list("pk", flat=True))
    per_item = Counter(item for item, _ in pairs)
    duplicates = len(pairs) - len(set(pairs))
    over = sum(1 for pk, n in per_item.items() if pk not in controls and n > args.overlap)
    expected = (args.items - len(controls)) * args.overlap + len(controls) * args.threads
    ms = [t * 1000 for t in timings]
    vendor = connection.vendor
    print(
        f"{vendor}: {args.threads} threads, {args.items} items, overlap {args.overlap}: "
        f"{len(controls)} control items: {len(ms)} next-item calls in {elapsed:.2f}s"
    )
    print(
        f"  per call: p50 {percentile(ms, 0.5):.1f} ms, p95 {percentile(ms, 0.95):.1f} ms, "
        f"max {max(ms):.1f} ms, mean {statistics.fmean(ms):.1f} ms"
    )
    print(
        f"  assignments {len(pairs)} (expected {expected}), "
        f"duplicates {duplicates}, items over overlap {over}"
    )


if __name__ == "__main__":
    main()
