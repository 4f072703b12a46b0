"""gunicorn settings for Tracemark: ``gunicorn -c config/gunicorn.conf.py config.wsgi``.

Every value can be overridden on the command line or with GUNICORN_CMD_ARGS; WEB_CONCURRENCY
sets the number of workers, as gunicorn's own default does.

Workers and threads: a request spends much of its time waiting on the database, so each
worker runs a few threads (gthread) to overlap those waits, and one process per core keeps
the CPU-bound part (JSON, protobuf, templates) parallel without paying for idle processes:
each worker holds its own Django, so memory grows with workers, not with threads. gthread
also keeps connections alive between requests, which the MLflow client reuses.

Nagle's algorithm: gunicorn writes a response's headers and body with two writes, which
on a keep-alive connection without TCP_NODELAY would hold the body back until the client's
delayed ACK (40 ms). gunicorn sets TCP_NODELAY on its listening socket and Linux passes it
on to every accepted connection, so nothing is needed here; benchmarks/api.py checks it by
timing small requests on one kept-alive connection.
"""

import gc
import multiprocessing
import os

bind = "127.0.0.1:8000"
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count()))
worker_class = "gthread"
threads = 4
keepalive = 30
# Recycle workers now and then so a slow leak or fragmentation cannot grow without bound.
max_requests = 20_000
max_requests_jitter = 2_000


def post_worker_init(worker):
    """Move everything loaded so far (Django, the app, their modules) out of the collector's
    sight: a request that makes tens of thousands of objects (a judge report, an export)
    then triggers full collections that walk only its own objects, not the whole process."""
    gc.freeze()
