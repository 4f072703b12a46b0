"""Slow clients against gunicorn alone and through the nginx config in deploy/.

    .venv/bin/python benchmarks/slow_clients.py            # as root: installs nginx if missing

Starts gunicorn with config/gunicorn.conf.py (two workers of four threads, on a scratch
SQLite database) and Debian's nginx on loopback with deploy/tracemark-locations.conf in
front of it. Then, once straight at gunicorn and once through nginx, twelve clients open a
POST to the sign-in page and send its body one byte every two seconds, and, while they do,
an ordinary request (GET /version, what the MLflow client asks first) is timed. Without the
proxy each slow body holds one of gunicorn's threads while Django reads it; with it nginx
holds them. Every wait is bounded: the slow bodies last 40 s, an ordinary request gives up
after 45 s, and the whole run takes about two minutes. Prints one line per path.
"""

import argparse
import http.client
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
BODY = b"username=someone&pass"  # 21 bytes: 42 s at a byte every 2 s
BYTE_EVERY = 2.0
ORDINARY_TIMEOUT = 45.0

NGINX_CONF = """\
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    upstream tracemark {{ server 127.0.0.1:{upstream}; keepalive 16; }}
    server {{
        listen 127.0.0.1:{port};
        include {locations};
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_nginx() -> str:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if found:
        return found
    if os.geteuid() != 0:
        sys.exit("nginx is not installed; run as root to install it, or: apt-get install nginx")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "install", "-y", "-q", "nginx"], check=True, env=env)
    return shutil.which("nginx", path="/usr/sbin:/usr/bin")


def wait_until_up(port: int, process: subprocess.Popen, deadline: float = 30.0) -> None:
    until = time.monotonic() + deadline
    while time.monotonic() < until:
        if process.poll() is not None:
            sys.exit(f"a server exited early with {process.returncode}")
        try:
            timed_get(port, timeout=2)
            return
        except OSError:
            time.sleep(0.2)
    sys.exit(f"nothing answered on port {port} within {deadline:.0f} s")


def timed_get(port: int, timeout: float) -> float:
    """Seconds for GET /version on a new connection; raises on error or timeout."""
    started = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", "/version")
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise OSError(f"GET /version answered {response.status}")
    finally:
        connection.close()
    return time.monotonic() - started


def slow_client(port: int, stop: threading.Event) -> None:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            head = (
                "POST /accounts/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                f"Content-Length: {len(BODY)}\r\n\r\n"
            )
            sock.sendall(head.encode())
            for byte in BODY:
                if stop.wait(BYTE_EVERY):
                    return
                sock.sendall(bytes([byte]))
    except OSError:
        pass  # dropped by the server: then it holds nothing either


def measure(port: int, clients: int) -> str:
    stop = threading.Event()
    threads = [
        threading.Thread(target=slow_client, args=(port, stop), daemon=True) for _ in range(clients)
    ]
    for thread in threads:
        thread.start()
    time.sleep(3 * BYTE_EVERY)  # every slow client is connected and sending
    try:
        return f"{timed_get(port, ORDINARY_TIMEOUT) * 1000:.0f} ms"
    except OSError as exc:
        return f"no answer ({exc})"
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=BYTE_EVERY + 11)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=12)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    nginx = ensure_nginx()
    tmp = Path(tempfile.mkdtemp(prefix="tracemark-slow-"))
    upstream, port = free_port(), free_port()
    env = {
        **os.environ,
        "DEBUG": "false",
        "SECRET_KEY": "benchmark-only-not-secret",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite3'}",
        "SECURE_SSL_REDIRECT": "false",
        "SECURE_COOKIES": "false",
        "SECURE_HSTS_SECONDS": "0",
        "STATIC_MANIFEST": "false",
        "WEB_CONCURRENCY": str(args.workers),
    }
    python = sys.executable
    subprocess.run([python, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    gunicorn = [python, "-m", "gunicorn", "config.wsgi", "-c", "config/gunicorn.conf.py"]
    servers = []
    try:
        log = open(tmp / "gunicorn.log", "w")  # noqa: SIM115 (closed with the process)
        servers.append(
            subprocess.Popen(
                [*gunicorn, "--bind", f"127.0.0.1:{upstream}"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        wait_until_up(upstream, servers[0])
        for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (tmp / name).mkdir()
        conf = tmp / "nginx.conf"
        conf.write_text(
            NGINX_CONF.format(
                tmp=tmp,
                upstream=upstream,
                port=port,
                locations=DEPLOY / "tracemark-locations.conf",
            )
        )
        subprocess.run([nginx, "-t", "-q", "-c", str(conf)], check=True)
        servers.append(subprocess.Popen([nginx, "-c", str(conf), "-g", "daemon off;"]))
        wait_until_up(port, servers[1])
        threads = args.workers * 4
        print(
            f"{args.clients} clients sending a body byte every {BYTE_EVERY:.0f} s; "
            f"gunicorn {args.workers} workers x 4 threads ({threads})"
        )
        print(f"  idle, straight to gunicorn:  {timed_get(upstream, 5) * 1000:.0f} ms")
        print(f"  idle, through nginx:         {timed_get(port, 5) * 1000:.0f} ms")
        print(f"  GET /version, straight to gunicorn: {measure(upstream, args.clients)}")
        print(f"  GET /version, through nginx:        {measure(port, args.clients)}")
    finally:
        for server in reversed(servers):
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
